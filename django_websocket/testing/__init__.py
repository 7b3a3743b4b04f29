"""Test a project's WebSocket views the way the rest of a Django project is tested.

::

    from django_websocket.testing import WebSocketLiveServerTestCase

    class EchoTests(WebSocketLiveServerTestCase):
        def test_echo(self):
            with self.websocket_connect("/echo/") as ws:
                ws.send("hello")
                self.assertEqual(ws.receive(), "hello")

:class:`WebSocketLiveServerTestCase` serves the project with the package's
gevent server in a thread of the test process (like Django's
``LiveServerTestCase``); :class:`WebSocketClient` is a small blocking client
that needs nothing beyond this package.  pytest-django users can enable the
fixtures of :mod:`django_websocket.testing.pytest_plugin` instead.  See
docs/testing.md.
"""

from __future__ import annotations

from ..exceptions import ConnectionClosed
from .cases import WebSocketLiveServerTestCase
from .client import DEFAULT_TIMEOUT, HandshakeRefused, WebSocketClient, WebSocketProtocolError
from .server import LiveWebSocketServer, in_memory_connections, session_cookies

__all__ = [
    "DEFAULT_TIMEOUT",
    "ConnectionClosed",
    "HandshakeRefused",
    "LiveWebSocketServer",
    "WebSocketClient",
    "WebSocketLiveServerTestCase",
    "WebSocketProtocolError",
    "in_memory_connections",
    "session_cookies",
]
