"""What the blocking I/O layer needs of the core: settling a close early, no control
events, and messages whose memory follows their bytes, not their frame count."""

from __future__ import annotations

import tracemalloc

import pytest

from django_websocket.protocol import (
    BinaryMessage,
    CloseCode,
    CloseReceived,
    Failure,
    InvalidState,
    Ping,
    Pong,
    ServerConnection,
    State,
    TextMessage,
)

from .client_frames import (
    BINARY,
    CLOSE,
    PONG,
    TEXT,
    binary,
    close,
    cont,
    drain,
    feed,
    frame,
    ping,
    pong,
    sent_frames,
    text,
)

# ----------------------------------------------------------------------
# settle(): answering the peer's close while the application is busy


def test_settle_answers_a_close_behind_undelivered_messages_and_keeps_them() -> None:
    conn = ServerConnection()
    conn.receive_data(text("one") + binary(b"two") + close(1001, b"bye"))
    assert conn.terminal_pending
    assert conn.state is State.OPEN
    assert sent_frames(conn) == []  # nothing answered until asked

    conn.settle()

    # "If an endpoint receives a Close frame and did not previously send a
    # Close frame, the endpoint MUST send a Close frame in response" (5.5.1).
    [echo] = sent_frames(conn)
    assert (echo.opcode, echo.close_code) == (CLOSE, 1001)
    assert conn.state is State.CLOSED
    assert not conn.terminal_pending
    assert conn.close_received == CloseReceived(1001, "bye")
    with pytest.raises(InvalidState):
        conn.send_text("too late")
    # The messages that came before the close are still delivered, then the close.
    assert drain(conn) == [TextMessage("one"), BinaryMessage(b"two"), CloseReceived(1001, "bye")]
    assert sent_frames(conn) == []  # the close is echoed once only


def test_settle_commits_a_pending_violation_and_keeps_the_messages_before_it() -> None:
    conn = ServerConnection()
    conn.receive_data(text("ok") + frame(0x3, b"reserved opcode"))
    assert conn.terminal_pending
    conn.settle()
    [failed] = sent_frames(conn)
    assert (failed.opcode, failed.close_code) == (CLOSE, CloseCode.PROTOCOL_ERROR)
    assert conn.failure is not None and conn.failure.code == CloseCode.PROTOCOL_ERROR
    assert conn.state is State.CLOSED
    assert drain(conn) == [TextMessage("ok")]


def test_settle_after_our_own_close_completes_the_handshake_without_a_second_frame() -> None:
    conn = ServerConnection()
    conn.send_close(1000, "done")
    sent_frames(conn)
    conn.receive_data(close(1000))
    assert conn.terminal_pending
    conn.settle()
    assert sent_frames(conn) == []
    assert conn.state is State.CLOSED
    assert conn.close_received == CloseReceived(1000, "")


def test_settle_after_our_close_and_a_violation_just_stops() -> None:
    conn = ServerConnection()
    conn.send_close(1000)
    sent_frames(conn)
    conn.receive_data(text("x", rsv2=True))
    # A violation after our close frame stops processing at once.
    assert conn.state is State.CLOSED
    assert conn.failure == Failure(CloseCode.PROTOCOL_ERROR, conn.failure.reason)
    conn.settle()
    assert sent_frames(conn) == []


def test_settle_with_nothing_pending_does_nothing() -> None:
    conn = ServerConnection()
    conn.receive_data(text("hello"))
    assert not conn.terminal_pending
    conn.settle()
    assert conn.state is State.OPEN
    assert sent_frames(conn) == []
    assert drain(conn) == [TextMessage("hello")]
    conn.receive_data(b"")  # end of stream
    conn.settle()
    assert conn.state is State.CLOSED


def test_terminal_reached_by_next_event_is_no_longer_pending() -> None:
    conn = ServerConnection()
    conn.receive_data(close(1000))
    assert conn.terminal_pending
    assert drain(conn) == [CloseReceived(1000, "")]
    assert not conn.terminal_pending
    conn.settle()
    assert [f.opcode for f in sent_frames(conn)] == [CLOSE]


# ----------------------------------------------------------------------
# control_events=False


def test_without_control_events_pings_are_answered_and_pongs_recorded_silently() -> None:
    conn = ServerConnection(control_events=False)
    conn.receive_data(ping(b"p1") + text("a") + pong(b"k1") + ping(b"p2"))
    assert conn.pending_messages == conn.pending_events == 1
    assert drain(conn) == [TextMessage("a")]
    assert conn.pending_events == 0
    assert conn.last_pong == b"k1"
    # "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
    # response ... The Pong frame MUST have the same Application data" (5.5.2).
    assert [(f.opcode, f.payload) for f in sent_frames(conn)] == [(PONG, b"p1"), (PONG, b"p2")]


def test_a_flood_of_pings_accumulates_no_events_without_control_events() -> None:
    conn = ServerConnection(control_events=False)
    conn.receive_data(ping(b"x") * 10_000)
    assert conn.pending_events == 0
    assert len(sent_frames(conn)) == 10_000


def test_control_events_are_kept_by_default() -> None:
    conn = ServerConnection()
    assert feed(conn, ping(b"p") + pong(b"q")) == [Ping(b"p"), Pong(b"q")]


# ----------------------------------------------------------------------
# Fragmented messages: memory in proportion to bytes


def _one_byte_fragments(opcode: int, payload: bytes) -> bytes:
    frames = [frame(opcode, payload[:1], fin=False)]
    frames += [cont(payload[i : i + 1], fin=False) for i in range(1, len(payload) - 1)]
    frames.append(cont(payload[-1:]))
    return b"".join(frames)


@pytest.mark.parametrize(
    ("opcode", "payload", "expected"),
    [
        (BINARY, bytes(range(256)) * 80, BinaryMessage(bytes(range(256)) * 80)),
        (TEXT, "añ€😀".encode() * 1000, TextMessage("añ€😀" * 1000)),
    ],
    ids=["binary", "text"],
)
def test_a_message_in_many_fragments_is_reassembled_exactly(
    opcode: int, payload: bytes, expected: TextMessage | BinaryMessage
) -> None:
    conn = ServerConnection()
    data = _one_byte_fragments(opcode, payload)
    # Fed whole, and fed in odd pieces so that frames also span reads.
    assert feed(conn, data) == [expected]
    assert feed(conn, data, chunk=997) == [expected]
    assert feed(conn, text("after")) == [TextMessage("after")]


@pytest.mark.parametrize("opcode", [BINARY, TEXT], ids=["binary", "text"])
def test_fragment_count_does_not_multiply_memory(opcode: int) -> None:
    size = 200_000
    payload = b"a" * size
    data = _one_byte_fragments(opcode, payload)
    conn = ServerConnection(max_message_size=size)
    # Everything but the last frame: the message is held, incomplete.
    body = data[: -len(cont(b"a"))]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for start in range(0, len(body), 65536):
            conn.receive_data(body[start : start + 65536])
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # One object per fragment would be ~40 bytes each: 8 MB here.  In one
    # buffer it is the message's size (plus growth slack), about 0.2 MB.
    assert held < 4 * size, held
    conn.receive_data(cont(b"a"))
    [message] = drain(conn)
    assert len(message.data) == size
