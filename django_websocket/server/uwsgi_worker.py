"""uWSGI workers under the gevent loop: close open WebSockets with 1001 when the worker stops.

uWSGI knows nothing of WebSockets.  When a worker stops (the master's
SIGINT on shutdown, SIGTERM with ``die-on-term``, SIGHUP on a graceful
reload or a graceful stop from the master FIFO), its gevent loop stops
accepting and the worker leaves as soon as its running requests are over,
which a WebSocket view does not do on its own.  The watchers installed here,
at the first WebSocket of the worker, send a close frame with 1001 (going
away) on every open WebSocket as soon as one of those signals arrives, so
that views see the close and return, and abort connections whose clients do
not answer within the close timeout (at most half ``worker-reload-mercy``).

Under uWSGI's threads the worker ends from C code, without running any
Python handler, so no close frame can be sent there (CAVEATS.md).
"""

from __future__ import annotations

import logging
import signal
from typing import Any

__all__ = ["SIGNALS", "watch_for_shutdown"]

logger = logging.getLogger("django_websocket")

#: The signals a uWSGI worker receives when it is told to stop.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP)

#: Seconds views get to end once their WebSockets are closed, unless the
#: worker's ``worker-reload-mercy`` (uWSGI's default 60 s) says less.
DEFAULT_MERCY = 60.0

_installed = False
_stopping = False


def watch_for_shutdown(uwsgi: Any) -> None:
    """Once per worker process: close open WebSockets with 1001 on a stop signal (gevent loop)."""
    global _installed
    if _installed:
        return
    _installed = True
    import gevent

    mercy = _mercy(uwsgi)
    for signum in SIGNALS:
        gevent.signal_handler(signum, _stop, mercy)


def _mercy(uwsgi: Any) -> float:
    options = getattr(uwsgi, "opt", {}) or {}
    value = options.get("worker-reload-mercy")
    if isinstance(value, bytes):
        value = value.decode()
    try:
        return float(value) if value else DEFAULT_MERCY
    except (TypeError, ValueError):
        return DEFAULT_MERCY


def _stop(mercy: float) -> None:
    global _stopping
    if _stopping:
        return
    _stopping = True
    from .serve import STRAGGLER_TIMEOUT, close_open_websockets, straggler_timeout
    from .websocket import open_websockets

    count = len(open_websockets())
    if count:
        logger.info("uWSGI worker stopping: closing %d open WebSocket(s) with 1001", count)
    left = close_open_websockets(mercy, abort_after=straggler_timeout(STRAGGLER_TIMEOUT, mercy))
    if left:
        logger.warning("%d WebSocket view(s) still running after %.1f s", left, mercy)
