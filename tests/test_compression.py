"""permessage-deflate end to end: a browser offer, the shipped defaults, a view's DeflateConfig."""

from __future__ import annotations

import json
import struct
import zlib

from servers import ServerProcess, client_frame, open_ws

BROWSER_OFFER = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
TAIL = b"\x00\x00\xff\xff"


def compressed_frame(compressor: zlib._Compress, data: bytes) -> bytes:
    body = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    frame = bytearray(client_frame(0x1, body[:-4]))
    frame[0] |= 0x40  # RSV1: a compressed message (RFC 7692 section 6)
    return bytes(frame)


def read_message(reader) -> tuple[bool, bytes]:
    """One server frame: (whether RSV1 was set, payload)."""
    reader._fill(1)
    rsv1 = bool(reader.buffer[0] & 0x40)
    opcode, fin, payload = reader.frame()
    assert (opcode, fin) == (0x1, True)
    return rsv1, payload


def event(i: int) -> bytes:
    return json.dumps(
        {"type": "chat.message", "id": i, "room": "general", "text": "see you at the standup " * 30}
    ).encode()


def test_a_browser_offer_gets_the_memory_defaults_and_context_takeover_works(
    server: ServerProcess,
) -> None:
    sock, reader = open_ws(server.port, "/echo/", BROWSER_OFFER)
    with sock:
        client = zlib.compressobj(6, zlib.DEFLATED, -13)  # the window we were asked for
        inflater = zlib.decompressobj(-13)  # the browser's single inflater
        sizes = []
        for i in range(5):
            sock.sendall(compressed_frame(client, event(i)))
            rsv1, payload = read_message(reader)
            assert rsv1
            assert inflater.decompress(payload + TAIL) == event(i)
            sizes.append(len(payload))
        # Later echoes refer back to earlier ones, although the server made a
        # new compressor for each: they are a fraction of the first.
        assert max(sizes[1:]) < sizes[0] // 2
        sock.sendall(client_frame(0x8, struct.pack("!H", 1000)))


def test_the_agreed_parameters_are_the_documented_defaults(server: ServerProcess) -> None:
    from servers import raw_connect

    sock, head, _ = raw_connect(server.port, "/echo/", BROWSER_OFFER)
    with sock:
        assert head.startswith(b"HTTP/1.1 101")
        assert (
            b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=13; "
            b"client_max_window_bits=13\r\n" in head + b"\r\n"
        )


def test_a_views_deflate_config_reaches_the_codec(server: ServerProcess) -> None:
    # min_size=4096: a 700-byte message goes back uncompressed, though agreed.
    sock, reader = open_ws(server.port, "/echo-uncompressed-under-4k/", BROWSER_OFFER)
    with sock:
        client = zlib.compressobj(6, zlib.DEFLATED, -13)
        sock.sendall(compressed_frame(client, event(1)))
        rsv1, payload = read_message(reader)
        assert not rsv1 and payload == event(1)
        big = event(2) * 8
        assert len(big) > 4096
        sock.sendall(compressed_frame(client, big))
        rsv1, payload = read_message(reader)
        assert rsv1
        assert zlib.decompressobj(-13).decompress(payload + TAIL) == big
