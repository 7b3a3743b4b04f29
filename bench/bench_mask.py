#!/usr/bin/env python
"""Microbenchmark: WebSocket payload masking (RFC 6455, 5.3) across libraries.

Times, in a single run, on 32 B, 1 KiB, 64 KiB and 1 MiB payloads:

* django_websocket's C accelerator (``protocol._speedups.apply_mask``);
* django_websocket's pure-Python fallback (``protocol.mask.apply_mask_python``);
* gevent-websocket's ``Header.mask_payload`` (a per-byte Python loop);
* websockets' ``websockets.speedups.apply_mask`` (C) and
  ``websockets.utils.apply_mask`` (pure Python), when installed;
* wsproto's ``XorMaskerSimple.process``, when installed.

The other libraries' own functions are imported and called; nothing is copied.
Each measurement is the median of several rounds; every round calls the
function enough times to last a minimum duration, and the rounds of the
different implementations are interleaved so that outside load is shared.  The table is printed to
stdout as Markdown.

Usage::

    python bench/bench_mask.py            # full run (about a minute)
    python bench/bench_mask.py --quick    # smoke run, a few seconds
"""

from __future__ import annotations

import argparse
import gc
import importlib
import itertools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType

Masker = Callable[[bytes, bytes], object]

SIZES: list[tuple[str, int]] = [
    ("32 B", 32),
    ("1 KiB", 1024),
    ("64 KiB", 64 * 1024),
    ("1 MiB", 1024 * 1024),
]


@dataclass
class Candidate:
    """One masking implementation under test."""

    name: str
    func: Masker | None
    note: str = ""


def _import_mask_module() -> ModuleType:
    """Import django_websocket.protocol.mask, from this checkout if not installed."""
    try:
        return importlib.import_module("django_websocket.protocol.mask")
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        return importlib.import_module("django_websocket.protocol.mask")


def _optional_import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def build_candidates() -> list[Candidate]:
    """Collect every implementation that can be imported here."""
    mask_mod = _import_mask_module()
    ours_c = _optional_import("django_websocket.protocol._speedups")
    candidates = [
        Candidate(
            "django_websocket C (`_speedups.apply_mask`)",
            ours_c.apply_mask if ours_c is not None else None,
            "" if ours_c is not None else "not built",
        ),
        Candidate(
            "django_websocket pure Python (`apply_mask_python`)",
            mask_mod.apply_mask_python,
        ),
    ]

    # gevent-websocket masks through a Header instance: the frame reader sets
    # header.mask to the 4 key bytes and header.length to the payload length,
    # then calls header.unmask_payload(payload) (the same function as
    # mask_payload).  Reproduce exactly that call sequence.
    gws = _optional_import("geventwebsocket.websocket")
    if gws is not None:
        header_cls = gws.Header

        def gevent_websocket_unmask(data: bytes, mask: bytes) -> object:
            header = header_cls(fin=1, opcode=2, flags=0, length=len(data))
            header.mask = mask
            return header.unmask_payload(data)

        candidates.append(
            Candidate("gevent-websocket (`Header.unmask_payload`)", gevent_websocket_unmask)
        )
    else:
        candidates.append(Candidate("gevent-websocket", None, "not installed"))

    ws_speedups = _optional_import("websockets.speedups")
    candidates.append(
        Candidate(
            "websockets C (`websockets.speedups.apply_mask`)",
            ws_speedups.apply_mask if ws_speedups is not None else None,
            "" if ws_speedups is not None else "not importable",
        )
    )
    ws_utils = _optional_import("websockets.utils")
    candidates.append(
        Candidate(
            "websockets pure Python (`websockets.utils.apply_mask`)",
            ws_utils.apply_mask if ws_utils is not None else None,
            "" if ws_utils is not None else "not installed",
        )
    )

    # wsproto creates one XorMaskerSimple per frame from the frame's key and
    # feeds the payload through process(); the masker is stateful (it rotates
    # the key between chunks), so a fresh one is made for every call.
    wsp = _optional_import("wsproto.frame_protocol")
    if wsp is not None:
        masker_cls = wsp.XorMaskerSimple

        def wsproto_mask(data: bytes, mask: bytes) -> object:
            return masker_cls(mask).process(data)

        candidates.append(Candidate("wsproto (`XorMaskerSimple.process`)", wsproto_mask))
    else:
        candidates.append(Candidate("wsproto", None, "not installed"))
    return candidates


def calibrate(func: Masker, data: bytes, mask: bytes, min_round: float) -> int:
    """Return a call count that makes one round last at least ``min_round`` s."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in itertools.repeat(None, number):
            func(data, mask)
        elapsed = time.perf_counter() - start
        if elapsed >= min_round:
            return number
        # Aim a little past the target, but never grow more than 10x at once.
        number = max(number + 1, min(number * 10, int(number * min_round * 1.2 / elapsed) + 1))


def timed_round(func: Masker, data: bytes, mask: bytes, number: int) -> float:
    """Return the mean seconds per call over ``number`` back-to-back calls."""
    start = time.perf_counter()
    for _ in itertools.repeat(None, number):
        func(data, mask)
    return (time.perf_counter() - start) / number


def measure_size(
    funcs: dict[str, Masker], size: int, mask: bytes, rounds: int, min_round: float
) -> dict[str, float]:
    """Return the median seconds per call of every function on ``size`` bytes.

    Rounds are interleaved (one round of each function, then the next round),
    so a burst of load from elsewhere on the machine hits them all alike
    instead of skewing whichever happened to run at that moment.
    """
    data = os.urandom(size)
    numbers = {name: calibrate(func, data, mask, min_round) for name, func in funcs.items()}
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, func in funcs.items():
                samples[name].append(timed_round(func, data, mask, numbers[name]))
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}


def check_agreement(candidates: list[Candidate], mask: bytes) -> None:
    """Make sure every implementation computes the same thing before timing it."""
    data = os.urandom(1027)
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    for cand in candidates:
        if cand.func is None:
            continue
        result = cand.func(data, mask)
        if bytes(result) != expected:  # type: ignore[call-overload]
            raise SystemExit(f"{cand.name} returned a wrong result; refusing to time it")


def _fmt_rate(mib_s: float) -> str:
    if mib_s >= 100:
        return f"{mib_s:,.0f}"
    return f"{mib_s:.1f}"


def _fmt_ratio(ratio: float) -> str:
    if ratio >= 10:
        return f"{ratio:,.0f}x"
    return f"{ratio:.2f}x"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: fewer and shorter rounds (finishes in a few seconds)",
    )
    parser.add_argument("--rounds", type=int, help="timed rounds per measurement (default 7)")
    parser.add_argument(
        "--min-round",
        type=float,
        help="minimum seconds per round (default 0.1; 0.005 with --quick)",
    )
    args = parser.parse_args(argv)

    rounds = args.rounds or (3 if args.quick else 7)
    min_round = args.min_round or (0.005 if args.quick else 0.1)

    mask = os.urandom(4)
    candidates = build_candidates()
    check_agreement(candidates, mask)

    funcs = {cand.name: cand.func for cand in candidates if cand.func is not None}
    results: dict[str, dict[int, float]] = {name: {} for name in funcs}
    for label, size in SIZES:
        print(f"timing {label} ...", file=sys.stderr)
        for name, seconds in measure_size(funcs, size, mask, rounds, min_round).items():
            results[name][size] = size / seconds / (1024 * 1024)

    ours_c = candidates[0].name
    baseline = results.get(ours_c)

    print("## WebSocket masking throughput")
    print()
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.machine()}, {platform.system()}; "
        f"websockets {_version('websockets')}, wsproto {_version('wsproto')}, "
        f"gevent-websocket {_version('gevent-websocket')}."
    )
    print(
        f"Median of {rounds} rounds (each at least {min_round * 1000:g} ms) "
        f"{'[--quick smoke run] ' if args.quick else ''}"
        "in MiB/s; in brackets, how many times faster our C version is "
        "(1.00x = as fast, below 1 = faster than ours)."
    )
    print()
    header = ["implementation", *(label for label, _ in SIZES)]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join([" --- "] + [" ---: "] * len(SIZES)) + "|")
    for cand in candidates:
        if cand.func is None:
            cells = [f"n/a ({cand.note})"] * len(SIZES)
        else:
            cells = []
            for _, size in SIZES:
                rate = results[cand.name][size]
                cell = _fmt_rate(rate)
                if baseline is not None:
                    cell += f" ({_fmt_ratio(baseline[size] / rate)})"
                cells.append(cell)
        print("| " + " | ".join([cand.name, *cells]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
