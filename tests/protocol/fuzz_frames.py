"""Fuzz target for the frame parser of ``django_websocket.protocol.ServerConnection``.

Every input is split into a small header that chooses the connection's
configuration (permessage-deflate or not, message size limit, whether the
stream ends with EOF, how to cut it into chunks) and a byte stream from the
"client".  :func:`one_input` then checks, for that stream:

* ``receive_data`` and ``next_event`` never raise: the peer's bytes can only
  fail the connection, which is recorded in ``failure``;
* the stream gives the same events, the same output bytes, the same failure
  and the same final state whether it is fed in one piece or in arbitrary
  pieces with the events read in between;
* the output is valid server framing (unmasked, minimal lengths, whole
  frames, control frames of at most 125 bytes), answers every ping it
  reported while open with a pong, and ends with a close frame carrying the
  failure's code when the connection failed.

Any broken check raises ``AssertionError`` (a crash, for the fuzzer).

Running it for a long time
--------------------------
With atheris (``/work/venv/bin/pip install atheris``), a coverage-guided
libFuzzer run, from the repository root::

    mkdir -p /tmp/ws-corpus
    /work/venv/bin/python tests/protocol/fuzz_frames.py --seeds /tmp/ws-corpus
    /work/venv/bin/python tests/protocol/fuzz_frames.py /tmp/ws-corpus \\
        -max_len=4096 -timeout=10 -rss_limit_mb=2048 -jobs=2 -workers=2

Every libFuzzer option works (``-max_total_time=3600`` for one hour,
``-runs=N``; a crash is written to ``crash-<sha1>`` and replayed with
``python tests/protocol/fuzz_frames.py crash-<sha1>``).

Without atheris, the same script falls back to a Hypothesis-driven loop that
runs until interrupted or for ``--seconds N``::

    /work/venv/bin/python tests/protocol/fuzz_frames.py --hypothesis --seconds 3600

The bounded version that runs in CI is ``tests/protocol/test_fuzz.py``.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

if __package__:
    from .client_frames import CLOSE, PING, PONG, parse_server_frames
else:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.protocol.client_frames import CLOSE, PING, PONG, parse_server_frames

from django_websocket.protocol import (
    DeflateParams,
    Event,
    PerMessageDeflate,
    Ping,
    ServerConnection,
    State,
)

_LIMITS = (None, 0, 64, 1 << 20)


class Run:
    """The observable outcome of feeding one stream to one connection."""

    def __init__(self, flags: int) -> None:
        deflate = None
        if flags & 1:
            deflate = PerMessageDeflate(DeflateParams(client_no_context_takeover=bool(flags & 8)))
        self.conn = ServerConnection(max_message_size=_LIMITS[(flags >> 1) & 3], deflate=deflate)
        self.events: list[Event] = []
        self.output = b""

    def drain(self) -> None:
        while (event := self.conn.next_event()) is not None:
            self.events.append(event)
        self.output += self.conn.data_to_send()

    def outcome(self) -> tuple[object, ...]:
        conn = self.conn
        return (self.events, self.output, conn.failure, conn.state, conn.close_received)


def _chunks(stream: bytes, seed: int) -> list[bytes]:
    """Cut ``stream`` into pieces, from single bytes to large runs."""
    rng = random.Random(seed)
    pieces = []
    pos = 0
    while pos < len(stream):
        size = rng.choice((1, 1, 2, 3, 7, 64, 1 + rng.randrange(len(stream) - pos)))
        pieces.append(stream[pos : pos + size])
        pos += size
    return pieces


def check_output(run: Run) -> None:
    """What the server sent is valid framing and matches what happened."""
    frames = parse_server_frames(run.output)
    conn = run.conn
    closes = [f for f in frames if f.opcode == CLOSE]
    assert len(closes) <= 1, "more than one close frame sent"
    if closes:
        assert frames[-1].opcode == CLOSE, "a frame after the close frame"
    # We never send a close frame ourselves here, so every ping is answered,
    # in order, with its own payload.
    pongs = [f.payload for f in frames if f.opcode == PONG]
    assert pongs == [e.payload for e in run.events if isinstance(e, Ping)]
    assert not [f for f in frames if f.opcode == PING]
    if conn.failure is not None:
        assert conn.state is State.CLOSED
        assert conn.close_received is None
        if not conn.eof_received:
            assert closes, "the failure's close frame was not sent"
            assert closes[0].close_code == conn.failure.code
            assert conn.failure.reason.startswith(closes[0].close_reason)
    elif conn.close_received is not None and not conn.eof_received:
        assert closes, "a peer close frame was not answered"
        assert closes[0].close_code == conn.close_received.code
    elif not conn.eof_received:
        assert conn.state is State.OPEN
        assert not closes


def one_input(data: bytes) -> None:
    """The fuzz target: never raises except ``AssertionError`` for a real finding."""
    if len(data) < 2:
        return
    flags, seed = data[0], data[1]
    stream = data[2:]
    eof = bool(flags & 0x10)

    whole = Run(flags)
    if stream:
        whole.conn.receive_data(stream)
    whole.drain()
    if eof:
        whole.conn.receive_data(b"")
    whole.drain()

    pieces = Run(flags)
    for piece in _chunks(stream, seed):
        pieces.conn.receive_data(piece)
        pieces.drain()
    if eof:
        pieces.conn.receive_data(b"")
    pieces.drain()

    assert_same_outcome(whole, pieces, deflate=bool(flags & 1))
    check_output(whole)
    check_output(pieces)


def assert_same_outcome(one: Run, other: Run, *, deflate: bool) -> None:
    """Two runs over the same stream, cut differently, ended the same way.

    Exactly the same, output bytes included, without permessage-deflate.
    With it, one known difference remains: when a compressed message breaks
    two rules at once (invalid UTF-8 and over the size limit, or invalid
    UTF-8 and invalid deflate data), which one is reported can depend on
    where the chunks were cut, because zlib gives no output from a call that
    fails or stops at its output limit.  The close code is then 1007 or 1009
    and the reason text may differ; everything else must be the same.
    """
    if not deflate or one.outcome() == other.outcome():
        assert one.outcome() == other.outcome(), "chunking changed the outcome"
        return
    assert one.events == other.events, "chunking changed the events"
    assert one.conn.state is other.conn.state
    assert one.conn.close_received == other.conn.close_received
    first, second = one.conn.failure, other.conn.failure
    assert first is not None, "chunking changed the outcome"
    assert second is not None, "chunking changed the outcome"
    assert {first.code, second.code} <= {1007, 1009}, (first, second)

    def without_close(run: Run) -> list[tuple[int, bytes]]:
        return [(f.opcode, f.payload) for f in parse_server_frames(run.output) if f.opcode != CLOSE]

    assert without_close(one) == without_close(other)


# ----------------------------------------------------------------------
# Drivers


def seed_inputs() -> list[bytes]:
    """Valid-looking streams to start a corpus from."""
    key = b"\x11\x22\x33\x44"

    def frame(b0: int, payload: bytes) -> bytes:
        masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        if len(payload) < 126:
            head = bytes((b0, 0x80 | len(payload)))
        else:
            head = bytes((b0, 0xFE)) + len(payload).to_bytes(2, "big")
        return head + key + masked

    hello = bytes.fromhex("f2 48 cd c9 c9 07 00")
    streams = [
        frame(0x81, b"Hello") + frame(0x89, b"ping") + frame(0x88, b"\x03\xe8bye"),
        frame(0x01, b"Hel") + frame(0x89, b"") + frame(0x80, "lo €".encode()),
        frame(0xC1, hello) + frame(0xC1, bytes.fromhex("f2 00 11 00 00")),
        frame(0x41, hello[:3]) + frame(0x80, hello[3:]) + frame(0x82, bytes(300)),
        frame(0xC1, bytes.fromhex("f3 48 cd c9 c9 07 00 00")),
        frame(0x81, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80"),
    ]
    return [bytes((flags, 7)) + s for s in streams for flags in (0x01, 0x03, 0x0F, 0x10)]


def _run_atheris(argv: list[str]) -> None:
    import atheris  # type: ignore[import-not-found]

    atheris.instrument_all()
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def _run_hypothesis(seconds: float | None) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    seeds = st.sampled_from(seed_inputs()).flatmap(mutations)

    @settings(
        max_examples=2000,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.binary(min_size=2, max_size=4096) | seeds)
    def target(data: bytes) -> None:
        one_input(data)

    start = time.monotonic()
    rounds = 0
    while seconds is None or time.monotonic() - start < seconds:
        target()
        rounds += 1
        print(f"round {rounds}: 2000 inputs, {time.monotonic() - start:.0f} s", flush=True)


def mutations(seed: bytes) -> SearchStrategy[bytes]:
    """A strategy of byte-level mutations of ``seed``."""
    from hypothesis import strategies as st

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(seed)
        for _ in range(draw(st.integers(0, 8))):
            pos = draw(st.integers(0, len(data) - 1))
            kind = draw(st.integers(0, 3))
            if kind == 0:
                data[pos] = draw(st.integers(0, 255))
            elif kind == 1:
                data[pos] ^= 1 << draw(st.integers(0, 7))
            elif kind == 2:
                del data[pos]
            else:
                data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
            if len(data) < 2:
                data += b"\x00\x00"
        return bytes(data)

    return mutate()


def main(argv: list[str]) -> None:
    if "--seeds" in argv:
        directory = Path(argv[argv.index("--seeds") + 1])
        directory.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seed_inputs()):
            (directory / f"seed-{i:03d}").write_bytes(seed)
        print(f"wrote {len(seed_inputs())} seeds to {directory}")
        return
    seconds = None
    if "--seconds" in argv:
        seconds = float(argv[argv.index("--seconds") + 1])
    if "--hypothesis" not in argv:
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris is not installed: using the Hypothesis loop", file=sys.stderr)
        else:
            _run_atheris(argv)
            return
    _run_hypothesis(seconds)


if __name__ == "__main__":
    main(sys.argv)
