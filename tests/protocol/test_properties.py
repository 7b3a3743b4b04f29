"""Property-based tests of the connection (Hypothesis).

* A model of RFC 6455 sections 5.4 and 5.5: a stream of valid client frames
  (fragmented messages with control frames in between, compressed or not)
  gives exactly the events the model predicts, however it is cut into chunks.
* Chunking never matters, for any stream, valid or not: same events, same
  output bytes, same failure.  The one exception, under permessage-deflate,
  is which close code (1007 or 1009) a message breaking both rules gets; see
  :func:`fuzz_frames.assert_same_outcome`.
* What the server encodes parses back, re-masked by the test, to the same
  message (round trip through :mod:`client_frames`).
* Garbage never makes ``receive_data`` or ``next_event`` raise.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_websocket.protocol import (
    BinaryMessage,
    CloseReceived,
    DeflateConfig,
    DeflateParams,
    Event,
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
    CONT,
    PING,
    PONG,
    TEXT,
    ClientDeflater,
    close,
    drain,
    frame,
    parse_server_frames,
)
from .fuzz_frames import Run, assert_same_outcome, check_output

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

keys = st.binary(min_size=4, max_size=4)
control_payloads = st.binary(max_size=125)


@dataclass
class Message:
    opcode: int
    data: bytes
    cuts: list[int]  # fragment boundaries, as fractions of 1000
    compress: bool
    controls: list[tuple[int, bytes]]  # pings/pongs put between the fragments


@st.composite
def messages(draw: st.DrawFn, deflate: bool) -> Message:
    if draw(st.booleans()):
        opcode, data = TEXT, draw(st.text(max_size=300)).encode("utf-8")
    else:
        opcode, data = BINARY, draw(st.binary(max_size=300))
    cuts = sorted(draw(st.lists(st.integers(0, 1000), max_size=4)))
    controls = draw(
        st.lists(st.tuples(st.sampled_from([PING, PONG]), control_payloads), max_size=len(cuts))
    )
    return Message(opcode, data, cuts, deflate and draw(st.booleans()), controls)


def fragments(payload: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *(len(payload) * c // 1000 for c in cuts), len(payload)]
    return [payload[a:b] for a, b in itertools.pairwise(points)]


def encode_stream(
    items: list[Message | tuple[int, bytes]], keystream: list[bytes]
) -> tuple[bytes, list[Event]]:
    """Client bytes for ``items`` and the events the RFC says they give, in order."""
    out = []
    expected: list[Event] = []
    deflater = ClientDeflater()
    k = 0

    def key() -> bytes:
        nonlocal k
        k += 1
        return keystream[k % len(keystream)]

    def control(opcode: int, payload: bytes) -> None:
        out.append(frame(opcode, payload, key=key()))
        expected.append(Ping(payload) if opcode == PING else Pong(payload))

    for item in items:
        if isinstance(item, tuple):
            control(*item)
            continue
        payload = deflater.compress(item.data) if item.compress else item.data
        parts = fragments(payload, item.cuts)
        controls = list(item.controls)
        for i, part in enumerate(parts):
            opcode = item.opcode if i == 0 else CONT
            last = i == len(parts) - 1
            out.append(frame(opcode, part, fin=last, rsv1=item.compress and i == 0, key=key()))
            if not last and controls:
                control(*controls.pop(0))
        if item.opcode == TEXT:
            expected.append(TextMessage(item.data.decode("utf-8")))
        else:
            expected.append(BinaryMessage(item.data))
    return b"".join(out), expected


@st.composite
def valid_streams(draw: st.DrawFn, deflate: bool) -> tuple[bytes, list[Event]]:
    items = draw(
        st.lists(
            messages(deflate) | st.tuples(st.sampled_from([PING, PONG]), control_payloads),
            max_size=8,
        )
    )
    keystream = draw(st.lists(keys, min_size=1, max_size=4))
    return encode_stream(items, keystream)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def new_conn(deflate: bool) -> ServerConnection:
    return ServerConnection(deflate=PerMessageDeflate(DeflateParams()) if deflate else None)


# ----------------------------------------------------------------------
# The model


@SETTINGS
@given(
    st.booleans().flatmap(lambda d: st.tuples(st.just(d), valid_streams(d))),
    st.lists(st.integers(0, 10**6), max_size=20),
    st.integers(0, 2),
)
def test_valid_stream_gives_the_models_events(
    case: tuple[bool, tuple[bytes, list[Event]]], cuts: list[int], end: int
) -> None:
    deflate, (data, expected) = case
    conn = new_conn(deflate)
    events = []
    for piece in chunked(data, cuts):
        conn.receive_data(piece)
        events += drain(conn)
    assert events == expected
    assert conn.failure is None
    assert conn.state is State.OPEN
    # Every ping got its pong, in order, with its payload.
    frames = parse_server_frames(conn.data_to_send())
    assert [(f.opcode, f.payload) for f in frames] == [
        (PONG, e.payload) for e in expected if isinstance(e, Ping)
    ]
    # Then the close, in any of the ways a stream ends.
    if end == 0:
        conn.receive_data(close(1000, b"done"))
        assert drain(conn) == [CloseReceived(1000, "done")]
        assert [f.close_code for f in parse_server_frames(conn.data_to_send())] == [1000]
    elif end == 1:
        conn.send_close(1001)
        conn.receive_data(close(1001))
        assert drain(conn) == [CloseReceived(1001, "")]
        assert [f.opcode for f in parse_server_frames(conn.data_to_send())] == [CLOSE]
    else:
        conn.receive_data(b"")
        assert drain(conn) == []
        assert conn.data_to_send() == b""
    assert conn.state is State.CLOSED
    assert conn.failure is None


# ----------------------------------------------------------------------
# Chunking never matters


def _outcome_runs(flags: int, data: bytes, cuts: list[int]) -> tuple[Run, Run, Run]:
    whole = Run(flags)
    whole.conn.receive_data(data)
    whole.drain()
    pieces = Run(flags)
    for piece in chunked(data, cuts):
        pieces.conn.receive_data(piece)
        pieces.drain()
    single = Run(flags)
    for i in range(len(data)):
        single.conn.receive_data(data[i : i + 1])
        single.drain()
    return whole, pieces, single


@st.composite
def mutated_streams(draw: st.DrawFn, deflate: bool) -> bytes:
    """A valid stream, then a few bytes changed, removed or inserted."""
    data = bytearray(draw(valid_streams(deflate))[0])
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        kind = draw(st.integers(0, 2))
        if kind == 0:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == 1:
            del data[pos]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


@SETTINGS
@given(
    st.integers(0, 15).flatmap(
        lambda flags: st.tuples(
            st.just(flags), mutated_streams(bool(flags & 1)) | st.binary(min_size=1, max_size=600)
        )
    ),
    st.lists(st.integers(0, 10**6), max_size=30),
)
def test_chunking_does_not_change_the_outcome(case: tuple[int, bytes], cuts: list[int]) -> None:
    flags, data = case
    if not data:
        return
    whole, pieces, single = _outcome_runs(flags, data, cuts)
    deflate = bool(flags & 1)
    assert_same_outcome(whole, pieces, deflate=deflate)
    assert_same_outcome(whole, single, deflate=deflate)
    for run in (whole, pieces, single):
        check_output(run)


def test_chunking_outcome_exact_without_deflate() -> None:
    # A fixed stream touching every kind of event and a failure at the end:
    # byte for byte the same output, whatever the cut.
    data = (
        frame(TEXT, "κό".encode(), fin=False)
        + frame(PING, b"p")
        + frame(CONT, "σμε".encode())
        + frame(PONG, b"q")
        + frame(BINARY, b"\xff" * 200)
        + frame(TEXT, b"bad \xff utf-8")
    )
    for step in range(1, 12):
        whole, pieces, single = _outcome_runs(0, data, list(range(0, len(data), step)))
        assert whole.outcome() == pieces.outcome() == single.outcome()
        assert whole.conn.failure is not None
        assert whole.conn.failure.code == 1007


def test_known_deflate_ambiguity_is_limited_to_the_close_code() -> None:
    # A compressed text message that is both over the limit and invalid UTF-8
    # early on: read in one piece zlib stops at the limit first (1009); read
    # byte by byte the bad byte comes first (1007).
    payload = ClientDeflater().compress(b"\xff" + b"a" * 200)
    data = frame(TEXT, payload, rsv1=True)
    flags = 1 | (2 << 1)  # deflate, 64-byte limit
    whole, _, single = _outcome_runs(flags, data, [])
    assert whole.conn.failure is not None
    assert single.conn.failure is not None
    assert (whole.conn.failure.code, single.conn.failure.code) == (1009, 1007)
    assert_same_outcome(whole, single, deflate=True)


# ----------------------------------------------------------------------
# Round trip: the server's encoder, parsed back by the server's decoder


@SETTINGS
@given(
    st.lists(st.text(max_size=200) | st.binary(max_size=200), min_size=1, max_size=6),
    st.sampled_from([None, (False, 15), (True, 15), (False, 9), (True, 11)]),
    keys,
    st.lists(st.integers(0, 1000), max_size=3),
)
def test_server_encoding_round_trips(
    items: list[str | bytes],
    deflate: tuple[bool, int] | None,
    key: bytes,
    cuts: list[int],
) -> None:
    if deflate is None:
        sender = ServerConnection()
        receiver = ServerConnection()
    else:
        no_context, bits = deflate
        sender = ServerConnection(
            deflate=PerMessageDeflate(
                DeflateParams(server_no_context_takeover=no_context, server_max_window_bits=bits),
                DeflateConfig(min_size=0),
            )
        )
        # The receiving end mirrors the sender's parameters.
        receiver = ServerConnection(
            deflate=PerMessageDeflate(
                DeflateParams(client_no_context_takeover=no_context, client_max_window_bits=bits)
            )
        )
    expected: list[Event] = []
    for item in items:
        if isinstance(item, str):
            sender.send_text(item)
            expected.append(TextMessage(item))
        else:
            sender.send_binary(item)
            expected.append(BinaryMessage(item))
    sender.send_ping(key)
    expected.append(Ping(key))

    client_bytes = b""
    for sent in parse_server_frames(sender.data_to_send()):
        assert sent.fin
        assert sent.rsv1 == (deflate is not None and sent.opcode < 8)
        if sent.opcode >= 8:
            client_bytes += frame(sent.opcode, sent.payload, key=key)
            continue
        # Re-mask, and re-fragment, the server's frame as a client would send it.
        parts = fragments(sent.payload, sorted(cuts))
        for i, part in enumerate(parts):
            client_bytes += frame(
                sent.opcode if i == 0 else CONT,
                part,
                fin=i == len(parts) - 1,
                rsv1=sent.rsv1 and i == 0,
                key=key,
            )
    receiver.receive_data(client_bytes)
    assert drain(receiver) == expected
    assert receiver.failure is None


# ----------------------------------------------------------------------
# Garbage


@SETTINGS
@given(
    st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=10),
    st.sampled_from([None, 0, 10, 1 << 20]),
    st.booleans(),
    st.booleans(),
)
def test_garbage_never_raises(
    chunks: list[bytes], limit: int | None, deflate: bool, eof: bool
) -> None:
    conn = ServerConnection(
        max_message_size=limit,
        deflate=PerMessageDeflate(DeflateParams()) if deflate else None,
    )
    out = b""
    for chunk in chunks:
        # Often set the mask bit so that garbage gets past the first check.
        if len(chunk) > 1 and chunk[0] & 1:
            chunk = chunk[:1] + bytes((chunk[1] | 0x80,)) + chunk[2:]
        conn.receive_data(chunk)
        while conn.next_event() is not None:
            pass
        out += conn.data_to_send()
    if eof:
        conn.receive_data(b"")
    drain(conn)
    out += conn.data_to_send()
    frames = parse_server_frames(out)
    if conn.failure is not None:
        assert conn.state is State.CLOSED
        if not eof:
            assert frames[-1].opcode == CLOSE
            assert frames[-1].close_code == conn.failure.code
    assert sum(f.opcode == CLOSE for f in frames) <= 1
