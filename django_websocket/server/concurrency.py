"""Greenlets or threads: the one place that decides, and the primitives of each.

A WebSocket served by a gevent server (its socket is a gevent socket) runs
its helper tasks as greenlets of the hub that serves it, with gevent's locks
and events; one served by a threaded server (Django's ``runserver
--no-gevent``, gunicorn ``sync``/``gthread``) uses threads.  Whether a socket
is a gevent one (:func:`is_green_socket`) or the process is patched
(:func:`process_is_green`) is asked here; code elsewhere gets its :class:`Mode`
from :func:`for_green` and never tests for gevent itself.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "GREEN",
    "THREADS",
    "Lock",
    "Mode",
    "Signal",
    "Timer",
    "for_green",
    "is_green_socket",
    "process_is_green",
]


class Lock(Protocol):
    """What the I/O layer needs of a lock: ``acquire`` with a timeout, ``release``."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool:
        """Take the lock; ``False`` when it could not be had in time."""

    def release(self) -> None:
        """Give the lock back."""


class Signal(Protocol):
    """An event: ``set``, ``clear``, ``is_set`` and ``wait`` with a timeout."""

    def set(self) -> None:
        """Wake every waiter, and the next ones until cleared."""

    def clear(self) -> None:
        """Make the next ``wait`` block."""

    def is_set(self) -> bool:
        """Whether it is set."""

    def wait(self, timeout: float | None = ...) -> bool:
        """Block until set or the timeout passed."""


class Timer(Protocol):
    """A call scheduled by :meth:`Mode.call_later`."""

    def cancel(self) -> None:
        """Do not make the call (no effect once it started)."""


class _NullContext:
    """A lock that does nothing: greenlets are not pre-empted between two switches."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


_NULL_CONTEXT = _NullContext()


class Mode:
    """How tasks run and wait: greenlets of a gevent hub, or operating-system threads."""

    __slots__ = ("green",)

    def __init__(self, green: bool) -> None:
        self.green = green
        """True for greenlets, False for threads."""

    def __repr__(self) -> str:
        return "<Mode greenlets>" if self.green else "<Mode threads>"

    def lock(self) -> Lock:
        """A new (non-re-entrant) lock for tasks of this mode."""
        if self.green:
            from gevent.lock import Semaphore

            return Semaphore()  # type: ignore[no-any-return]
        return threading.Lock()

    def guard(self) -> contextlib.AbstractContextManager[Any]:
        """A re-entrant lock for short sections that never block, or a no-op for greenlets.

        Greenlets switch only when they block, so such a section needs no
        lock under gevent.
        """
        if self.green:
            return _NULL_CONTEXT
        return threading.RLock()

    def signal(self) -> Signal:
        """A new event for tasks of this mode."""
        if self.green:
            from gevent.event import Event

            return Event()  # type: ignore[no-any-return]
        return threading.Event()

    def spawn(self, target: Callable[..., Any], *args: Any, name: str = "django-websocket") -> Any:
        """Run ``target(*args)`` in a new greenlet (of the current hub) or daemon thread."""
        if self.green:
            import gevent

            return gevent.spawn(target, *args)
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        return thread

    def call_later(self, delay: float, target: Callable[..., Any], *args: Any) -> Timer:
        """Call ``target(*args)`` in a task of its own after ``delay`` seconds.

        Under gevent a timer of the current hub's loop costs no greenlet
        until it fires; under threads a :class:`threading.Timer` waits.
        """
        if self.green:
            return _GreenTimer(delay, target, args)
        timer = threading.Timer(delay, target, args)
        timer.daemon = True
        timer.start()
        return timer

    def pause(self) -> None:
        """Let the other greenlets of the hub run (and the hub poll) before going on.

        gevent's socket calls return without switching while the socket is
        ready: a task that keeps reading or writing a busy socket would
        otherwise hold the whole hub.  Threads are pre-empted: nothing to do.
        """
        if self.green:
            import gevent

            gevent.sleep(0)

    def current(self) -> object:
        """The running greenlet or thread."""
        if self.green:
            import gevent

            return gevent.getcurrent()
        return threading.current_thread()


class _GreenTimer:
    """A one-shot timer watcher of the hub's loop that spawns a greenlet when due."""

    __slots__ = ("_args", "_target", "_watcher")

    def __init__(self, delay: float, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
        import gevent

        self._target = target
        self._args = args
        self._watcher: Any = gevent.get_hub().loop.timer(max(0.0, delay))
        self._watcher.start(self._due)

    def _due(self) -> None:
        # Run by the hub, which must not block: hand the call to a greenlet.
        import gevent

        self.cancel()
        gevent.spawn(self._target, *self._args)

    def cancel(self) -> None:
        """Stop the watcher and let go of it."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()


#: Greenlets of a gevent hub.
GREEN = Mode(True)
#: Operating-system threads.
THREADS = Mode(False)


def for_green(green: bool) -> Mode:
    """:data:`GREEN` or :data:`THREADS`."""
    return GREEN if green else THREADS


def is_green_socket(sock: object) -> bool:
    """Whether ``sock`` is a gevent socket (cooperative I/O)."""
    try:
        from gevent.socket import socket as green_socket
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return isinstance(sock, green_socket)


def process_is_green() -> bool:
    """Whether this process is monkey-patched by gevent (``threading`` starts greenlets)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("threading"))
