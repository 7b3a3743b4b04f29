"""permessage-deflate: RFC 7692 sections 6 and 7 (codec and context takeover)."""

from __future__ import annotations

import json
import os
import zlib

import pytest

from django_websocket.protocol import (
    BinaryMessage,
    DeflateConfig,
    DeflateParams,
    PerMessageDeflate,
    Ping,
    ServerConnection,
    State,
    TextMessage,
)
from django_websocket.protocol.deflate import (
    DecompressionError,
    MessageTooBig,
    negotiate_deflate,
)

from .client_frames import (
    BINARY,
    CLOSE,
    TEXT,
    ClientDeflater,
    ClientInflater,
    cont,
    drain,
    feed,
    frame,
    ping,
    sent_frames,
    server_inflate,
    text,
)

HELLO = bytes.fromhex("f2 48 cd c9 c9 07 00")  # RFC 7692 section 7.2.3.1
HELLO_AGAIN = bytes.fromhex("f2 00 11 00 00")  # section 7.2.3.2, with context takeover
STORED_HELLO = bytes.fromhex("00 05 00 fa ff 48 65 6c 6c 6f 00")  # section 7.2.3.3
BFINAL_HELLO = bytes.fromhex("f3 48 cd c9 c9 07 00 00")  # section 7.2.3.4
TWO_BLOCKS_HELLO = bytes.fromhex("f2 48 05 00 00 00 ff ff ca c9 c9 07 00")  # section 7.2.3.5


def codec(config: DeflateConfig | None = None, **params: object) -> PerMessageDeflate:
    return PerMessageDeflate(DeflateParams(**params), config)  # type: ignore[arg-type]


def conn_with(config: DeflateConfig | None = None, **params: object) -> ServerConnection:
    return ServerConnection(deflate=codec(config, **params))


def assert_failed(conn: ServerConnection, code: int) -> None:
    assert drain(conn) == []
    assert conn.failure is not None
    assert conn.failure.code == code
    assert conn.state is State.CLOSED
    frames = sent_frames(conn)
    assert [f.opcode for f in frames] == [CLOSE]
    assert frames[0].close_code == code


# ----------------------------------------------------------------------
# Section 7.2.3: the RFC's examples, outgoing


def test_rfc_hello_compressed() -> None:
    conn = conn_with(DeflateConfig(min_size=0))
    conn.send_text("Hello")
    # Section 7.2.3.1: "0xc1 0x07 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00".
    assert conn.data_to_send() == b"\xc1\x07" + HELLO


def test_rfc_context_takeover_second_hello() -> None:
    conn = conn_with(DeflateConfig(min_size=0))
    conn.send_text("Hello")
    conn.send_text("Hello")
    # Section 7.2.3.2: the second message refers back to the first.
    assert conn.data_to_send() == b"\xc1\x07" + HELLO + b"\xc1\x05" + HELLO_AGAIN


def test_rfc_no_context_takeover_same_bytes_twice() -> None:
    conn = conn_with(DeflateConfig(min_size=0), server_no_context_takeover=True)
    conn.send_text("Hello")
    conn.send_text("Hello")
    assert conn.data_to_send() == (b"\xc1\x07" + HELLO) * 2


def test_codec_compress_directly() -> None:
    deflate = codec(DeflateConfig(min_size=0))
    assert deflate.compress(b"Hello") == HELLO
    assert deflate.compress(b"Hello") == HELLO_AGAIN


def test_min_size_default_128() -> None:
    conn = conn_with()
    assert PerMessageDeflate(DeflateParams()).min_size == 128
    conn.send_binary(b"a" * 127)
    conn.send_binary(b"a" * 128)
    small, big = sent_frames(conn)
    assert not small.rsv1
    assert small.payload == b"a" * 127
    assert big.rsv1
    assert big.opcode == BINARY
    assert len(big.payload) < 20
    assert server_inflate(big.payload) == b"a" * 128


def test_uncompressed_message_does_not_disturb_the_context() -> None:
    conn = conn_with(DeflateConfig(min_size=5))
    conn.send_text("Hello")
    conn.send_text("Hi")  # below min_size: plain
    conn.send_text("Hello")
    frames = sent_frames(conn)
    assert [(f.rsv1, f.payload) for f in frames] == [
        (True, HELLO),
        (False, b"Hi"),
        (True, HELLO_AGAIN),
    ]


# ----------------------------------------------------------------------
# Section 7.2.3: the RFC's examples, incoming


def test_rfc_hello_decompressed() -> None:
    conn = conn_with()
    assert feed(conn, frame(TEXT, HELLO, rsv1=True)) == [TextMessage("Hello")]


def test_rfc_fragmented_hello() -> None:
    # Section 7.2.3.1: "0x41 0x03 0xf2 0x48 0xcd" and "0x80 0x04 0xc9 0xc9 0x07 0x00".
    data = frame(TEXT, HELLO[:3], fin=False, rsv1=True) + cont(HELLO[3:])
    for chunk in (None, 1):
        assert feed(conn_with(), data, chunk=chunk) == [TextMessage("Hello")]


def test_rfc_context_takeover_incoming() -> None:
    conn = conn_with()
    data = frame(TEXT, HELLO, rsv1=True) + frame(TEXT, HELLO_AGAIN, rsv1=True)
    assert feed(conn, data) == [TextMessage("Hello"), TextMessage("Hello")]


def test_rfc_context_takeover_needed() -> None:
    # With client_no_context_takeover the second message has no history to use.
    conn = conn_with(client_no_context_takeover=True)
    conn.receive_data(frame(TEXT, HELLO, rsv1=True) + frame(TEXT, HELLO_AGAIN, rsv1=True))
    assert conn.next_event() == TextMessage("Hello")
    assert_failed(conn, 1007)


def test_rfc_stored_block() -> None:
    # Section 7.2.3.3: "0xc1 0x0b 0x00 0x05 0x00 0xfa 0xff 0x48 0x65 0x6c 0x6c 0x6f 0x00".
    conn = conn_with()
    assert feed(conn, frame(TEXT, STORED_HELLO, rsv1=True)) == [TextMessage("Hello")]


def test_rfc_two_blocks() -> None:
    assert feed(conn_with(), frame(TEXT, TWO_BLOCKS_HELLO, rsv1=True)) == [TextMessage("Hello")]


@pytest.mark.parametrize("chunk", [None, 1])
def test_rfc_bfinal_block(chunk: int | None) -> None:
    # Section 7.2.3.4: a DEFLATE block with BFINAL set, then the 0x00 octet
    # holding the header bits of the empty stored block.
    conn = conn_with()
    data = frame(TEXT, BFINAL_HELLO, rsv1=True) + frame(TEXT, HELLO, rsv1=True)
    assert feed(conn, data, chunk=chunk) == [TextMessage("Hello"), TextMessage("Hello")]


def test_bfinal_block_in_first_fragment_then_rfc_octet() -> None:
    conn = conn_with()
    data = frame(TEXT, BFINAL_HELLO[:7], fin=False, rsv1=True) + cont(BFINAL_HELLO[7:], fin=False)
    data += cont(b"") + frame(TEXT, HELLO, rsv1=True)
    assert feed(conn, data) == [TextMessage("Hello"), TextMessage("Hello")]


def test_bfinal_block_without_the_trailing_octet() -> None:
    # Lenient: a stream ended by BFINAL with nothing after it.
    conn = conn_with()
    data = frame(TEXT, BFINAL_HELLO[:7], rsv1=True)
    data += frame(TEXT, BFINAL_HELLO[:7], fin=False, rsv1=True) + cont(b"")
    assert feed(conn, data) == [TextMessage("Hello"), TextMessage("Hello")]


def test_zlib_finish_flushed_messages() -> None:
    # A client that ends every message with Z_FINISH (a BFINAL block).
    messages = [b"first " * 20, b"second " * 20, b""]
    data = b""
    for message in messages:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        data += frame(BINARY, compressor.compress(message) + compressor.flush(), rsv1=True)
    assert feed(conn_with(), data) == [BinaryMessage(m) for m in messages]


@pytest.mark.parametrize(
    "trailer",
    [
        b"\x01",  # not a stored block header
        b"\x00\x00",  # one octet too many
        b"\x00\x00\x00\xff\xff",  # a full empty stored block: the tail was not removed
        b"\x03\x00",  # a second BFINAL block
        b"\xf2\x48\xcd\xc9\xc9\x07\x00",  # more compressed data
    ],
)
@pytest.mark.parametrize("split", [False, True])
def test_data_after_the_bfinal_block_fails(trailer: bytes, split: bool) -> None:
    conn = conn_with()
    if split:
        data = frame(TEXT, BFINAL_HELLO[:7], fin=False, rsv1=True)
        data += b"".join(cont(trailer[i : i + 1], fin=False) for i in range(len(trailer)))
        data += cont(b"")
    else:
        data = frame(TEXT, BFINAL_HELLO[:7] + trailer, rsv1=True)
    conn.receive_data(data)
    assert_failed(conn, 1007)


@pytest.mark.parametrize("chunk", [None, 1])
def test_bfinal_block_then_unstripped_tail_fails_however_fragmented(chunk: int | None) -> None:
    # The four octets 0x00 0x00 0xff 0xff must be removed by the sender; left
    # in after a final block they are not the RFC's one-octet trailer.
    unstripped = BFINAL_HELLO[:7] + b"\x00\x00\xff\xff"
    for data in (
        frame(TEXT, unstripped, rsv1=True),
        frame(TEXT, unstripped, fin=False, rsv1=True) + cont(b""),
    ):
        conn = conn_with()
        assert feed(conn, data, chunk=chunk) == []
        assert conn.failure is not None
        assert conn.failure.code == 1007


def test_empty_compressed_messages() -> None:
    # RFC 7692 section 7.2.1 turns an empty message into a single 0x00 octet;
    # a client that ends it with BFINAL instead sends 0x03 0x00.
    conn = conn_with()
    data = frame(TEXT, b"\x00", rsv1=True) + frame(BINARY, b"\x03\x00", rsv1=True)
    data += frame(TEXT, HELLO, rsv1=True)
    assert feed(conn, data) == [TextMessage(""), BinaryMessage(b""), TextMessage("Hello")]


def test_compressed_message_with_no_payload_leaves_the_context_intact() -> None:
    # Not what RFC 7692 produces (that is 0x00), but it must not garble what
    # follows: with context takeover, HELLO_AGAIN refers back to HELLO.
    conn = conn_with()
    data = frame(TEXT, HELLO, rsv1=True) + frame(BINARY, b"", rsv1=True)
    data += frame(BINARY, b"", fin=False, rsv1=True) + cont(b"")
    data += frame(TEXT, HELLO_AGAIN, rsv1=True)
    assert feed(conn, data) == [
        TextMessage("Hello"),
        BinaryMessage(b""),
        BinaryMessage(b""),
        TextMessage("Hello"),
    ]


def test_compressed_message_with_empty_last_fragment() -> None:
    conn = conn_with()
    data = frame(TEXT, HELLO, fin=False, rsv1=True) + ping(b"p") + cont(b"")
    assert feed(conn, data) == [Ping(b"p"), TextMessage("Hello")]


# ----------------------------------------------------------------------
# Incoming compressed messages from a zlib client


@pytest.mark.parametrize("no_context_takeover", [False, True])
@pytest.mark.parametrize("window_bits", [9, 12, 15])
def test_client_compressed_messages(no_context_takeover: bool, window_bits: int) -> None:
    client = ClientDeflater(window_bits, no_context_takeover=no_context_takeover)
    conn = conn_with(
        client_no_context_takeover=no_context_takeover, client_max_window_bits=window_bits
    )
    messages = ["κόσμε " * 50, "κόσμε " * 50, "x", "", os.urandom(300).hex()]
    data = b"".join(frame(TEXT, client.compress(m.encode()), rsv1=True) for m in messages)
    assert feed(conn, data, chunk=7) == [TextMessage(m) for m in messages]
    assert conn.failure is None


def test_agreed_8_bit_client_window_inflates() -> None:
    conn = conn_with(client_max_window_bits=8)
    client = ClientDeflater(9)  # zlib's smallest raw window
    payload = os.urandom(400) * 3
    assert feed(conn, frame(BINARY, client.compress(payload), rsv1=True)) == [
        BinaryMessage(payload)
    ]


def test_compressed_and_plain_messages_mixed() -> None:
    client = ClientDeflater()
    conn = conn_with()
    data = (
        frame(TEXT, client.compress(b"one"), rsv1=True)
        + text("two")
        + frame(BINARY, client.compress(b"three"), rsv1=True, fin=False)
        + ping(b"!")
        + cont(b"")
        + frame(BINARY, b"four", fin=False)
        + cont(b"")
    )
    assert feed(conn, data) == [
        TextMessage("one"),
        TextMessage("two"),
        Ping(b"!"),
        BinaryMessage(b"three"),
        BinaryMessage(b"four"),
    ]


def test_compressed_invalid_utf8_fails_1007() -> None:
    conn = conn_with()
    conn.receive_data(frame(TEXT, ClientDeflater().compress(b"ok \xff"), rsv1=True))
    assert_failed(conn, 1007)


def test_compressed_invalid_utf8_fails_before_the_message_ends() -> None:
    compressed = ClientDeflater().compress(b"ok \xed\xa0\x80" + os.urandom(2000).hex().encode())
    conn = conn_with()
    half = len(compressed) // 2
    conn.receive_data(frame(TEXT, compressed[:half], fin=False, rsv1=True))
    assert_failed(conn, 1007)


@pytest.mark.parametrize("garbage", [b"\xff\xff\xff", b"\x07", b"\x00\x01\x00\x00\x00"])
def test_invalid_deflate_data_fails_1007(garbage: bytes) -> None:
    conn = conn_with()
    conn.receive_data(frame(BINARY, garbage, rsv1=True))
    assert_failed(conn, 1007)
    assert conn.failure is not None
    assert "invalid compressed data" in conn.failure.reason


def test_invalid_deflate_data_in_a_later_fragment() -> None:
    # The first fragment ends on a block boundary; 0xff then starts a block
    # of the reserved type 11.
    first = ClientDeflater().compress(b"abc") + b"\x00\x00\xff\xff"
    conn = conn_with()
    conn.receive_data(frame(BINARY, first, fin=False, rsv1=True) + cont(b"\xff", fin=False))
    assert_failed(conn, 1007)


# ----------------------------------------------------------------------
# Outgoing compressed messages, read back by a zlib client


@pytest.mark.parametrize("window_bits", [9, 10, 15])
def test_server_window_bits_respected(window_bits: int) -> None:
    # Repeats 1000 bytes apart: a compressor using a bigger window than agreed
    # would refer further back than a window_bits client can inflate.
    conn = conn_with(DeflateConfig(), server_max_window_bits=window_bits)
    payload = os.urandom(1000) * 4
    conn.send_binary(payload)
    (sent,) = sent_frames(conn)
    assert sent.rsv1
    assert server_inflate(sent.payload, window_bits) == payload


def test_server_context_takeover_read_back() -> None:
    conn = conn_with()
    client = ClientInflater()
    messages = [os.urandom(200).hex() for _ in range(3)]
    for message in messages:
        conn.send_text(message)
        conn.send_text(message)
    frames = sent_frames(conn)
    assert [client.inflate(f.payload).decode() for f in frames] == [
        m for m in messages for _ in "xx"
    ]
    # The repeats were compressed against the history.
    assert all(len(frames[i + 1].payload) < 20 for i in range(0, 6, 2))


def test_server_no_context_takeover_read_back() -> None:
    conn = conn_with(server_no_context_takeover=True)
    payload = os.urandom(300)
    conn.send_binary(payload)
    conn.send_binary(payload)
    first, second = sent_frames(conn)
    assert first.payload == second.payload
    assert server_inflate(second.payload) == payload


# ----------------------------------------------------------------------
# The codec and the configuration on their own


@pytest.mark.parametrize(
    "kwargs",
    [
        {"server_max_window_bits": 8},
        {"server_max_window_bits": 16},
        {"client_max_window_bits": 8},
        {"client_max_window_bits": 16},
    ],
)
def test_deflate_config_validation(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="window_bits"):
        DeflateConfig(**kwargs)


def test_deflate_params_response_header() -> None:
    assert DeflateParams().response_header() == "permessage-deflate"
    params = DeflateParams(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=9,
        state_server_max_window_bits=True,
        state_client_max_window_bits=True,
    )
    assert params.response_header() == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10; client_max_window_bits=9"
    )


def test_negotiate_deflate_directly() -> None:
    config = DeflateConfig(server_max_window_bits=15)
    assert negotiate_deflate([], config) is None
    assert negotiate_deflate([("other", [])], config) is None
    assert (
        negotiate_deflate(
            [("permessage-deflate", [("foo", None)]), ("permessage-deflate", [])], config
        )
        == DeflateParams()
    )


def test_decompress_limit_directly() -> None:
    deflate = codec()
    deflate.start_message()
    compressed = ClientDeflater().compress(b"z" * 100)
    with pytest.raises(MessageTooBig):
        deflate.decompress(compressed, 99, final=True)
    deflate = codec()
    deflate.start_message()
    assert deflate.decompress(compressed, 100, final=True) == b"z" * 100


def test_decompress_errors_directly() -> None:
    deflate = codec()
    deflate.start_message()
    with pytest.raises(DecompressionError):
        deflate.decompress(b"\xff", None)
    deflate = codec()
    deflate.start_message()
    assert deflate.decompress(BFINAL_HELLO[:7], None) == b"Hello"
    assert deflate.decompress(BFINAL_HELLO[7:], None) == b""
    assert deflate.decompress(b"", None, final=True) == b""
    # The next message starts a new stream.
    deflate.start_message()
    assert deflate.decompress(BFINAL_HELLO[:7], None) == b"Hello"
    with pytest.raises(DecompressionError, match="after the end"):
        deflate.decompress(b"\x05", None)


# ----------------------------------------------------------------------
# Between messages the codec keeps only the two windows' bytes


def _client_stream(bits: int) -> zlib._Compress:
    return zlib.compressobj(6, zlib.DEFLATED, -bits, 8)


def _client_message(compressor: zlib._Compress, data: bytes) -> bytes:
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def _inflate(kept: PerMessageDeflate, payload: bytes) -> bytes:
    kept.start_message()
    return kept.decompress(payload, None, final=True)


@pytest.mark.parametrize("bits", [9, 13, 15])
def test_a_client_stream_with_context_takeover_inflates_across_dropped_inflaters(
    bits: int,
) -> None:
    # The client keeps one compressor for the whole connection and refers
    # back to earlier messages; we keep no inflater between messages.
    kept = codec(None, client_max_window_bits=bits)
    client = _client_stream(bits)
    messages = [
        json.dumps(
            {"n": i, "text": "the same words again " * (i % 7), "pad": "x" * (i * 37 % 900)}
        ).encode()
        for i in range(300)
    ]
    for message in messages:
        assert _inflate(kept, _client_message(client, message)) == message
        assert kept._decompressor is None
        assert len(kept._history) <= 1 << bits
    # The client's window was full: the kept bytes are exactly its tail.
    assert kept._history == b"".join(messages)[-(1 << bits) :]


def test_a_repeated_client_message_refers_back_and_still_inflates() -> None:
    kept = codec(None, client_max_window_bits=15)
    client = _client_stream(15)
    message = json.dumps({"type": "chat.message", "text": "hello " * 40}).encode()
    first = _client_message(client, message)
    second = _client_message(client, message)
    assert len(second) < len(first) // 4  # it is a back-reference to the first
    assert _inflate(kept, first) == message
    assert _inflate(kept, second) == message


def test_a_fragmented_client_message_keeps_its_inflater_until_the_end() -> None:
    kept = codec(None, client_max_window_bits=15)
    client = _client_stream(15)
    message = b"fragmented " * 300
    payload = _client_message(client, message)
    kept.start_message()
    out = kept.decompress(payload[:50], None)
    assert kept._decompressor is not None
    out += kept.decompress(payload[50:], None, final=True)
    assert out == message and kept._decompressor is None
    again = _client_message(client, message)
    assert _inflate(kept, again) == message


def test_client_no_context_takeover_keeps_no_history() -> None:
    kept = codec(None, client_no_context_takeover=True)
    for _ in range(3):
        client = _client_stream(15)  # the client resets its context every message
        assert _inflate(kept, _client_message(client, b"abc" * 100)) == b"abc" * 100
        assert kept._history == b""


def test_a_client_stream_ended_with_a_final_block_starts_over_without_history() -> None:
    kept = codec()
    client = _client_stream(15)
    assert _inflate(kept, _client_message(client, b"first " * 50)) == b"first " * 50
    assert kept._history
    closing = zlib.compressobj(6, zlib.DEFLATED, -15)
    ended = closing.compress(b"ended " * 50) + closing.flush(zlib.Z_FINISH)
    assert _inflate(kept, ended + b"\x00") == b"ended " * 50
    assert kept._history == b""
    fresh = _client_stream(15)
    assert _inflate(kept, _client_message(fresh, b"new " * 50)) == b"new " * 50


def test_an_empty_compressed_message_leaves_no_inflater() -> None:
    kept = codec()
    kept.start_message()
    assert kept.decompress(b"", None, final=True) == b""
    assert kept._decompressor is None


def _client_view(bits: int) -> zlib._Decompress:
    """What a browser keeps: one inflater for all of the server's messages."""
    return zlib.decompressobj(-bits)


def _received(inflater: zlib._Decompress, payload: bytes) -> bytes:
    return inflater.decompress(payload + b"\x00\x00\xff\xff")


@pytest.mark.parametrize("hold", [False, True])
def test_our_messages_refer_back_across_compressors_and_the_client_inflates_them(
    hold: bool,
) -> None:
    config = DeflateConfig(min_size=0, hold_compressor=hold)
    kept = PerMessageDeflate(DeflateParams(server_max_window_bits=13), config)
    client = _client_view(13)
    message = json.dumps({"type": "presence", "users": [f"user{i}" for i in range(40)]}).encode()
    first = kept.compress(message)
    second = kept.compress(message)
    assert len(second) < len(first) // 4  # the second refers to the first
    assert _received(client, first) == message
    assert _received(client, second) == message
    if hold:
        assert kept._compressor is not None and kept._sent == b""
    else:
        assert kept._compressor is None and kept._sent == message * 2


def test_what_we_keep_of_our_window_is_bounded_by_it() -> None:
    kept = PerMessageDeflate(DeflateParams(server_max_window_bits=9), DeflateConfig(min_size=0))
    client = _client_view(9)
    sent = b""
    for i in range(200):
        message = f"message {i} ".encode() * (i % 13 + 1)
        assert _received(client, kept.compress(message)) == message
        sent += message
        assert len(kept._sent) <= 512
    assert kept._sent == sent[-512:]


def test_server_no_context_takeover_keeps_nothing() -> None:
    kept = PerMessageDeflate(
        DeflateParams(server_no_context_takeover=True), DeflateConfig(min_size=0)
    )
    message = b"repeat me " * 30
    first, second = kept.compress(message), kept.compress(message)
    assert first == second  # no reference to the first message
    assert kept._compressor is None and kept._sent == b""
    assert zlib.decompressobj(-15).decompress(second + b"\x00\x00\xff\xff") == message


def test_every_config_field_reaches_the_codec() -> None:
    message = json.dumps({"payload": "abcdefgh" * 64}).encode()
    stored = PerMessageDeflate(DeflateParams(), DeflateConfig(compression_level=0, min_size=1))
    packed = PerMessageDeflate(DeflateParams(), DeflateConfig(compression_level=9, min_size=1))
    assert len(stored.compress(message)) > len(message)  # level 0: stored blocks
    assert len(packed.compress(message)) < len(message) // 4
    assert stored.min_size == 1
    small_memory = PerMessageDeflate(
        DeflateParams(), DeflateConfig(memory_level=1, hold_compressor=True, min_size=0)
    )
    assert (
        zlib.decompressobj(-15).decompress(small_memory.compress(message) + b"\x00\x00\xff\xff")
        == message
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"compression_level": 10}, "compression_level must be between -1 and 9"),
        ({"memory_level": 0}, "memory_level must be between 1 and 9"),
        ({"min_size": -1}, "min_size must be >= 0"),
    ],
)
def test_config_rejects_values_zlib_would_refuse(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeflateConfig(**kwargs)


def test_the_defaults_are_the_documented_memory_choice() -> None:
    config = DeflateConfig()
    assert (config.server_max_window_bits, config.client_max_window_bits) == (13, 13)
    assert (config.compression_level, config.memory_level, config.hold_compressor) == (6, 2, False)
    # A browser offers client_max_window_bits: it is asked for 13 bits too.
    params = negotiate_deflate([("permessage-deflate", [("client_max_window_bits", None)])], config)
    assert params is not None
    assert params.response_header() == (
        "permessage-deflate; server_max_window_bits=13; client_max_window_bits=13"
    )
