"""Find the client's socket in a WSGI environ, for every server we know.

Taking the socket is outside the WSGI specification.  Each server keeps it
somewhere else; the places below were measured (see CAVEATS.md):

==============================  ===========================================
server                          where the socket is
==============================  ===========================================
this package's handler          ``environ["django_websocket.transport"]``
gunicorn gevent, sync, gthread  ``environ["gunicorn.socket"]``
gunicorn gevent_pywsgi          ``environ["gunicorn.sock"]``
gevent ``pywsgi`` (upgrade)     ``environ["wsgi.input"].raw._sock``
Django ``runserver``            ``environ["wsgi.input"]._read.__self__.raw._sock``
==============================  ===========================================

Where the server reads requests through a buffered reader, the bytes it may
already have buffered past the request headers are drained through that
reader before the socket is read directly, so none is lost.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ENVIRON_KEY", "Transport", "find_transport", "is_green_socket"]

#: The environ key under which this package's own handler offers the connection.
ENVIRON_KEY = "django_websocket.transport"


def is_green_socket(sock: object) -> bool:
    """Whether ``sock`` is a gevent socket (cooperative I/O)."""
    try:
        from gevent.socket import socket as green_socket
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return isinstance(sock, green_socket)


class Transport:
    """A client connection taken from a WSGI server.

    ``server`` names the server for logs and errors; ``threaded`` is true
    when each socket holds an operating-system thread (a capacity limit);
    ``on_hijack`` is called once the WebSocket handshake has been written,
    so a server that cooperates can stop treating the request as HTTP.
    """

    __slots__ = ("_hijacked", "_reader", "on_hijack", "server", "sock", "threaded")

    def __init__(
        self,
        sock: socket.socket,
        server: str,
        *,
        reader: io.BufferedIOBase | None = None,
        threaded: bool | None = None,
        on_hijack: Callable[[], None] | None = None,
    ) -> None:
        self.sock = sock
        self.server = server
        self._reader = reader
        self.threaded = (not is_green_socket(sock)) if threaded is None else threaded
        self.on_hijack = on_hijack
        self._hijacked = False

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
        return data or b""


def _socket_behind(stream: Any) -> tuple[socket.socket, io.BufferedIOBase] | None:
    """Find the socket under a buffered reader, through Django's ``LimitedStream``."""
    for _ in range(3):
        raw = getattr(stream, "raw", None)
        sock = getattr(raw, "_sock", None)
        if isinstance(sock, socket.socket) and isinstance(stream, io.BufferedIOBase):
            return sock, stream
        # django.core.handlers.wsgi.LimitedStream keeps the bound read method.
        bound = getattr(stream, "_read", None)
        stream = getattr(bound, "__self__", None)
        if stream is None:
            return None
    return None


def find_transport(environ: Mapping[str, Any]) -> Transport | None:
    """Return the connection behind ``environ``, or ``None`` when it cannot be taken.

    HTTP/2 requests never yield a socket: their stream shares a connection
    with other requests.
    """
    own = environ.get(ENVIRON_KEY)
    if isinstance(own, Transport):
        return own
    if str(environ.get("SERVER_PROTOCOL", "")).upper().startswith("HTTP/2"):
        return None
    wsgi_input = environ.get("wsgi.input")
    behind = _socket_behind(wsgi_input)
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        # gunicorn's sync, gthread and gevent workers: its own parser reads the
        # request; the reader under wsgi.input, if any, is not the socket's.
        return Transport(sock, "gunicorn")
    sock = environ.get("gunicorn.sock")
    if isinstance(sock, socket.socket):
        reader = behind[1] if behind is not None and behind[0] is sock else None
        return Transport(sock, "gunicorn (gevent_pywsgi)", reader=reader)
    if behind is not None:
        sock, reader = behind
        software = str(environ.get("SERVER_SOFTWARE", ""))
        name = "gevent.pywsgi" if is_green_socket(sock) else (software or "wsgiref")
        return Transport(sock, name, reader=reader)
    return None
