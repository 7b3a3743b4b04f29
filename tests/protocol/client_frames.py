"""Test-side WebSocket client: builds masked client frames, parses server frames.

Written from RFC 6455 section 5.2 alone, without the package's encoder, so
that the tests do not share a bug with the code under test.  The client-side
permessage-deflate compressor is plain :mod:`zlib` following RFC 7692
section 7.2.1.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from django_websocket.protocol import ServerConnection
from django_websocket.protocol.events import Event

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

#: A masking key whose four bytes differ, so a wrong key rotation shows up.
KEY = b"\x5a\xc3\x17\x8e"

#: RFC 7692 section 7.2.1: the sender strips these four octets.
TAIL = b"\x00\x00\xff\xff"


def mask(payload: bytes, key: bytes = KEY) -> bytes:
    """XOR ``payload`` with the repeated 4-byte ``key`` (RFC 6455 section 5.3)."""
    size = len(payload)
    if not size:
        return b""
    stream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")


def header(
    opcode: int,
    length: int,
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    masked: bool = True,
    width: int | None = None,
) -> bytes:
    """The first 2, 4 or 10 bytes of a frame header: everything before the masking key.

    ``width`` forces the length encoding (7, 16 or 64 bits); by default the
    minimal one is used.
    """
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0)
    b0 |= 0x10 if rsv3 else 0
    mask_bit = 0x80 if masked else 0
    if width is None:
        width = 7 if length <= 125 else 16 if length <= 0xFFFF else 64
    if width == 7:
        return bytes((b0, mask_bit | length))
    if width == 16:
        return bytes((b0, mask_bit | 126)) + length.to_bytes(2, "big")
    return bytes((b0, mask_bit | 127)) + length.to_bytes(8, "big")


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    masked: bool = True,
    key: bytes = KEY,
    width: int | None = None,
) -> bytes:
    """A complete client frame, masked with ``key`` unless ``masked`` is false."""
    head = header(
        opcode,
        len(payload),
        fin=fin,
        rsv1=rsv1,
        rsv2=rsv2,
        rsv3=rsv3,
        masked=masked,
        width=width,
    )
    if not masked:
        return head + payload
    return head + key + mask(payload, key)


def text(data: str, **kwargs: Any) -> bytes:
    """A text frame carrying ``data`` as UTF-8."""
    return frame(TEXT, data.encode("utf-8"), **kwargs)


def binary(data: bytes, **kwargs: Any) -> bytes:
    """A binary frame."""
    return frame(BINARY, data, **kwargs)


def cont(data: bytes, **kwargs: Any) -> bytes:
    """A continuation frame."""
    return frame(CONT, data, **kwargs)


def ping(data: bytes = b"", **kwargs: Any) -> bytes:
    """A ping frame."""
    return frame(PING, data, **kwargs)


def pong(data: bytes = b"", **kwargs: Any) -> bytes:
    """A pong frame."""
    return frame(PONG, data, **kwargs)


def close_payload(code: int | None = None, reason: bytes = b"") -> bytes:
    """A close frame's payload: 2-byte code and raw reason bytes (may be invalid UTF-8)."""
    if code is None:
        return reason
    return code.to_bytes(2, "big") + reason


def close(code: int | None = None, reason: bytes = b"", **kwargs: Any) -> bytes:
    """A close frame."""
    return frame(CLOSE, close_payload(code, reason), **kwargs)


# ----------------------------------------------------------------------
# Server frames


@dataclass(frozen=True)
class ServerFrame:
    """One frame the server sent."""

    fin: bool
    rsv1: bool
    opcode: int
    payload: bytes
    header: bytes

    @property
    def close_code(self) -> int | None:
        """The status code of a close frame, ``None`` if it carries none."""
        assert self.opcode == CLOSE
        if not self.payload:
            return None
        return int.from_bytes(self.payload[:2], "big")

    @property
    def close_reason(self) -> str:
        """The reason of a close frame, decoded."""
        assert self.opcode == CLOSE
        return self.payload[2:].decode("utf-8")


def parse_server_frames(data: bytes) -> list[ServerFrame]:
    """Split server output into frames, checking what RFC 6455 section 5 demands of it.

    Server frames must not be masked (section 5.1), RSV2/RSV3 are never set,
    lengths use the minimal encoding (section 5.2) and the output never stops
    in the middle of a frame.
    """
    frames = []
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 2, "truncated server frame header"
        b0, b1 = data[pos], data[pos + 1]
        assert not b1 & 0x80, "server frames must not be masked"
        assert not b0 & 0x30, "RSV2/RSV3 set in a server frame"
        length = b1 & 0x7F
        size = 2
        if length == 126:
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            size = 4
            assert length > 125, "non-minimal 16-bit length"
        elif length == 127:
            length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            size = 10
            assert length > 0xFFFF, "non-minimal 64-bit length"
        assert len(data) - pos - size >= length, "truncated server frame payload"
        opcode = b0 & 0x0F
        if opcode >= 8:
            assert b0 & 0x80, "fragmented control frame from the server"
            assert length <= 125, "control frame over 125 bytes from the server"
        frames.append(
            ServerFrame(
                fin=bool(b0 & 0x80),
                rsv1=bool(b0 & 0x40),
                opcode=opcode,
                payload=data[pos + size : pos + size + length],
                header=data[pos : pos + size],
            )
        )
        pos += size + length
    return frames


def sent_frames(conn: ServerConnection) -> list[ServerFrame]:
    """Take the connection's pending output and parse it."""
    return parse_server_frames(conn.data_to_send())


def drain(conn: ServerConnection) -> list[Event]:
    """Every event, one ``next_event`` call at a time, until ``None``."""
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events


def feed(conn: ServerConnection, data: bytes, chunk: int | None = None) -> list[Event]:
    """Feed ``data`` (in pieces of ``chunk`` bytes if given) and return the events."""
    if chunk is None:
        conn.receive_data(data)
    else:
        for start in range(0, len(data), chunk):
            conn.receive_data(data[start : start + chunk])
    return drain(conn)


# ----------------------------------------------------------------------
# Client-side permessage-deflate (RFC 7692 section 7.2.1)


class ClientDeflater:
    """Compress messages the way an RFC 7692 client does, with plain zlib."""

    def __init__(self, window_bits: int = 15, *, no_context_takeover: bool = False) -> None:
        self.window_bits = window_bits
        self.no_context_takeover = no_context_takeover
        self._compressor = self._new()

    def _new(self) -> zlib._Compress:
        return zlib.compressobj(6, zlib.DEFLATED, -self.window_bits)

    def compress(self, data: bytes) -> bytes:
        """One message's compressed payload, with the 4-octet tail removed."""
        if self.no_context_takeover:
            self._compressor = self._new()
        out = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(TAIL)
        return out[:-4]


def server_inflate(payload: bytes, window_bits: int = 15) -> bytes:
    """Decompress one server message with a fresh context (RFC 7692 section 7.2.2)."""
    return zlib.decompressobj(-window_bits).decompress(payload + TAIL)


class ClientInflater:
    """Decompress server messages with context takeover, as a client does."""

    def __init__(self, window_bits: int = 15) -> None:
        self._decompressor = zlib.decompressobj(-window_bits)

    def inflate(self, payload: bytes) -> bytes:
        return self._decompressor.decompress(payload + TAIL)
