"""Take a connection from the WSGI server and turn it into a :class:`WebSocket`.

The server-side half of an upgrade: take the socket (and the bytes the
server had already buffered past the request), set ``TCP_NODELAY``, write
the handshake response, build the protocol connection and the blocking
:class:`WebSocket`.  What to answer (the handshake's outcome, the options)
is decided by the Django layer; how the socket is handled is decided here.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ..protocol import PerMessageDeflate, ServerConnection
from .transport import Transport
from .websocket import WebSocket

__all__ = ["SessionConfig", "open_session", "take"]

logger = logging.getLogger("django_websocket")
#: Warnings about how gevent is set up in this process (a logger of its own, so
#: a deliberately unpatched process, such as the test server, can silence it).
gevent_logger = logging.getLogger("django_websocket.gevent")

_warned_threaded: set[str] = set()
_checked_patching = False


@dataclass(frozen=True)
class SessionConfig:
    """The limits and timers of one WebSocket session (see :class:`WebSocket`).

    No defaults here: the Django layer fills every field from the view's
    options and the ``WEBSOCKET_*`` settings, whose defaults live in ``conf``.
    ``on_idle`` is :class:`WebSocket`'s: what to do before ``receive()`` waits.
    """

    max_message_size: int | None
    close_timeout: float
    ping_interval: float | None
    ping_timeout: float | None
    send_timeout: float
    max_queue: int
    on_idle: Callable[[], None] | None


def open_session(
    transport: Transport,
    response: bytes | None,
    config: SessionConfig,
    *,
    subprotocol: str | None = None,
    deflate: PerMessageDeflate | None = None,
) -> WebSocket | None:
    """Take ``transport``, write the handshake ``response`` and return the WebSocket.

    ``response`` is ``None`` when the server already answered the handshake
    (gevent-websocket).  Returns ``None`` when the client left before the
    response could be written; the connection is then shut down.
    """
    initial_data = take(transport)
    if response is not None:
        try:
            transport.sock.sendall(response)
        except OSError as exc:
            logger.info("WebSocket client left during the handshake: %s", exc)
            with contextlib.suppress(OSError):
                transport.sock.shutdown(socket.SHUT_RDWR)
            transport.release()
            return None
    connection = ServerConnection(
        max_message_size=config.max_message_size, deflate=deflate, control_events=False
    )
    return WebSocket(
        transport,
        connection,
        subprotocol=subprotocol,
        close_timeout=config.close_timeout,
        ping_interval=config.ping_interval,
        ping_timeout=config.ping_timeout,
        send_timeout=config.send_timeout,
        max_queue=config.max_queue,
        initial_data=initial_data,
        on_idle=config.on_idle,
    )


def take(transport: Transport) -> bytes:
    """Take the connection from the server; return the bytes it had already buffered.

    Every taken socket gets the same treatment, whether we hand-shake on it
    or the server (gevent-websocket) already did.
    """
    _warn_about_capacity(transport.server, transport.threaded)
    initial_data = transport.hijack()
    _no_delay(transport.sock)
    return initial_data


def _no_delay(sock: socket.socket) -> None:
    """Send each WebSocket frame at once: messages are small and latency-bound.

    Nagle's algorithm would hold a small frame back until the previous one
    is acknowledged (measured in bench/fanout.py: p50 latency ~50 ms -> ~25 ms).
    """
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _warn_about_capacity(server: str, threaded: bool) -> None:
    global _checked_patching
    if threaded and server not in _warned_threaded:
        _warned_threaded.add(server)
        logger.warning(
            "WebSockets are served by %s with one thread per connection: each open WebSocket "
            "holds a whole thread (and its worker's timeout applies). Serve them under gevent "
            "(`python -m django_websocket`, gunicorn -k gevent or uWSGI --gevent) for many "
            "connections.",
            server,
        )
    if not threaded and not _checked_patching:
        # Once per process: a server patches (or not) before it serves.
        _checked_patching = True
        from gevent import monkey

        if not monkey.is_module_patched("socket"):
            remedy = (
                "Set gevent-early-monkey-patch = true in uWSGI's configuration."
                if server == "uWSGI"
                else "Call gevent.monkey.patch_all() before importing Django."
            )
            gevent_logger.warning(
                "WebSockets are served by gevent but the socket module is not monkey-patched: "
                "blocking calls in views (database, HTTP clients) stall every connection. %s",
                remedy,
            )
