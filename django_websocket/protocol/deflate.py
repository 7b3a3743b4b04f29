"""permessage-deflate (RFC 7692): negotiation and the per-message codec.

Compression itself is zlib's; this module only decides parameters and keeps
each direction's compression context as the negotiated parameters say.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "EXTENSION_NAME",
    "DecompressionError",
    "DeflateConfig",
    "DeflateParams",
    "MessageTooBig",
    "PerMessageDeflate",
    "negotiate_deflate",
]

EXTENSION_NAME = "permessage-deflate"

#: RFC 7692 section 7.2.1: the compressor's output ends with an empty
#: stored block, whose last four octets the sender removes and the receiver
#: appends again before inflating.
_TAIL = b"\x00\x00\xff\xff"

_NO_VALUE = None


@dataclass(frozen=True, slots=True)
class DeflateConfig:
    """Server policy for permessage-deflate.

    ``server_max_window_bits`` caps the window we compress with;
    ``client_max_window_bits``, when set, asks clients that support the
    parameter (browsers do) to compress with at most that window.  The two
    ``*_no_context_takeover`` flags ask for a context reset after every
    message even when the client did not.  ``compression_level`` and
    ``memory_level`` are zlib's.  ``min_size`` is not negotiated: outgoing
    messages shorter than it are sent uncompressed, which RFC 7692 allows at
    any time, because deflate cannot shrink them.

    The defaults are chosen for memory per connection.  Between messages a
    connection keeps no zlib state, only the last ``2**window_bits`` bytes
    sent and received (a few hundred bytes for a connection that exchanged a
    few small messages, at most 8 KiB each way with 13-bit windows); each
    message gets a compressor (and an inflater) primed with them.  On typical
    JSON events a 13-bit window compresses to ~92% of the ratio of zlib's
    defaults (window 15, memLevel 8), which cost ~260 KiB of compressor and
    ~40 KiB of inflater per connection if held (see BENCHMARKS.md).
    ``hold_compressor=True`` keeps each connection's compressor between
    messages instead: ~13 us less CPU per compressed message, and the
    compressor's memory (zlib: ``2**(window_bits + 2) + 2**(memory_level +
    9)`` bytes, plus ~6 KiB) held for as long as the connection lives.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 13
    client_max_window_bits: int | None = 13
    compression_level: int = 6
    memory_level: int = 2
    min_size: int = 128
    hold_compressor: bool = False

    def __post_init__(self) -> None:
        if not 9 <= self.server_max_window_bits <= 15:
            raise ValueError("server_max_window_bits must be between 9 and 15")
        if self.client_max_window_bits is not None and not (9 <= self.client_max_window_bits <= 15):
            raise ValueError("client_max_window_bits must be between 9 and 15")
        if not -1 <= self.compression_level <= 9:
            raise ValueError("compression_level must be between -1 and 9")
        if not 1 <= self.memory_level <= 9:
            raise ValueError("memory_level must be between 1 and 9")
        if self.min_size < 0:
            raise ValueError("min_size must be >= 0")


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """Parameters agreed with one client; ``response_header()`` is what we answer."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    #: Whether each window-bits value must be stated in the response.
    state_server_max_window_bits: bool = False
    state_client_max_window_bits: bool = False

    def response_header(self) -> str:
        """The ``Sec-WebSocket-Extensions`` value that accepts this offer."""
        parts = [EXTENSION_NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.state_server_max_window_bits:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.state_client_max_window_bits:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)


def _window_bits(value: str | None) -> int | None:
    """Parse a window-bits value; ``None`` when it is not 8 to 15 in plain digits.

    RFC 7692 section 7.1.2.1: the value "MUST conform to the ABNF below",
    ``%x38-39 / "1" %x30-35`` (8 to 15, no leading zero).
    """
    if value is None or not value.isdigit() or value.startswith("0"):
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None


def _accept_offer(
    params: Sequence[tuple[str, str | None]], config: DeflateConfig
) -> DeflateParams | None:
    """Accept one client offer, or return ``None`` to decline it."""
    seen: set[str] = set()
    server_nct = config.server_no_context_takeover
    client_nct = config.client_no_context_takeover
    server_bits = config.server_max_window_bits
    state_server_bits = server_bits < 15
    client_bits = 15
    state_client_bits = False
    for name, value in params:
        # "An extension negotiation offer MUST NOT include [a parameter]
        # more than once" and unknown parameters make the offer invalid
        # (RFC 7692 section 7); a server declines an invalid offer.
        if name in seen:
            return None
        seen.add(name)
        if name == "server_no_context_takeover":
            if value is not _NO_VALUE:
                return None
            server_nct = True
        elif name == "client_no_context_takeover":
            if value is not _NO_VALUE:
                return None
            client_nct = True
        elif name == "server_max_window_bits":
            offered = _window_bits(value)
            if offered is None:
                return None
            # zlib cannot produce a raw deflate stream with an 8-bit window
            # (it silently uses 9), and the response "MUST NOT" carry a
            # value larger than the offer, so an offer of 8 is declined.
            if offered < 9:
                return None
            server_bits = min(server_bits, offered)
            state_server_bits = True
        elif name == "client_max_window_bits":
            if value is not _NO_VALUE and _window_bits(value) is None:
                return None
            # The client supports the parameter; a value is only a hint.
            if config.client_max_window_bits is not None:
                client_bits = config.client_max_window_bits
                hint = _window_bits(value)
                if hint is not None:
                    # "with a value equal to or smaller than the received
                    # value" (RFC 7692 section 7.1.2.2), even for 8.
                    client_bits = min(client_bits, hint)
                state_client_bits = True
        else:
            return None
    return DeflateParams(
        server_no_context_takeover=server_nct,
        client_no_context_takeover=client_nct,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
        state_server_max_window_bits=state_server_bits,
        state_client_max_window_bits=state_client_bits,
    )


def negotiate_deflate(
    offers: Sequence[tuple[str, Sequence[tuple[str, str | None]]]], config: DeflateConfig
) -> DeflateParams | None:
    """Pick the first acceptable permessage-deflate offer from parsed extension offers.

    ``offers`` is the parsed ``Sec-WebSocket-Extensions`` header, in the
    client's order of preference.  Offers for other extensions, and invalid
    permessage-deflate offers, are skipped.
    """
    for name, params in offers:
        if name != EXTENSION_NAME:
            continue
        accepted = _accept_offer(params, config)
        if accepted is not None:
            return accepted
    return None


def _window_tail(kept: bytes, new: bytes, bits: int) -> bytes:
    """``kept + new``, cut to its last ``2**bits`` bytes: what an LZ77 window holds."""
    joined = kept + new
    window = 1 << bits
    return joined[-window:] if len(joined) > window else joined


class MessageTooBig(Exception):
    """The decompressed message exceeds the size limit."""


class DecompressionError(Exception):
    """The compressed payload is not a valid deflate stream."""


class PerMessageDeflate:
    """Compression state for one connection, in both directions."""

    __slots__ = (
        "_compressor",
        "_config",
        "_decompressor",
        "_fed",
        "_history",
        "_sent",
        "_trailer",
        "params",
    )

    def __init__(self, params: DeflateParams, config: DeflateConfig | None = None) -> None:
        self.params = params
        self._config = config if config is not None else DeflateConfig()
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        # The client's window: the last 2**client_max_window_bits bytes it
        # sent, uncompressed, in its current deflate stream.  Between two
        # messages the inflater is dropped and this is all that is kept: a
        # new inflater given it as its dictionary resolves the client's
        # back-references exactly as the old one would (RFC 7692 section
        # 7.2.2 only requires "the same LZ77 sliding window"), and it costs
        # a few hundred bytes for a connection that exchanged a few small
        # messages, instead of zlib's window and state (~40 KiB).
        self._history = b""
        # Likewise our own window: what we sent, for a compressor made anew
        # for each message unless ``DeflateConfig.hold_compressor``.
        self._sent = b""
        # What followed the end of the client's deflate stream in this message.
        self._trailer = b""
        # Whether the current incoming message carried any compressed bytes.
        self._fed = False

    @property
    def min_size(self) -> int:
        """Outgoing messages shorter than this are sent uncompressed."""
        return self._config.min_size

    def compress(self, data: bytes) -> bytes:
        """Compress one whole outgoing message (RFC 7692 section 7.2.1)."""
        config, params = self._config, self.params
        compressor = self._compressor
        takeover = not params.server_no_context_takeover
        if compressor is None or not takeover:
            bits = params.server_max_window_bits
            if self._sent and takeover:
                # Our earlier messages are in the client's window: a new
                # compressor that has them as its dictionary may refer to them.
                compressor = zlib.compressobj(
                    config.compression_level,
                    zlib.DEFLATED,
                    -bits,
                    config.memory_level,
                    zlib.Z_DEFAULT_STRATEGY,
                    self._sent,
                )
            else:
                compressor = zlib.compressobj(
                    config.compression_level, zlib.DEFLATED, -bits, config.memory_level
                )
        out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if takeover:
            if config.hold_compressor:
                self._compressor = compressor
            else:
                self._sent = _window_tail(self._sent, data, params.server_max_window_bits)
        # "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end."
        return out[:-4] if out.endswith(_TAIL) else out

    def start_message(self) -> None:
        """Prepare to inflate a new incoming compressed message."""
        self._fed = False
        bits = self.params.client_max_window_bits
        if self._history:
            self._decompressor = zlib.decompressobj(-bits, zdict=self._history)
        else:
            self._decompressor = zlib.decompressobj(-bits)

    def decompress(self, data: bytes, limit: int | None, *, final: bool = False) -> bytes:
        """Inflate part of the current message.

        ``limit`` is how many more decompressed bytes the message may grow
        by (``None`` for no limit).  The inflater is never asked for more
        than ``limit + 1`` bytes, so a decompression bomb costs at most the
        limit in memory before :class:`MessageTooBig` is raised.  With
        ``final=True`` the stripped tail is appended back, as RFC 7692
        section 7.2.2 requires, before inflating.
        """
        decompressor = self._decompressor
        if data:
            self._fed = True
        elif final and not self._fed:
            # A compressed message with no payload at all.  RFC 7692 encodes
            # the empty message as a single 0x00 (section 7.2.3.6), so this is
            # sloppy rather than hostile; feeding the tail alone would leave
            # the inflater inside a stored block and garble later messages,
            # so it is taken as an empty message and the context is left alone.
            self._decompressor = None
            return b""
        if final:
            data = data + _TAIL
        if decompressor is None:
            # The stream already ended inside this message (see below).
            self._trailer += data
            self._check_trailer(final)
            return b""
        try:
            if limit is None:
                out = decompressor.decompress(data)
            else:
                out = decompressor.decompress(data, limit + 1)
                if len(out) > limit:
                    raise MessageTooBig
        except zlib.error as exc:
            raise DecompressionError(str(exc)) from None
        if decompressor.eof:
            # The client ended the deflate stream with a final block; only
            # the octet checked below may follow, and the next message needs
            # a new stream, with nothing before it.
            self._decompressor = None
            self._history = b""
            self._trailer = decompressor.unused_data
            self._check_trailer(final)
            return out
        if out and not self.params.client_no_context_takeover:
            self._history = _window_tail(self._history, out, self.params.client_max_window_bits)
        if final:
            self._decompressor = None  # its window lives on in _history
        return out

    def _check_trailer(self, final: bool) -> None:
        """Allow only an empty stored block's first octet after the final block.

        RFC 7692 section 7.2.3.4: a sender that flushes with a "BFINAL" block
        follows it with one 0x00 octet, "the header bits with "BFINAL" set to
        0 and "BTYPE" set to 00", whose other four octets it removed and the
        receiver appends.  Anything else after the final block is invalid.
        """
        client_bytes = self._trailer[:-4] if final else self._trailer
        if client_bytes not in (b"", b"\x00"):
            raise DecompressionError("data after the end of the deflate stream")
