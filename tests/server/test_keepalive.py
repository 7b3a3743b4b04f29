"""The keepalive as a unit: timers only, never a read, one verdict per missing pong."""

from __future__ import annotations

import threading
import time

import pytest

from django_websocket.server.concurrency import GREEN, THREADS, Mode
from django_websocket.server.keepalive import Keepalive

MODES = [pytest.param(GREEN, id="gevent"), pytest.param(THREADS, id="threads")]


class Target:
    """A connection stand-in whose peer answers pings when ``answering`` is set."""

    def __init__(self, answering: bool = True, can_send: bool = True) -> None:
        self.answering = answering
        self.can_send = can_send
        self.last_pong: bytes | None = None
        self.pings: list[tuple[float, bytes]] = []
        self.timeouts: list[float] = []
        self.failed = threading.Event()

    def send_keepalive_ping(self, payload: bytes) -> bool:
        self.pings.append((time.monotonic(), payload))
        if self.answering:
            self.last_pong = payload
        return self.can_send

    def keepalive_timed_out(self, timeout: float) -> None:
        self.timeouts.append(timeout)
        self.failed.set()


def _sleep(mode: Mode, seconds: float) -> None:
    if mode.green:
        import gevent

        gevent.sleep(seconds)
    else:
        time.sleep(seconds)


@pytest.mark.parametrize("mode", MODES)
def test_pings_every_interval_while_answered(mode: Mode) -> None:
    target = Target()
    keepalive = Keepalive(target, mode, interval=0.1, timeout=0.05)
    started = time.monotonic()
    keepalive.start()
    _sleep(mode, 0.55)
    keepalive.stop()
    count = len(target.pings)
    assert 3 <= count <= 6
    assert target.pings[0][0] - started >= 0.09
    assert len({payload for _, payload in target.pings}) == count  # a fresh payload each time
    assert target.timeouts == []
    _sleep(mode, 0.25)
    assert len(target.pings) == count  # stopped means stopped


@pytest.mark.parametrize("mode", MODES)
def test_a_missing_pong_fails_once_after_the_timeout(mode: Mode) -> None:
    target = Target(answering=False)
    keepalive = Keepalive(target, mode, interval=0.1, timeout=0.15)
    keepalive.start()
    _sleep(mode, 0.6)
    assert target.timeouts == [0.15]
    assert len(target.pings) == 1
    elapsed = (time.monotonic() - target.pings[0][0]) if target.pings else None
    assert elapsed is not None and elapsed > 0.15


@pytest.mark.parametrize("mode", MODES)
def test_a_ping_that_cannot_be_sent_stops_the_keepalive(mode: Mode) -> None:
    target = Target(answering=False, can_send=False)
    keepalive = Keepalive(target, mode, interval=0.05, timeout=0.05)
    keepalive.start()
    _sleep(mode, 0.4)
    assert len(target.pings) == 1
    assert target.timeouts == []


@pytest.mark.parametrize("mode", MODES)
def test_stop_before_the_first_ping(mode: Mode) -> None:
    target = Target()
    keepalive = Keepalive(target, mode, interval=0.05, timeout=0.05)
    keepalive.start()
    keepalive.stop()
    _sleep(mode, 0.2)
    assert target.pings == []


def test_the_keepalive_costs_no_cpu_between_pings() -> None:
    """Timers, not a loop: 200 idle keepalives use next to no CPU for a second."""
    targets = [Target() for _ in range(200)]
    keepalives = [Keepalive(t, GREEN, interval=0.5, timeout=0.5) for t in targets]
    for keepalive in keepalives:
        keepalive.start()
    cpu = time.process_time()
    _sleep(GREEN, 1.2)
    used = time.process_time() - cpu
    for keepalive in keepalives:
        keepalive.stop()
    assert all(len(t.pings) == 2 for t in targets)
    assert used < 0.3, used


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        Keepalive(Target(), GREEN, interval=0, timeout=1)
    with pytest.raises(ValueError):
        Keepalive(Target(), GREEN, interval=1, timeout=-1)
