#!/usr/bin/env python
"""permessage-deflate settings on typical JSON: compression ratio, CPU and memory per connection.

Usage::

    python bench/compression.py            # prints a Markdown table (BENCHMARKS.md has one)

A deterministic stream of 2,000 JSON events (chat messages, presence lists,
order updates, acks; 151 bytes on average, like a chat or dashboard feed) is
sent through the package's own codec (``PerMessageDeflate``) with context
takeover, as one connection would send it, under several ``DeflateConfig``
choices.  For each: the compression ratio (bytes in / bytes on the wire,
payload only), that ratio against zlib's defaults (window 15, memLevel 8,
level 6, compressor held), the CPU per compressed message (best of 5 passes,
this process), and what a connection keeps between two messages (zlib's
compressor, measured with ``tracemalloc``, or the bytes of window the codec
keeps instead).  The client side of the stream is checked: a single inflater,
as a browser keeps, must give back every message.
"""

from __future__ import annotations

import json
import random
import sys
import time
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django_websocket.protocol import DeflateConfig, DeflateParams, PerMessageDeflate

_WORDS = tuple(
    [
        "the",
        "a",
        "to",
        "and",
        "of",
        "in",
        "is",
        "you",
        "that",
        "it",
        "for",
        "on",
        "with",
        "as",
        "are",
        "this",
        "be",
        "at",
        "have",
        "not",
        "hello",
        "meeting",
        "deploy",
        "server",
        "latency",
        "ticket",
        "review",
        "merge",
        "release",
        "coffee",
    ]
)


def events(n: int = 2000, seed: int = 7) -> list[bytes]:
    """A deterministic feed of JSON events."""
    rnd = random.Random(seed)
    users = [f"user{i}" for i in range(50)]
    out = []
    for i in range(n):
        kind = rnd.choice(["chat", "presence", "update", "ack"])
        if kind == "chat":
            text = " ".join(rnd.choice(_WORDS) for _ in range(rnd.randint(3, 25)))
            event: dict[str, object] = {
                "type": "chat.message",
                "room": "general",
                "id": 100000 + i,
                "user": {"id": rnd.randrange(50), "name": rnd.choice(users)},
                "text": text,
                "ts": f"2026-12-03T21:{i % 60:02d}:{i % 60:02d}.{rnd.randrange(10**6):06d}Z",
            }
        elif kind == "presence":
            event = {"type": "presence", "users": rnd.sample(users, rnd.randint(2, 12))}
        elif kind == "update":
            items = [
                {
                    "sku": f"SKU-{rnd.randrange(10**5):05d}",
                    "qty": rnd.randint(1, 5),
                    "price": round(rnd.random() * 100, 2),
                }
                for _ in range(rnd.randint(1, 6))
            ]
            event = {"type": "order.update", "order": {"id": rnd.randrange(10**6), "items": items}}
        else:
            event = {"type": "ack", "id": 100000 + i}
        out.append(json.dumps(event).encode())
    return out


@dataclass(frozen=True)
class Choice:
    label: str
    config: DeflateConfig
    window_bits: int


CHOICES = (
    Choice(
        "zlib's defaults, compressor held",
        DeflateConfig(server_max_window_bits=15, memory_level=8, hold_compressor=True, min_size=0),
        15,
    ),
    Choice("**the package's defaults** (13-bit window, memLevel 2)", DeflateConfig(min_size=0), 13),
    Choice(
        "the package's defaults, compressor held",
        DeflateConfig(hold_compressor=True, min_size=0),
        13,
    ),
    Choice(
        "python-websockets' defaults (12-bit window, memLevel 5), held",
        DeflateConfig(server_max_window_bits=12, memory_level=5, hold_compressor=True, min_size=0),
        12,
    ),
    Choice(
        "15-bit window, nothing held between messages",
        DeflateConfig(server_max_window_bits=15, memory_level=8, min_size=0),
        15,
    ),
)


def run(choice: Choice, stream: list[bytes]) -> dict[str, float]:
    params = DeflateParams(server_max_window_bits=choice.window_bits)
    best = float("inf")
    wire = 0
    for _ in range(5):
        codec = PerMessageDeflate(params, choice.config)
        start = time.perf_counter()
        payloads = [codec.compress(message) for message in stream]
        best = min(best, time.perf_counter() - start)
        wire = sum(len(p) for p in payloads)
    browser = zlib.decompressobj(-15)
    for message, payload in zip(stream, payloads, strict=True):
        if browser.decompress(payload + b"\x00\x00\xff\xff") != message:
            raise SystemExit(f"{choice.label}: the client could not inflate a message")
    # What one connection keeps between two messages, after the whole stream.
    tracemalloc.start()
    codec = PerMessageDeflate(params, choice.config)
    for message in stream[:200]:
        codec.compress(message)
    kept = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {
        "ratio": sum(len(m) for m in stream) / wire,
        "us_per_message": best / len(stream) * 1e6,
        "kept_kib": kept / 1024,
    }


def main() -> int:
    stream = events()
    results = [(choice, run(choice, stream)) for choice in CHOICES]
    base = results[0][1]["ratio"]
    print(
        f"{len(stream):,} JSON events, {sum(map(len, stream)) / len(stream):.0f} bytes on "
        f"average, context takeover, Python {sys.version.split()[0]}, zlib {zlib.ZLIB_VERSION}\n"
    )
    print(
        "| outgoing compression | ratio | vs zlib's defaults | CPU us/message "
        "| kept between messages (KiB) |"
    )
    print("|---|---|---|---|---|")
    for choice, r in results:
        print(
            f"| {choice.label} | {r['ratio']:.2f} | {r['ratio'] / base:.3f} | "
            f"{r['us_per_message']:.1f} | {r['kept_kib']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
