"""``WebSocketLiveServerTestCase``: Django's ``LiveServerTestCase``, served with WebSockets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from django.test import TransactionTestCase
from django.test.utils import modify_settings
from django.utils.functional import classproperty

from .client import DEFAULT_TIMEOUT, Cookies, Headers, WebSocketClient
from .server import LiveWebSocketServer, WSGIApplication

__all__ = ["WebSocketLiveServerTestCase"]


class WebSocketLiveServerTestCase(TransactionTestCase):
    """A ``TransactionTestCase`` that serves the project, WebSockets included, on a free port.

    The package's gevent server runs in a thread of the test process for
    the duration of the test class, like Django's ``LiveServerTestCase``
    (whose ``live_server_url`` it offers too, for Selenium).  Tests connect
    with :meth:`websocket_connect`::

        class ChatTests(WebSocketLiveServerTestCase):
            def test_echo(self):
                with self.websocket_connect("/echo/") as ws:
                    ws.send("hello")
                    self.assertEqual(ws.receive(), "hello")

    Databases: as in any ``TransactionTestCase`` nothing is wrapped in a
    transaction, so what a test writes is committed and visible to views,
    and what views write is visible to the test; the tables are flushed
    after each test.  In-memory SQLite databases are shared with the server
    thread.  At the end of each test its clients are closed and their views
    are waited for before the flush; a view still running then fails the test.
    """

    host: ClassVar[str] = "127.0.0.1"
    """The address to listen on."""
    port: ClassVar[int] = 0
    """The port to listen on; 0 picks a free one."""
    websocket_timeout: ClassVar[float] = DEFAULT_TIMEOUT
    """Default seconds clients wait (handshake, messages, close), and the wait for views."""

    live_websocket_server: ClassVar[LiveWebSocketServer]
    """The running server (a :class:`~django_websocket.testing.LiveWebSocketServer`)."""

    @classproperty
    def live_server_url(cls) -> str:
        """``http://127.0.0.1:port``: the server's HTTP address."""
        return cls.live_websocket_server.url

    @classproperty
    def live_websocket_url(cls) -> str:
        """``ws://127.0.0.1:port``: the base of WebSocket URLs."""
        return cls.live_websocket_server.ws_url

    @classmethod
    def get_application(cls) -> WSGIApplication | None:
        """The WSGI application to serve; ``None`` (the default) serves Django's ``WSGIHandler``.

        Override it to wrap the handler, for example in
        ``django.contrib.staticfiles.handlers.StaticFilesHandler``.
        """
        return None

    @classmethod
    def setUpClass(cls) -> None:
        """Start the server (after Django's class setup), and allow its host."""
        super().setUpClass()
        allowed_host = modify_settings(ALLOWED_HOSTS={"append": cls.host})
        allowed_host.enable()
        cls.addClassCleanup(allowed_host.disable)
        server = LiveWebSocketServer(
            cls.host,
            cls.port,
            application=cls.get_application(),
            timeout=cls.websocket_timeout,
            shutdown_timeout=cls.websocket_timeout,
        )
        server.start()
        cls.live_websocket_server = server
        cls.addClassCleanup(server.stop)

    def websocket_connect(
        self,
        path: str,
        *,
        subprotocols: Iterable[str] = (),
        headers: Headers | None = None,
        origin: str | None = None,
        user: Any = None,
        cookies: Cookies | None = None,
        timeout: float | None = None,
    ) -> WebSocketClient:
        """Open a WebSocket to ``path`` on the live server; raise ``HandshakeRefused`` if refused.

        The connection carries the cookies of ``self.client`` (so
        ``self.client.force_login(user)`` logs it in), unless ``user`` is
        given (a session of that user, for this connection only) or
        ``cookies`` is.  ``origin`` sets the ``Origin`` header (none by
        default; ``self.live_server_url`` is the same-origin value);
        ``subprotocols`` are offered in order; ``headers`` are added to the
        request.  ``timeout`` defaults to :attr:`websocket_timeout`.
        """
        if user is None and cookies is None:
            cookies = self.client.cookies
        return self.live_websocket_server.connect(
            path,
            subprotocols=subprotocols,
            headers=headers,
            origin=origin,
            user=user,
            cookies=cookies,
            timeout=timeout,
        )

    def _post_teardown(self) -> None:
        """Close the test's clients and wait for their views, then flush the database."""
        try:
            still_running = self.live_websocket_server.finish_test(self.websocket_timeout)
        finally:
            super()._post_teardown()  # type: ignore[misc]  # not in django-stubs
        if still_running:
            raise AssertionError(
                f"WebSocket view(s) still running {self.websocket_timeout:g} s after the "
                f"test closed its connections: {', '.join(still_running)}"
            )
