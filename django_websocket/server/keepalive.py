"""Keepalive pings: a ping every ``interval`` seconds, the connection failed without a pong.

The keepalive never reads from the socket.  Whoever reads for the
WebSocket (the view inside ``receive()``, or the WebSocket's own reader
while the view does anything else) records the latest pong; the keepalive
only sends pings and, ``timeout`` seconds after each, compares.  Between two
pings it costs one timer and no task, so an idle connection costs no CPU.
"""

from __future__ import annotations

import logging
import os
from typing import Protocol

from .concurrency import Mode, Timer

__all__ = ["Keepalive", "Pinged"]

logger = logging.getLogger("django_websocket")


class Pinged(Protocol):
    """What the keepalive needs of the connection it watches."""

    @property
    def last_pong(self) -> bytes | None:
        """The payload of the latest pong received."""

    def send_keepalive_ping(self, payload: bytes) -> bool:
        """Send a ping; ``False`` when the connection can no longer send."""

    def keepalive_timed_out(self, timeout: float) -> None:
        """No pong came within ``timeout`` seconds: fail the connection."""


class Keepalive:
    """Pings ``target`` every ``interval`` seconds and fails it after ``timeout`` without a pong.

    A ping's deadline runs from the moment it is due, not from when the
    kernel took it: a ping stuck behind a send to a peer that stopped reading
    times out like an unanswered one.
    """

    __slots__ = ("_mode", "_stopped", "_target", "_timer", "interval", "timeout")

    def __init__(self, target: Pinged, mode: Mode, interval: float, timeout: float) -> None:
        if interval <= 0 or timeout <= 0:
            raise ValueError("the keepalive interval and timeout must be > 0")
        self._target = target
        self._mode = mode
        self.interval = interval
        """Seconds from one ping to the next."""
        self.timeout = timeout
        """Seconds a ping may go without its pong."""
        self._timer: Timer | None = None
        self._stopped = False

    def start(self) -> None:
        """Send the first ping ``interval`` seconds from now."""
        self._timer = self._mode.call_later(self.interval, self._ping)

    def stop(self) -> None:
        """Send no more pings; a round in progress ends without acting."""
        self._stopped = True
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _ping(self) -> None:
        if self._stopped:
            return
        payload = os.urandom(4)
        # Armed first: the check must come even while the ping waits to be sent.
        self._timer = self._mode.call_later(self.timeout, self._check, payload)
        if not self._target.send_keepalive_ping(payload):
            self.stop()

    def _check(self, payload: bytes) -> None:
        if self._stopped:
            return
        if self._target.last_pong == payload:
            self._timer = self._mode.call_later(max(0.0, self.interval - self.timeout), self._ping)
            return
        self.stop()
        self._target.keepalive_timed_out(self.timeout)
