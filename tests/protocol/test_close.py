"""The closing handshake: RFC 6455 sections 5.5.1, 7.1 and 7.4, and failing the connection."""

from __future__ import annotations

import pytest

from django_websocket.protocol import (
    BinaryMessage,
    CloseCode,
    CloseReceived,
    Failure,
    InvalidState,
    Ping,
    ServerConnection,
    State,
    TextMessage,
    is_valid_close_code,
)
from django_websocket.protocol.frames import encode_close_payload

from .client_frames import (
    CLOSE,
    PONG,
    TEXT,
    binary,
    close,
    cont,
    drain,
    frame,
    ping,
    sent_frames,
    text,
)

# RFC 6455 section 7.4.1 and 7.4.2: the codes an endpoint may put on the wire.
VALID = [
    1000,
    1001,
    1002,
    1003,
    1007,
    1008,
    1009,
    1010,
    1011,
    1012,
    1013,
    1014,
    3000,
    3999,
    4000,
    4999,
]
INVALID = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


def valid_on_the_wire(code: int) -> bool:
    """Section 7.4: defined/registered codes 1000-1003 and 1007-1014, and 3000-4999."""
    defined = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
    return code in defined or 3000 <= code <= 4999


def test_is_valid_close_code_matches_the_rfc_everywhere() -> None:
    assert all(is_valid_close_code(c) == valid_on_the_wire(c) for c in range(65536))
    assert all(valid_on_the_wire(c) for c in VALID)
    assert not any(valid_on_the_wire(c) for c in INVALID)


def test_close_code_enum_values() -> None:
    assert CloseCode.NORMAL_CLOSURE == 1000
    assert CloseCode.PROTOCOL_ERROR == 1002
    assert CloseCode.INVALID_DATA == 1007
    assert CloseCode.MESSAGE_TOO_BIG == 1009


def assert_failed(conn: ServerConnection, code: int) -> None:
    assert drain(conn) == []
    assert conn.failure is not None
    assert conn.failure.code == code
    assert conn.state is State.CLOSED
    frames = sent_frames(conn)
    assert [f.opcode for f in frames] == [CLOSE]
    assert frames[0].close_code == code


# ----------------------------------------------------------------------
# Section 5.5.1: the peer's close frame


@pytest.mark.parametrize("code", VALID)
def test_valid_close_code_is_echoed(code: int) -> None:
    conn = ServerConnection()
    conn.receive_data(close(code, "bye ✓".encode()))
    event = conn.next_event()
    assert event == CloseReceived(code, "bye ✓")
    assert event.effective_code == code
    frames = sent_frames(conn)
    assert [(f.opcode, f.close_code, f.close_reason) for f in frames] == [(CLOSE, code, "")]
    assert conn.state is State.CLOSED
    assert conn.failure is None
    assert conn.close_received == event
    assert conn.close_sent == (code, "")


@pytest.mark.parametrize("code", INVALID)
def test_invalid_close_code_fails_with_1002(code: int) -> None:
    conn = ServerConnection()
    conn.receive_data(close(code))
    assert_failed(conn, 1002)
    assert conn.close_received is None


def test_one_byte_close_payload_fails() -> None:
    conn = ServerConnection()
    conn.receive_data(frame(CLOSE, b"\x03"))
    assert_failed(conn, 1002)


@pytest.mark.parametrize("reason", [b"\xff", b"ok\xc0\xaf", b"\xed\xa0\x80", b"trunc\xe2\x82"])
def test_invalid_utf8_reason_fails_with_1007(reason: bytes) -> None:
    conn = ServerConnection()
    conn.receive_data(close(1000, reason))
    assert_failed(conn, 1007)


def test_longest_reason_accepted() -> None:
    conn = ServerConnection()
    conn.receive_data(close(1001, b"r" * 123))
    assert drain(conn) == [CloseReceived(1001, "r" * 123)]


def test_empty_close_echoed_with_empty_close() -> None:
    conn = ServerConnection()
    conn.receive_data(close())
    event = conn.next_event()
    assert event == CloseReceived(None, "")
    assert isinstance(event, CloseReceived)
    assert event.effective_code == 1005
    assert conn.data_to_send() == b"\x88\x00"
    assert conn.close_sent == (None, "")
    assert conn.state is State.CLOSED


def test_client_initiated_close_states() -> None:
    conn = ServerConnection()
    assert conn.state is State.OPEN
    conn.receive_data(text("last") + close(1000, b"done"))
    # Nothing takes effect until next_event reaches the close frame.
    assert conn.state is State.OPEN
    assert conn.data_to_send() == b""
    assert conn.next_event() == TextMessage("last")
    assert conn.state is State.OPEN
    assert conn.next_event() == CloseReceived(1000, "done")
    assert conn.state is State.CLOSED
    assert [f.close_code for f in sent_frames(conn)] == [1000]
    assert conn.next_event() is None
    for send in (lambda: conn.send_text("x"), lambda: conn.send_close()):
        with pytest.raises(InvalidState, match="closed"):
            send()


def test_data_after_the_peer_close_is_ignored() -> None:
    conn = ServerConnection()
    conn.receive_data(close(1000) + text("after") + ping(b"p"))
    conn.receive_data(text("later"))
    assert drain(conn) == [CloseReceived(1000, "")]
    assert [f.opcode for f in sent_frames(conn)] == [CLOSE]


def test_server_initiated_close_states() -> None:
    conn = ServerConnection()
    conn.send_close(1001, "going away")
    assert conn.state is State.CLOSING
    assert conn.close_sent == (1001, "going away")
    frames = sent_frames(conn)
    assert [(f.opcode, f.close_code, f.close_reason) for f in frames] == [
        (CLOSE, 1001, "going away")
    ]
    # The peer answers.
    conn.receive_data(close(1001))
    assert conn.next_event() == CloseReceived(1001, "")
    assert conn.state is State.CLOSED
    assert conn.data_to_send() == b""  # no second close frame
    assert conn.failure is None


def test_data_frames_after_our_close_are_ignored() -> None:
    conn = ServerConnection()
    conn.send_close()
    conn.data_to_send()
    # Whole frames (fast path), fragmented and partial frames: all dropped.
    data = text("a") + binary(b"b", fin=False) + cont(b"c") + text("x" * 300)
    conn.receive_data(data[:-5])
    conn.receive_data(data[-5:])
    assert drain(conn) == []
    assert conn.state is State.CLOSING
    assert conn.data_to_send() == b""
    conn.receive_data(close(1000))
    assert drain(conn) == [CloseReceived(1000, "")]
    assert conn.state is State.CLOSED


def test_violation_after_our_close_stops_without_second_close() -> None:
    conn = ServerConnection()
    conn.send_close(1000)
    conn.data_to_send()
    conn.receive_data(frame(0x3, b""))
    assert conn.failure == Failure(1002, "reserved opcode 0x3")
    assert conn.state is State.CLOSED
    assert drain(conn) == []
    assert conn.data_to_send() == b""


def test_invalid_utf8_after_our_close_still_detected() -> None:
    conn = ServerConnection()
    conn.send_close(1000)
    conn.data_to_send()
    conn.receive_data(frame(TEXT, b"\xff"))
    assert conn.failure is not None
    assert conn.failure.code == 1007
    assert conn.state is State.CLOSED
    assert conn.data_to_send() == b""


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.send_text("x"),
        lambda c: c.send_binary(b"x"),
        lambda c: c.send_ping(b""),
        lambda c: c.send_pong(b""),
        lambda c: c.send_close(1000),
    ],
)
def test_sending_after_close_raises(send: object) -> None:
    conn = ServerConnection()
    conn.send_close()
    with pytest.raises(InvalidState, match="closing"):
        send(conn)  # type: ignore[operator]
    conn.receive_data(close(1000))
    drain(conn)
    with pytest.raises(InvalidState, match="closed"):
        send(conn)  # type: ignore[operator]


def test_send_close_variants() -> None:
    conn = ServerConnection()
    conn.send_close(None)
    assert conn.data_to_send() == b"\x88\x00"
    assert conn.close_sent == (None, "")

    conn = ServerConnection()
    conn.send_close()
    assert conn.data_to_send() == b"\x88\x02\x03\xe8"

    conn = ServerConnection()
    conn.send_close(4000, "é" * 60)  # 2 + 120 bytes
    assert sent_frames(conn)[0].close_reason == "é" * 60


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (1005, ""),
        (1006, ""),
        (999, ""),
        (5000, ""),
        (None, "reason without code"),
        (1000, "x" * 124),
        (1000, "é" * 62),
    ],
)
def test_send_close_refuses_what_may_not_be_sent(code: int | None, reason: str) -> None:
    conn = ServerConnection()
    with pytest.raises(ValueError):
        conn.send_close(code, reason)
    assert conn.state is State.OPEN
    assert conn.data_to_send() == b""
    conn.send_close(1000, "x" * 123)
    assert len(conn.data_to_send()) == 2 + 125


def test_encode_close_payload() -> None:
    assert encode_close_payload(None) == b""
    assert encode_close_payload(1000) == b"\x03\xe8"
    assert encode_close_payload(4999, "ü") == b"\x13\x87\xc3\xbc"


def test_send_close_while_peer_close_pending() -> None:
    conn = ServerConnection()
    conn.receive_data(text("m") + close(1000, b"peer"))
    assert conn.next_event() == TextMessage("m")
    # We close before reaching the peer's close frame: ours goes out, no echo later.
    conn.send_close(1001, "us")
    assert conn.state is State.CLOSING
    assert conn.next_event() == CloseReceived(1000, "peer")
    assert conn.state is State.CLOSED
    frames = sent_frames(conn)
    assert [(f.close_code, f.close_reason) for f in frames] == [(1001, "us")]


# ----------------------------------------------------------------------
# Ordering: what arrived before a close or a violation is delivered and answerable


def test_message_then_bad_frame_in_one_chunk() -> None:
    conn = ServerConnection()
    conn.receive_data(text("question") + frame(0xF, b""))
    assert conn.next_event() == TextMessage("question")
    assert conn.failure is None
    conn.send_text("answer")
    assert conn.next_event() is None
    assert conn.failure is not None
    assert conn.failure.code == 1002
    frames = sent_frames(conn)
    assert [(f.opcode, f.payload) for f in frames] == [
        (TEXT, b"answer"),
        (CLOSE, b"\x03\xea" + conn.failure.reason.encode()),
    ]


def test_message_then_close_in_one_chunk() -> None:
    conn = ServerConnection()
    conn.receive_data(text("q1") + binary(b"q2") + close(1000))
    assert conn.next_event() == TextMessage("q1")
    conn.send_text("a1")
    assert conn.next_event() == BinaryMessage(b"q2")
    conn.send_text("a2")
    assert conn.next_event() == CloseReceived(1000, "")
    frames = sent_frames(conn)
    assert [(f.opcode, f.payload) for f in frames] == [
        (TEXT, b"a1"),
        (TEXT, b"a2"),
        (CLOSE, b"\x03\xe8"),
    ]


def test_events_received_reaches_the_terminal_at_once() -> None:
    conn = ServerConnection()
    conn.receive_data(text("q") + close(1000))
    assert conn.events_received() == [TextMessage("q"), CloseReceived(1000, "")]
    with pytest.raises(InvalidState):
        conn.send_text("too late")


def test_send_close_with_pending_violation_sends_the_violations_code() -> None:
    conn = ServerConnection()
    conn.receive_data(text("one") + text("two") + frame(TEXT, b"\xff"))
    assert conn.next_event() == TextMessage("one")
    conn.send_close(1000, "bye")
    assert conn.failure is not None
    assert conn.failure.code == 1007
    assert conn.state is State.CLOSED
    assert conn.close_sent is not None
    assert conn.close_sent[0] == 1007
    assert [f.close_code for f in sent_frames(conn)] == [1007]
    # The violation is the end: nothing after it is delivered.
    assert conn.next_event() is None


def test_send_close_still_validates_with_pending_violation() -> None:
    conn = ServerConnection()
    conn.receive_data(frame(0x3, b""))
    with pytest.raises(ValueError):
        conn.send_close(1006)
    assert conn.state is State.OPEN
    assert_failed(conn, 1002)


def test_pings_before_a_violation_are_answered_first() -> None:
    conn = ServerConnection()
    conn.receive_data(ping(b"1") + frame(CLOSE, b"\x03"))
    assert conn.next_event() == Ping(b"1")
    assert conn.next_event() is None
    frames = sent_frames(conn)
    assert [(f.opcode, f.payload[:2]) for f in frames] == [(PONG, b"1"), (CLOSE, b"\x03\xea")]


# ----------------------------------------------------------------------
# The peer's end of stream


def test_eof_closes() -> None:
    conn = ServerConnection()
    conn.receive_data(b"")
    assert conn.eof_received
    assert conn.state is State.CLOSED
    assert conn.failure is None
    assert conn.data_to_send() == b""
    with pytest.raises(InvalidState):
        conn.send_text("x")
    conn.receive_data(b"")  # a second EOF is harmless
    conn.receive_data(text("ignored"))
    assert drain(conn) == []


def test_eof_after_events_still_delivers_them() -> None:
    conn = ServerConnection()
    conn.receive_data(text("a") + text("b", fin=False))
    conn.receive_data(b"")
    assert drain(conn) == [TextMessage("a")]
    assert conn.failure is None
    assert conn.data_to_send() == b""


def test_eof_mid_frame() -> None:
    conn = ServerConnection()
    conn.receive_data(text("partial")[:5])
    conn.receive_data(b"")
    assert drain(conn) == []
    assert conn.state is State.CLOSED


def test_eof_with_pending_close_delivers_it_without_echo() -> None:
    conn = ServerConnection()
    conn.receive_data(close(1001, b"bye"))
    conn.receive_data(b"")
    assert conn.next_event() == CloseReceived(1001, "bye")
    assert conn.close_received == CloseReceived(1001, "bye")
    assert conn.data_to_send() == b""
    assert conn.close_sent is None


def test_eof_with_pending_violation_records_it_without_a_frame() -> None:
    conn = ServerConnection()
    conn.receive_data(text("a") + frame(0x4, b""))
    conn.receive_data(b"")
    assert conn.failure is not None
    assert conn.failure.code == 1002
    assert drain(conn) == [TextMessage("a")]
    assert conn.data_to_send() == b""


def test_eof_while_closing() -> None:
    conn = ServerConnection()
    conn.send_close()
    conn.receive_data(b"")
    assert conn.state is State.CLOSED
    assert conn.close_received is None


# ----------------------------------------------------------------------
# fail(): failing the connection from our side


def test_fail() -> None:
    conn = ServerConnection()
    conn.receive_data(text("pending"))
    conn.fail(1011, "pong timeout")
    assert conn.failure == Failure(1011, "pong timeout")
    assert conn.state is State.CLOSED
    frames = sent_frames(conn)
    assert [(f.close_code, f.close_reason) for f in frames] == [(1011, "pong timeout")]
    conn.receive_data(text("ignored"))
    assert conn.data_to_send() == b""
    with pytest.raises(InvalidState):
        conn.send_text("x")


def test_fail_cuts_long_reason_on_a_character_boundary() -> None:
    conn = ServerConnection()
    reason = "€" * 50  # 150 bytes
    conn.fail(1008, reason)
    assert conn.failure == Failure(1008, reason)  # the full reason for logs
    (sent,) = sent_frames(conn)
    assert sent.close_reason == "€" * 41  # 123 bytes, no broken character
    assert len(sent.payload) == 125


def test_fail_replaces_pending_violation() -> None:
    conn = ServerConnection()
    conn.receive_data(frame(0x3, b""))
    conn.fail(1011, "internal")
    assert conn.failure == Failure(1011, "internal")
    assert drain(conn) == []
    assert [f.close_code for f in sent_frames(conn)] == [1011]


def test_fail_while_closing_sends_nothing_more() -> None:
    conn = ServerConnection()
    conn.send_close()
    conn.data_to_send()
    conn.fail(1011)
    assert conn.failure == Failure(1011, "")
    assert conn.state is State.CLOSED
    assert conn.data_to_send() == b""


def test_fail_after_eof_sends_nothing() -> None:
    conn = ServerConnection()
    conn.receive_data(b"")
    conn.fail(1011, "late")
    assert conn.failure == Failure(1011, "late")
    assert conn.data_to_send() == b""


@pytest.mark.parametrize("code", [1005, 1006, 1015, 999, 5000])
def test_fail_with_a_code_that_may_not_be_sent_changes_nothing(code: int) -> None:
    conn = ServerConnection()
    conn.receive_data(text("a") + frame(0x3, b""))
    with pytest.raises(ValueError, match=str(code)):
        conn.fail(code, "abnormal")
    assert conn.failure is None
    assert conn.state is State.OPEN
    assert conn.data_to_send() == b""
    # The pending violation is still there and still takes effect.
    assert conn.next_event() == TextMessage("a")
    assert_failed(conn, 1002)
