"""WebSocket payload masking (RFC 6455, section 5.3).

Every frame a client sends is masked: payload byte ``i`` is XORed with
``mask[i % 4]``, where ``mask`` is the frame's 4-byte masking key.  Since XOR is
its own inverse, the same function masks and unmasks.

:func:`apply_mask` is the optional C accelerator
(``django_websocket.protocol._speedups``) when it was built and imports, and
:func:`apply_mask_python` otherwise.  :data:`ACCELERATED` tells which one is
in use.  Both give identical results for every input.

How the pure-Python fallback works
----------------------------------
Python has no vectorised XOR over bytes, so two tricks compete, and the faster
one depends on the payload size (measured on CPython 3.11; see
``bench/bench_mask.py``):

* Short payloads: turn the payload and the mask, repeated to the payload's
  length, into two big integers, XOR them and convert back.  Only a handful of
  interpreter steps, but the integer conversions cost a few ns per byte.
* Long payloads: ``bytes.translate`` with a 256-byte table maps every byte
  ``b`` to ``b ^ k`` in C.  The payload is split into its four interleaved
  strands ``data[j::4]`` (each strand is XORed with the single key byte
  ``mask[j]``), each strand is translated, and slice assignment weaves it back
  into a ``bytearray``.  The fixed cost is higher, the per-byte cost about
  2.5 times lower.

The two approaches meet at about 512 bytes.  Payloads above 64 KiB are
translated in 64 KiB pieces written straight into the result, so the extra
memory stays at one chunk rather than a second copy of the payload.  The 256
possible tables (64 KiB in total) are built once, on first use, so no per-mask
work remains; a cache keyed on the mask would not help because clients must
pick a fresh random key for every frame.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import Final

__all__ = ["ACCELERATED", "apply_mask", "apply_mask_python"]

BytesLike = bytes | bytearray | memoryview

# Payloads of this many bytes or more take the bytes.translate route.
_TRANSLATE_MIN_SIZE: Final = 512

# Payloads larger than this are translated in chunks of this size; it must be
# a multiple of 4 so that every chunk starts at mask offset 0.
_CHUNK_SIZE: Final = 64 * 1024

# A module-level alias saves an attribute lookup on every small-frame call.
_from_bytes: Final = int.from_bytes


@functools.cache
def _xor_tables() -> tuple[bytes, ...]:
    """Return the 256 translation tables; table ``k`` maps byte ``b`` to ``b ^ k``."""
    # Build each table with one big-integer XOR of the identity table against
    # k repeated 256 times; that is far quicker than a per-byte generator.
    identity = int.from_bytes(bytes(range(256)), "little")
    return tuple(
        (identity ^ int.from_bytes(bytes((k,)) * 256, "little")).to_bytes(256, "little")
        for k in range(256)
    )


def apply_mask_python(data: BytesLike, mask: bytes) -> bytes:
    """Return ``data`` XORed with the 4-byte WebSocket ``mask``, in pure Python.

    This is the reference implementation and the fallback used when the C
    accelerator is unavailable.  ``data`` may be bytes, a bytearray or any
    memoryview (including non-contiguous or multi-byte-item views, which are
    read as their raw bytes in C order).  ``mask`` must be exactly 4 bytes,
    otherwise :exc:`ValueError` is raised.  Empty ``data`` gives ``b""``.
    Applying the same mask twice returns the original bytes.
    """
    # Small frames are dominated by fixed costs, so the usual case (a bytes
    # mask) gets away with two cheap tests.  Anything else goes through
    # memoryview(), which, like the C version, accepts only buffer-protocol
    # objects (bytes(4), say, would silently give four zero bytes).
    if type(mask) is not bytes or len(mask) != 4:
        mask = memoryview(mask).tobytes()
        if len(mask) != 4:
            raise ValueError(f"mask must contain exactly 4 bytes, got {len(mask)}")
    if type(data) is not bytes and type(data) is not bytearray:
        # A flat view of the raw bytes, so that len() and slicing count bytes.
        view = memoryview(data)
        data = view.cast("B") if view.c_contiguous else view.tobytes()

    size = len(data)
    if size < _TRANSLATE_MIN_SIZE:
        # Repeat the key past the payload's length and trim it; both sides are
        # then read as little-endian integers so byte i meets mask[i % 4].
        key = (mask * ((size >> 2) + 1))[:size]
        return (_from_bytes(data, "little") ^ _from_bytes(key, "little")).to_bytes(size, "little")

    tables = _xor_tables()
    table0, table1, table2, table3 = (
        tables[mask[0]],
        tables[mask[1]],
        tables[mask[2]],
        tables[mask[3]],
    )

    if size <= _CHUNK_SIZE:
        buf = bytearray(data)
        buf[0::4] = buf[0::4].translate(table0)
        buf[1::4] = buf[1::4].translate(table1)
        buf[2::4] = buf[2::4].translate(table2)
        buf[3::4] = buf[3::4].translate(table3)
        return bytes(buf)

    # Large payloads go chunk by chunk into a preallocated result.  Masking in
    # one piece and then copying into bytes peaks at twice the payload size;
    # past the trim threshold glibc then gives those pages back to the kernel
    # on every call, and page faults made the next call up to 2x slower.  The
    # BytesIO here owns the only reference to its initial zero bytes, so the
    # writes land in that very object and getvalue() hands it back without a
    # copy (CPython behaviour; elsewhere it merely costs one copy).  Chunks are
    # a multiple of 4 bytes long, so each one starts at mask offset 0 again.
    view = memoryview(data)
    out = io.BytesIO(bytes(size))
    for start in range(0, size, _CHUNK_SIZE):
        buf = bytearray(view[start : start + _CHUNK_SIZE])
        buf[0::4] = buf[0::4].translate(table0)
        buf[1::4] = buf[1::4].translate(table1)
        buf[2::4] = buf[2::4].translate(table2)
        buf[3::4] = buf[3::4].translate(table3)
        out.write(buf)
    return out.getvalue()


_apply_mask_c: Callable[[BytesLike, bytes], bytes] | None
try:
    from django_websocket.protocol._speedups import apply_mask as _apply_mask_c
except ImportError:
    _apply_mask_c = None

#: True when :func:`apply_mask` is the C accelerator from ``_speedups``.
ACCELERATED: Final[bool] = _apply_mask_c is not None

#: Return ``data`` XORed with the 4-byte ``mask`` (RFC 6455, 5.3) as new bytes.
#: This is the C accelerator when available, else :func:`apply_mask_python`;
#: both accept bytes, bytearray or memoryview data and raise ValueError unless
#: ``mask`` is exactly 4 bytes long.
apply_mask: Final[Callable[[BytesLike, bytes], bytes]] = (
    _apply_mask_c if _apply_mask_c is not None else apply_mask_python
)
