"""The blocking WebSocket object a view gets as ``request.websocket``.

It drives a :class:`~django_websocket.protocol.ServerConnection` over a socket
taken from the WSGI server, and holds these rules whatever the view does
(reads in a loop, never reads, polls, sends from another task) and whatever
the peer does (reads, stops reading, floods, closes, vanishes):

Reading.  Someone always reads, so pings are answered and the peer's close
is seen.  Under gevent the view reads inline while it is inside
``receive()`` (no task switch per message); whenever it is not, a read
watcher on the socket starts a short-lived greenlet for each batch of data
that arrives.  Under threads, one reader thread per connection reads.
Either way at most ``max_queue`` messages wait for the view: past that
nothing more is read and TCP pushes back on the peer.

Closing.  A close frame (or a protocol violation) is answered at once when
no message waits ahead of it; otherwise when the view reaches it, or at most
``_CLOSE_GRACE`` seconds after it arrived if the view does not, so a view
that only sends still completes the closing handshake.

Sending.  Every ``send()`` hands the whole frame to the kernel or raises
:class:`~django_websocket.exceptions.ConnectionClosed`.  The socket's
timeout is set once, to ``send_timeout``, and is never changed by reads or
polls; a peer that takes nothing for that long is cut off.

Fairness.  gevent's socket calls do not switch while the socket is ready, so
every ``_BUDGET`` messages or socket operations (fewer for large ones) the task yields to
the hub: a flooding peer delays others by milliseconds.

Timers, not loops.  The keepalive and the close grace are timers; an idle
connection runs no code at all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..exceptions import ConnectionClosed
from ..protocol import (
    BinaryMessage,
    CloseCode,
    CloseReceived,
    ServerConnection,
    State,
    TextMessage,
)
from .concurrency import Timer, for_green
from .keepalive import Keepalive
from .transport import Transport

__all__ = ["WebSocket", "open_websockets"]

logger = logging.getLogger("django_websocket")

_RECV_SIZE = 1 << 16
#: Messages and socket operations between two yields to the hub; each KiB read
#: or written counts as one more (so a full 64 KiB read is a turn of its own).
_BUDGET = 64
#: Seconds a peer's close may wait for the view to reach it before it is answered.
_CLOSE_GRACE = 1.0

# Module globals are cheaper to read than enum members, on the per-message path.
_OPEN = State.OPEN
_CLOSING = State.CLOSING
_CLOSED = State.CLOSED

# Every WebSocket is released (``finish()``) when its view ends, which takes
# it out: a plain set, cheaper per connection than a WeakSet.
_open: set[WebSocket] = set()


def open_websockets() -> list[WebSocket]:
    """The WebSockets of this process whose views are still running."""
    return list(_open)


class WebSocket:
    """A server-side WebSocket connection with a blocking API.

    Messages are ``str`` for text frames and ``bytes`` for binary frames.
    The object is only usable while the view runs; afterwards it is closed
    and holds no reference to the socket.

    ``close_timeout``: seconds to wait for the peer's close frame after ours.
    ``ping_interval``/``ping_timeout``: keepalive (``None``: no pings).
    ``send_timeout``: seconds one send may wait for the peer to take data
    before the connection is cut.  ``max_queue``: messages received ahead of
    the view before reading pauses.  ``on_idle``: called in the view's task
    each time ``receive()`` is about to wait because no message is queued
    (the Django layer closes obsolete database connections there).
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
        send_timeout: float = 30.0,
        max_queue: int = 16,
        initial_data: bytes = b"",
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        if send_timeout <= 0:
            raise ValueError("send_timeout must be > 0")
        if max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        sock = transport.sock
        self._transport = transport
        self._sock: socket.socket | None = sock
        self._conn = connection
        self.subprotocol = subprotocol
        """The subprotocol agreed in the handshake, or ``None``."""
        self.close_timeout = close_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout if ping_timeout is not None else ping_interval
        self.send_timeout = send_timeout
        self.max_queue = max_queue
        self._on_idle = on_idle
        mode = self._mode = for_green(not transport.threaded)
        self._green = mode.green
        self._guard = mode.guard()
        self._send_lock = mode.lock()
        self._read_lock = mode.lock()
        self._arrived = mode.signal()  # news for whoever waits: events, close, loss
        self._receivers = 0
        self._budget = _BUDGET
        self._lost = False  # the TCP connection is gone or shut down
        self._write_failed = False
        self._shut_down = False
        self._shutdown_done = False
        self._finished = False
        self._logged_failure = False
        self._grace: Timer | None = None
        self._close_callbacks: list[Callable[[WebSocket], None]] = []
        # The only timeout this socket ever has: reads never use it.
        sock.settimeout(send_timeout)
        self._hub: Any = None
        self._raw: Any = None  # the C-level socket under gevent's
        self._watcher: Any = None
        self._pump_armed = False
        self._reader: Any = None
        if self._green:
            import gevent

            self._hub = gevent.get_hub()
            # The non-blocking socket under gevent's: read without waiting.
            raw = getattr(sock, "_sock", None)
            if not callable(getattr(raw, "recv", None)):  # pragma: no cover - gevent keeps one
                raise TypeError(f"cannot read {sock!r} without blocking")
            self._raw = raw
            self._watcher = self._hub.loop.io(sock.fileno(), 1)
        if initial_data:
            self._feed(initial_data)
        self._keepalive: Keepalive | None = None
        if ping_interval:
            assert self.ping_timeout
            self._keepalive = Keepalive(self, mode, ping_interval, self.ping_timeout)
            self._keepalive.start()
        if self._green:
            self._arm_pump()
        else:
            self._consumed = mode.signal()
            self._reader = mode.spawn(self._reader_loop, name="django-websocket-reader")
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
        return self._hub

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

    @property
    def last_pong(self) -> bytes | None:
        """The payload of the latest pong received (for the keepalive)."""
        return self._conn.last_pong

    # ------------------------------------------------------------------
    # Receiving

    def receive(self, timeout: float | None = None) -> str | bytes | None:
        """Return the next message, or ``None`` once the connection is closed.

        Blocks until a message arrives.  With ``timeout`` (seconds), raises
        :class:`TimeoutError` when none arrived in time; the connection is
        unaffected.  Pings are answered and the closing handshake is
        completed on the way.  Before it waits for the peer it lets go of
        obsolete database connections (``WEBSOCKET_CLOSE_DB_CONNECTIONS``).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        conn = self._conn
        on_idle = self._on_idle
        # The pump stays armed unless the view has to wait (_wait_readable):
        # a message already queued costs no watcher call.
        self._receivers += 1
        try:
            while True:
                if self._green:  # greenlets are not pre-empted: no lock needed
                    event = conn.next_event()
                else:
                    with self._guard:
                        event = conn.next_event()
                    self._consumed.set()
                if event is not None:
                    kind = type(event)
                    if kind is TextMessage or kind is BinaryMessage:
                        self._spend(1)  # a view that only consumes must yield too
                        return event.data  # type: ignore[union-attr]
                    if kind is CloseReceived:
                        self._flush()
                        self._finish_closing()
                        return None
                    continue  # a ping or pong event (when the connection makes them)
                if conn.state is not _OPEN or self._lost:
                    self._flush()  # the close frame of a violation, if any
                    self._finish_closing()
                    return None
                if on_idle is not None:
                    on_idle()  # once per wait, in the view's task, before it blocks
                    on_idle = None
                if not self._await(deadline):
                    raise TimeoutError("no WebSocket message received within the timeout")
        finally:
            self._receivers -= 1
            if self._green and not self._receivers and not self._pump_armed:
                self._arm_pump()

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

    def read(self, fallback: Any = None) -> str | bytes | Any | None:
        """Return a message if one is ready, else ``fallback``, without blocking (0.3)."""
        if self._poll() == 0:
            return fallback
        return self.receive()

    def has_messages(self) -> bool:
        """Whether a message is ready to be read without blocking (0.3)."""
        return self._poll() > 0

    def count_messages(self) -> int:
        """How many messages are ready to be read without blocking (0.3)."""
        return self._poll()

    def _poll(self) -> int:
        """Take in what the socket has ready now, without blocking; count ready messages."""
        if self._green and self._read_lock.acquire(False):
            try:
                for _ in range(16):  # bounded: a peer that never pauses cannot hold us
                    if self._lost or self._conn.pending_events >= self.max_queue:
                        break
                    data = self._recv_now()
                    if data is None:
                        break
                    self._feed(data, flush=False)
            finally:
                self._read_lock.release()
            self._flush()
        with self._guard:
            return self._conn.pending_messages

    # ------------------------------------------------------------------
    # Reading (one reader at a time)

    def _news(self) -> bool:
        """Whether a waiter has something to look at: events, a close, or the end."""
        conn = self._conn
        return (
            bool(conn.pending_events)
            or conn.terminal_pending
            or conn.state is _CLOSED
            or self._lost
        )

    def _await(self, deadline: float | None) -> bool:
        """Wait for news until ``deadline``; ``False`` when it passed without any."""
        if self._green:
            return self._read_inline(deadline)
        arrived = self._arrived
        while True:
            arrived.clear()
            with self._guard:
                if self._news():
                    return True
            if deadline is None:
                arrived.wait()
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            arrived.wait(remaining)

    def _read_inline(self, deadline: float | None) -> bool:
        """Under gevent: read once in the calling greenlet, waiting up to ``deadline``."""
        lock = self._read_lock
        if deadline is None:
            lock.acquire()
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not lock.acquire(True, remaining):
                return False
        try:
            if self._news():
                return True  # another reader got there first
            while (data := self._recv_now()) is None:
                if not self._wait_readable(deadline):
                    return False
            self._feed(data, flush=False)
        finally:
            lock.release()
        if self._conn.has_data_to_send:
            self._flush()  # a pong or a close frame queued while parsing
        self._spend(1 + (len(data) >> 10))
        return True

    def _recv_now(self) -> bytes | None:
        """Read what the socket has, without blocking; ``None`` when it has nothing yet."""
        raw = self._raw
        if raw is None:
            return b""
        try:
            data: bytes = raw.recv(_RECV_SIZE)
            return data
        except BlockingIOError:
            return None
        except OSError:
            return b""  # reset: the same as the end of the stream here

    def _wait_readable(self, deadline: float | None) -> bool:
        """Under gevent: park until the socket is readable; ``False`` at ``deadline``."""
        if self._pump_armed:
            self._disarm_pump()
        hub, watcher = self._hub, self._watcher
        self._budget = _BUDGET  # the hub runs while we wait
        # Counted as a receiver, so that no pump takes the watcher meanwhile.
        self._receivers += 1
        try:
            if deadline is None:
                hub.wait(watcher)
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            from gevent import Timeout

            timer = Timeout(remaining)
            timer.start()
            try:
                hub.wait(watcher)
            except Timeout as exc:
                if exc is not timer:
                    raise
                return False
            finally:
                timer.close()
            return True
        finally:
            self._receivers -= 1

    def _feed(self, data: bytes, flush: bool = True) -> None:
        """Hand bytes read (``b""``: the end of the stream) to the protocol connection."""
        conn = self._conn
        if self._green:  # greenlets are not pre-empted: no lock needed
            conn.receive_data(data)
            pending = conn.terminal_pending
            ahead = conn.pending_events
        else:
            with self._guard:
                conn.receive_data(data)
                pending = conn.terminal_pending
                ahead = conn.pending_events
        if not data:
            self._lost = True
        if pending and self._grace is None and not self._finished:
            # Answer the close (or the violation) even if the view never
            # reaches it: at once when no message waits ahead of it, else
            # after a grace in which the view may still answer those.
            delay = min(_CLOSE_GRACE, self.close_timeout) if ahead else 0.0
            self._grace = self._mode.call_later(delay, self._settle)
        if not self._green:  # under gevent the readers are the waiters
            self._arrived.set()
        if flush and conn.has_data_to_send:
            self._flush()

    def _settle(self) -> None:
        """The view did not reach the peer's close in time: answer it now, then end TCP."""
        self._grace = None
        with self._guard:
            if not self._conn.terminal_pending:
                return
            self._conn.settle()
        self._arrived.set()
        self._end_tcp()

    def _end_tcp(self) -> None:
        """After the closing handshake: write what is queued, then shut the connection down.

        A write in progress in another task (the close frame, say) is let
        finish first, for up to ``close_timeout`` seconds.
        """
        self._flush()
        lock = self._send_lock
        if lock.acquire(True, self.close_timeout):
            lock.release()
        self._log_failure()
        self._shutdown()

    # Under gevent: a watcher reads for the view while it is not in receive() -----

    def _may_pump(self) -> bool:
        conn = self._conn
        return (
            not self._finished
            and not self._lost
            and conn.state is _OPEN
            and not conn.terminal_pending
            and conn.pending_events < self.max_queue
        )

    def _arm_pump(self) -> None:
        if not self._pump_armed and not self._receivers and self._may_pump():
            self._pump_armed = True
            self._watcher.start(self._pump_due)

    def _disarm_pump(self) -> None:
        self._pump_armed = False
        self._watcher.stop()

    def _pump_due(self) -> None:
        """Run by the hub when data arrived while the view is elsewhere: must not block."""
        self._disarm_pump()
        self._mode.spawn(self._pump)

    def _pump(self) -> None:
        """Read one batch for the view, answer what it calls for, and watch again."""
        try:
            if self._receivers or self._finished or not self._read_lock.acquire(False):
                return  # the view reads for itself now
            try:
                data = self._recv_now()
                if data is not None:
                    self._feed(data, flush=False)
            finally:
                self._read_lock.release()
            self._flush()
        finally:
            self._arm_pump()

    # Under threads: one reader thread -----------------------------------------

    def _reader_loop(self) -> None:
        """Read until the end, pausing while ``max_queue`` messages wait for the view."""
        sock = self._sock
        conn = self._conn
        assert sock is not None
        while not self._finished and not self._lost:
            with self._guard:
                if conn.state is _CLOSED or conn.terminal_pending:
                    return
                full = conn.pending_events >= self.max_queue
            if full:
                self._consumed.clear()
                with self._guard:
                    full = conn.pending_events >= self.max_queue
                if full:
                    self._consumed.wait(1.0)
                continue
            try:
                data = sock.recv(_RECV_SIZE)
            except TimeoutError:
                continue  # the socket's timeout is the send timeout; keep reading
            except OSError:
                data = b""
            self._feed(data)

    # ------------------------------------------------------------------
    # Sending

    def send(self, data: Any) -> None:
        """Send a message: ``str`` as text, bytes-like as binary, anything else via ``str()``.

        Returns once the kernel has the whole frame.  Raises
        :class:`~django_websocket.exceptions.ConnectionClosed` once the
        connection is closing or closed, or when the frame could not be
        written (the peer left, or took nothing for ``send_timeout``
        seconds).
        """
        if self._green:  # greenlets are not pre-empted: no lock needed
            self._queue_message(data)
        else:
            with self._guard:
                self._queue_message(data)
        if not self._flush():
            self._raise_closed()

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
        if not self.send_keepalive_ping(payload):
            self._raise_closed()

    def _check_open(self) -> None:
        if self._conn.state is not _OPEN or self._lost:
            self._raise_closed()

    def _raise_closed(self) -> None:
        raise ConnectionClosed("the WebSocket is closed", self.close_code, self.close_reason)

    def _flush(self) -> bool:
        """Write whatever the connection has queued, in order; ``False`` if it was not written.

        ``False`` also when an earlier write failed: the caller's frame, queued
        before that failure was known, may be among the bytes lost.
        """
        conn = self._conn
        if not conn.has_data_to_send:
            return not self._write_failed
        lock = self._send_lock
        if not lock.acquire(True, self.send_timeout):
            # Another task has been stuck writing for the whole send timeout.
            self._send_timed_out()
            return False
        try:
            if self._green:
                data = conn.data_to_send()
            else:
                with self._guard:
                    data = conn.data_to_send()
            sock = self._sock
            if self._write_failed or sock is None or self._shut_down:
                return False
            if not data:
                return True
            try:
                sock.sendall(data)
            except TimeoutError:
                self._send_timed_out()
                return False
            except OSError as exc:
                # The peer is gone; reading reports the end of the stream.
                logger.debug("WebSocket send failed: %s", exc)
                self._write_failed = True
                self._lost = True
                self._arrived.set()
                return False
        finally:
            lock.release()
        self._spend(1 + (len(data) >> 10))
        return True

    def _send_timed_out(self) -> None:
        """The peer took nothing for ``send_timeout`` seconds: cut the connection.

        A frame may be half written: no close frame can follow it.
        """
        if not self._write_failed:
            self._write_failed = True
            logger.info(
                "WebSocket peer took no data for %.1f s (send timeout); connection aborted",
                self.send_timeout,
            )
        self._shutdown()

    def _spend(self, cost: int) -> None:
        """Count messages and socket operations; yield to the hub once the budget is spent."""
        self._budget -= cost
        if self._budget <= 0:
            self._budget = _BUDGET
            self._mode.pause()

    # Keepalive --------------------------------------------------------------

    def send_keepalive_ping(self, payload: bytes) -> bool:
        """Send a ping; ``False`` when it could not be sent (closed, or the write failed).

        The keepalive's call; :meth:`ping` raises instead.
        """
        with self._guard:
            if self.closed:
                return False
            self._conn.send_ping(payload)
        return self._flush()

    def keepalive_timed_out(self, timeout: float) -> None:
        """No pong within ``timeout``: close with 1011 if the socket takes it now, and end TCP."""
        if self._lost or self._conn.state is _CLOSED:
            return
        if self._conn.terminal_pending:
            self._settle()  # the peer said goodbye; its pong is behind its close
            return
        logger.info("WebSocket keepalive: no pong within %.1f s, closing with 1011", timeout)
        with self._guard:
            if self._conn.state is _OPEN:
                self._conn.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            self._logged_failure = True
        self._write_nowait()
        self._shutdown()

    def _write_nowait(self) -> None:
        """Write the queued bytes only if the kernel takes them now and no one else is writing."""
        if not self._send_lock.acquire(False):
            return
        try:
            with self._guard:
                data = self._conn.data_to_send()
            sock = self._sock
            if data and sock is not None and not self._shut_down and not self._write_failed:
                # The socket has a timeout, so its descriptor is non-blocking.
                with contextlib.suppress(OSError):
                    os.write(sock.fileno(), data)
        finally:
            self._send_lock.release()

    # ------------------------------------------------------------------
    # Closing

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake and wait (up to ``close_timeout``) for the peer's close.

        Does nothing if the connection is already closing or closed.
        Raises ``ValueError`` for a code that may not be sent on the wire.
        Safe from another task than the view's (``groups.close`` calls it from
        the member's queue task): in a greenlet of the hub that serves this
        WebSocket, or in any thread under a threaded server.  The close frame
        follows any frame being written; the view's next ``receive()`` returns
        ``None`` and its next ``send()`` raises ``ConnectionClosed``.
        """
        with self._guard:
            if self._conn.state is _OPEN and not self._lost:
                self._conn.send_close(code, reason)
        self._flush()
        self._finish_closing()

    def _finish_closing(self) -> None:
        """Wait for the peer's close frame after ours, then end the TCP connection."""
        grace, self._grace = self._grace, None
        if grace is not None:
            grace.cancel()
        deadline = time.monotonic() + self.close_timeout
        conn = self._conn
        while conn.state is _CLOSING and not self._lost:
            with self._guard:
                while conn.next_event() is not None:
                    pass  # data after our close frame is dropped
            if conn.state is not _CLOSING:
                break
            if time.monotonic() >= deadline or not self._await(deadline):
                logger.info("WebSocket peer did not answer our close frame in time")
                break
        self._end_tcp()

    def _log_failure(self) -> None:
        failure = self._conn.failure
        if failure is not None and not self._logged_failure:
            self._logged_failure = True
            logger.info("WebSocket connection failed with %d: %s", failure.code, failure.reason)

    def _shutdown(self) -> None:
        """End the TCP connection: the server closes first (RFC 6455 section 7.1.1)."""
        self._lost = True
        self._arrived.set()
        sock = self._sock
        if sock is not None and not self._shutdown_done:
            # Until one call has returned, every caller makes the call itself
            # (a repeat fails harmlessly): none may return before the
            # connection is really shut down.  Later callers skip the syscall.
            self._shut_down = True
            # shutdown(), not close(): the WSGI server still holds the file
            # descriptor; shutting the connection down makes its own later
            # writes fail instead of reaching the client, and wakes any task
            # blocked reading or writing it.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            self._shutdown_done = True

    def add_close_callback(self, callback: Callable[[WebSocket], None]) -> None:
        """Call ``callback(websocket)`` once, when the view's WebSocket session ends.

        Callbacks run in the view's greenlet or thread after the closing
        handshake, in the order they were added; an exception in one is
        logged and does not stop the others.  Added after the end, a callback
        runs at once.
        """
        if self._finished:
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
        """Close (if still open), stop every helper task and let go of the socket.

        Called when the view returns; idempotent.
        """
        try:
            self.close(code, reason)
        finally:
            self._release()

    def _release(self) -> None:
        if self._finished:
            return
        self._finished = True
        _open.discard(self)
        keepalive, self._keepalive = self._keepalive, None
        if keepalive is not None:
            keepalive.stop()
        grace, self._grace = self._grace, None
        if grace is not None:
            grace.cancel()
        self._shutdown()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            self._pump_armed = False
            watcher.stop()
            watcher.close()
        if not self._green:
            self._consumed.set()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not self._mode.current():
            reader.join(self.close_timeout + 1.0)
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("WebSocket close callback %r failed", callback)
        self._sock = None
        self._raw = None
        self._transport.release()
