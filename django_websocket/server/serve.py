"""Run a WSGI application under gevent with WebSocket support and a graceful shutdown.

On SIGTERM or SIGINT the server stops accepting connections, ends idle
keep-alive connections, sends a close frame with 1001 (going away) on every
open WebSocket, and waits for WebSocket views and HTTP requests in progress
to end.  Messages a view sent before the close frame are delivered first:
the close frame is queued behind them.  A WebSocket whose view still runs
after the straggler timeout (its client did not complete the closing
handshake, or stopped reading so that even the close frame cannot be sent)
is aborted; whatever still runs at the shutdown timeout is stopped, so the
process exits within the shutdown timeout.
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

__all__ = [
    "GOING_AWAY",
    "STRAGGLER_TIMEOUT",
    "close_open_websockets",
    "make_server",
    "serve",
    "straggler_timeout",
]

logger = logging.getLogger("django_websocket.server")
access_logger = logging.getLogger("django.server")

#: The close code sent to WebSockets when the server stops (RFC 6455 section 7.4.1).
GOING_AWAY = 1001

#: Seconds a WebSocket gets to complete its closing handshake at shutdown
#: before its connection is cut, unless told otherwise (the default of
#: ``WEBSOCKET_CLOSE_TIMEOUT``).
STRAGGLER_TIMEOUT = 5.0

_POLL = 0.05


def make_server(
    application: Callable[..., Any] | None, host: str, port: int, **kwargs: Any
) -> WebSocketWSGIServer:
    """A gevent WSGI server for ``application`` that serves WebSockets.

    Access lines go to the ``django.server`` logger (as under ``runserver``),
    errors to ``django_websocket.server``.  Connections are handled in a
    :class:`gevent.pool.Pool`, so that :func:`serve` can wait for them when
    it stops (pass ``spawn=`` to choose otherwise); how many are served at
    once is bounded by ``limits`` (a :class:`~.handler.Limits`, the
    defaults when not given), not by the pool.
    """
    kwargs.setdefault("log", ServerLog(access_logger, logging.INFO))
    kwargs.setdefault("error_log", ServerLog(logger, logging.ERROR))
    kwargs.setdefault("spawn", Pool())
    return WebSocketWSGIServer((host, port), application, **kwargs)


def straggler_timeout(close_timeout: float, shutdown_timeout: float) -> float:
    """How long a WebSocket may take to close at shutdown before it is aborted.

    Its close timeout, but at most half the shutdown timeout, so that views
    have time to return once their connections are cut.
    """
    return max(0.0, min(close_timeout, shutdown_timeout / 2))


def close_open_websockets(
    timeout: float,
    code: int = GOING_AWAY,
    reason: str = "server shutting down",
    *,
    abort_after: float | None = None,
    spawn: Callable[..., Any] = gevent.spawn,
    sleep: Callable[[float], Any] = gevent.sleep,
) -> int:
    """Close every open WebSocket with ``code`` and wait up to ``timeout`` seconds for their views.

    Each view sees the close as usual (iteration ends, ``receive()``
    returns ``None``) once the client answers it, or after the WebSocket's
    close timeout.  WebSockets opened while waiting (handshakes that were
    in progress) are closed too.  A WebSocket whose view still runs
    ``abort_after`` seconds after it was asked to close (its client does not
    answer, or does not even read, so that the close frame cannot be sent)
    is aborted (:meth:`WebSocket.abort`): the client sees the connection
    end without a close frame (1006), and the view's blocked send or receive
    ends.  ``None`` never aborts.  Returns how many views were still
    running when the time ran out.

    Each close runs in a task of its own started with ``spawn(function,
    *args)``; the defaults suit gevent.  Threaded servers pass a function
    that starts a thread, and ``time.sleep``.
    """
    asked: dict[int, float] = {}
    aborted: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        still_open = open_websockets()
        now = time.monotonic()
        stragglers = []
        for websocket in still_open:
            key = id(websocket)
            if key not in asked:
                asked[key] = now
                spawn(_close_quietly, websocket, code, reason)
            elif abort_after is not None and key not in aborted and now - asked[key] >= abort_after:
                aborted.add(key)
                stragglers.append(websocket)
        if stragglers:
            logger.warning(
                "Aborting %d WebSocket(s) not closed within %.1f s of the close frame",
                len(stragglers),
                abort_after,
            )
            for websocket in stragglers:
                _abort_quietly(websocket)
        if not still_open or now >= deadline:
            return len(still_open)
        sleep(min(_POLL, max(0.0, deadline - time.monotonic())))


def _abort_quietly(websocket: Any) -> None:
    try:
        websocket.abort()
    except Exception:  # already gone; nothing to report
        logger.debug("Aborting a WebSocket at shutdown failed", exc_info=True)


def _close_quietly(websocket: Any, code: int, reason: str) -> None:
    try:
        websocket.close(code, reason)
    except Exception:  # the view may have closed it meanwhile; nothing to report
        logger.debug("Closing a WebSocket at shutdown failed", exc_info=True)


def serve(
    server: WebSocketWSGIServer,
    shutdown_timeout: float = 10.0,
    close_timeout: float = STRAGGLER_TIMEOUT,
) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully and return.

    Stops accepting, ends idle keep-alive connections, closes open
    WebSockets with 1001, aborts those not closed after
    :func:`straggler_timeout` (``close_timeout``, at most half the shutdown
    timeout), and waits for WebSocket views and HTTP requests in progress to
    end; whatever still runs is stopped so that this returns within
    ``shutdown_timeout`` seconds of the signal.
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
    # Stopping what still runs takes a moment too: keep it inside the bound.
    kill_time = min(1.0, shutdown_timeout / 4)
    waiting = max(0.0, shutdown_timeout - kill_time)
    left = close_open_websockets(
        waiting, abort_after=straggler_timeout(close_timeout, shutdown_timeout)
    )
    if left:
        logger.warning(
            "%d WebSocket view(s) still running at the %.1f s shutdown timeout; stopping them",
            left,
            shutdown_timeout,
        )
    pool = server.pool
    if isinstance(pool, Pool):
        pool.join(timeout=max(0.0, waiting - (time.monotonic() - started)))
        pool.kill(block=True, timeout=max(0.0, shutdown_timeout - (time.monotonic() - started)))
    else:
        server.stop(timeout=max(0.0, waiting - (time.monotonic() - started)))
    logger.info("Stopped in %.2f s", time.monotonic() - started)
