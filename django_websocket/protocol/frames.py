"""Frame-level constants and rules of RFC 6455 section 5, and server-side frame encoding.

Everything the package knows about opcodes, close codes and the frame header
layout is defined here and nowhere else.

::

      0                   1                   2                   3
      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
     +-+-+-+-+-------+-+-------------+-------------------------------+
     |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
     |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
     |N|V|V|V|       |S|             |   (if payload len==126/127)   |
     | |1|2|3|       |K|             |                               |
     +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
"""

from __future__ import annotations

import enum
import struct

__all__ = [
    "CONTROL_OPCODES",
    "DATA_OPCODES",
    "MAX_CONTROL_PAYLOAD",
    "CloseCode",
    "Opcode",
    "encode_close_payload",
    "encode_frame",
    "is_valid_close_code",
]

FIN = 0x80
RSV1 = 0x40
RSV2 = 0x20
RSV3 = 0x10
OPCODE_MASK = 0x0F
MASK_BIT = 0x80
LENGTH_MASK = 0x7F

#: "All control frames MUST have a payload length of 125 bytes or less"
#: (RFC 6455 section 5.5).
MAX_CONTROL_PAYLOAD = 125

_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack


class Opcode(enum.IntEnum):
    """Frame opcodes defined by RFC 6455 section 5.2; every other value is reserved."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


DATA_OPCODES = frozenset({Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY})
CONTROL_OPCODES = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})
KNOWN_OPCODES = DATA_OPCODES | CONTROL_OPCODES


class CloseCode(enum.IntEnum):
    """Close status codes (RFC 6455 section 7.4.1 and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame on the wire.

    Valid: 1000-1003 and 1007-1014 (defined or registered with IANA), and
    3000-4999 (libraries, frameworks and applications).  1004 is reserved,
    and 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close
    control frame by an endpoint" (RFC 6455 section 7.4.1); everything else
    is unassigned or out of range.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """Serialize one server frame.

    "A server MUST NOT mask any frames that it sends to the client"
    (RFC 6455 section 5.1), so the mask bit is always clear.  Lengths use the
    shortest of the three encodings, as section 5.2 requires ("the minimal
    number of bytes MUST be used to encode the length").
    """
    first = opcode | (FIN if fin else 0) | (RSV1 if rsv1 else 0)
    length = len(payload)
    if length < 126:
        header = bytes((first, length))
    elif length < 0x10000:
        header = _PACK_16(first, 126, length)
    else:
        header = _PACK_64(first, 127, length)
    return header + payload


def encode_close_payload(code: int | None, reason: str = "") -> bytes:
    """Build a close frame's payload: a 2-byte status code then a UTF-8 reason.

    ``code=None`` gives the empty payload (no status code, so no reason
    either).  Raises ``ValueError`` for a code that must not be sent or a
    payload over the 125-byte control-frame limit.
    """
    if code is None:
        if reason:
            raise ValueError("a close reason needs a status code")
        return b""
    if not is_valid_close_code(code):
        raise ValueError(f"close code {code} may not be sent on the wire")
    payload = code.to_bytes(2, "big") + reason.encode("utf-8")
    if len(payload) > MAX_CONTROL_PAYLOAD:
        raise ValueError("close reason is longer than 123 bytes once encoded as UTF-8")
    return payload
