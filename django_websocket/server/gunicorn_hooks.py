"""gunicorn server hooks: close open WebSockets with 1001 when a worker stops.

gunicorn knows nothing of WebSockets.  On SIGTERM a worker stops accepting
and waits up to ``graceful_timeout`` for its requests to end, which a
WebSocket view does not do on its own; then the worker is killed and its
clients see the TCP connection drop without a close frame (code 1006).
With these hooks the worker sends a close frame with 1001 (going away) on
every open WebSocket as soon as it starts stopping: views see the close
(iteration ends, ``receive()`` returns ``None``) and return, and the worker
exits as soon as they have.  Messages sent before the close frame are
delivered.

Reference them from the gunicorn configuration file (``-c gunicorn.conf.py``)::

    from django_websocket.server.gunicorn_hooks import post_worker_init, worker_int

or call them from hooks of your own with the same names.  They work with
the ``gevent``, ``gevent_pywsgi``, ``sync`` and ``gthread`` workers, and with
gevent-websocket's worker.

This module imports nothing heavy until a hook runs: gunicorn imports the
configuration file in its master process, before workers monkey-patch.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from .concurrency import for_green, process_is_green

__all__ = ["QUICK_SHUTDOWN_WAIT", "post_worker_init", "worker_int"]

#: Seconds :func:`worker_int` waits for views to end on a quick shutdown (SIGINT, SIGQUIT).
QUICK_SHUTDOWN_WAIT = 2.0

_WATCH_INTERVAL = 0.1


def _start(function: Any, *args: Any) -> None:
    for_green(process_is_green()).spawn(function, *args, name="django-websocket-shutdown")


def _close_all(worker: Any, timeout: float) -> None:
    from .serve import STRAGGLER_TIMEOUT, close_open_websockets, straggler_timeout
    from .websocket import open_websockets

    count = len(open_websockets())
    if count:
        worker.log.info("Closing %d open WebSocket(s) with 1001 (going away)", count)
    left = close_open_websockets(
        max(0.0, timeout),
        abort_after=straggler_timeout(STRAGGLER_TIMEOUT, timeout),
        spawn=_start,
        sleep=time.sleep,
    )
    if left:
        worker.log.warning("%d WebSocket view(s) still running after %.1f s", left, timeout)


def _watch(worker: Any) -> None:
    while worker.alive:
        time.sleep(_WATCH_INTERVAL)
    # gunicorn's arbiter kills the worker once graceful_timeout has passed.
    _close_all(worker, float(worker.cfg.graceful_timeout))


def post_worker_init(worker: Any) -> None:
    """gunicorn hook: watch for the worker to start stopping, then close its WebSockets.

    A gunicorn worker that receives SIGTERM (the graceful stop its master
    sends on SIGTERM, SIGHUP reloads and ``max_requests`` restarts) only
    records that it should stop; a small task started here notices within
    0.1 s, closes every open WebSocket with 1001 and waits for their views,
    at most ``graceful_timeout`` seconds.  A WebSocket not closed within
    5 s (at most half ``graceful_timeout``) of its close frame, such as one
    whose client stopped reading, is aborted, so one bad client does not
    hold the worker for the whole graceful timeout.

    In threaded workers (``sync``, ``gthread``) it also lets SIGTERM
    interrupt blocking system calls (``signal.siginterrupt``): gunicorn asks
    for them to be restarted instead, and the ``sync`` worker runs its view
    in the thread that must run the signal handler, so a view waiting for
    its client's next message would hide the signal until that message came.
    Python retries an interrupted call by itself once the handler has run
    (PEP 475), so the view does not notice.
    """
    if not process_is_green():
        signal.siginterrupt(signal.SIGTERM, True)
    _start(_watch, worker)


def worker_int(worker: Any) -> None:
    """gunicorn hook: on a quick shutdown (SIGINT, SIGQUIT), close WebSockets with 1001 first.

    Waits at most :data:`QUICK_SHUTDOWN_WAIT` seconds for the views, since a
    quick shutdown should be quick.
    """
    done = threading.Event()

    def close() -> None:
        try:
            _close_all(worker, QUICK_SHUTDOWN_WAIT)
        finally:
            done.set()

    # In sync workers this hook runs in a signal handler, on top of the very
    # thread that may be running a WebSocket view: closing from another task
    # and waiting a bounded time cannot deadlock with it.
    _start(close)
    done.wait(QUICK_SHUTDOWN_WAIT + 0.5)
