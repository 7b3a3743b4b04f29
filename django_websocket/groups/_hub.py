"""This process's group members, and one bounded outgoing queue per member WebSocket.

Whatever the backend, delivery to the sockets of this process ends here:
:meth:`Hub.deliver` appends the message to the queue of every local member
of the group and returns at once.  Each member's queue is written to its
socket, in order, by a task of its own that runs while messages come: a
greenlet, for WebSockets served under gevent, that waits up to
:data:`DRAIN_IDLE_TIMEOUT` for the next message before it ends (waking a
greenlet costs far less than starting one; an idle member costs none), or a
thread that ends when the queue is empty, for WebSockets of threaded
servers.  A member whose queue reaches its bound is a client that cannot
keep up: it leaves all its groups and is closed with 1013.

A member told to close (:meth:`Hub.close`) leaves its groups at once; its
task writes what was queued before, then closes the WebSocket with the
code and reason given, through the WebSocket's own ``close()``.

A member's tasks run where its WebSocket lives: in the gevent hub that
serves it, even when the message comes from another thread (a test's, or
the Redis reader's in a process without monkey-patching).

Nothing here yields while the hub's state is inconsistent, so in a
monkey-patched process no lock is needed; otherwise one re-entrant lock,
never held across a yield, guards the state.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from ..exceptions import ConnectionClosed
from ..protocol import CloseCode
from ..server.concurrency import Signal, for_green, process_is_green
from ..server.websocket import WebSocket

__all__ = [
    "DRAIN_IDLE_TIMEOUT",
    "EVICTION_CODE",
    "EVICTION_REASON",
    "CloseRequest",
    "Hub",
    "pause",
    "spawn",
]

logger = logging.getLogger("django_websocket.groups")

#: Close code for a member that cannot keep up: "Try Again Later" (see docs/groups.md).
EVICTION_CODE = CloseCode.TRY_AGAIN_LATER
EVICTION_REASON = "too slow for its group messages"

#: Seconds a member's drain greenlet waits for the next message before it ends.
DRAIN_IDLE_TIMEOUT = 2.0

# An outbox is open (takes messages), closing (told to close: it writes what it
# had queued, then the close frame), closed (its session ended) or evicted.
_OPEN, _CLOSING, _CLOSED, _EVICTED = "open", "closing", "closed", "evicted"


class CloseRequest:
    """A group's members are to be closed with ``code`` and ``reason`` (already validated)."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"<CloseRequest {self.code} {self.reason!r}>"


def spawn(green: bool, target: Callable[..., None], *args: Any, name: str | None = None) -> None:
    """Run ``target(*args)`` in a new greenlet, or else in a daemon thread named ``name``."""
    for_green(green).spawn(target, *args, name=name or "django-websocket-groups")


def pause() -> None:
    """In a gevent greenlet, yield once so that the drains just woken write their queues.

    A sender that never blocks would otherwise fill the queues of every
    member, fast or slow, before any of them is written to.
    """
    import gevent

    if isinstance(gevent.getcurrent(), gevent.Greenlet):
        gevent.sleep(0)


_thread_ident: Callable[[], int] | None = None


def _os_thread_ident() -> int:
    """The operating-system thread's id (``threading.get_ident`` is per greenlet when patched)."""
    global _thread_ident
    if _thread_ident is None:
        from gevent import monkey

        _thread_ident = monkey.get_original("_thread", "get_ident")
    return _thread_ident()


class _Context:
    """Where a WebSocket's tasks run: the gevent hub that serves it, or threads."""

    __slots__ = ("green", "hub")

    def __init__(self, websocket: WebSocket) -> None:
        self.hub: Any = websocket.hub
        self.green = self.hub is not None

    def here(self) -> bool:
        """Whether the caller runs in this context's thread (always, for threads)."""
        return not self.green or self.hub.thread_ident == _os_thread_ident()

    def call(self, function: Callable[..., Any], *args: Any) -> None:
        """Call ``function(*args)`` now if here, else soon in the hub's own thread."""
        if self.here():
            function(*args)
        else:
            self.hub.loop.run_callback_threadsafe(function, *args)

    def start(self, target: Callable[..., None], *args: Any) -> None:
        """Start a task: a greenlet in the hub, or a daemon thread."""
        if not self.green:
            spawn(False, target, *args)
            return
        import gevent

        self.call(gevent.spawn, target, *args)

    def event(self) -> Signal:
        """An event for tasks of this context to wait on."""
        return for_green(self.green).signal()


def _size(message: str | bytes) -> int:
    return len(message)


class _Outbox:
    """One member WebSocket's outgoing group messages, written in order by one task."""

    __slots__ = (
        "context",
        "groups",
        "queue",
        "queued_size",
        "running",
        "state",
        "wakeup",
        "websocket",
    )

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.context = _Context(websocket)
        self.groups: set[str] = set()
        self.queue: deque[str | bytes | CloseRequest] = deque()
        self.queued_size = 0
        self.running = False  # its drain task runs
        self.state = _OPEN
        # Greenlets: the drain greenlet waits on this while the queue is empty.
        self.wakeup: Any = self.context.event() if self.context.green else None

    def wake(self) -> None:
        """Wake the drain greenlet (from any thread)."""
        self.context.call(self.wakeup.set)


class Hub:
    """Which of this process's WebSockets are in which group, and delivery to them.

    :attr:`on_emptied` is called (outside any lock) when a group loses its
    last local member other than through :meth:`discard`, so that a backend
    can stop listening for it; :meth:`add` and :meth:`discard` report the
    change to their caller instead.  :attr:`on_changed` is called (outside
    any lock) with the names of the groups whose number of local members
    changed, however it changed, so that a backend can publish the counts.
    """

    def __init__(
        self,
        max_queue: int,
        max_queue_bytes: int | None,
        on_emptied: Callable[[str], None] | None = None,
        on_changed: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.green = process_is_green()
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.on_emptied = on_emptied
        """Called with a group's name when eviction or a session's end empties it here."""
        self.on_changed = on_changed
        """Called with the names of groups whose local member count changed."""
        self._lock = for_green(self.green).guard()
        self._groups: dict[str, set[_Outbox]] = {}
        self._outboxes: dict[WebSocket, _Outbox] = {}

    # ------------------------------------------------------------------
    # Membership

    def add(self, name: str, websocket: WebSocket) -> bool:
        """Make ``websocket`` a member of ``name``; ``True`` if the group was empty here.

        A WebSocket that is closing or closed, or that is being closed for
        being too slow, is not added: it could receive nothing.
        """
        if websocket.closed:
            return False
        with self._lock:
            outbox = self._outboxes.get(websocket)
            new = outbox is None
            if outbox is None:
                outbox = self._outboxes[websocket] = _Outbox(websocket)
            elif outbox.state != _OPEN:
                return False
            members = self._groups.get(name)
            first = not members
            if members is None:
                members = self._groups[name] = set()
            changed = outbox not in members
            members.add(outbox)
            outbox.groups.add(name)
        if new:
            # Runs at once (and undoes the above) if the session is already over.
            websocket.add_close_callback(self._session_ended)
        if changed:
            self._changed([name])
        return first and websocket in self._outboxes

    def discard(self, name: str, websocket: WebSocket) -> bool:
        """Remove ``websocket`` from ``name``; ``True`` if that emptied the group here."""
        with self._lock:
            outbox = self._outboxes.get(websocket)
            if outbox is None or name not in outbox.groups:
                return False
            outbox.groups.discard(name)
            emptied = self._leave(name, outbox)
        self._changed([name])
        return emptied

    def _leave(self, name: str, outbox: _Outbox) -> bool:
        members = self._groups.get(name)
        if members is None:
            return False
        members.discard(outbox)
        if members:
            return False
        del self._groups[name]
        return True

    def _leave_all(self, outbox: _Outbox) -> tuple[list[str], list[str]]:
        """Leave every group (lock held); the groups left, and those that left emptied."""
        names, outbox.groups = outbox.groups, set()
        return list(names), [name for name in names if self._leave(name, outbox)]

    def _finish(self, outbox: _Outbox, state: str) -> tuple[list[str], list[str]]:
        """Retire an outbox (lock held): drop its queue, leave its groups, stop its task."""
        outbox.state = state
        outbox.queue.clear()
        outbox.queued_size = 0
        if outbox.wakeup is not None and outbox.running:
            outbox.wake()  # the drain greenlet sees the state and ends
        return self._leave_all(outbox)

    def _session_ended(self, websocket: WebSocket) -> None:
        """Close callback: the WebSocket leaves every group, its queue is dropped."""
        with self._lock:
            outbox = self._outboxes.pop(websocket, None)
            if outbox is None:
                return
            left, emptied = self._finish(outbox, _CLOSED)
        self._changed(left)
        self._emptied(emptied)

    def _emptied(self, names: list[str]) -> None:
        if self.on_emptied is None:
            return
        for name in names:
            try:
                self.on_emptied(name)
            except Exception:
                logger.exception("groups: could not stop listening for group %r", name)

    def _changed(self, names: list[str]) -> None:
        if self.on_changed is None or not names:
            return
        try:
            self.on_changed(names)
        except Exception:
            logger.exception("groups: could not publish the member counts of %s", names)

    def has_members(self, name: str) -> bool:
        """Whether ``name`` has members in this process."""
        with self._lock:
            return bool(self._groups.get(name))

    def members(self, name: str) -> list[WebSocket]:
        """A snapshot of this process's members of ``name``."""
        with self._lock:
            return [outbox.websocket for outbox in self._groups.get(name, ())]

    def count(self, name: str) -> int:
        """How many of this process's WebSockets are members of ``name``."""
        with self._lock:
            return len(self._groups.get(name, ()))

    # ------------------------------------------------------------------
    # Delivery

    def deliver(self, name: str, message: str | bytes) -> int:
        """Queue ``message`` for every local member of ``name``; return how many took it.

        Never blocks: members that cannot take it are evicted (closed with 1013).
        """
        size = _size(message)
        taken = 0
        with self._lock:
            members = self._groups.get(name)
            if not members:
                return 0
            for outbox in list(members):
                if self._put(outbox, message, size):
                    taken += 1
        return taken

    def _put(self, outbox: _Outbox, message: str | bytes, size: int) -> bool:
        if outbox.state != _OPEN:
            return False
        queue = outbox.queue
        if queue and (
            len(queue) >= self.max_queue
            or (
                self.max_queue_bytes is not None
                and outbox.queued_size + size > self.max_queue_bytes
            )
        ):
            self._evict(outbox)
            return False
        queue.append(message)
        outbox.queued_size += size
        if not outbox.running:
            outbox.running = True
            green = outbox.wakeup is not None
            outbox.context.start(self._drain_green if green else self._drain_thread, outbox)
        elif outbox.wakeup is not None and len(queue) == 1:
            outbox.wake()  # it waits for a message (else it is writing and gets to it)
        return True

    def _next(self, outbox: _Outbox) -> str | bytes | CloseRequest | None:
        """The outbox's next message (lock held); ``None`` when empty or retired."""
        if not outbox.queue or (outbox.state != _OPEN and outbox.state != _CLOSING):
            return None
        message = outbox.queue.popleft()
        if not isinstance(message, CloseRequest):
            outbox.queued_size -= _size(message)
        return message

    def _send(self, outbox: _Outbox, message: str | bytes | CloseRequest) -> bool:
        """Write one message; ``False`` once the socket cannot take any more."""
        if isinstance(message, CloseRequest):
            self._close_member(outbox, message)
            return False
        try:
            outbox.websocket.send(message)
        except ConnectionClosed:
            self._stop(outbox)
            return False
        except Exception:
            logger.exception("groups: sending to a WebSocket failed")
            self._stop(outbox)
            return False
        return True

    def _drain_green(self, outbox: _Outbox) -> None:
        """A member's greenlet: write its queue in order; end once idle for a while."""
        wakeup = outbox.wakeup
        while True:
            wakeup.clear()  # before looking at the queue: no wake-up is lost
            while True:
                with self._lock:
                    message = self._next(outbox)
                if message is None:
                    break
                if not self._send(outbox, message):
                    return
            if outbox.state in (_OPEN, _CLOSING) and wakeup.wait(DRAIN_IDLE_TIMEOUT):
                continue
            with self._lock:
                if outbox.state not in (_OPEN, _CLOSING) or not outbox.queue:
                    outbox.running = False
                    return

    def _drain_thread(self, outbox: _Outbox) -> None:
        """A threaded server's member: write its queue in order, then end."""
        while True:
            with self._lock:
                message = self._next(outbox)
                if message is None:
                    outbox.running = False
                    return
            if not self._send(outbox, message):
                return

    def _stop(self, outbox: _Outbox) -> None:
        """The socket is closing: it leaves its groups now and its queue is dropped."""
        with self._lock:
            outbox.running = False
            if outbox.state == _EVICTED or outbox.state == _CLOSED:
                return  # evicted: the closing task reports the emptied groups
            if self._outboxes.get(outbox.websocket) is outbox:
                del self._outboxes[outbox.websocket]
            left, emptied = self._finish(outbox, _CLOSED)
        self._changed(left)
        self._emptied(emptied)

    # ------------------------------------------------------------------
    # Closing members on request (groups.close)

    def close(self, name: str, code: int, reason: str) -> int:
        """Close every local member of ``name`` with ``code`` and ``reason``; return how many.

        Each member leaves all its groups at once (it is no longer counted
        and takes no more group messages); what was queued for it before is
        still written, then the close frame, by the member's own task, in the
        hub or thread that serves it, through :meth:`WebSocket.close`.
        """
        request = CloseRequest(code, reason)
        left: list[str] = []
        emptied: list[str] = []
        closing = 0
        with self._lock:
            for outbox in list(self._groups.get(name, ())):
                if outbox.state != _OPEN:
                    continue
                closing += 1
                outbox.state = _CLOSING
                names, empty = self._leave_all(outbox)
                left += names
                emptied += empty
                outbox.queue.append(request)
                if not outbox.running:
                    outbox.running = True
                    green = outbox.wakeup is not None
                    target = self._drain_green if green else self._drain_thread
                    outbox.context.start(target, outbox)
                elif outbox.wakeup is not None:
                    outbox.wake()
        self._changed(sorted(set(left)))
        self._emptied(sorted(set(emptied)))
        return closing

    def _close_member(self, outbox: _Outbox, request: CloseRequest) -> None:
        """In the member's own task: send the close frame and complete the handshake."""
        try:
            outbox.websocket.close(request.code, request.reason)
        except Exception:
            logger.exception("groups: closing a WebSocket failed")
        with self._lock:
            outbox.running = False
            if self._outboxes.get(outbox.websocket) is outbox:
                del self._outboxes[outbox.websocket]
            outbox.state = _CLOSED
            outbox.queue.clear()
            outbox.queued_size = 0

    # ------------------------------------------------------------------
    # Slow clients

    def _evict(self, outbox: _Outbox) -> None:
        """Close a member whose queue is full (called with the lock held)."""
        pending = len(outbox.queue)
        left, emptied = self._finish(outbox, _EVICTED)
        logger.warning(
            "groups: closing a WebSocket with %d: %d messages were waiting for it "
            "(limits: %d messages, %s bytes); the client does not read fast enough",
            EVICTION_CODE,
            pending,
            self.max_queue,
            self.max_queue_bytes,
        )
        outbox.context.start(self._close_evicted, outbox, left, emptied)

    def _close_evicted(self, outbox: _Outbox, left: list[str], emptied: list[str]) -> None:
        """Send the close frame once the socket takes it; abort if it does not in time.

        The drain may be blocked writing to the client; the close frame follows
        its write.  If the client takes nothing for ``close_timeout`` seconds,
        the connection is cut without a close frame.
        """
        self._changed(left)
        self._emptied(emptied)
        websocket = outbox.websocket
        done = outbox.context.event()
        timeout = websocket.close_timeout
        outbox.context.start(self._abort_later, websocket, done, timeout)
        try:
            websocket.close(EVICTION_CODE, EVICTION_REASON)
        except Exception:
            logger.exception("groups: closing a slow WebSocket failed")
        finally:
            done.set()

    @staticmethod
    def _abort_later(websocket: WebSocket, done: Any, timeout: float) -> None:
        if done.wait(timeout):
            return
        logger.warning(
            "groups: a slow WebSocket took no data for %.1f s after it was told to close; "
            "connection aborted",
            timeout,
        )
        # The blocked write fails, the view's read sees the end.
        websocket.abort()
