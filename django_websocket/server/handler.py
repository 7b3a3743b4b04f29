"""A gevent ``pywsgi`` handler that serves HTTP and hands upgrade requests' sockets to views.

For an upgrade request it offers the connection to the application under
``environ["django_websocket.transport"]``.  When the application took it
(performed a WebSocket handshake), the handler writes no HTTP response at
all, ends keep-alive and logs the request as ``101``; any other request is
served exactly as by gevent's own handler.

The server can also *drain* for a graceful shutdown
(:meth:`WebSocketWSGIServer.drain`): connections waiting idle between two
keep-alive requests are ended at once, and a connection busy with a request
is ended once that request's response has been written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import socket
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any

from gevent import GreenletExit
from gevent.pywsgi import LoggingLogAdapter, WSGIHandler, WSGIServer

from .transport import ENVIRON_KEY, Transport

__all__ = ["ServerLog", "WebSocketHandler", "WebSocketWSGIServer"]

logger = logging.getLogger("django_websocket.server")

_SWITCHING = "101 Switching Protocols"

# The limits of http.client.parse_headers, which gevent parses headers with.
_MAX_LINE = 65536
_MAX_FIELDS = 100
# What the email parser behind it takes as "name:" (visible ASCII but ':').
_FIELD_NAME = re.compile(r"[!-9;-~]+")


class ServerLog(LoggingLogAdapter):  # type: ignore[misc]
    """gevent's adapter from a server log to a :mod:`logging` logger, which can say
    whether the logger would keep a line (so no line is formatted for nothing)."""

    __slots__ = ()

    @property
    def enabled(self) -> bool:
        """Whether the logger handles records of the adapter's level."""
        return bool(self._logger.isEnabledFor(self._level))


class WebSocketHandler(WSGIHandler):  # type: ignore[misc]
    """gevent WSGI handler that never writes after a WebSocket took the connection."""

    _transport: Transport | None = None
    _message_class: type | None = None

    def handle(self) -> None:
        """Serve the connection, then close its buffered reader.

        gevent's handler closes the socket but only drops the reader, which
        keeps the socket's event watchers until the garbage collector finds it
        (after the hub's loop is gone, when a server thread ended).
        """
        reader = self.rfile
        try:
            super().handle()
        finally:
            with contextlib.suppress(OSError, ValueError):
                reader.close()
            finished = getattr(self.server, "connection_finished", None)
            if finished is not None:
                try:
                    finished()
                except Exception:
                    logger.exception("connection_finished hook %r failed", finished)

    def MessageClass(self, fp: Any, *args: Any) -> Any:
        """Read and parse the request's header fields, as gevent's handler does, faster.

        gevent hands the header block to ``http.client.parse_headers``, whose
        email parser costs ~20 us per request.  A block whose every line is a
        plain ``name: value`` line is parsed here into the very message that
        parser would build; any other block (continuation lines, stray CRs,
        names the email parser would not accept, a limit exceeded) goes to the
        email parser unchanged, so its outcome never differs.
        """
        lines: list[bytes] = []
        fields: list[tuple[str, str]] = []
        plain = True
        while True:
            line = fp.readline(_MAX_LINE + 1)
            lines.append(line)
            if len(line) > _MAX_LINE or len(lines) > _MAX_FIELDS:
                plain = False  # let the email parser report it
                break
            if line in (b"\r\n", b"\n", b""):
                break
            if plain:
                text = line.decode("latin-1")
                body = text[:-2] if text.endswith("\r\n") else text[:-1]
                name, colon, value = body.partition(":")
                if (
                    not text.endswith("\n")
                    or "\r" in body
                    or not colon
                    or _FIELD_NAME.fullmatch(name) is None
                ):
                    plain = False
                else:
                    fields.append((name, value.lstrip(" \t")))
        parse = super().MessageClass
        if not plain:
            return parse(io.BytesIO(b"".join(lines)), *args)
        cls = WebSocketHandler._message_class
        if cls is None:
            cls = WebSocketHandler._message_class = type(parse(io.BytesIO(b"\r\n"), *args))
        message = cls()
        for name, value in fields:
            message.set_raw(name, value)
        message.set_payload("")
        return message

    def read_requestline(self) -> str:
        """Read the next request line, as an idle connection the server may end while draining."""
        server = self.server
        if getattr(server, "draining", False):
            return ""  # no new request on this connection: the server is stopping
        idle = getattr(server, "idle_handlers", None)
        if idle is not None:
            idle.add(self)
        try:
            line: str = super().read_requestline()
        finally:
            if idle is not None:
                idle.discard(self)
        return line

    def handle_one_request(self) -> Any:
        """Handle one request; end keep-alive once the server drains."""
        result = super().handle_one_request()
        if result is True and getattr(self.server, "draining", False):
            return None
        return result

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

    def log_request(self) -> None:
        """Write the access line, unless the access logger would drop it."""
        log = self.server.log
        if isinstance(log, ServerLog) and not log.enabled:
            return
        super().log_request()

    def format_request(self) -> str:
        """An access line without a timestamp: the ``django.server`` logger adds one.

        ``client "request line" status length seconds``, e.g.
        ``127.0.0.1 "GET /chat/ HTTP/1.1" 101 - 12.345678``; a WebSocket's
        duration is the session's.
        """
        address = self.client_address
        client = address[0] if isinstance(address, tuple) else address
        status = (self._orig_status or self.status or "000").split()[0]
        if isinstance(status, bytes):
            status = status.decode("latin-1")
        duration = f"{self.time_finish - self.time_start:.6f}" if self.time_finish else "-"
        length = self.response_length or "-"
        return f'{client or "-"} "{self.requestline or ""}" {status} {length} {duration}'

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
        if issubclass(t, GreenletExit):
            # The server stopped while this view was still running, past the
            # shutdown timeout; the WebSocket was already closed for it.
            logger.warning("WebSocket view for %s stopped at shutdown", self.path)
        else:
            logger.error("Error after a WebSocket session ended", exc_info=(t, v, tb))
        self._end_after_websocket()


class WebSocketWSGIServer(WSGIServer):  # type: ignore[misc]
    """gevent's ``WSGIServer`` with :class:`WebSocketHandler` as its handler."""

    handler_class = WebSocketHandler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.draining = False
        """Whether the server is stopping: no further request is read on any connection."""
        self.idle_handlers: weakref.WeakSet[WebSocketHandler] = weakref.WeakSet()
        """Handlers waiting for the next request on a keep-alive connection."""
        self.connection_finished: Callable[[], None] | None = None
        """Called in each connection's greenlet once the connection has ended
        (the Django layer closes that greenlet's database connections)."""

    def drain(self) -> int:
        """Read no further request on any connection, and end idle keep-alive connections now.

        A request in progress runs to its end (its response is written, then
        its connection is closed); WebSockets are not affected (close them
        with :func:`~django_websocket.server.serve.close_open_websockets`).
        Returns how many idle connections were ended.
        """
        self.draining = True
        idle = list(self.idle_handlers)
        for handler in idle:
            sock = getattr(handler, "socket", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        return len(idle)
