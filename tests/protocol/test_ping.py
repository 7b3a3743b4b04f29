"""Ping and pong: RFC 6455 sections 5.5.2 and 5.5.3."""

from __future__ import annotations

import os

import pytest

from django_websocket.protocol import (
    CloseReceived,
    Ping,
    Pong,
    ServerConnection,
    State,
    TextMessage,
)

from .client_frames import (
    CLOSE,
    PING,
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


@pytest.mark.parametrize("size", [0, 1, 4, 5, 124, 125])
def test_pong_carries_the_pings_payload(size: int) -> None:
    payload = os.urandom(size)
    conn = ServerConnection()
    assert feed(conn, ping(payload)) == [Ping(payload)]
    frames = sent_frames(conn)
    assert [(f.opcode, f.fin, f.rsv1, f.payload) for f in frames] == [(PONG, True, False, payload)]


def test_pong_is_queued_before_the_event_is_read() -> None:
    # The core answers by itself; the application only hears about it.
    conn = ServerConnection()
    conn.receive_data(ping(b"hb"))
    assert conn.data_to_send() == b"\x8a\x02hb"
    assert conn.next_event() == Ping(b"hb")


def test_has_data_to_send_tracks_the_queue() -> None:
    conn = ServerConnection()
    assert conn.has_data_to_send is False
    conn.receive_data(ping(b"hb"))
    assert conn.has_data_to_send is True
    conn.data_to_send()
    assert conn.has_data_to_send is False
    conn.send_text("x")
    assert conn.has_data_to_send is True


def test_every_ping_gets_its_own_pong_in_order() -> None:
    conn = ServerConnection()
    payloads = [b"", b"a", b"bb", bytes(range(125))]
    assert feed(conn, b"".join(ping(p) for p in payloads), chunk=3) == [Ping(p) for p in payloads]
    assert [f.payload for f in sent_frames(conn)] == payloads


def test_pings_interleaved_in_fragmented_messages() -> None:
    conn = ServerConnection()
    data = (
        text("a", fin=False)
        + ping(b"1")
        + cont(b"b", fin=False)
        + ping(b"2")
        + ping(b"3")
        + cont(b"c")
        + binary(b"x", fin=False)
        + ping(b"4")
        + cont(b"y")
    )
    events = feed(conn, data)
    assert [e for e in events if isinstance(e, Ping)] == [
        Ping(b"1"),
        Ping(b"2"),
        Ping(b"3"),
        Ping(b"4"),
    ]
    assert events[3] == TextMessage("abc")
    assert [(f.opcode, f.payload) for f in sent_frames(conn)] == [
        (PONG, b"1"),
        (PONG, b"2"),
        (PONG, b"3"),
        (PONG, b"4"),
    ]


def test_pong_from_client_is_reported_and_not_answered() -> None:
    conn = ServerConnection()
    assert feed(conn, pong(b"unsolicited") + pong()) == [Pong(b"unsolicited"), Pong(b"")]
    assert conn.data_to_send() == b""


def test_last_pong_is_the_latest_pong_payload() -> None:
    conn = ServerConnection()
    assert conn.last_pong is None
    conn.send_ping(b"1")
    conn.send_ping(b"2")
    conn.receive_data(ping(b"not a pong"))
    assert conn.last_pong is None
    conn.receive_data(pong(b"2") + pong(b"1"))
    # Recorded as the frame is parsed, before its event is read.
    assert conn.last_pong == b"1"
    assert drain(conn) == [Ping(b"not a pong"), Pong(b"2"), Pong(b"1")]


def test_no_pong_after_our_close() -> None:
    conn = ServerConnection()
    conn.send_close(1000)
    conn.data_to_send()
    assert feed(conn, ping(b"late")) == [Ping(b"late")]
    assert conn.data_to_send() == b""
    assert conn.state is State.CLOSING


def test_no_pong_for_a_ping_after_the_peer_close() -> None:
    conn = ServerConnection()
    assert feed(conn, close(1000) + ping(b"late")) == [CloseReceived(1000, "")]
    assert [f.opcode for f in sent_frames(conn)] == [CLOSE]


def test_ping_over_125_from_client_fails() -> None:
    conn = ServerConnection()
    conn.receive_data(frame(PING, b"x" * 126))
    assert drain(conn) == []
    assert conn.failure is not None
    assert conn.failure.code == 1002
    assert [f.opcode for f in sent_frames(conn)] == [CLOSE]


@pytest.mark.parametrize("payload", [b"", b"x", b"y" * 125])
def test_send_ping_and_pong(payload: bytes) -> None:
    conn = ServerConnection()
    conn.send_ping(payload)
    conn.send_pong(payload)
    assert [(f.opcode, f.payload) for f in sent_frames(conn)] == [(PING, payload), (PONG, payload)]


def test_send_ping_default_payload() -> None:
    conn = ServerConnection()
    conn.send_ping()
    conn.send_pong()
    assert conn.data_to_send() == b"\x89\x00\x8a\x00"


@pytest.mark.parametrize("method", ["send_ping", "send_pong"])
def test_ping_payload_over_125_raises(method: str) -> None:
    conn = ServerConnection()
    with pytest.raises(ValueError, match="125"):
        getattr(conn, method)(b"z" * 126)
    assert conn.data_to_send() == b""
    assert conn.state is State.OPEN


def test_send_ping_accepts_buffers() -> None:
    conn = ServerConnection()
    conn.send_ping(bytearray(b"ab"))  # type: ignore[arg-type]
    conn.send_pong(memoryview(b"cd"))  # type: ignore[arg-type]
    assert conn.data_to_send() == b"\x89\x02ab\x8a\x02cd"


def test_ping_while_a_text_message_is_incomplete_keeps_utf8_state() -> None:
    conn = ServerConnection()
    euro = "€".encode()
    data = frame(TEXT, euro[:1], fin=False) + ping(b"p") + cont(euro[1:])
    assert feed(conn, data, chunk=1) == [Ping(b"p"), TextMessage("€")]
