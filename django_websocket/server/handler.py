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

It is meant to face clients directly, so it enforces :class:`Limits`: a
deadline for each request's head, an idle timeout between keep-alive
requests, sizes of the request line and header fields (``414`` and
``431``), and a bound on simultaneous connections beyond which new ones get
``503``.  Bad input is logged at INFO, never with a traceback; the
connection is closed after any error response and after any refused
WebSocket handshake (what the client sent behind it is not HTTP).
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import io
import logging
import re
import resource
import socket
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import gevent
from gevent import GreenletExit
from gevent.pywsgi import MAX_REQUEST_LINE, LoggingLogAdapter, WSGIHandler, WSGIServer

from ..protocol.handshake import asks_for_websocket
from .transport import ENVIRON_KEY, Transport

__all__ = [
    "Limits",
    "RequestHeadTooLarge",
    "ServerLog",
    "WebSocketHandler",
    "WebSocketWSGIServer",
    "default_max_connections",
]

logger = logging.getLogger("django_websocket.server")

_SWITCHING = "101 Switching Protocols"

#: The longest request line :class:`Limits` can allow (gevent's own buffer, less CRLF).
MAX_REQUEST_LINE_CEILING = MAX_REQUEST_LINE - 2
#: The most header fields :class:`Limits` can allow (``http.client.parse_headers``,
#: which gevent relies on for unusual header blocks, counts the blank line too).
MAX_HEADER_FIELDS_CEILING = 99
#: The longest header line :class:`Limits` can allow (``http.client``'s own limit).
MAX_HEADER_LINE_CEILING = 65536
# What the email parser behind it takes as "name:" (visible ASCII but ':').
_FIELD_NAME = re.compile(r"[!-9;-~]+")

# After an error response, read (and drop) what the client still sends for at
# most this long and this much, so that closing does not reset the connection
# before the client has read the response.
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 1 << 20
# Descriptors kept for the process itself (listening socket, log files,
# modules, ...) when the connection bound is derived from the descriptor limit.
_RESERVED_DESCRIPTORS = 100
#: Seconds between two WARNING lines about refused connections (or failed accepts).
WARNING_INTERVAL = 10.0
# How long accepting pauses when the process is out of descriptors.
_ACCEPT_PAUSE = 0.2
# At most this many refusals are answered with 503 at once; beyond, closed at once.
_MAX_REFUSING = 100
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def _response(status: str, body: str, *extra: str) -> bytes:
    lines = [
        f"HTTP/1.1 {status}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("latin-1")


_TOO_LONG_URI = _response("414 URI Too Long", "414 URI Too Long: the request line is too long\n")
_HEAD_TOO_LARGE = _response(
    "431 Request Header Fields Too Large",
    "431 Request Header Fields Too Large\n",
)
_BAD_REQUEST = _response("400 Bad Request", "400 Bad Request\n")
_TIMEOUT = _response("408 Request Timeout", "408 Request Timeout\n")
_UNAVAILABLE = _response(
    "503 Service Unavailable",
    "503 Service Unavailable: too many connections, try again later\n",
    "Retry-After: 1",
)


def default_max_connections() -> int:
    """The connection bound derived from the process's descriptor limit (``ulimit -n``).

    Half of the descriptors left once 100 are kept for the process itself:
    a connection whose view uses the database holds a second descriptor for
    that connection.  At least 1.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft < 0:
        soft = 1 << 16
    return max(1, (soft - _RESERVED_DESCRIPTORS) // 2)


@dataclass(frozen=True)
class Limits:
    """What the server allows each client; the defaults suit a server facing the internet.

    ``header_timeout``
        seconds from a connection's accept (or from the first byte of a
        later keep-alive request) to the end of its request head; a client
        that takes longer is disconnected (``408`` if it had started).
    ``keepalive_timeout``
        seconds a connection may stay idle between two plain HTTP requests.
    ``max_request_line``
        bytes of the request line, at most (longer: ``414``); at most
        8190, gevent's own ceiling.
    ``max_header_fields``
        header fields per request (more: ``431``); at most 99, the
        ceiling of the parser gevent relies on.
    ``max_header_line``
        bytes of one header field line, at most (longer: ``431``); at most
        65536.
    ``max_connections``
        simultaneous connections, WebSockets included; connections beyond
        it get ``503`` and are closed.  ``None``: derived from the
        descriptor limit (:func:`default_max_connections`).
    """

    header_timeout: float = 10.0
    keepalive_timeout: float = 5.0
    max_request_line: int = 8190
    max_header_fields: int = 99
    max_header_line: int = 8190
    max_connections: int | None = None

    def __post_init__(self) -> None:
        ceilings = {
            "max_request_line": MAX_REQUEST_LINE_CEILING,
            "max_header_fields": MAX_HEADER_FIELDS_CEILING,
            "max_header_line": MAX_HEADER_LINE_CEILING,
        }
        for name, ceiling in ceilings.items():
            value = getattr(self, name)
            if not 1 <= value <= ceiling:
                raise ValueError(f"{name} must be between 1 and {ceiling}, not {value}")
        for name in ("header_timeout", "keepalive_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")


#: The limits a server gets when none are given.
DEFAULT_LIMITS = Limits()


class RequestHeadTooLarge(ValueError):
    """A request's header fields exceed :class:`Limits` (answered with ``431``)."""


def _discard(data: bytes) -> None:
    """The ``write`` callable of a response that is never written."""


class _RequestLineTooLong(Exception):
    pass


class _HeadTimeout(BaseException):
    """Raised into a handler whose request head is late (a BaseException, like
    gevent's own Timeout, so that gevent's ``except Exception`` passes it on)."""


class ServerLog(LoggingLogAdapter):  # type: ignore[misc]
    """gevent's adapter from a server log to a :mod:`logging` logger, which can say
    whether the logger would keep a line (so no line is formatted for nothing)."""

    __slots__ = ()

    @property
    def enabled(self) -> bool:
        """Whether the logger handles records of the adapter's level."""
        return bool(self._logger.isEnabledFor(self._level))


class WebSocketHandler(WSGIHandler):  # type: ignore[misc]
    """gevent WSGI handler that never writes after a WebSocket took the connection.

    It also enforces the server's :class:`Limits` on each request's head.
    """

    _transport: Transport | None = None
    _message_class: type | None = None
    _head_timer: Any = None
    _requests_read = 0
    _lingering = False
    _head_started = False

    def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
        super().__init__(sock, address, server, rfile)
        self._accepted = time.monotonic()

    @property
    def limits(self) -> Limits:
        """The server's :class:`Limits` (the defaults without a server)."""
        limits = getattr(getattr(self, "server", None), "limits", None)
        return limits if isinstance(limits, Limits) else DEFAULT_LIMITS

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
            self._cancel_head_timer()
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
        names the email parser would not accept) goes to the email parser
        unchanged, so its outcome never differs.  A block over the
        :class:`Limits` raises :class:`RequestHeadTooLarge` as soon as it is
        seen.
        """
        limits = self.limits
        max_line, max_fields = limits.max_header_line, limits.max_header_fields
        lines: list[bytes] = []
        fields: list[tuple[str, str]] = []
        plain = True
        while True:
            line = fp.readline(max_line + 1)
            if len(line) > max_line:
                raise RequestHeadTooLarge(f"a header line longer than {max_line} bytes")
            lines.append(line)
            if line in (b"\r\n", b"\n", b""):
                break
            if len(lines) > max_fields:
                raise RequestHeadTooLarge(f"more than {max_fields} header fields")
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
            try:
                parsed = parse(io.BytesIO(b"".join(lines)), *args)
            except http.client.HTTPException as exc:  # its own limits (never reached)
                raise RequestHeadTooLarge(str(exc)) from None
            if parsed.status == "Line too long":  # likewise
                raise RequestHeadTooLarge("a header line too long")
            return parsed
        cls = WebSocketHandler._message_class
        if cls is None:
            cls = WebSocketHandler._message_class = type(parse(io.BytesIO(b"\r\n"), *args))
        message = cls()
        for name, value in fields:
            message.set_raw(name, value)
        message.set_payload("")
        return message

    def read_requestline(self) -> str:
        """Wait for the next request line within the :class:`Limits`; ``""`` ends the connection.

        The first request must arrive whole within ``header_timeout`` of the
        accept; a later one must start within ``keepalive_timeout`` (the
        connection is idle meanwhile, and a draining server ends it) and
        arrive whole within ``header_timeout`` of its first byte.
        """
        server = self.server
        if getattr(server, "draining", False):
            return ""  # no new request on this connection: the server is stopping
        limits = self.limits
        first = self._requests_read == 0
        self._requests_read += 1
        if first:
            remaining = self._accepted + limits.header_timeout - time.monotonic()
            self._start_head_timer(remaining)
        idle = getattr(server, "idle_handlers", None)
        if idle is not None:
            idle.add(self)
        try:
            if first:
                started = self.rfile.peek(1)
                self._head_started = bool(started)
            else:
                with gevent.Timeout(limits.keepalive_timeout, False):
                    started = self.rfile.peek(1)
                    self._head_started = bool(started)
                    self._start_head_timer(limits.header_timeout)
                if self._head_timer is None:
                    logger.debug(
                        "Closing a keep-alive connection idle for %.1f s", limits.keepalive_timeout
                    )
                    return ""
        finally:
            if idle is not None:
                idle.discard(self)
        if not started:
            return ""
        line: bytes = self.rfile.readline(limits.max_request_line + 1)
        if len(line) > limits.max_request_line:
            raise _RequestLineTooLong()
        return line.decode("latin-1")

    def read_request(self, raw_requestline: str) -> Any:
        """Parse the request line and the header fields, before the head's deadline."""
        try:
            return super().read_request(raw_requestline)
        finally:
            self._cancel_head_timer()

    def _start_head_timer(self, seconds: float) -> None:
        timer = gevent.Timeout(max(0.0, seconds), _HeadTimeout())
        timer.start()
        self._head_timer = timer

    def _cancel_head_timer(self) -> None:
        timer, self._head_timer = self._head_timer, None
        if timer is not None:
            timer.close()

    def handle_one_request(self) -> Any:
        """Handle one request; refuse what breaks the limits; end keep-alive once the server drains.

        An error response (``400``, ``408``, ``414``, ``431``) and a refused
        WebSocket handshake end the connection after a short lingering
        close, so the client reads the response before the connection ends.
        """
        self._lingering = False
        self._head_started = False
        try:
            result = super().handle_one_request()
        except _HeadTimeout:
            self._cancel_head_timer()
            return self._head_timed_out()
        except _RequestLineTooLong:
            self.requestline = ""
            logger.info(
                "Refused a request from %s with 414: request line longer than %d bytes",
                self._client(),
                self.limits.max_request_line,
            )
            result = ("414", _TOO_LONG_URI)
        finally:
            self._cancel_head_timer()
        if isinstance(result, tuple):
            status, body = result
            self._send_error(status, body)
            return None
        if self._lingering:
            self._linger()
            return None
        if result is True and getattr(self.server, "draining", False):
            return None
        return result

    def _head_timed_out(self) -> None:
        limits = self.limits
        logger.info(
            "Closed a connection from %s: no complete request head within %.1f s",
            self._client(),
            limits.header_timeout,
        )
        if self._head_started:
            self._send_error("408", _TIMEOUT)
        return None

    def _send_error(self, status: str, body: bytes) -> None:
        """Write an error response of gevent's or ours, log it, and end the connection."""
        self.status = status.encode("latin-1")
        self._orig_status = status
        try:
            self.socket.sendall(body)
        except OSError:
            return
        self.time_finish = time.time()
        self.log_request()
        self._linger()

    def _linger(self) -> None:
        """Stop writing, then drop what the client still sends for a little while.

        Closing a socket with unread input resets the connection, and the
        reset can destroy the response before the client has read it.
        """
        sock = self.socket
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        if getattr(self.server, "draining", False):
            return
        idle = getattr(self.server, "idle_handlers", None)
        if idle is not None:
            idle.add(self)  # a draining server ends this at once
        received = 0
        try:
            with gevent.Timeout(_LINGER_SECONDS, False):
                while received < _LINGER_BYTES:
                    try:
                        data = sock.recv(1 << 16)
                    except OSError:
                        break
                    if not data:
                        break
                    received += len(data)
        finally:
            if idle is not None:
                idle.discard(self)

    def _client(self) -> str:
        address = self.client_address
        return str(address[0] if isinstance(address, tuple) else address or "-")

    def _handle_client_error(self, ex: BaseException) -> tuple[str, bytes]:
        """A request gevent cannot parse: log it at INFO (never a traceback) and refuse it."""
        if isinstance(ex, RequestHeadTooLarge):
            logger.info("Refused a request from %s with 431: %s", self._client(), ex)
            return ("431", _HEAD_TOO_LARGE)
        reason = getattr(ex, "formatted_message", None) or str(ex) or type(ex).__name__
        logger.info("Refused a bad request from %s with 400: %s", self._client(), reason)
        return ("400", _BAD_REQUEST)

    def _connection_upgrade_requested(self) -> bool:
        """Whether the request asks for a WebSocket, by the handshake's own token-list rule.

        gevent compares whole values (``Upgrade: websocket`` or
        ``Connection: upgrade``), so ``Upgrade: websocket, foo`` with
        ``Connection: keep-alive, Upgrade`` would get no socket.
        """
        values = self.headers.get_all("Upgrade") or ()
        return asks_for_websocket(", ".join(values))

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        """Start the response; a refused WebSocket handshake also ends the connection.

        Whatever the client sent behind its handshake (frames) is no HTTP.
        """
        if self._transport is not None and not self._hijacked():
            self.close_connection = True
            self._lingering = True
            if not any(name.lower() == "connection" for name, _ in headers):
                headers = [*headers, ("Connection", "close")]
        return super().start_response(status, headers, exc_info)

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
        self.result = self.application(self.environ, self._start_response_unless_hijacked)
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

    def _start_response_unless_hijacked(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        """``start_response`` for an application that may take the connection.

        Once it has, the application's response (Django's, after the view) is
        never written, so its status and headers are not even checked.
        """
        if self._hijacked():
            return _discard
        return self.start_response(status, headers, exc_info)  # type: ignore[no-any-return]

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
    """gevent's ``WSGIServer`` with :class:`WebSocketHandler` as its handler.

    ``limits`` (a :class:`Limits`) bounds what each client may do and how
    many connections are served at once; connections beyond the bound get
    ``503`` and are closed, with one WARNING per :data:`WARNING_INTERVAL`
    saying how many were refused.  When the process runs out of descriptors
    anyway, accepting pauses briefly, with the same kind of WARNING instead
    of gevent's traceback per attempt.
    """

    handler_class = WebSocketHandler

    def __init__(self, *args: Any, limits: Limits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits if limits is not None else DEFAULT_LIMITS
        """The :class:`Limits` every connection is held to."""
        self.max_connections = (
            self.limits.max_connections
            if self.limits.max_connections is not None
            else default_max_connections()
        )
        """How many connections are served at once (beyond: ``503``)."""
        self.connection_count = 0
        """Connections being served now (WebSockets included)."""
        self.draining = False
        """Whether the server is stopping: no further request is read on any connection."""
        self.idle_handlers: weakref.WeakSet[WebSocketHandler] = weakref.WeakSet()
        """Handlers waiting for the next request on a keep-alive connection."""
        self.connection_finished: Callable[[], None] | None = None
        """Called in each connection's greenlet once the connection has ended
        (the Django layer closes that greenlet's database connections)."""
        self._refusing = 0
        self._warnings: dict[str, tuple[float, int]] = {}
        self._accept_pause: Any = None

    def _warn(self, kind: str, message: str, *args: Any) -> None:
        """Log ``message`` at most once per :data:`WARNING_INTERVAL` for each ``kind``.

        The line also says how many times it happened since the last one.
        """
        now = time.monotonic()
        next_at, count = self._warnings.get(kind, (0.0, 0))
        count += 1
        if now < next_at:
            self._warnings[kind] = (next_at, count)
            return
        self._warnings[kind] = (now + WARNING_INTERVAL, 0)
        logger.warning(
            message + " (%d time(s) since the last such warning; at most one every %.0f s)",
            *args,
            count,
            WARNING_INTERVAL,
        )

    def do_read(self) -> Any:
        """Accept a connection; when out of descriptors, pause accepting with a WARNING."""
        try:
            return super().do_read()
        except OSError as exc:
            if exc.errno not in _OUT_OF_RESOURCES:
                raise
            self._warn(
                "accept",
                "Cannot accept connections: %s; %d connection(s) open; pausing accepts "
                "(lower --max-connections or raise the descriptor limit, ulimit -n)",
                exc.strerror or exc,
                self.connection_count,
            )
            self.stop_accepting()
            if self._accept_pause is None:
                self._accept_pause = self.loop.timer(_ACCEPT_PAUSE)
                self._accept_pause.start(self._resume_accepting)
            return None

    def _resume_accepting(self) -> None:
        pause, self._accept_pause = self._accept_pause, None
        if pause is not None:
            pause.close()
        if not self.closed and not self.draining:
            self.start_accepting()

    def do_handle(self, sock: Any, address: Any) -> None:
        """Serve the connection, or refuse it with ``503`` when the server is full."""
        if self.connection_count >= self.max_connections:
            self._refuse(sock)
            return
        self.connection_count += 1
        try:
            super().do_handle(sock, address)
        except BaseException:
            self.connection_count -= 1
            raise

    def handle(self, sock: Any, address: Any) -> None:
        """Serve one connection (in its own greenlet), counting it while it lasts."""
        try:
            super().handle(sock, address)
        finally:
            self.connection_count -= 1

    def _refuse(self, sock: Any) -> None:
        self._warn(
            "full",
            "Refusing new connections with 503: %d open, the limit is %d (--max-connections)",
            self.connection_count,
            self.max_connections,
        )
        if self._refusing >= _MAX_REFUSING:
            sock.close()
            return
        self._refusing += 1
        gevent.spawn(self._answer_refused, sock)

    def _answer_refused(self, sock: Any) -> None:
        try:
            with gevent.Timeout(_LINGER_SECONDS, False):
                # Answer once the request head is in (clients read a response
                # only after sending their request), then drain until the end.
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 1 << 16:
                    chunk = sock.recv(1 << 14)
                    if not chunk:
                        break
                    head += chunk
                sock.sendall(_UNAVAILABLE)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(1 << 16):
                    pass
        except OSError:
            pass
        finally:
            self._refusing -= 1
            sock.close()

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
