"""Find the client's socket in a WSGI environ, for every server we know.

Taking the socket is outside the WSGI specification.  Each server keeps it
somewhere else; the places below were measured (see docs/deployment.md):

==============================  ===========================================
server                          where the socket is
==============================  ===========================================
this package's handler          ``environ["django_websocket.transport"]``
gevent-websocket (handler or    ``environ["wsgi.websocket"].handler.socket``
its gunicorn worker)            (already upgraded by the server)
gunicorn gevent, sync, gthread  ``environ["gunicorn.socket"]``
gunicorn gevent_pywsgi          ``environ["gunicorn.sock"]``
gevent ``pywsgi`` (upgrade)     ``environ["wsgi.input"].raw._sock``
Django ``runserver``            ``environ["wsgi.input"]._read.__self__.raw._sock``
uWSGI (``--http-socket``,       no socket object: ``uwsgi.connection_fd()``
``--http``, with ``--gevent``   is the connection's descriptor
or ``--threads``)
==============================  ===========================================

Where the server reads requests through a buffered reader, the bytes it may
already have buffered past the request headers are drained through that
reader before the socket is read directly, so none is lost.  gunicorn's own
parser (its gevent, sync and gthread workers) keeps such bytes in its
``Unreader``; they are taken from there where gunicorn offers a way
(``Unreader.take_buffered()``, as gunicorn 27 does).

gevent-websocket's handler (and its gunicorn worker) is a special case: it
answers the handshake itself before the application runs and offers its own
connection object as ``environ["wsgi.websocket"]``.  That connection is
*adopted*: the transport found under it is marked
:attr:`Transport.already_upgraded`, the handshake must not be answered a
second time, and this package's protocol core reads and writes the socket
from then on (gevent-websocket's object is retired so that it writes
nothing, not even its own close frame).

uWSGI is another special case: it offers a descriptor, not a socket, and it
writes the application's response on that descriptor after the view, with
an error line in its log if the write fails.  The socket handed to the
WebSocket is made from a duplicate of the descriptor (uWSGI closes its own
after the request; each side closes only its own).  When the session is
over (:meth:`Transport.release`) the connection has been shut down, and
``/dev/null`` is put in place of uWSGI's descriptor (``os.dup2``): its
response then goes nowhere, and nothing reaches the client nor the log
(measured, see docs/deployment.md).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .concurrency import is_green_socket

__all__ = [
    "ENVIRON_KEY",
    "GEVENT_WEBSOCKET_KEY",
    "Transport",
    "find_transport",
    "is_green_socket",
    "unavailable_reason",
]

#: The environ key under which this package's own handler offers the connection.
ENVIRON_KEY = "django_websocket.transport"

#: The environ key under which gevent-websocket offers a connection it upgraded.
GEVENT_WEBSOCKET_KEY = "wsgi.websocket"


class Transport:
    """A client connection taken from a WSGI server.

    ``server`` names the server for logs and errors; ``threaded`` is true
    when each socket holds an operating-system thread (a capacity limit);
    ``on_hijack`` is called once the WebSocket handshake has been written,
    so a server that cooperates can stop treating the request as HTTP.
    ``take_buffered``, for servers that parse requests from a buffer of
    their own instead of a ``reader`` over the socket, returns without
    blocking the bytes that buffer holds past the request.  ``on_release``
    is called once by :meth:`release`, when the session is over and the
    connection shut down, for a server whose own later writes must be
    silenced (uWSGI).

    ``already_upgraded`` is true when the server answered the opening
    handshake itself, before the application ran (gevent-websocket).  The
    application must then write no handshake response of its own; it can no
    longer refuse with an HTTP status either (a refusal becomes a close
    frame, such as 1008); ``subprotocol`` is the subprotocol the server
    agreed to (``None`` when none), and no extension was negotiated.
    """

    __slots__ = (
        "_hijacked",
        "_reader",
        "_released",
        "_take_buffered",
        "already_upgraded",
        "on_hijack",
        "on_release",
        "server",
        "sock",
        "subprotocol",
        "threaded",
    )

    def __init__(
        self,
        sock: socket.socket,
        server: str,
        *,
        reader: io.BufferedIOBase | None = None,
        threaded: bool | None = None,
        on_hijack: Callable[[], None] | None = None,
        already_upgraded: bool = False,
        subprotocol: str | None = None,
        take_buffered: Callable[[], bytes] | None = None,
        on_release: Callable[[], None] | None = None,
    ) -> None:
        self.sock = sock
        self.server = server
        self._reader = reader
        self._take_buffered = take_buffered
        self.threaded = (not is_green_socket(sock)) if threaded is None else threaded
        self.on_hijack = on_hijack
        self.already_upgraded = already_upgraded
        self.subprotocol = subprotocol
        self.on_release = on_release
        self._hijacked = False
        self._released = False

    @property
    def hijacked(self) -> bool:
        """Whether the connection now speaks WebSocket (no HTTP response may follow)."""
        return self._hijacked

    def hijack(self) -> bytes:
        """Mark the connection as taken and return bytes the server had buffered.

        The server's buffered reader is drained without blocking: it returns
        only what it already holds, or what the socket has ready.
        """
        self._hijacked = True
        if self.on_hijack is not None:
            self.on_hijack()
        take, self._take_buffered = self._take_buffered, None
        if take is not None:
            return take()
        reader, self._reader = self._reader, None
        if reader is None:
            return b""
        timeout = self.sock.gettimeout()
        self.sock.setblocking(False)
        try:
            data = reader.read1(1 << 16)
        except (OSError, ValueError):
            data = b""
        finally:
            self.sock.settimeout(timeout)
        if self.server == "django_websocket":
            # Our own handler never reads HTTP from this connection again (it
            # stops at a closed reader), so its 8 KiB buffer can go now rather
            # than live as long as the WebSocket.
            with contextlib.suppress(OSError, ValueError):
                reader.close()
        return data or b""

    def release(self) -> None:
        """Let go of a connection whose WebSocket session is over (it has been shut down).

        Runs ``on_release`` once; a no-op for servers that need nothing more.
        """
        if self._released:
            return
        self._released = True
        if self.on_release is not None:
            self.on_release()


def _socket_behind(stream: Any) -> tuple[socket.socket, io.BufferedIOBase] | None:
    """Find the socket under a buffered reader, through Django's ``LimitedStream``
    and gevent's ``Input``."""
    for _ in range(3):
        raw = getattr(stream, "raw", None)
        sock = getattr(raw, "_sock", None)
        if isinstance(sock, socket.socket) and isinstance(stream, io.BufferedIOBase):
            return sock, stream
        if _bodiless_gevent_input(stream):
            stream = stream.rfile
            continue
        # django.core.handlers.wsgi.LimitedStream keeps the bound read method.
        bound = getattr(stream, "_read", None)
        stream = getattr(bound, "__self__", None)
        if stream is None:
            return None
    return None


def _bodiless_gevent_input(stream: Any) -> bool:
    """Whether ``stream`` is gevent's ``Input`` for a request without a body.

    gevent hands its raw reader to the application only when its own test
    says the request asks for an upgrade, and that test compares whole
    values: ``Upgrade: websocket, foo`` gets an ``Input`` around the reader
    instead.  With no body to read, that reader stands right after the
    request's headers, as for a recognised upgrade.
    """
    return (
        type(stream).__name__ == "Input"
        and type(stream).__module__ == "gevent.pywsgi"
        and not getattr(stream, "content_length", None)
        and not getattr(stream, "chunked_input", False)
        and getattr(stream, "position", 0) == 0
    )


def _gunicorn_buffered(wsgi_input: Any) -> Callable[[], bytes] | None:
    """How to take the bytes gunicorn's parser read past the request, if it can tell.

    Only for a request without a body (a handshake is a GET): whatever
    follows its headers then belongs to the WebSocket.
    """
    reader = getattr(wsgi_input, "reader", None)
    take = getattr(getattr(reader, "unreader", None), "take_buffered", None)
    if not callable(take) or getattr(reader, "length", None) != 0:
        return None

    def take_buffered() -> bytes:
        try:
            data = take()
        except (OSError, ValueError):
            return b""
        return bytes(data) if isinstance(data, (bytes, bytearray)) else b""

    return take_buffered


def _header(headers: Any, name: str) -> str | None:
    """The value of response header ``name`` in a list of (name, value) pairs, str or bytes."""
    for key, value in headers or ():
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value.strip()
    return None


def _adopt(websocket: Any) -> Transport | None:
    """The transport under a connection gevent-websocket's handler has already upgraded.

    gevent-websocket's ``WebSocket`` keeps its handler, and the handler keeps
    the client socket and the buffered reader it parsed the request with.
    Anything else under ``wsgi.websocket`` (or a connection already closed)
    is not adopted.
    """
    handler = getattr(websocket, "handler", None)
    sock = getattr(handler, "socket", None)
    reader = getattr(handler, "rfile", None)
    if not isinstance(sock, socket.socket) or getattr(websocket, "closed", True):
        return None

    def retire() -> None:
        # From here on this package drives the connection.  A closed
        # gevent-websocket object writes nothing: its handler skips its
        # closing handshake, and its __del__ fails quietly before sending.
        websocket.closed = True

    return Transport(
        sock,
        "gevent-websocket",
        reader=reader if isinstance(reader, io.BufferedIOBase) else None,
        threaded=False,
        on_hijack=retire,
        already_upgraded=True,
        subprotocol=_header(getattr(handler, "response_headers", None), "sec-websocket-protocol"),
    )


def _uwsgi_transport() -> Transport | None:
    """The connection of the request uWSGI is serving, as a socket of our own.

    Under uWSGI's gevent loop (``--gevent N``) the socket is a gevent one, so
    the session cooperates with the other greenlets whether or not the
    ``socket`` module is patched; otherwise (``--threads N``, or one request
    per process) it is a plain blocking socket and the session holds its
    thread.  ``None`` outside a request, or when uWSGI's module is missing.
    """
    try:
        uwsgi = importlib.import_module("uwsgi")  # only importable inside uWSGI
    except ImportError:
        return None
    connection_fd = getattr(uwsgi, "connection_fd", None)
    if not callable(connection_fd):
        return None
    try:
        fd = connection_fd()
    except Exception:  # no request in this core
        return None
    if not isinstance(fd, int) or fd < 0:
        return None
    loop = getattr(uwsgi, "loop", None)
    green = (loop.decode() if isinstance(loop, bytes) else str(loop)) == "gevent"
    if green:
        from gevent.socket import socket as green_socket

        socket_class: type[socket.socket] = green_socket
    else:
        socket_class = _original_socket_class()
    sock = socket_class(fileno=os.dup(fd))
    if _tls_in_uwsgi(sock, uwsgi):
        # uWSGI's own TLS is on this connection: the bytes on the descriptor
        # are encrypted, and a handshake written on it would break the stream.
        sock.close()
        return None
    # uWSGI leaves the descriptor non-blocking (its file status, shared with
    # the duplicate): make the socket's mode match what it believes.
    sock.settimeout(None)
    if green:
        from .uwsgi_worker import watch_for_shutdown

        watch_for_shutdown(uwsgi)

    def silence_uwsgi() -> None:
        # After a hijack uWSGI still writes the view's response on its
        # descriptor: onto a shut-down connection that write fails and is
        # logged as an error ("Broken pipe", "OSError: write error").  On
        # /dev/null it succeeds and goes nowhere; uWSGI then closes it.
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, fd)
        except OSError:
            pass  # the descriptor is already gone: nothing can be written on it
        finally:
            os.close(null)
        sock.close()

    return Transport(sock, "uWSGI", threaded=not green, on_release=silence_uwsgi)


#: uWSGI options whose sockets speak TLS inside the worker (uWSGI holds the TLS state).
_UWSGI_TLS_OPTIONS = ("https-socket", "ssl-socket", "suwsgi-socket")


def _tls_in_uwsgi(sock: socket.socket, uwsgi: Any) -> bool:
    """Whether ``sock`` was accepted on one of uWSGI's TLS sockets (``https-socket`` ...).

    Told by the connection's local address against the addresses of those
    options (``ADDRESS,cert,key``): TLS terminated in front of uWSGI (nginx,
    uWSGI's ``https`` router) leaves a plain connection, which is served.
    """
    options = getattr(uwsgi, "opt", None) or {}
    addresses: list[str] = []
    for name in _UWSGI_TLS_OPTIONS:
        values = options.get(name)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, bytes):
                value = value.decode(errors="replace")
            if isinstance(value, str) and value:
                addresses.append(value.split(",", 1)[0])
    if not addresses:
        return False
    try:
        local = sock.getsockname()
    except OSError:
        return True  # cannot tell: do not risk writing plain text on TLS
    if isinstance(local, (str, bytes)):
        name = local.decode(errors="replace") if isinstance(local, bytes) else local
        return name in addresses
    port = str(local[1])
    for address in addresses:
        host, _, bound_port = address.rpartition(":")
        if bound_port == port and host.strip("[]") in ("", "0.0.0.0", "::", str(local[0])):
            return True
    return False


def _original_socket_class() -> type[socket.socket]:
    """The standard library's socket class, even in a process gevent has patched."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        original: type[socket.socket] = monkey.get_original("socket", "socket")
        return original
    return socket.socket


def find_transport(environ: Mapping[str, Any]) -> Transport | None:
    """Return the connection behind ``environ``, or ``None`` when it cannot be taken.

    HTTP/2 requests never yield a socket: their stream shares a connection
    with other requests.  When the server has already upgraded the
    connection (``environ["wsgi.websocket"]``) but it cannot be adopted,
    ``None`` is returned too: answering the handshake a second time would
    corrupt the stream.
    """
    own = environ.get(ENVIRON_KEY)
    if isinstance(own, Transport):
        return own
    upgraded = environ.get(GEVENT_WEBSOCKET_KEY)
    if upgraded is not None:
        return _adopt(upgraded)
    if str(environ.get("SERVER_PROTOCOL", "")).upper().startswith("HTTP/2"):
        return None
    wsgi_input = environ.get("wsgi.input")
    behind = _socket_behind(wsgi_input)
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        # gunicorn's sync, gthread and gevent workers: its own parser reads the
        # request; the reader under wsgi.input, if any, is not the socket's.
        return Transport(sock, "gunicorn", take_buffered=_gunicorn_buffered(wsgi_input))
    sock = environ.get("gunicorn.sock")
    if isinstance(sock, socket.socket):
        reader = behind[1] if behind is not None and behind[0] is sock else None
        return Transport(sock, "gunicorn (gevent_pywsgi)", reader=reader)
    if "uwsgi.version" in environ:
        return _uwsgi_transport()
    if behind is not None:
        sock, reader = behind
        software = str(environ.get("SERVER_SOFTWARE", ""))
        name = "gevent.pywsgi" if is_green_socket(sock) else (software or "wsgiref")
        return Transport(sock, name, reader=reader)
    return None


def unavailable_reason(environ: Mapping[str, Any]) -> str | None:
    """Why :func:`find_transport` found no connection, with its remedy, when the server says.

    ``None`` when there is nothing more specific to say than that the server
    does not expose its socket.
    """
    if "uwsgi.version" in environ:
        return (
            "uWSGI terminates TLS on this connection itself (https-socket, ssl-socket or "
            "suwsgi-socket), so its bytes cannot be written from Python; terminate TLS in "
            "front of uWSGI (nginx, or uWSGI's https router) for WebSocket URLs"
        )
    return None
