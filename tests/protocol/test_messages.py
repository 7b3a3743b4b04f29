"""Data messages: RFC 6455 sections 5.4 (fragmentation), 5.6 (data frames), 8.1 (UTF-8)
and 10.4 (size limits), including limits on decompressed size (RFC 7692 section 8.1).
"""

from __future__ import annotations

import os
import tracemalloc
import zlib

import pytest

from django_websocket.protocol import (
    BinaryMessage,
    DeflateParams,
    PerMessageDeflate,
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
    ClientDeflater,
    binary,
    cont,
    drain,
    feed,
    frame,
    header,
    mask,
    ping,
    pong,
    sent_frames,
    text,
)

MiB = 1 << 20


def assert_failed(conn: ServerConnection, code: int) -> None:
    assert drain(conn) == []
    assert conn.failure is not None
    assert conn.failure.code == code
    assert conn.state is State.CLOSED
    frames = sent_frames(conn)
    assert frames[-1].opcode == CLOSE
    assert frames[-1].close_code == code


# ----------------------------------------------------------------------
# Section 5.4: fragmentation, with control frames in between


def test_fragmented_text_with_pings_interleaved() -> None:
    conn = ServerConnection()
    data = (
        text("Hel", fin=False)
        + ping(b"1")
        + cont(b"lo, ", fin=False)
        + ping(b"2")
        + pong(b"x")
        + cont("wörld".encode())
    )
    assert feed(conn, data) == [Ping(b"1"), Ping(b"2"), Pong(b"x"), TextMessage("Hello, wörld")]
    frames = sent_frames(conn)
    assert [(f.opcode, f.payload) for f in frames] == [(PONG, b"1"), (PONG, b"2")]


def test_fragmented_binary_byte_by_byte() -> None:
    conn = ServerConnection()
    parts = [os.urandom(n) for n in (0, 1, 130, 7)]
    data = (
        binary(parts[0], fin=False)
        + ping(b"p")
        + b"".join(cont(p, fin=i == len(parts) - 1) for i, p in enumerate(parts[1:], start=1))
    )
    assert feed(conn, data, chunk=1) == [Ping(b"p"), BinaryMessage(b"".join(parts))]


def test_messages_back_to_back_reuse_state() -> None:
    conn = ServerConnection()
    for i in range(3):
        data = text(f"m{i}", fin=False) + cont("€".encode())
        assert feed(conn, data, chunk=3) == [TextMessage(f"m{i}€")]
        assert feed(conn, binary(b"b", fin=False) + cont(b"c")) == [BinaryMessage(b"bc")]


def test_pending_events_counts_ready_events() -> None:
    conn = ServerConnection()
    conn.receive_data(text("a") + text("b") + ping() + frame(0x3, b""))
    assert conn.pending_events == 3
    assert conn.pending_messages == 2
    conn.next_event()
    assert conn.pending_events == 2
    assert conn.pending_messages == 1
    assert conn.events_received() == [TextMessage("b"), Ping(b"")]
    assert conn.pending_events == 0
    assert conn.failure is not None


# ----------------------------------------------------------------------
# Section 8.1: UTF-8


def first_invalid_index(data: bytes) -> int | None:
    """Index of the byte at which ``data`` stops being a prefix of valid UTF-8 (RFC 3629)."""
    i = 0
    while i < len(data):
        b = data[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            ranges = [(0x80, 0xBF)]
        elif b == 0xE0:
            ranges = [(0xA0, 0xBF), (0x80, 0xBF)]
        elif 0xE1 <= b <= 0xEC or 0xEE <= b <= 0xEF:
            ranges = [(0x80, 0xBF)] * 2
        elif b == 0xED:
            ranges = [(0x80, 0x9F), (0x80, 0xBF)]
        elif b == 0xF0:
            ranges = [(0x90, 0xBF), (0x80, 0xBF), (0x80, 0xBF)]
        elif 0xF1 <= b <= 0xF3:
            ranges = [(0x80, 0xBF)] * 3
        elif b == 0xF4:
            ranges = [(0x80, 0x8F), (0x80, 0xBF), (0x80, 0xBF)]
        else:
            return i
        for j, (low, high) in enumerate(ranges, start=1):
            if i + j >= len(data):
                return None
            if not low <= data[i + j] <= high:
                return i + j
        i += 1 + len(ranges)
    return None


INVALID_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\x80",  # lone continuation byte
    b"\xc0\xaf",  # overlong "/"
    b"\xc1\xbf",
    b"\xe0\x80\xaf",  # overlong, 3 bytes
    b"\xe2\x28\xa1",  # bad second byte
    b"\xe2\x82\x28",  # bad third byte
    b"\xed\xa0\x80",  # UTF-16 surrogate D800
    b"\xed\xbf\xbf",  # UTF-16 surrogate DFFF
    b"\xf0\x8f\xbf\xbf",  # overlong, 4 bytes
    b"\xf4\x90\x80\x80",  # above U+10FFFF (Autobahn 6.4.x)
    b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80",
]


def test_first_invalid_index_helper() -> None:
    assert first_invalid_index("κόσμε €𝄞".encode()) is None
    assert first_invalid_index(b"ab\xe2\x82") is None  # incomplete, not invalid
    assert first_invalid_index(b"ab\xed\xa0\x80") == 3
    assert first_invalid_index(b"\xf4\x90") == 1


@pytest.mark.parametrize("bad", INVALID_UTF8, ids=lambda b: b.hex())
def test_invalid_utf8_fails_when_the_bad_byte_arrives_mid_frame(bad: bytes) -> None:
    prefix = "κόσμε".encode()
    payload = prefix + bad + b"-more-bytes-after-it" * 3
    bad_at = first_invalid_index(payload)
    assert bad_at is not None
    data = header(TEXT, len(payload)) + b"\x01\x02\x03\x04"
    masked = mask(payload, b"\x01\x02\x03\x04")
    conn = ServerConnection()
    conn.receive_data(data)
    for i in range(bad_at):
        conn.receive_data(masked[i : i + 1])
        assert conn.next_event() is None
        assert conn.failure is None, f"failed early, at byte {i}"
    conn.receive_data(masked[bad_at : bad_at + 1])
    # The frame is far from complete, yet the connection fails right now.
    assert bad_at + 1 < len(payload)
    assert_failed(conn, 1007)


@pytest.mark.parametrize("bad", INVALID_UTF8, ids=lambda b: b.hex())
def test_invalid_utf8_whole_frame(bad: bytes) -> None:
    conn = ServerConnection()
    conn.receive_data(frame(TEXT, b"ok " + bad + b" end"))
    assert_failed(conn, 1007)


def test_invalid_utf8_in_a_later_fragment_fails_before_the_message_ends() -> None:
    conn = ServerConnection()
    conn.receive_data(text("good", fin=False) + cont(b"\xe2\x82", fin=False))
    assert drain(conn) == []
    assert conn.failure is None
    conn.receive_data(cont(b"\x28 and more", fin=False))
    assert_failed(conn, 1007)


@pytest.mark.parametrize("chunk", [None, 1])
def test_truncated_utf8_at_message_end_fails(chunk: int | None) -> None:
    conn = ServerConnection()
    conn.receive_data(text("a", fin=False))
    assert drain(conn) == []
    for piece in (
        [cont(b"b\xe2\x82")] if chunk is None else [bytes([b]) for b in cont(b"b\xe2\x82")]
    ):
        conn.receive_data(piece)
    assert_failed(conn, 1007)


def test_truncated_utf8_then_empty_final_fragment_fails() -> None:
    conn = ServerConnection()
    conn.receive_data(text("", fin=False) + cont(b"\xf0\x9f", fin=False) + cont(b""))
    assert_failed(conn, 1007)


def test_truncated_utf8_in_single_frame_fails() -> None:
    conn = ServerConnection()
    conn.receive_data(frame(TEXT, b"abc\xe2\x82"))
    assert_failed(conn, 1007)


@pytest.mark.parametrize("char", ["é", "€", "𝄞", "\U0010ffff", "\ud7ff", "\ue000"])
def test_utf8_split_across_fragments_accepted(char: str) -> None:
    encoded = char.encode("utf-8")
    fragments = [encoded[i : i + 1] for i in range(len(encoded))]
    data = frame(TEXT, b"<" + fragments[0], fin=False)
    data += b"".join(cont(f, fin=False) for f in fragments[1:])
    data += ping(b"!") + cont(b">")
    for chunk in (None, 1):
        conn = ServerConnection()
        assert feed(conn, data, chunk=chunk) == [Ping(b"!"), TextMessage(f"<{char}>")]
        assert conn.failure is None


def test_binary_messages_are_not_utf8_checked() -> None:
    conn = ServerConnection()
    assert feed(conn, binary(b"\xff\xfe", fin=False) + cont(b"\xed\xa0\x80")) == [
        BinaryMessage(b"\xff\xfe\xed\xa0\x80")
    ]


# ----------------------------------------------------------------------
# Section 10.4: message size limit


@pytest.mark.parametrize(("size", "header_len"), [(11, 2), (126, 4), (70000, 10)])
def test_size_limit_decided_on_the_header(size: int, header_len: int) -> None:
    limit = size - 1
    conn = ServerConnection(max_message_size=limit)
    head = header(BINARY, size)
    assert len(head) == header_len
    # Only the header: no masking key, no payload.
    conn.receive_data(head)
    assert_failed(conn, 1009)


def test_size_limit_counts_all_fragments() -> None:
    conn = ServerConnection(max_message_size=10)
    conn.receive_data(binary(b"123456", fin=False) + ping(b"p"))
    assert drain(conn) == [Ping(b"p")]
    conn.receive_data(header(0, 5, fin=True))
    assert_failed(conn, 1009)


def test_size_limit_exactly_reached_is_fine() -> None:
    conn = ServerConnection(max_message_size=10)
    data = text("12345", fin=False) + cont(b"67890") + binary(b"x" * 10)
    assert feed(conn, data) == [TextMessage("1234567890"), BinaryMessage(b"x" * 10)]
    # The count starts afresh with each message.
    assert feed(conn, binary(b"y" * 10)) == [BinaryMessage(b"y" * 10)]


def test_size_limit_zero() -> None:
    conn = ServerConnection(max_message_size=0)
    assert feed(conn, text("") + binary(b"")) == [TextMessage(""), BinaryMessage(b"")]
    conn.receive_data(header(TEXT, 1))
    assert_failed(conn, 1009)


def test_default_limit_is_one_mib() -> None:
    conn = ServerConnection()
    assert conn.max_message_size == MiB
    assert feed(conn, binary(b"\0" * MiB)) == [BinaryMessage(b"\0" * MiB)]
    conn.receive_data(header(BINARY, MiB + 1))
    assert_failed(conn, 1009)


def test_no_limit() -> None:
    conn = ServerConnection(max_message_size=None)
    payload = os.urandom(3 * MiB)
    assert feed(conn, binary(payload[:MiB], fin=False) + cont(payload[MiB:])) == [
        BinaryMessage(payload)
    ]


def test_negative_limit_refused() -> None:
    with pytest.raises(ValueError, match="max_message_size"):
        ServerConnection(max_message_size=-1)


def test_control_frames_do_not_count_towards_the_limit() -> None:
    conn = ServerConnection(max_message_size=4)
    data = text("ab", fin=False) + ping(b"x" * 100) + cont(b"cd")
    assert feed(conn, data) == [Ping(b"x" * 100), TextMessage("abcd")]


def test_16_mib_message_in_4096_fragments() -> None:
    payload = os.urandom(16 * MiB)
    n = 4096
    size = len(payload) // n
    pieces = [frame(BINARY, payload[:size], fin=False)]
    pieces += [cont(payload[i * size : (i + 1) * size], fin=i == n - 1) for i in range(1, n)]
    data = b"".join(pieces)
    conn = ServerConnection(max_message_size=16 * MiB)
    # In one go, then in TCP-sized pieces.
    assert feed(conn, data) == [BinaryMessage(payload)]
    conn = ServerConnection(max_message_size=16 * MiB)
    events = feed(conn, data, chunk=65536)
    assert len(events) == 1
    assert events[0] == BinaryMessage(payload)


def test_million_fragments() -> None:
    n = 1_000_000
    data = text("a", fin=False) + cont(b"b", fin=False) * (n - 2) + cont("€".encode())
    conn = ServerConnection(max_message_size=None)
    events = feed(conn, data)
    # How long this takes is measured in bench/, not asserted here.
    assert events == [TextMessage("a" + "b" * (n - 2) + "€")]


# ----------------------------------------------------------------------
# Size limits on compressed messages (RFC 7692 section 8.1: decompression bombs)


def deflate_conn(max_message_size: int | None) -> ServerConnection:
    return ServerConnection(
        max_message_size=max_message_size, deflate=PerMessageDeflate(DeflateParams())
    )


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """32 MiB of zeros, compressed to a few tens of KB."""
    payload = ClientDeflater().compress(bytes(32 * MiB))
    assert len(payload) < 64 * 1024
    return payload


@pytest.mark.parametrize("chunk", [None, 4096])
def test_decompression_bomb_fails_without_inflating_it(bomb: bytes, chunk: int | None) -> None:
    conn = deflate_conn(MiB)
    data = frame(BINARY, bomb, rsv1=True)
    tracemalloc.start()
    try:
        if chunk is None:
            conn.receive_data(data)
        else:
            for i in range(0, len(data), chunk):
                conn.receive_data(data[i : i + chunk])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_failed(conn, 1009)
    # Bounded by the limit (plus zlib's window and the input), not by 32 MiB.
    assert peak < 4 * MiB


def test_decompression_bomb_in_fragments(bomb: bytes) -> None:
    conn = deflate_conn(MiB)
    third = len(bomb) // 3
    data = frame(TEXT, bomb[:third], fin=False, rsv1=True) + cont(bomb[third:], fin=False)
    conn.receive_data(data)
    assert_failed(conn, 1009)


def test_same_bomb_under_a_big_enough_limit_is_delivered(bomb: bytes) -> None:
    conn = deflate_conn(32 * MiB)
    assert feed(conn, frame(BINARY, bomb, rsv1=True)) == [BinaryMessage(bytes(32 * MiB))]


def test_compressed_limit_exact() -> None:
    deflater = ClientDeflater()
    conn = deflate_conn(1000)
    assert feed(conn, frame(BINARY, deflater.compress(b"a" * 1000), rsv1=True)) == [
        BinaryMessage(b"a" * 1000)
    ]
    conn.receive_data(frame(BINARY, deflater.compress(b"a" * 1001), rsv1=True))
    assert_failed(conn, 1009)


def test_compressed_limit_counts_across_fragments() -> None:
    raw = ClientDeflater().compress(os.urandom(600) * 2)
    conn = deflate_conn(1000)
    half = len(raw) // 2
    conn.receive_data(frame(BINARY, raw[:half], rsv1=True, fin=False) + cont(raw[half:]))
    assert_failed(conn, 1009)


def test_compressed_message_without_limit() -> None:
    payload = os.urandom(100) * 30000
    compressed = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = compressed.compress(payload) + compressed.flush(zlib.Z_SYNC_FLUSH)
    conn = deflate_conn(None)
    assert feed(conn, frame(BINARY, body[:-4], rsv1=True)) == [BinaryMessage(payload)]
