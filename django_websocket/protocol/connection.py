"""The server side of an RFC 6455 connection, Sans-I/O.

Bytes from the peer go in through :meth:`ServerConnection.receive_data`;
events come out one at a time through :meth:`ServerConnection.next_event`;
bytes for the peer come out of :meth:`ServerConnection.data_to_send`.  The
object owns no socket, never blocks and never raises because of what the
peer sent: peer misbehaviour *fails the connection*, that is, it queues the
close frame with the RFC's status code and records the reason in
:attr:`ServerConnection.failure`.

Ordering.  Events are delivered in the order their frames arrived.  A close
frame from the peer, or a protocol violation, is a *terminal* point in that
order: everything before it is delivered first, and only when the layer
above asks for the next event past them is the close echoed (or the failure's
close frame queued).  The layer above can therefore still answer messages
that arrived before the close or the bad frame, in the same TCP segment.

Fail fast.  Data frame payloads are processed as their bytes arrive, not
when the frame is complete: a message over the size limit fails on the frame
header, and invalid UTF-8 fails as soon as the bytes that make it invalid
arrive, even in the middle of a frame.
"""

from __future__ import annotations

import codecs
import enum
from collections import deque
from dataclasses import dataclass

from .deflate import DecompressionError, MessageTooBig, PerMessageDeflate
from .events import BinaryMessage, CloseReceived, Event, Ping, Pong, TextMessage
from .frames import (
    FIN,
    KNOWN_OPCODES,
    LENGTH_MASK,
    MASK_BIT,
    MAX_CONTROL_PAYLOAD,
    OPCODE_MASK,
    RSV1,
    CloseCode,
    Opcode,
    encode_close_payload,
    encode_frame,
    is_valid_close_code,
)
from .mask import apply_mask

__all__ = ["Failure", "InvalidState", "ServerConnection", "State"]

_TEXT = Opcode.TEXT.value
_BINARY = Opcode.BINARY.value
_CONT = Opcode.CONTINUATION.value
_CLOSE = Opcode.CLOSE.value
_PING = Opcode.PING.value
_PONG = Opcode.PONG.value
_RSV_ALL = 0x70
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")
_MESSAGE_TYPES = (TextMessage, BinaryMessage)
#: How many pieces of one message are kept as separate objects before they are
#: coalesced into one growing buffer: a message then costs memory in
#: proportion to its bytes, not to the number of frames it was sent in.
_MAX_PARTS = 16


class State(enum.Enum):
    """Where the closing handshake stands.

    ``OPEN``: messages flow both ways.  ``CLOSING``: we sent a close frame
    and wait for the peer's.  ``CLOSED``: both close frames were exchanged,
    the connection failed, or the peer's end of the stream was reached; the
    transport should be closed.
    """

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# Module globals: reading them is several times cheaper than ``State.OPEN``,
# and the states are checked a few times per message.
_OPEN = State.OPEN
_CLOSING = State.CLOSING
_CLOSED = State.CLOSED


class InvalidState(RuntimeError):
    """Raised when the layer above sends after the connection stopped accepting data."""


@dataclass(frozen=True, slots=True)
class Failure:
    """Why the connection was failed: the close code sent and a description for logs."""

    code: int
    reason: str


class _Terminal:
    """A close frame or a violation waiting for the events before it to be delivered."""

    __slots__ = ("close", "failure")

    def __init__(self, close: CloseReceived | None, failure: Failure | None) -> None:
        self.close = close
        self.failure = failure


class ServerConnection:
    """State of one server-side WebSocket connection after the opening handshake.

    ``max_message_size`` bounds a message's size (after decompression) in
    bytes; ``None`` disables the bound.  ``deflate`` is the negotiated
    permessage-deflate codec, or ``None``.  With ``control_events=False``,
    pings and pongs are handled (a pong is queued, :attr:`last_pong` is
    recorded) but produce no :class:`Ping` or :class:`Pong` event, so that a
    layer which never consumes them does not accumulate them.
    """

    __slots__ = (
        "_buffer",
        "_control_events",
        "_decoder",
        "_deflate",
        "_events",
        "_frame_fin",
        "_frame_mask",
        "_frame_offset",
        "_frame_remaining",
        "_in_payload",
        "_msg_buffer",
        "_msg_compressed",
        "_msg_opcode",
        "_msg_parts",
        "_msg_size",
        "_out",
        "_terminal",
        "close_received",
        "close_sent",
        "eof_received",
        "failure",
        "last_pong",
        "max_message_size",
        "state",
    )

    def __init__(
        self,
        *,
        max_message_size: int | None = 1 << 20,
        deflate: PerMessageDeflate | None = None,
        control_events: bool = True,
    ) -> None:
        if max_message_size is not None and max_message_size < 0:
            raise ValueError("max_message_size must be None or >= 0")
        self.max_message_size = max_message_size
        self._deflate = deflate
        self._control_events = control_events
        #: Where the closing handshake stands.
        self.state = _OPEN
        #: Set when the connection was failed (by the peer's misbehaviour or :meth:`fail`).
        self.failure: Failure | None = None
        #: The peer's close frame, once it has been delivered as an event.
        self.close_received: CloseReceived | None = None
        #: The code and reason of the close frame we sent, once we sent one.
        self.close_sent: tuple[int | None, str] | None = None
        #: Whether the peer's end of stream was reported by ``receive_data(b"")``.
        self.eof_received = False
        #: Payload of the latest pong received, for matching it to our ping.
        #: "A Pong frame sent in response to a Ping frame must have identical
        #: Application data", and a peer may answer only the latest ping
        #: (section 5.5.3), so the latest pong is the one that matters.
        self.last_pong: bytes | None = None
        self._buffer = b""
        self._events: deque[Event] = deque()
        self._out: list[bytes] = []
        self._terminal: _Terminal | None = None
        # The data frame whose payload is being received.
        self._in_payload = False
        self._frame_remaining = 0
        self._frame_mask = b""
        self._frame_offset = 0
        self._frame_fin = False
        # The data message being reassembled (_msg_opcode 0: none).
        self._msg_opcode = 0
        self._msg_compressed = False
        self._msg_size = 0
        self._msg_parts: list[bytes] | list[str] = []
        # Past _MAX_PARTS pieces, the message grows in one buffer instead
        # (a text message's UTF-8 bytes, decoded when complete).
        self._msg_buffer: bytearray | None = None
        self._decoder: codecs.IncrementalDecoder | None = None

    # ------------------------------------------------------------------
    # Input

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the peer; ``b""`` means the peer closed its end."""
        if not data:
            self._receive_eof()
            return
        if self._terminal is not None or self.state is _CLOSED:
            # "If an endpoint receives a Close frame and ... it MUST send a
            # Close frame in response ... " and nothing may follow a close
            # frame; after a violation, the RFC says "the endpoint MUST NOT
            # continue to attempt to process data (including a responding
            # Close frame) from the remote endpoint" (section 7.1.7).
            return
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        try:
            self._parse(data)
        except MemoryError:  # pragma: no cover - depends on the machine
            self._fail_pending(CloseCode.MESSAGE_TOO_BIG, "out of memory")

    def _receive_eof(self) -> None:
        self.eof_received = True
        self._buffer = b""
        if self.state is not _CLOSED:
            self.state = _CLOSED
        if self._terminal is not None and self._terminal.failure is not None:
            # Record the violation even though its close frame can no longer be sent.
            self.failure = self._terminal.failure
            self._terminal = None

    def _parse(self, data: bytes) -> None:
        """Consume as much of ``data`` as forms frames; keep an incomplete header."""
        pos = 0
        end = len(data)
        view: memoryview | None = None  # made on first use: most frames never need it
        max_size = self.max_message_size
        events = self._events
        while pos < end:
            if self._in_payload:
                take = min(self._frame_remaining, end - pos)
                offset = self._frame_offset & 3
                mask = self._frame_mask
                if offset:
                    mask = mask[offset:] + mask[:offset]
                if view is None:
                    view = memoryview(data)
                chunk = apply_mask(view[pos : pos + take], mask)
                pos += take
                self._frame_offset += take
                self._frame_remaining -= take
                if not self._payload(chunk, False):
                    return
                if self._frame_remaining == 0:
                    self._in_payload = False
                    if self._frame_fin and not self._payload(b"", True):
                        return
                continue

            available = end - pos
            if available < 2:
                break
            b0 = data[pos]
            b1 = data[pos + 1]
            opcode = b0 & OPCODE_MASK
            # Check everything the first two bytes can tell before waiting
            # for more: the connection fails as early as possible.
            problem = self._check_header(b0, b1, opcode)
            if problem is not None:
                self._fail_pending(*problem)
                return
            length = b1 & LENGTH_MASK
            header_size = 6
            if length == 126:
                header_size = 8
                if available < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
            elif length == 127:
                header_size = 14
                if available < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                # "the most significant bit MUST be 0" (section 5.2).
                if length >> 63:
                    self._fail_pending(
                        CloseCode.PROTOCOL_ERROR, "64-bit payload length with the top bit set"
                    )
                    return
            compressed = bool(b0 & RSV1) if opcode != _CONT else self._msg_compressed
            # Decide on the header, before buffering any of the payload.
            if (
                opcode < 8
                and max_size is not None
                and not compressed
                and self._msg_size + length > max_size
            ):
                self._fail_pending(
                    CloseCode.MESSAGE_TOO_BIG, f"message larger than {max_size} bytes"
                )
                return
            if available < header_size:
                break
            mask = data[pos + header_size - 4 : pos + header_size]

            if opcode >= 8:
                # Control frames are at most 125 bytes: wait for all of it.
                if available < header_size + length:
                    break
                pos += header_size
                payload = apply_mask(data[pos : pos + length], mask)
                pos += length
                if not self._control(opcode, payload):
                    return
                continue

            pos += header_size
            fin = bool(b0 & FIN)
            if (
                fin
                and opcode != _CONT
                and not compressed
                and end - pos >= length
                and self.state is _OPEN
            ):
                # Fast path: a whole uncompressed single-frame message is here.
                payload = apply_mask(data[pos : pos + length], mask)
                pos += length
                if opcode == _TEXT:
                    try:
                        text = payload.decode("utf-8")
                    except UnicodeDecodeError:
                        self._fail_pending(
                            CloseCode.INVALID_DATA, "invalid UTF-8 in a text message"
                        )
                        return
                    events.append(TextMessage(text))
                else:
                    events.append(BinaryMessage(payload))
                continue

            if opcode != _CONT:
                self._start_message(opcode, compressed)
            if not compressed:
                self._msg_size += length
            self._frame_fin = fin
            self._frame_mask = mask
            self._frame_offset = 0
            self._frame_remaining = length
            if length:
                self._in_payload = True
            elif fin and not self._payload(b"", True):
                return
        if pos < end:
            self._buffer = data[pos:]

    def _check_header(self, b0: int, b1: int, opcode: int) -> tuple[int, str] | None:
        """The frame-header rules of RFC 6455 section 5, in one place."""
        # "The server MUST close the connection upon receiving a frame that
        # is not masked ... a server MAY send a Close frame with a status
        # code of 1002 (protocol error)" (section 5.1).
        if not b1 & MASK_BIT:
            return CloseCode.PROTOCOL_ERROR, "client frame is not masked"
        # "If an unknown opcode is received, the receiving endpoint MUST
        # _Fail the WebSocket Connection_" (section 5.2).
        if opcode not in KNOWN_OPCODES:
            return CloseCode.PROTOCOL_ERROR, f"reserved opcode {opcode:#x}"
        # RSV1-3 "MUST be 0 unless an extension is negotiated that defines
        # meanings for non-zero values" (section 5.2).  permessage-deflate
        # gives RSV1 a meaning on the first frame of a data message only
        # (RFC 7692 section 6.1).
        rsv = b0 & _RSV_ALL
        if rsv and (rsv != RSV1 or self._deflate is None or opcode == _CONT or opcode >= 8):
            return CloseCode.PROTOCOL_ERROR, f"reserved bits {rsv >> 4:#05b} set"
        if opcode >= 8:
            # "All control frames MUST have a payload length of 125 bytes or
            # less and MUST NOT be fragmented" (section 5.5).
            if not b0 & FIN:
                return CloseCode.PROTOCOL_ERROR, "fragmented control frame"
            if b1 & LENGTH_MASK > MAX_CONTROL_PAYLOAD:
                return CloseCode.PROTOCOL_ERROR, "control frame payload over 125 bytes"
        elif opcode == _CONT:
            if not self._msg_opcode:
                return CloseCode.PROTOCOL_ERROR, "continuation frame without a message to continue"
        elif self._msg_opcode:
            # Fragments of one message "MUST NOT" be interleaved with another
            # message's (section 5.4).
            return CloseCode.PROTOCOL_ERROR, "new data frame inside a fragmented message"
        return None

    def _start_message(self, opcode: int, compressed: bool) -> None:
        self._msg_opcode = opcode
        self._msg_compressed = compressed
        self._msg_size = 0
        self._msg_parts = []
        self._msg_buffer = None
        if compressed:
            assert self._deflate is not None  # checked by _check_header
            self._deflate.start_message()
        if opcode == _TEXT:
            decoder = self._decoder
            if decoder is None:
                decoder = self._decoder = _Utf8Decoder()
            else:
                decoder.reset()

    def _payload(self, chunk: bytes, final: bool) -> bool:
        """Add unmasked payload bytes to the current message; ``False`` once failed.

        ``final`` marks the end of the message's last frame.
        """
        if self._msg_compressed:
            assert self._deflate is not None
            limit = None
            if self.max_message_size is not None:
                limit = self.max_message_size - self._msg_size
            try:
                chunk = self._deflate.decompress(chunk, limit, final=final)
            except MessageTooBig:
                self._fail_pending(
                    CloseCode.MESSAGE_TOO_BIG,
                    f"message larger than {self.max_message_size} bytes once decompressed",
                )
                return False
            except DecompressionError as exc:
                self._fail_pending(CloseCode.INVALID_DATA, f"invalid compressed data: {exc}")
                return False
            self._msg_size += len(chunk)
        if self._msg_opcode == _TEXT:
            decoder = self._decoder
            assert decoder is not None
            try:
                text = decoder.decode(chunk, final)
                if not final:
                    # CPython's incremental decoder only rejects an encoded
                    # UTF-16 surrogate (ED A0-BF ..) at its third byte, but
                    # the first two already make the stream invalid.
                    pending = decoder.getstate()[0]
                    if len(pending) == 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                        raise UnicodeDecodeError("utf-8", pending, 0, 2, "surrogate")
            except UnicodeDecodeError:
                # "When an endpoint is to interpret a byte stream as UTF-8 but
                # finds that the byte stream is not, in fact, a valid UTF-8
                # stream, that endpoint MUST _Fail the WebSocket Connection_"
                # (section 8.1), with 1007 (section 7.4.1).
                self._fail_pending(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")
                return False
            buffer = self._msg_buffer
            if buffer is not None:
                buffer += chunk  # validated above; decoded once, at the end
            elif text:
                parts = self._msg_parts
                parts.append(text)  # type: ignore[arg-type]
                if len(parts) >= _MAX_PARTS:
                    # Keep the UTF-8 bytes, including those the decoder holds
                    # back in the middle of a character.
                    held = decoder.getstate()[0]
                    self._msg_buffer = bytearray("".join(parts).encode("utf-8") + held)  # type: ignore[arg-type]
                    self._msg_parts = []
        elif chunk:
            buffer = self._msg_buffer
            if buffer is not None:
                buffer += chunk
            else:
                parts = self._msg_parts
                parts.append(chunk)  # type: ignore[arg-type]
                if len(parts) >= _MAX_PARTS:
                    self._msg_buffer = bytearray(b"".join(parts))  # type: ignore[arg-type]
                    self._msg_parts = []
        if final:
            parts = self._msg_parts
            buffer = self._msg_buffer
            self._msg_parts = []
            self._msg_buffer = None
            opcode = self._msg_opcode
            self._msg_opcode = 0
            self._msg_size = 0
            if self.state is _OPEN:
                # Data frames after our close frame are ignored (section 1.4).
                if opcode == _TEXT:
                    if buffer is not None:
                        self._events.append(TextMessage(buffer.decode("utf-8")))
                    else:
                        self._events.append(TextMessage("".join(parts)))  # type: ignore[arg-type]
                elif buffer is not None:
                    self._events.append(BinaryMessage(bytes(buffer)))
                else:
                    self._events.append(BinaryMessage(b"".join(parts)))  # type: ignore[arg-type]
        return True

    def _control(self, opcode: int, payload: bytes) -> bool:
        """Handle a complete control frame; ``False`` when parsing must stop."""
        if opcode == _PING:
            if self._control_events:
                self._events.append(Ping(payload))
            # "Upon receipt of a Ping frame, an endpoint MUST send a Pong
            # frame in response ... The Pong frame MUST have the same
            # Application data" (section 5.5.2).  Once we sent a close frame,
            # nothing more may follow it.
            if self.state is _OPEN:
                self._out.append(encode_frame(_PONG, payload))
            return True
        if opcode == _PONG:
            self.last_pong = payload
            if self._control_events:
                self._events.append(Pong(payload))
            return True
        # Close frame (section 5.5.1).
        code: int | None = None
        reason = ""
        if len(payload) == 1:
            self._fail_pending(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload")
            return False
        if payload:
            code = int.from_bytes(payload[:2], "big")
            if not is_valid_close_code(code):
                self._fail_pending(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
                return False
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                self._fail_pending(CloseCode.INVALID_DATA, "invalid UTF-8 in the close reason")
                return False
        self._terminal = _Terminal(CloseReceived(code, reason), None)
        return False

    def _fail_pending(self, code: int, reason: str) -> None:
        """Record a violation; it takes effect once the events before it are delivered."""
        self._buffer = b""
        self._in_payload = False
        if self.state is _OPEN:
            self._terminal = _Terminal(None, Failure(int(code), reason))
        else:
            # We already sent our close frame: just stop.
            self.failure = Failure(int(code), reason)
            self.state = _CLOSED

    # ------------------------------------------------------------------
    # Events

    def next_event(self) -> Event | None:
        """Return the next event, or ``None`` when none is ready.

        Reaching a peer's close frame delivers :class:`CloseReceived` and
        queues the echoing close frame; reaching a violation queues the close
        frame that fails the connection and returns ``None`` (see
        :attr:`failure`).
        """
        if self._events:
            return self._events.popleft()
        terminal = self._terminal
        if terminal is None:
            return None
        self._terminal = None
        if terminal.failure is not None:
            self._commit_failure(terminal.failure)
            return None
        close = terminal.close
        assert close is not None
        self._answer_close(close)
        return close

    def _answer_close(self, close: CloseReceived) -> None:
        """Take in the peer's close frame: echo it unless ours was sent, and end."""
        self.close_received = close
        if self.state is _OPEN:
            # "If an endpoint receives a Close frame and did not previously
            # send a Close frame, the endpoint MUST send a Close frame in
            # response.  (When sending a Close frame in response, the endpoint
            # typically echos the status code it received.)  It SHOULD do so
            # as soon as practical" (section 5.5.1).
            self._queue_close(close.code, "")
        self.state = _CLOSED

    @property
    def terminal_pending(self) -> bool:
        """Whether a close frame or a violation waits behind undelivered events.

        :meth:`next_event` reaches it once the events before it are taken;
        :meth:`settle` reaches it at once.
        """
        return self._terminal is not None and self.state is not _CLOSED

    def settle(self) -> None:
        """Reach a pending close frame or violation now, ahead of the events before it.

        For a layer whose application is not taking events: the answering
        close frame is queued at once and the state becomes ``CLOSED``, while
        the messages that arrived before it stay queued for :meth:`next_event`
        (followed by the :class:`CloseReceived` event of a peer's close).
        Nothing more can be sent.  Does nothing when nothing is pending.
        """
        terminal = self._terminal
        if terminal is None or self.state is _CLOSED:
            return
        if terminal.failure is not None:
            self._terminal = None
            self._commit_failure(terminal.failure)
            return
        close = terminal.close
        assert close is not None
        # The terminal stays, so that next_event still delivers the close
        # after the messages before it.
        self._answer_close(close)

    def events_received(self) -> list[Event]:
        """Return every pending event at once, reaching any close frame or violation.

        Unlike calling :meth:`next_event` one event at a time, this makes a
        close or a failure take effect before the caller has answered the
        messages that arrived before it.
        """
        events: list[Event] = []
        while (event := self.next_event()) is not None:
            events.append(event)
        return events

    @property
    def pending_events(self) -> int:
        """How many events are ready (a pending close or violation not counted)."""
        return len(self._events)

    @property
    def pending_messages(self) -> int:
        """How many complete data messages are ready to be delivered."""
        if not self._control_events:
            return len(self._events)  # only messages are queued: O(1) for pollers
        return sum(1 for event in self._events if type(event) in _MESSAGE_TYPES)

    # ------------------------------------------------------------------
    # Output

    @property
    def has_data_to_send(self) -> bool:
        """Whether :meth:`data_to_send` would return anything (a cheap check)."""
        return bool(self._out)

    def data_to_send(self) -> bytes:
        """Return and forget the bytes queued for the peer."""
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    def _check_can_send(self) -> None:
        if self.state is not _OPEN:
            raise InvalidState(f"cannot send on a connection in state {self.state.value}")

    def send_text(self, data: str) -> None:
        """Queue a text message."""
        self._send_data(_TEXT, data.encode("utf-8"))

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        """Queue a binary message."""
        self._send_data(_BINARY, bytes(data))

    def _send_data(self, opcode: int, payload: bytes) -> None:
        if self.state is not _OPEN:
            self._check_can_send()  # raises
        deflate = self._deflate
        if deflate is not None and len(payload) >= deflate.min_size:
            self._out.append(encode_frame(opcode, deflate.compress(payload), rsv1=True))
        else:
            self._out.append(encode_frame(opcode, payload))

    def send_ping(self, payload: bytes = b"") -> None:
        """Queue a ping; its payload must be at most 125 bytes."""
        self._check_can_send()
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError("a ping payload is at most 125 bytes")
        self._out.append(encode_frame(_PING, bytes(payload)))

    def send_pong(self, payload: bytes = b"") -> None:
        """Queue an unsolicited pong (a heartbeat that expects no answer)."""
        self._check_can_send()
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError("a pong payload is at most 125 bytes")
        self._out.append(encode_frame(_PONG, bytes(payload)))

    def send_close(self, code: int | None = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (or finish it, if the peer's close is pending).

        A violation that is still waiting behind undelivered events takes
        precedence: its close code is sent instead.  Raises
        :class:`InvalidState` when a close frame was already sent, and
        ``ValueError`` for a code that may not be sent or a reason over 123
        bytes.
        """
        self._check_can_send()
        payload_check = encode_close_payload(code, reason)  # validates first
        del payload_check
        terminal = self._terminal
        if terminal is not None and terminal.failure is not None:
            self._terminal = None
            self._events.clear()
            self._commit_failure(terminal.failure)
            return
        self._queue_close(code, reason)
        self.state = _CLOSING

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection from our side (e.g. a missing pong: 1011).

        Queues a close frame with ``code`` if none was sent yet, and moves to
        ``CLOSED``: nothing more is processed.  ``reason`` goes in the frame
        and in :attr:`failure`, cut to fit the control-frame limit.  Raises
        ``ValueError``, changing nothing, for a code that may not be sent.
        """
        if not is_valid_close_code(code):
            # Refuse before touching any state (RFC 6455 section 7.4.1).
            raise ValueError(f"close code {code} may not be sent on the wire")
        self._terminal = None
        self._commit_failure(Failure(int(code), reason))

    def _commit_failure(self, failure: Failure) -> None:
        self.failure = failure
        self._buffer = b""
        if self.state is _OPEN and not self.eof_received:
            self._queue_close(failure.code, _fit_reason(failure.reason))
        self.state = _CLOSED

    def _queue_close(self, code: int | None, reason: str) -> None:
        self._out.append(encode_frame(_CLOSE, encode_close_payload(code, reason)))
        self.close_sent = (code, reason)


def _fit_reason(reason: str) -> str:
    """Cut a reason to the 123 bytes a close frame can carry, on a character boundary."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= 123:
        return reason
    return encoded[:123].decode("utf-8", "ignore")
