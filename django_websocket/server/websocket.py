"""The blocking WebSocket object a view gets as ``request.websocket``.

It drives a :class:`~django_websocket.protocol.ServerConnection` over a socket
taken from the WSGI server.  Reading happens in the caller (the view) with
no reader task of its own; a keepalive task, when enabled, sends pings and
reads on the view's behalf only while it waits for a pong the view is not
reading.  Under gevent everything is cooperative; under a threaded server
(Django's ``runserver`` without gevent, gunicorn ``sync``/``gthread``) the
same code runs with threads and locks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Protocol, cast

from ..exceptions import ConnectionClosed
from ..protocol import (
    BinaryMessage,
    CloseCode,
    CloseReceived,
    ServerConnection,
    State,
    TextMessage,
)
from .transport import Transport

__all__ = ["WebSocket", "open_websockets"]

logger = logging.getLogger("django_websocket")

_RECV_SIZE = 1 << 16

# Module globals are cheaper to read than enum members, on the per-message path.
_OPEN = State.OPEN
_CLOSING = State.CLOSING
_CLOSED = State.CLOSED

_open: weakref.WeakSet[WebSocket] = weakref.WeakSet()


def open_websockets() -> list[WebSocket]:
    """The WebSockets of this process whose views are still running."""
    return list(_open)


class _Lock(Protocol):
    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *args: object) -> Any: ...


class _Event(Protocol):
    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = ...) -> bool: ...


class _NoLock:
    """A lock that does nothing: green code is not pre-empted between yields."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


_NO_LOCK = _NoLock()


class _Task(Protocol):
    def join(self, timeout: float | None = ...) -> Any: ...


_green_primitives: tuple[Callable[[], _Lock], Callable[[], _Event]] | None = None


def _primitives(green: bool) -> tuple[Callable[[], _Lock], Callable[[], _Event]]:
    global _green_primitives
    if not green:
        return cast(Callable[[], _Lock], threading.Lock), cast(
            Callable[[], _Event], threading.Event
        )
    if _green_primitives is None:
        from gevent.event import Event
        from gevent.lock import Semaphore

        _green_primitives = cast(Callable[[], _Lock], Semaphore), cast(Callable[[], _Event], Event)
    return _green_primitives


def _current_task(green: bool) -> object:
    """The running greenlet or thread (so a task never joins itself)."""
    if green:
        import gevent

        return gevent.getcurrent()
    return threading.current_thread()


def _spawn(green: bool, target: Callable[[], None]) -> _Task:
    if green:
        import gevent

        return cast(_Task, gevent.spawn(target))
    thread = threading.Thread(target=target, name="django-websocket-keepalive", daemon=True)
    thread.start()
    return thread


class WebSocket:
    """A server-side WebSocket connection with a blocking API.

    Messages are ``str`` for text frames and ``bytes`` for binary frames.
    The object is only usable while the view runs; afterwards it is closed
    and holds no reference to the socket.
    """

    def __init__(
        self,
        transport: Transport,
        connection: ServerConnection,
        *,
        subprotocol: str | None = None,
        close_timeout: float = 5.0,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        initial_data: bytes = b"",
    ) -> None:
        self._transport = transport
        self._sock: socket.socket | None = transport.sock
        self._conn = connection
        self.subprotocol = subprotocol
        """The subprotocol agreed in the handshake, or ``None``."""
        self.close_timeout = close_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout if ping_timeout is not None else ping_interval
        green = not transport.threaded
        self._green = green
        make_lock, make_event = _primitives(green)
        self._send_lock = make_lock()
        self._read_lock = make_lock()
        self._state_lock: contextlib.AbstractContextManager[Any] = (
            _NO_LOCK if green else threading.RLock()
        )
        self._pong_event = make_event()
        self._stop_event = make_event()
        self._sock_timeout: float | None = -1.0  # unknown
        self._lost = False
        self._shut_down = False
        self._keepalive: _Task | None = None
        self._logged_failure = False
        self._close_callbacks: list[Callable[[WebSocket], None]] = []
        if initial_data:
            connection.receive_data(initial_data)
        self._keepalive_timer: Any = None
        if ping_interval:
            if green:
                # No greenlet per idle connection: a timer watcher (a few
                # hundred bytes, against ~11 KiB for a parked greenlet) starts
                # a short-lived greenlet for each ping's round trip only.
                self._arm_keepalive()
            else:
                self._keepalive = _spawn(green, self._keepalive_loop)
        _open.add(self)

    # ------------------------------------------------------------------
    # Status

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or closed (no message can be sent)."""
        return self._conn.state is not _OPEN or self._lost

    @property
    def hub(self) -> Any:
        """The gevent hub whose loop serves this WebSocket; ``None`` under a threaded server.

        Code running in another thread can hand work to the WebSocket's own
        loop with ``websocket.hub.loop.run_callback_threadsafe(function)``.
        """
        if not self._green:
            return None
        hub = getattr(self._transport.sock, "hub", None)
        if hub is None:
            import gevent

            hub = gevent.get_hub()
        return hub

    @property
    def close_code(self) -> int | None:
        """The close status, once known.

        The peer's code when it sent a close frame (1005 when the frame had
        none), else the code we failed the connection with, else 1006 when
        the connection was lost without a close frame; ``None`` while open.
        """
        conn = self._conn
        if conn.close_received is not None:
            return conn.close_received.effective_code
        if conn.failure is not None:
            return conn.failure.code
        if conn.state is _OPEN and not self._lost:
            return None
        if conn.state is _CLOSED or self._lost:
            return CloseCode.ABNORMAL_CLOSURE
        return None

    @property
    def close_reason(self) -> str:
        """The close reason matching :attr:`close_code` (``""`` when none)."""
        conn = self._conn
        if conn.close_received is not None:
            return conn.close_received.reason
        if conn.failure is not None:
            return conn.failure.reason
        return ""

    # ------------------------------------------------------------------
    # Receiving

    def receive(self, timeout: float | None = None) -> str | bytes | None:
        """Return the next message, or ``None`` once the connection is closed.

        Blocks until a message arrives.  With ``timeout`` (seconds), raises
        :class:`TimeoutError` when none arrived in time.  Pings are answered
        and the closing handshake is completed on the way.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        conn = self._conn
        green = self._green
        while True:
            if green:  # greenlets are not pre-empted: no lock needed
                event = conn.next_event()
                state = conn.state
            else:
                with self._state_lock:
                    event = conn.next_event()
                    state = conn.state
            if event is not None:
                kind = type(event)
                if kind is TextMessage or kind is BinaryMessage:
                    return event.data  # type: ignore[union-attr]
                if kind is CloseReceived:
                    self._flush()
                    self._finish_closing()
                    return None
                self._flush()  # the pong queued for a ping
                continue
            if state is not _OPEN or self._lost:
                self._flush()  # e.g. the close frame of a violation
                self._log_failure()
                self._finish_closing()
                return None
            if not self._read(deadline):
                raise TimeoutError("no WebSocket message received within the timeout")

    def __iter__(self) -> Iterator[str | bytes]:
        """Iterate over messages until the connection closes (never yields ``None``)."""
        while True:
            message = self.receive()
            if message is None:
                return
            yield message

    # django-websocket 0.3 names -----------------------------------------

    def wait(self) -> str | bytes | None:
        """Block for the next message; ``None`` once closed (django-websocket 0.3)."""
        return self.receive()

    def _poll(self) -> None:
        """Take in whatever the socket has ready now, without blocking.

        Reads until the socket has nothing more (bounded, so a client that
        never pauses cannot keep the view here).
        """
        for _ in range(16):
            if self.closed or not self._read(time.monotonic(), drain=True):
                return

    def read(self, fallback: Any = None) -> str | bytes | Any | None:
        """Return a message if one is ready, else ``fallback``, without blocking (0.3)."""
        self._poll()
        if self._conn.pending_messages == 0:
            return fallback
        return self.receive()

    def has_messages(self) -> bool:
        """Whether a message is ready to be read without blocking (0.3)."""
        self._poll()
        return self._conn.pending_messages > 0

    def count_messages(self) -> int:
        """How many messages are ready to be read without blocking (0.3)."""
        self._poll()
        return self._conn.pending_messages

    def _read(self, deadline: float | None, drain: bool = False) -> bool:
        """Read once from the socket into the connection; ``False`` on timeout.

        Without ``drain``, returns at once when events are already pending
        (another reader was first); with it, reads anyway, to count messages.
        """
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        lock = self._read_lock
        if not lock.acquire(True, -1 if remaining is None else remaining):
            return False
        try:
            conn = self._conn
            if conn.state is _CLOSED or (conn.pending_events and not drain):
                return True  # another reader got there first
            sock = self._sock
            if sock is None or self._lost:
                return True
            if remaining is not None:
                remaining = max(0.0, deadline - time.monotonic())  # type: ignore[operator]
            if remaining != self._sock_timeout:
                sock.settimeout(remaining)
                self._sock_timeout = remaining
            try:
                data = sock.recv(_RECV_SIZE)
            except (TimeoutError, BlockingIOError):
                return False
            except OSError:
                data = b""
            if self._green:
                conn.receive_data(data)
            else:
                with self._state_lock:
                    conn.receive_data(data)
            if not data:
                self._lost = True
            if conn.last_pong is not None:
                self._pong_event.set()
        finally:
            lock.release()
        if conn.has_data_to_send:  # a pong or a close frame queued while parsing
            self._flush()
        return True

    # ------------------------------------------------------------------
    # Sending

    def send(self, data: Any) -> None:
        """Send a message: ``str`` as text, bytes-like as binary, anything else via ``str()``.

        Raises :class:`~django_websocket.exceptions.ConnectionClosed` once
        the connection is closing or closed.
        """
        if self._green:  # greenlets are not pre-empted: no lock needed
            self._queue_message(data)
        else:
            with self._state_lock:
                self._queue_message(data)
        self._flush()

    def _queue_message(self, data: Any) -> None:
        self._check_open()
        conn = self._conn
        if isinstance(data, str):
            conn.send_text(data)
        elif isinstance(data, (bytes, bytearray, memoryview)):
            conn.send_binary(data)
        else:
            # django-websocket 0.3 sent str(value) for anything else.
            conn.send_text(str(data))

    def ping(self, data: bytes | str = b"") -> None:
        """Send a ping (at most 125 bytes of payload); the pong arrives as usual."""
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        with self._state_lock:
            self._check_open()
            self._conn.send_ping(payload)
        self._flush()

    def _check_open(self) -> None:
        if self._conn.state is not _OPEN or self._lost:
            raise ConnectionClosed("the WebSocket is closed", self.close_code, self.close_reason)

    def _flush(self) -> None:
        """Send whatever the connection has queued, in order, under the send lock."""
        if not self._conn.has_data_to_send:
            # Read without the state lock: whoever queues data flushes after.
            return
        with self._send_lock:
            if self._green:
                data = self._conn.data_to_send()
            else:
                with self._state_lock:
                    data = self._conn.data_to_send()
            if not data:
                return
            sock = self._sock
            if sock is None or self._lost:
                return
            try:
                sock.sendall(data)
            except OSError as exc:
                # The peer is gone; reading will report the end of stream.
                logger.debug("WebSocket send failed: %s", exc)
                self._lost = True

    # ------------------------------------------------------------------
    # Closing

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake and wait (up to ``close_timeout``) for the peer's close.

        Does nothing if the connection is already closing or closed.
        Raises ``ValueError`` for a code that may not be sent on the wire.
        """
        with self._state_lock:
            if self._conn.state is _OPEN and not self._lost:
                self._conn.send_close(code, reason)
        self._flush()
        self._finish_closing()

    def _finish_closing(self) -> None:
        """Wait for the peer's close frame after ours, then end the TCP connection."""
        deadline = time.monotonic() + self.close_timeout
        conn = self._conn
        while conn.state is _CLOSING and not self._lost:
            with self._state_lock:
                while conn.next_event() is not None:
                    pass  # data after our close frame is dropped
            if conn.state is not _CLOSING:
                break
            if time.monotonic() >= deadline or not self._read(deadline):
                logger.info("WebSocket peer did not answer our close frame in time")
                break
        self._flush()
        self._log_failure()
        self._shutdown()

    def _log_failure(self) -> None:
        failure = self._conn.failure
        if failure is not None and not self._logged_failure:
            self._logged_failure = True
            logger.info("WebSocket connection failed with %d: %s", failure.code, failure.reason)

    def _shutdown(self) -> None:
        """End the TCP connection: the server closes first (RFC 6455 section 7.1.1)."""
        self._lost = True
        self._stop_event.set()
        self._pong_event.set()
        sock = self._sock
        if sock is not None and not self._shut_down:
            self._shut_down = True
            # shutdown(), not close(): the WSGI server still holds the file
            # descriptor; shutting the connection down makes its own later
            # writes fail instead of reaching the client.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def add_close_callback(self, callback: Callable[[WebSocket], None]) -> None:
        """Call ``callback(websocket)`` once, when the view's WebSocket session ends.

        Callbacks run in the view's greenlet or thread after the closing
        handshake, in the order they were added; an exception in one is
        logged and does not stop the others.  Added after the end, a callback
        runs at once.
        """
        if self._sock is None and self not in _open:
            callback(self)
            return
        self._close_callbacks.append(callback)

    def abort(self) -> None:
        """Cut the connection at once, without a closing handshake (the client sees 1006).

        For a peer that no longer reads: a send blocked on it fails, and the
        view's next ``receive()`` returns ``None``.
        """
        self._shutdown()

    def finish(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close (if still open), stop the keepalive task and let go of the socket.

        Called when the view returns; idempotent.
        """
        try:
            self.close(code, reason)
        finally:
            _open.discard(self)
            self._shutdown()
            callbacks, self._close_callbacks = self._close_callbacks, []
            for callback in callbacks:
                try:
                    callback(self)
                except Exception:
                    logger.exception("WebSocket close callback %r failed", callback)
            timer, self._keepalive_timer = self._keepalive_timer, None
            if timer is not None:
                timer.stop()
                timer.close()
            keepalive, self._keepalive = self._keepalive, None
            if keepalive is not None and keepalive is not _current_task(self._green):
                keepalive.join(self.close_timeout + 1.0)
            self._sock = None

    # ------------------------------------------------------------------
    # Keepalive

    def _arm_keepalive(self) -> None:
        import gevent

        timer = gevent.get_hub().loop.timer(self.ping_interval)
        self._keepalive_timer = timer
        timer.start(self._keepalive_due)

    def _keepalive_due(self) -> None:
        """Timer callback, run by the hub: it must not block, so it only spawns."""
        import gevent

        timer, self._keepalive_timer = self._keepalive_timer, None
        if timer is not None:
            timer.close()
        if not self._stop_event.is_set():
            self._keepalive = gevent.spawn(self._keepalive_green_round)

    def _keepalive_green_round(self) -> None:
        try:
            again = self._keepalive_round()
        finally:
            self._keepalive = None
        if again and not self._stop_event.is_set():
            self._arm_keepalive()

    def _keepalive_loop(self) -> None:
        """The keepalive under threads: one thread per connection, as the server has."""
        while not self._stop_event.wait(self.ping_interval):
            if not self._keepalive_round():
                return

    def _keepalive_round(self) -> bool:
        """Send one ping and wait for its pong; ``False`` when the keepalive must stop."""
        timeout = self.ping_timeout
        assert timeout
        conn = self._conn
        payload = os.urandom(4)
        with self._state_lock:
            if conn.state is not _OPEN or self._lost:
                return False
            self._pong_event.clear()
            conn.send_ping(payload)
        self._flush()
        deadline = time.monotonic() + timeout
        while conn.last_pong != payload:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop_event.is_set():
                break
            # Read on the view's behalf if it is not reading; otherwise its
            # reads set the event.
            if self._read_lock.acquire(False):
                self._read_lock.release()
                if conn.pending_events >= 64:
                    self._pong_event.wait(remaining)  # do not buffer without bound
                else:
                    self._read(deadline)
            else:
                self._pong_event.wait(remaining)
            self._pong_event.clear()
        if self._stop_event.is_set():
            return False
        if conn.last_pong != payload:
            logger.info("WebSocket keepalive: no pong within %.1f s, closing", timeout)
            with self._state_lock:
                if conn.state is _OPEN:
                    conn.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            self._flush()
            self._shutdown()
            return False
        return True
