"""Run a WebSocket view against a scripted peer over a socket pair, under gevent or threads.

Under gevent both ends are gevent sockets in the test thread's hub: the view runs
in a greenlet and the test body (the peer) switches to it whenever it blocks.  Under
threads both ends are plain sockets and the view runs in a thread of its own.  The
peer speaks RFC 6455 with the test-side frame builders, not the package's encoder.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from protocol.client_frames import CLOSE, ServerFrame, close, parse_server_frames

from django_websocket.protocol import ServerConnection
from django_websocket.server.transport import Transport
from django_websocket.server.websocket import WebSocket


class Peer:
    """The client end: sends masked frames, reads the server's frames one at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, size: int, deadline: float) -> None:
        while len(self._buffer) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"peer waited for {size} bytes, has {len(self._buffer)}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(1 << 16)
            if not data:
                raise EOFError(f"end of stream with {len(self._buffer)} of {size} bytes")
            self._buffer += data

    def frame(self, timeout: float = 5.0) -> ServerFrame:
        """The next whole frame from the server."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        length = self._buffer[1] & 0x7F
        size = 2 + (2 if length == 126 else 8 if length == 127 else 0)
        self._fill(size, deadline)
        if length == 126:
            length = int.from_bytes(self._buffer[2:4], "big")
        elif length == 127:
            length = int.from_bytes(self._buffer[2:10], "big")
        self._fill(size + length, deadline)
        raw, self._buffer = self._buffer[: size + length], self._buffer[size + length :]
        [frame] = parse_server_frames(raw)
        return frame

    def frames_until_close(self, timeout: float = 5.0) -> list[ServerFrame]:
        """Every frame up to and including the server's close frame."""
        deadline = time.monotonic() + timeout
        frames = []
        while True:
            frame = self.frame(max(0.0, deadline - time.monotonic()))
            frames.append(frame)
            if frame.opcode == CLOSE:
                return frames

    def rest_until_eof(self, timeout: float = 5.0) -> bytes:
        """Every byte until the server ends the stream (raises TimeoutError if it does not)."""
        deadline = time.monotonic() + timeout
        rest, self._buffer = self._buffer, b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the server did not end the stream")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 16)
            except ConnectionResetError:
                return rest
            if not data:
                return rest
            rest += data

    def close(self, code: int = 1000) -> None:
        self.send(close(code))


class Session:
    """A view running on one end of a socket pair, and its outcome."""

    def __init__(self, websocket: WebSocket, task: Any, green: bool) -> None:
        self.websocket = websocket
        self.task = task
        self.green = green
        self.error: BaseException | None = None
        self.result: Any = None
        self.done = threading.Event()

    def join(self, timeout: float = 10.0) -> None:
        self.task.join(timeout)
        assert self.done.is_set(), "the view did not end in time"


def open_session(
    green: bool, view: Callable[[WebSocket], Any], **options: Any
) -> tuple[Peer, Session]:
    """Start ``view(websocket)`` on one end of a new socket pair; return the other end."""
    if green:
        import gevent.socket

        server_end, client_end = gevent.socket.socketpair()
    else:
        server_end, client_end = socket.socketpair()
    max_message_size = options.pop("max_message_size", 1 << 20)
    connection = ServerConnection(max_message_size=max_message_size, control_events=False)
    websocket = WebSocket(Transport(server_end, "test", threaded=not green), connection, **options)
    session = Session(websocket, None, green)

    def run() -> None:
        try:
            session.result = view(websocket)
        except BaseException as exc:  # recorded for the test to assert on
            session.error = exc
        finally:
            websocket.finish()
            server_end.close()
            session.done.set()

    if green:
        import gevent

        session.task = gevent.spawn(run)
    else:
        session.task = threading.Thread(target=run, daemon=True)
        session.task.start()
    return Peer(client_end), session


def pause(green: bool, seconds: float) -> None:
    """Let time pass on the peer's side (switching to the view under gevent)."""
    if green:
        import gevent

        gevent.sleep(seconds)
    else:
        time.sleep(seconds)


def spawn(green: bool, target: Callable[[], Any]) -> Any:
    """Run ``target`` in a greenlet or a thread; the result has ``join(timeout)``."""
    if green:
        import gevent

        return gevent.spawn(target)
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread
