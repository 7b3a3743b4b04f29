"""Run a WSGI application under gevent with WebSocket support and a graceful shutdown.

On SIGTERM or SIGINT the server stops accepting connections, ends idle
keep-alive connections, sends a close frame with 1001 (going away) on every
open WebSocket, and waits up to the shutdown timeout for WebSocket views and
HTTP requests in progress to end.  Messages a view sent before the close
frame are delivered first: the close frame is queued behind them.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
from gevent.pool import Pool

from .handler import ServerLog, WebSocketWSGIServer
from .websocket import open_websockets

__all__ = ["GOING_AWAY", "close_open_websockets", "make_server", "serve"]

logger = logging.getLogger("django_websocket.server")
access_logger = logging.getLogger("django.server")

#: The close code sent to WebSockets when the server stops (RFC 6455 section 7.4.1).
GOING_AWAY = 1001

_POLL = 0.05


def make_server(
    application: Callable[..., Any] | None, host: str, port: int, **kwargs: Any
) -> WebSocketWSGIServer:
    """A gevent WSGI server for ``application`` that serves WebSockets.

    Access lines go to the ``django.server`` logger (as under ``runserver``),
    errors to ``django_websocket.server``.  Connections are handled in a
    :class:`gevent.pool.Pool` without a size limit, so that :func:`serve` can
    wait for them when it stops (pass ``spawn=`` to choose otherwise).
    """
    kwargs.setdefault("log", ServerLog(access_logger, logging.INFO))
    kwargs.setdefault("error_log", ServerLog(logger, logging.ERROR))
    kwargs.setdefault("spawn", Pool())
    return WebSocketWSGIServer((host, port), application, **kwargs)


def close_open_websockets(
    timeout: float,
    code: int = GOING_AWAY,
    reason: str = "server shutting down",
    *,
    spawn: Callable[..., Any] = gevent.spawn,
    sleep: Callable[[float], Any] = gevent.sleep,
) -> int:
    """Close every open WebSocket with ``code`` and wait up to ``timeout`` seconds for their views.

    Each view sees the close as usual (iteration ends, ``receive()``
    returns ``None``) once the client answers it, or after the WebSocket's
    close timeout.  WebSockets opened while waiting (handshakes that were
    in progress) are closed too.  Returns how many views were still running
    when the time ran out.

    Each close runs in a task of its own started with ``spawn(function,
    *args)``; the defaults suit gevent.  Threaded servers pass a function
    that starts a thread, and ``time.sleep``.
    """
    asked: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        still_open = open_websockets()
        for websocket in still_open:
            if id(websocket) not in asked:
                asked.add(id(websocket))
                spawn(_close_quietly, websocket, code, reason)
        if not still_open or time.monotonic() >= deadline:
            return len(still_open)
        sleep(min(_POLL, max(0.0, deadline - time.monotonic())))


def _close_quietly(websocket: Any, code: int, reason: str) -> None:
    try:
        websocket.close(code, reason)
    except Exception:  # the view may have closed it meanwhile; nothing to report
        logger.debug("Closing a WebSocket at shutdown failed", exc_info=True)


def serve(server: WebSocketWSGIServer, shutdown_timeout: float = 10.0) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully and return.

    Stops accepting, ends idle keep-alive connections, closes open
    WebSockets with 1001, and waits up to ``shutdown_timeout`` seconds in
    all for WebSocket views and HTTP requests in progress to end; whatever
    still runs after that is stopped.
    """
    stopping = gevent.event.Event()

    def on_signal() -> None:
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, on_signal)
    server.start()
    logger.info("Serving on http://%s:%d/", *server.address[:2])
    stopping.wait()
    started = time.monotonic()
    logger.info("Shutting down: closing %d open WebSocket(s)", len(open_websockets()))
    server.close()  # stop accepting
    server.drain()
    left = close_open_websockets(shutdown_timeout)
    if left:
        logger.warning(
            "%d WebSocket view(s) still running after %.1f s; stopping them", left, shutdown_timeout
        )
    server.stop(timeout=max(0.0, shutdown_timeout - (time.monotonic() - started)))
    logger.info("Stopped in %.2f s", time.monotonic() - started)
