"""Run a WSGI application under gevent with WebSocket support and a graceful shutdown."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
from gevent.pywsgi import LoggingLogAdapter

from .handler import WebSocketWSGIServer
from .websocket import open_websockets

__all__ = ["close_open_websockets", "make_server", "serve"]

logger = logging.getLogger("django_websocket.server")
access_logger = logging.getLogger("django.server")


def make_server(
    application: Callable[..., Any] | None, host: str, port: int, **kwargs: Any
) -> WebSocketWSGIServer:
    """A gevent WSGI server for ``application`` that serves WebSockets.

    Access lines go to the ``django.server`` logger (as under ``runserver``),
    errors to ``django_websocket.server``.
    """
    kwargs.setdefault("log", LoggingLogAdapter(access_logger, logging.INFO))
    kwargs.setdefault("error_log", LoggingLogAdapter(logger, logging.ERROR))
    return WebSocketWSGIServer((host, port), application, **kwargs)


def close_open_websockets(timeout: float) -> int:
    """Close every open WebSocket with 1001 (going away) and wait up to ``timeout`` seconds.

    Each view sees the close as usual (iteration ends, ``receive()`` returns
    ``None``).  Returns how many were still open when the time ran out.
    """
    sockets = open_websockets()
    for websocket in sockets:
        gevent.spawn(websocket.close, 1001, "server shutting down")
    deadline = time.monotonic() + timeout
    while open_websockets() and time.monotonic() < deadline:
        gevent.sleep(0.05)
    return len(open_websockets())


def serve(server: WebSocketWSGIServer, shutdown_timeout: float = 10.0) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully.

    Stops accepting, closes open WebSockets with 1001, waits up to
    ``shutdown_timeout`` seconds for their views and other requests to end,
    and returns.
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
    left = close_open_websockets(shutdown_timeout)
    if left:
        logger.warning("%d WebSocket view(s) still running after %.1f s", left, shutdown_timeout)
    server.stop(timeout=max(0.0, shutdown_timeout - (time.monotonic() - started)))
