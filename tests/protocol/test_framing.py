"""Base framing: RFC 6455 sections 5.1 (masking), 5.2 (frame layout), 5.4 and 5.5."""

from __future__ import annotations

import os

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
from django_websocket.protocol.frames import encode_frame

from .client_frames import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    binary,
    cont,
    drain,
    feed,
    frame,
    header,
    ping,
    sent_frames,
    text,
)

BIG = 1 << 24


def deflate_conn() -> ServerConnection:
    return ServerConnection(deflate=PerMessageDeflate(DeflateParams()))


def assert_failed(conn: ServerConnection, code: int) -> None:
    """The violation is reached: the close frame with ``code`` goes out, nothing else."""
    assert drain(conn) == []
    assert conn.failure is not None
    assert conn.failure.code == code
    assert conn.state is State.CLOSED
    frames = sent_frames(conn)
    assert [f.opcode for f in frames] == [CLOSE]
    assert frames[0].close_code == code
    assert conn.close_sent is not None
    assert conn.close_sent[0] == code


# ----------------------------------------------------------------------
# Section 5.2: payload length encodings, server side


@pytest.mark.parametrize(
    ("size", "expected_header"),
    [
        (0, b"\x82\x00"),
        (1, b"\x82\x01"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (127, b"\x82\x7e\x00\x7f"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        (65537, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x01"),
    ],
)
def test_server_length_encoding_minimal_and_unmasked(size: int, expected_header: bytes) -> None:
    conn = ServerConnection()
    payload = os.urandom(size)
    conn.send_binary(payload)
    out = conn.data_to_send()
    assert out == expected_header + payload


def test_server_text_frame_bytes() -> None:
    conn = ServerConnection()
    conn.send_text("Hello")
    # RFC 6455 section 5.7: "A single-frame unmasked text message".
    assert conn.data_to_send() == b"\x81\x05\x48\x65\x6c\x6c\x6f"


def test_encode_frame_bits() -> None:
    assert encode_frame(TEXT, b"x", fin=False) == b"\x01\x01x"
    assert encode_frame(BINARY, b"", rsv1=True) == b"\xc2\x00"
    assert encode_frame(PONG, b"ab") == b"\x8a\x02ab"


def test_send_binary_accepts_buffers() -> None:
    conn = ServerConnection()
    conn.send_binary(bytearray(b"ab"))
    conn.send_binary(memoryview(b"cd"))
    assert conn.data_to_send() == b"\x82\x02ab\x82\x02cd"
    assert conn.data_to_send() == b""


# ----------------------------------------------------------------------
# Section 5.2: payload length encodings, client side


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_client_lengths_parsed(size: int) -> None:
    conn = ServerConnection(max_message_size=BIG)
    payload = os.urandom(size)
    data = binary(payload)
    expected_header_size = 2 + (0 if size <= 125 else 2 if size <= 65535 else 8) + 4
    assert len(data) == expected_header_size + size
    assert feed(conn, data) == [BinaryMessage(payload)]
    conn2 = ServerConnection(max_message_size=BIG)
    assert feed(conn2, data, chunk=1 if size < 1000 else 997) == [BinaryMessage(payload)]


@pytest.mark.parametrize("size", [126, 65536])
def test_extended_length_header_split_byte_by_byte(size: int) -> None:
    payload = os.urandom(size)
    data = binary(payload)
    conn = ServerConnection(max_message_size=BIG)
    header_size = 8 if size == 126 else 14
    for i in range(header_size):
        conn.receive_data(data[i : i + 1])
        assert drain(conn) == []
        assert conn.failure is None
    conn.receive_data(data[header_size:])
    assert drain(conn) == [BinaryMessage(payload)]


@pytest.mark.parametrize("width", [16, 64])
def test_client_non_minimal_length_still_parsed(width: int) -> None:
    # The minimal-length rule binds the sender; the receiver is lenient.
    conn = ServerConnection()
    assert feed(conn, frame(TEXT, b"hi", width=width)) == [TextMessage("hi")]


def test_64_bit_length_top_bit_set_fails_on_header() -> None:
    conn = ServerConnection(max_message_size=None)
    # "the most significant bit MUST be 0": fails as soon as the length is known,
    # without the masking key.
    conn.receive_data(header(BINARY, 1 << 63))
    assert_failed(conn, 1002)


def test_64_bit_length_just_below_top_bit_is_fine_until_it_arrives() -> None:
    conn = ServerConnection(max_message_size=None)
    conn.receive_data(header(BINARY, (1 << 63) - 1) + b"\x00\x00\x00\x00" + b"x" * 10)
    assert drain(conn) == []
    assert conn.failure is None
    assert conn.state is State.OPEN


@pytest.mark.parametrize("key", [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01\x02\x03\x04"])
@pytest.mark.parametrize("split", [1, 2, 3, 5, 7])
def test_masking_key_rotation_across_chunks(key: bytes, split: int) -> None:
    payload = bytes(range(256)) * 3
    data = binary(payload, key=key)
    conn = ServerConnection()
    assert feed(conn, data, chunk=split) == [BinaryMessage(payload)]


def test_many_frames_in_one_chunk_and_split_everywhere() -> None:
    stream = text("one") + binary(b"two") + ping(b"3") + text("four" * 40)
    expected = [TextMessage("one"), BinaryMessage(b"two"), Ping(b"3"), TextMessage("four" * 40)]
    for cut in range(1, len(stream)):
        conn = ServerConnection()
        conn.receive_data(stream[:cut])
        events = drain(conn)
        conn.receive_data(stream[cut:])
        events += drain(conn)
        assert events == expected, cut


def test_empty_receive_is_eof_not_a_no_op() -> None:
    conn = ServerConnection()
    conn.receive_data(b"")
    assert conn.eof_received


# ----------------------------------------------------------------------
# Section 5.1: client frames must be masked


@pytest.mark.parametrize("opcode", [TEXT, BINARY, PING, PONG, CLOSE])
def test_unmasked_client_frame_fails(opcode: int) -> None:
    conn = ServerConnection()
    # Detected on the first two bytes.
    conn.receive_data(frame(opcode, b"hi", masked=False)[:2])
    assert_failed(conn, 1002)


# ----------------------------------------------------------------------
# Section 5.2: RSV bits


@pytest.mark.parametrize(
    "bits",
    [
        {"rsv1": True},
        {"rsv2": True},
        {"rsv3": True},
        {"rsv1": True, "rsv2": True},
        {"rsv1": True, "rsv2": True, "rsv3": True},
    ],
)
@pytest.mark.parametrize("opcode", [TEXT, BINARY, PING])
def test_rsv_bits_without_extension_fail(bits: dict[str, bool], opcode: int) -> None:
    conn = ServerConnection()
    conn.receive_data(frame(opcode, b"x", **bits)[:2])  # type: ignore[arg-type]
    assert_failed(conn, 1002)


@pytest.mark.parametrize("bits", [{"rsv2": True}, {"rsv3": True}, {"rsv1": True, "rsv3": True}])
def test_rsv2_rsv3_fail_even_with_deflate(bits: dict[str, bool]) -> None:
    conn = deflate_conn()
    conn.receive_data(frame(TEXT, b"x", **bits))  # type: ignore[arg-type]
    assert_failed(conn, 1002)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_rsv1_on_control_frame_fails_with_deflate(opcode: int) -> None:
    conn = deflate_conn()
    conn.receive_data(frame(opcode, b"", rsv1=True))
    assert_failed(conn, 1002)


def test_rsv1_on_continuation_fails_with_deflate() -> None:
    # RFC 7692 section 6.1: RSV1 is set on the first frame of a message only.
    conn = deflate_conn()
    conn.receive_data(text("a", fin=False) + cont(b"b", rsv1=True))
    assert_failed(conn, 1002)


def test_rsv1_on_first_frame_accepted_with_deflate() -> None:
    conn = deflate_conn()
    # An empty DEFLATE block with no compression, then "Hello" (RFC 7692 7.2.3.3).
    payload = bytes.fromhex("00 05 00 fa ff 48 65 6c 6c 6f 00")
    assert feed(conn, frame(TEXT, payload, rsv1=True)) == [TextMessage("Hello")]
    assert conn.failure is None


# ----------------------------------------------------------------------
# Section 5.2: opcodes


@pytest.mark.parametrize("opcode", [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes_fail(opcode: int) -> None:
    conn = ServerConnection()
    conn.receive_data(frame(opcode, b"")[:2])
    assert_failed(conn, 1002)
    assert conn.failure is not None
    assert f"{opcode:#x}" in conn.failure.reason


@pytest.mark.parametrize("opcode", [0x3, 0xB])
def test_reserved_opcode_inside_fragmented_message_fails(opcode: int) -> None:
    conn = ServerConnection()
    conn.receive_data(text("a", fin=False) + frame(opcode, b"", fin=False))
    assert_failed(conn, 1002)


# ----------------------------------------------------------------------
# Section 5.5: control frames


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_fragmented_control_frame_fails(opcode: int) -> None:
    conn = ServerConnection()
    conn.receive_data(frame(opcode, b"", fin=False)[:2])
    assert_failed(conn, 1002)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
@pytest.mark.parametrize("size", [126, 127, 65535])
def test_control_frame_over_125_fails(opcode: int, size: int) -> None:
    conn = ServerConnection()
    # Already the 7-bit length field (126 or 127) gives it away.
    conn.receive_data(frame(opcode, b"\x03\xe8" + b"x" * (size - 2))[:2])
    assert_failed(conn, 1002)


@pytest.mark.parametrize("opcode", [PING, PONG])
def test_control_frame_of_125_is_fine(opcode: int) -> None:
    conn = ServerConnection()
    events = feed(conn, frame(opcode, b"p" * 125))
    assert events == [Ping(b"p" * 125) if opcode == PING else Pong(b"p" * 125)]


def test_control_frame_waits_for_its_whole_payload() -> None:
    conn = ServerConnection()
    data = ping(b"abcdef")
    for i in range(len(data) - 1):
        conn.receive_data(data[i : i + 1])
        assert drain(conn) == []
        assert conn.data_to_send() == b""
    conn.receive_data(data[-1:])
    assert drain(conn) == [Ping(b"abcdef")]


# ----------------------------------------------------------------------
# Section 5.4: fragmentation


def test_continuation_without_start_fails() -> None:
    conn = ServerConnection()
    conn.receive_data(cont(b"x")[:2])
    assert_failed(conn, 1002)


def test_continuation_after_finished_message_fails() -> None:
    conn = ServerConnection()
    conn.receive_data(text("a") + cont(b"b"))
    assert conn.next_event() == TextMessage("a")
    assert_failed(conn, 1002)


@pytest.mark.parametrize("second", [TEXT, BINARY])
@pytest.mark.parametrize("first", [TEXT, BINARY])
@pytest.mark.parametrize("first_fin_continuations", [0, 1])
def test_new_data_frame_inside_fragmented_message_fails(
    first: int, second: int, first_fin_continuations: int
) -> None:
    conn = ServerConnection()
    data = frame(first, b"a", fin=False) + cont(b"b", fin=False) * first_fin_continuations
    conn.receive_data(data + frame(second, b"c")[:2])
    assert_failed(conn, 1002)


def test_fragmented_message_with_empty_fragments() -> None:
    conn = ServerConnection()
    data = text("", fin=False) + cont(b"", fin=False) + cont(b"ab", fin=False) + cont(b"")
    assert feed(conn, data) == [TextMessage("ab")]
    assert feed(conn, binary(b"", fin=False) + cont(b"")) == [BinaryMessage(b"")]


def test_empty_single_frame_messages() -> None:
    conn = ServerConnection()
    assert feed(conn, text("") + binary(b"")) == [TextMessage(""), BinaryMessage(b"")]
    conn = ServerConnection()
    assert feed(conn, text("") + binary(b""), chunk=1) == [TextMessage(""), BinaryMessage(b"")]


def test_violation_stops_parsing() -> None:
    conn = ServerConnection()
    conn.receive_data(frame(0x3, b"") + text("never"))
    assert_failed(conn, 1002)
    conn.receive_data(text("after"))
    assert drain(conn) == []
    assert conn.data_to_send() == b""
