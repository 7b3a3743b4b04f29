"""pytest-django fixtures for WebSocket views.

Enable them in a ``conftest.py``::

    pytest_plugins = ["django_websocket.testing.pytest_plugin"]

and use ``websocket_live_server`` like pytest-django's ``live_server``::

    def test_echo(websocket_live_server):
        with websocket_live_server.connect("/echo/") as ws:
            ws.send("hello")
            assert ws.receive() == "hello"

The server (a :class:`~django_websocket.testing.LiveWebSocketServer`) is
started once per session; a test that uses it gets transactional database
access (``transactional_db``), and at its end its clients are closed and
their views waited for before the tables are flushed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .client import DEFAULT_TIMEOUT
from .server import LiveWebSocketServer

__all__ = ["websocket_live_server"]


@pytest.fixture(scope="session")
def _websocket_live_server_session(
    django_db_setup: None, django_db_blocker: Any
) -> Iterator[LiveWebSocketServer]:
    """The server of the whole session, started after the test databases exist."""
    with django_db_blocker.unblock():
        server = LiveWebSocketServer(timeout=DEFAULT_TIMEOUT)
        server.start()
    yield server
    server.stop()


@pytest.fixture
def websocket_live_server(
    _websocket_live_server_session: LiveWebSocketServer, transactional_db: None
) -> Iterator[LiveWebSocketServer]:
    """The project served with WebSockets on a free loopback port, for this test.

    Implies ``transactional_db``: data the test creates is committed, so
    views see it (and the test sees theirs).  Connect with
    ``websocket_live_server.connect(path, user=..., cookies=client.cookies, ...)``.
    A WebSocket view still running once the test's clients are closed
    fails the test.
    """
    from django.test.utils import modify_settings

    server = _websocket_live_server_session
    with modify_settings(ALLOWED_HOSTS={"append": server.host}):
        yield server
        still_running = server.finish_test()
    if still_running:
        pytest.fail(
            f"WebSocket view(s) still running {server.timeout:g} s after the test closed "
            f"its connections: {', '.join(still_running)}",
            pytrace=False,
        )
