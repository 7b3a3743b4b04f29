"""The blocking WebSocket over socket pairs, under gevent and under threads.

Each test is a view shape a real project writes against a peer that behaves
like a real client (polite, silent, never reading, pinging, flooding,
closing, vanishing), and asserts what an operator would see.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest
from protocol.client_frames import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    binary,
    close,
    ping,
    text,
)

from django_websocket.exceptions import ConnectionClosed
from django_websocket.server.websocket import WebSocket
from server.harness import open_session, pause, spawn

MODES = [pytest.param(True, id="gevent"), pytest.param(False, id="threads")]


# ----------------------------------------------------------------------
# Echo, the polite case


@pytest.mark.parametrize("green", MODES)
def test_echo_until_the_peer_closes(green: bool) -> None:
    def view(ws: WebSocket) -> int | None:
        for message in ws:
            ws.send(message)
        return ws.close_code

    peer, session = open_session(green, view)
    peer.send(text("héllo") + binary(b"\x00\xff"))
    first, second = peer.frame(), peer.frame()
    assert (first.opcode, first.payload) == (TEXT, "héllo".encode())
    assert (second.opcode, second.payload) == (BINARY, b"\x00\xff")
    peer.close(1000)
    frames = peer.frames_until_close()
    assert frames[-1].close_code == 1000
    assert peer.rest_until_eof() == b""
    session.join()
    assert session.error is None
    assert session.result == 1000


@pytest.mark.parametrize("green", MODES)
def test_echo_order_and_payloads(green: bool) -> None:
    def view(ws: WebSocket) -> None:
        for message in ws:
            ws.send(message)

    peer, session = open_session(green, view)
    peer.send(text("one") + binary(b"two") + text("three"))
    got = [(f.opcode, f.payload) for f in (peer.frame(), peer.frame(), peer.frame())]
    assert got == [(TEXT, b"one"), (BINARY, b"two"), (TEXT, b"three")]
    peer.close()
    assert peer.frames_until_close()[-1].close_code == 1000
    session.join()


# ----------------------------------------------------------------------
# A view that only pushes (defects 1 and 2)


def _push_forever(interval: float) -> object:
    def view(ws: WebSocket) -> str:
        n = 0
        while True:
            try:
                ws.send(f"tick {n}")
            except ConnectionClosed as exc:
                return f"closed {exc.code}"
            n += 1
            time.sleep(interval) if not ws.hub else __import__("gevent").sleep(interval)

    return view


@pytest.mark.parametrize("green", MODES)
def test_push_only_view_answers_pings(green: bool) -> None:
    peer, session = open_session(green, _push_forever(0.05))
    peer.send(text("one message the view never reads"))
    for n in range(5):
        peer.send(ping(b"p%d" % n))
        started = time.monotonic()
        while True:
            frame = peer.frame(timeout=2)
            if frame.opcode == PONG:
                break
            assert frame.opcode == TEXT
        assert frame.payload == b"p%d" % n
        assert time.monotonic() - started < 1.0
    peer.close()
    peer.frames_until_close()
    session.join()


@pytest.mark.parametrize("green", MODES)
def test_push_only_view_answers_the_peer_close_promptly(green: bool) -> None:
    peer, session = open_session(green, _push_forever(0.05), close_timeout=5.0)
    assert peer.frame().opcode == TEXT
    started = time.monotonic()
    peer.send(close(1000, b"bye"))
    frames = peer.frames_until_close(timeout=4)
    elapsed = time.monotonic() - started
    # The peer's own code comes back, within the grace, not after a keepalive round.
    assert frames[-1].close_code == 1000
    assert elapsed < 2.0, elapsed
    assert peer.rest_until_eof() == b""
    session.join()
    assert session.result == "closed 1000"


@pytest.mark.parametrize("green", MODES)
def test_push_only_view_keepalive_stays_healthy_with_a_peer_that_answers(green: bool) -> None:
    peer, session = open_session(green, _push_forever(0.05), ping_interval=0.2, ping_timeout=0.2)
    peer.send(text("hello"))
    pings = 0
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        frame = peer.frame(timeout=2)
        if frame.opcode == PING:
            pings += 1
            peer.send(
                struct.pack("!BB", 0x80 | PONG, 0x80 | len(frame.payload))
                + b"\0\0\0\0"
                + frame.payload
            )
        assert frame.opcode != CLOSE, frame
    assert pings >= 3
    assert not session.websocket.closed
    peer.close()
    peer.frames_until_close()
    session.join()


@pytest.mark.parametrize("green", MODES)
def test_keepalive_fails_a_silent_peer_with_1011(green: bool) -> None:
    def view(ws: WebSocket) -> int | None:
        assert ws.receive() is None
        return ws.close_code

    peer, session = open_session(green, view, ping_interval=0.2, ping_timeout=0.2)
    frames = peer.frames_until_close(timeout=3)  # the ping(s), then the close
    assert frames[0].opcode == PING
    assert frames[-1].close_code == 1011
    session.join()
    assert session.result == 1011


# ----------------------------------------------------------------------
# Polls and timeouts change nothing for later sends (defect 3)


@pytest.mark.parametrize("green", MODES)
@pytest.mark.parametrize("poll", ["has_messages", "read", "count_messages", "receive_timeout"])
def test_a_poll_never_cuts_a_later_send(green: bool, poll: str) -> None:
    big = b"\xab" * (1 << 20)

    def view(ws: WebSocket) -> None:
        if poll == "receive_timeout":
            with pytest.raises(TimeoutError):
                ws.receive(timeout=0.01)
        else:
            getattr(ws, poll)()
        for _ in range(8):
            ws.send(big)
        ws.receive()

    peer, session = open_session(green, view)
    pause(green, 1.0)  # a client that waits before it reads
    for _ in range(8):
        frame = peer.frame(timeout=10)
        assert (frame.opcode, len(frame.payload)) == (BINARY, len(big))
    peer.close()
    assert peer.frames_until_close()[-1].close_code == 1000
    session.join()
    assert session.error is None


@pytest.mark.parametrize("green", MODES)
def test_receive_timeout_loop_delivers_every_message(green: bool) -> None:
    def view(ws: WebSocket) -> list[str]:
        got: list[str] = []
        timeouts = 0
        while True:
            try:
                message = ws.receive(timeout=0.05)
            except TimeoutError:
                timeouts += 1
                continue
            if message is None:
                break
            got.append(message)  # type: ignore[arg-type]
        assert timeouts > 0
        return got

    peer, session = open_session(green, view)
    for n in range(20):
        peer.send(text(f"m{n}"))
        pause(green, 0.01 if n % 5 else 0.12)
    peer.close()
    peer.frames_until_close()
    session.join()
    assert session.result == [f"m{n}" for n in range(20)]


@pytest.mark.parametrize("green", MODES)
def test_legacy_polling_view(green: bool) -> None:
    def view(ws: WebSocket) -> None:
        while not ws.closed:
            if ws.has_messages():
                n = ws.count_messages()
                message = ws.read()
                ws.send(f"{n}:{message}")
            else:
                pause(green, 0.02)
        ws.read("ignored")

    peer, session = open_session(green, view)
    peer.send(text("a"))
    assert peer.frame().payload.endswith(b":a")
    peer.send(text("b") + text("c"))
    replies = {peer.frame().payload, peer.frame().payload}
    assert {r.split(b":")[1] for r in replies} == {b"b", b"c"}
    peer.close()
    assert peer.frames_until_close()[-1].close_code == 1000
    session.join()
    assert session.error is None


# ----------------------------------------------------------------------
# A peer that stops reading is let go (defect 4)


def _send_until_closed(ws: WebSocket) -> float:
    """Send 64 KiB messages until the send raises; return how long that took."""
    started = time.monotonic()
    with pytest.raises(ConnectionClosed):
        while True:
            ws.send(b"x" * 65536)
    return time.monotonic() - started


@pytest.mark.parametrize("green", MODES)
def test_a_peer_that_stops_reading_is_cut_by_the_send_timeout(green: bool) -> None:
    _peer, session = open_session(green, _send_until_closed, send_timeout=0.5)
    session.join(timeout=10)
    assert session.error is None
    # The kernel buffers fill at once; then the deadline, not forever.
    assert session.result < 4.0
    assert session.websocket._sock is None  # nothing held


@pytest.mark.parametrize("green", MODES)
def test_a_peer_that_stops_reading_is_cut_by_the_keepalive(green: bool) -> None:
    _peer, session = open_session(
        green, _send_until_closed, send_timeout=60.0, ping_interval=0.3, ping_timeout=0.3
    )
    session.join(timeout=10)
    assert session.error is None
    assert session.result < 0.3 + 0.3 + 1.5


@pytest.mark.parametrize("green", MODES)
def test_a_ping_flood_whose_pongs_are_never_read_is_cut(green: bool) -> None:
    def view(ws: WebSocket) -> int | None:
        assert ws.receive() is None
        return ws.close_code

    peer, session = open_session(green, view, send_timeout=0.5)
    flood = ping(b"x" * 125) * 2000
    sent = 0
    peer.sock.settimeout(0.2)
    deadline = time.monotonic() + 8
    with pytest.raises(OSError):
        while time.monotonic() < deadline:
            peer.sock.sendall(flood)  # never reads a pong
            sent += 1
            if not green:
                time.sleep(0)
    session.join(timeout=10)
    assert session.result == 1006


# ----------------------------------------------------------------------
# Flow control: a bounded queue, and nothing lost


@pytest.mark.parametrize("green", MODES)
def test_reading_pauses_at_max_queue_and_nothing_is_lost(green: bool) -> None:
    release = threading.Event()
    seen: list[int] = []

    def view(ws: WebSocket) -> list[str]:
        while not release.is_set():
            seen.append(ws._conn.pending_events)
            pause(green, 0.02)
        return list(iter(ws))  # type: ignore[arg-type]

    peer, session = open_session(green, view, max_queue=4)
    frames = [text(f"m{n}" + "." * 200) for n in range(300)]

    def send_all() -> None:
        for data in frames:
            peer.send(data)  # blocks once the server stops reading: TCP pushes back

    sender = spawn(green, send_all)
    pause(green, 0.5)
    release.set()
    sender.join(5)
    peer.close()
    session.join()
    # One read (64 KiB) may carry past the bound; nothing is read after that.
    assert max(seen) <= 4 + 65536 // len(frames[0]) + 1
    assert session.result == [f"m{n}" + "." * 200 for n in range(300)]


# ----------------------------------------------------------------------
# A second task sends while the view blocks in receive()


@pytest.mark.parametrize("green", MODES)
def test_a_second_task_sends_while_the_view_blocks_in_receive(green: bool) -> None:
    def view(ws: WebSocket) -> None:
        stop = threading.Event()

        def ticker() -> None:
            for n in range(50):
                if stop.is_set():
                    return
                try:
                    ws.send(f"tick {n}" + "!" * 3000)
                except ConnectionClosed:
                    return
                pause(green, 0.005)

        task = spawn(green, ticker)
        for message in ws:
            ws.send(message)
        stop.set()
        task.join()

    peer, session = open_session(green, view)
    peer.send(text("echo me"))
    ticks, echoes = 0, 0
    while ticks < 50 or not echoes:
        frame = peer.frame()  # parse_server_frames checks every frame is whole
        if frame.payload == b"echo me":
            echoes += 1
        else:
            assert frame.payload.startswith(b"tick ")
            ticks += 1
    peer.close()
    peer.frames_until_close()
    session.join()
    assert session.error is None


# ----------------------------------------------------------------------
# A peer that vanishes


@pytest.mark.parametrize("green", MODES)
def test_a_reset_ends_receive_and_fails_send(green: bool) -> None:
    def view(ws: WebSocket) -> tuple[object, int | None]:
        first = ws.receive()
        second = ws.receive()
        with pytest.raises(ConnectionClosed):
            ws.send("anyone?")
        return (first, second), ws.close_code

    peer, session = open_session(green, view)
    peer.send(text("last words"))
    pause(green, 0.1)
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.sock.close()
    session.join()
    assert session.error is None
    assert session.result == (("last words", None), 1006)


@pytest.mark.parametrize("green", MODES)
def test_send_after_the_peer_left_raises_instead_of_losing_data(green: bool) -> None:
    def view(ws: WebSocket) -> int:
        sent = 0
        with pytest.raises(ConnectionClosed):
            while True:
                ws.send(b"y" * 1000)
                sent += 1
                pause(green, 0.001)
        return sent

    peer, session = open_session(green, view)
    peer.frame()
    peer.sock.close()
    session.join()
    assert session.error is None


# ----------------------------------------------------------------------
# Protocol violations are answered even while the view is elsewhere


@pytest.mark.parametrize("green", MODES)
def test_a_violation_is_answered_for_a_view_that_does_not_read(green: bool) -> None:
    peer, session = open_session(green, _push_forever(0.05))
    peer.send(text("ok") + bytes((0x83, 0x80)) + b"\0\0\0\0")  # reserved opcode 3
    frames = peer.frames_until_close(timeout=3)
    assert frames[-1].close_code == 1002
    session.join()
    assert session.result == "closed 1002"


@pytest.mark.parametrize("green", MODES)
def test_messages_before_the_close_are_still_delivered(green: bool) -> None:
    def view(ws: WebSocket) -> list[object]:
        pause(green, 1.5)  # busy past the grace: the close is answered meanwhile
        return [ws.receive(), ws.receive(), ws.receive()]

    peer, session = open_session(green, view)
    peer.send(text("a") + text("b") + close(1001))
    assert peer.frames_until_close(timeout=3)[-1].close_code == 1001
    session.join()
    assert session.result == ["a", "b", None]


# ----------------------------------------------------------------------
# on_idle: what the Django layer does before receive() waits (database connections)


def _wait_for(green: bool, condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        pause(green, 0.01)


@pytest.mark.parametrize("green", MODES)
def test_on_idle_runs_in_the_view_task_once_per_wait_never_for_a_queued_message(
    green: bool,
) -> None:
    import greenlet

    calls: list[object] = []

    def on_idle() -> None:
        calls.append(greenlet.getcurrent())

    def view(ws: WebSocket) -> tuple[object, list[tuple[object, int]]]:
        seen = []
        while (message := ws.receive()) is not None:
            seen.append((message, len(calls)))
        return greenlet.getcurrent(), seen

    peer, session = open_session(green, view, on_idle=on_idle)
    _wait_for(green, lambda: len(calls) == 1)  # the view waits for the first message
    peer.send(text("a") + text("b") + text("c"))  # one write: b and c are queued behind a
    _wait_for(green, lambda: len(calls) == 2)  # ...and it waits again only after c
    peer.close(1000)
    assert peer.frames_until_close()[-1].close_code == 1000
    session.join()
    assert session.error is None
    task, seen = session.result
    assert seen == [("a", 1), ("b", 1), ("c", 1)]
    assert calls == [task, task]  # the view's own greenlet or thread


@pytest.mark.parametrize("green", MODES)
def test_on_idle_runs_before_each_receive_timeout_wait(green: bool) -> None:
    calls: list[float] = []

    def view(ws: WebSocket) -> object:
        for _ in range(3):
            with pytest.raises(TimeoutError):
                ws.receive(timeout=0.05)
        return ws.receive(timeout=5)

    peer, session = open_session(green, view, on_idle=lambda: calls.append(time.monotonic()))
    _wait_for(green, lambda: len(calls) == 4)
    peer.send(text("late"))
    assert peer.frames_until_close()[-1].close_code == 1000
    peer.close(1000)
    session.join()
    assert session.error is None
    assert session.result == "late"
    assert len(calls) == 4


@pytest.mark.parametrize("green", MODES)
def test_on_idle_is_not_called_by_polls_or_sends(green: bool) -> None:
    calls: list[int] = []

    def view(ws: WebSocket) -> object:
        polled = (ws.read("nothing"), ws.has_messages(), ws.count_messages())
        ws.send("pushed")
        return polled, len(calls)

    peer, session = open_session(green, view, on_idle=lambda: calls.append(1))
    assert peer.frame().payload == b"pushed"
    assert peer.frames_until_close()[-1].close_code == 1000
    peer.close(1000)
    session.join()
    assert session.error is None
    assert session.result == (("nothing", False, 0), 0)
