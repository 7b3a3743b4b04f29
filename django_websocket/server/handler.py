"""A gevent ``pywsgi`` handler that serves HTTP and hands upgrade requests' sockets to views.

For an upgrade request it offers the connection to the application under
``environ["django_websocket.transport"]``.  When the application took it
(performed a WebSocket handshake), the handler writes no HTTP response at
all, ends keep-alive and logs the request as ``101``; any other request is
served exactly as by gevent's own handler.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from gevent.pywsgi import WSGIHandler, WSGIServer

from .transport import ENVIRON_KEY, Transport

__all__ = ["WebSocketHandler", "WebSocketWSGIServer"]

logger = logging.getLogger("django_websocket.server")

_SWITCHING = "101 Switching Protocols"


class WebSocketHandler(WSGIHandler):  # type: ignore[misc]
    """gevent WSGI handler that never writes after a WebSocket took the connection."""

    _transport: Transport | None = None

    def get_environ(self) -> dict[str, Any]:
        """The WSGI environ, plus the connection for requests that ask for an upgrade."""
        environ: dict[str, Any] = super().get_environ()
        self._transport = None
        if self._connection_upgrade_requested():
            transport = Transport(
                self.socket, "django_websocket", reader=self.rfile, threaded=False
            )
            environ[ENVIRON_KEY] = transport
            self._transport = transport
        return environ

    def _hijacked(self) -> bool:
        return self._transport is not None and self._transport.hijacked

    def run_application(self) -> None:
        """Run the application; after a WebSocket, discard its response unwritten."""
        if self._transport is None:
            super().run_application()
            return
        self.result = self.application(self.environ, self.start_response)
        try:
            if not self._hijacked():
                self.process_result()
        finally:
            close = getattr(self.result, "close", None)
            self.result = None
            try:
                if close is not None:
                    close()  # Django sends request_finished here
            finally:
                if self._hijacked():
                    self._end_after_websocket()

    def _end_after_websocket(self) -> None:
        self.close_connection = True
        self.headers_sent = True
        self.status = _SWITCHING.encode("latin-1")
        self._orig_status = _SWITCHING
        self.code = 101

    def handle_error(
        self, t: type[BaseException], v: BaseException, tb: TracebackType | None
    ) -> None:
        """Log an application error; after a WebSocket, never write a 500 onto the socket."""
        if not self._hijacked():
            super().handle_error(t, v, tb)
            return
        logger.error("Error after a WebSocket session ended", exc_info=(t, v, tb))
        self._end_after_websocket()


class WebSocketWSGIServer(WSGIServer):  # type: ignore[misc]
    """gevent's ``WSGIServer`` with :class:`WebSocketHandler` as its handler."""

    handler_class = WebSocketHandler
