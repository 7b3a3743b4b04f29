"""Tests for WebSocket payload masking (django_websocket.protocol.mask)."""

from __future__ import annotations

import array
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_websocket.protocol import mask as mask_module
from django_websocket.protocol.mask import ACCELERATED, apply_mask, apply_mask_python

speedups: ModuleType | None
try:
    speedups = importlib.import_module("django_websocket.protocol._speedups")
except ImportError:
    speedups = None

needs_speedups = pytest.mark.skipif(
    speedups is None,
    reason="C accelerator django_websocket.protocol._speedups is not built "
    "(run `python setup.py build_ext --inplace` to build it)",
)

Masker = Callable[[bytes | bytearray | memoryview, bytes], bytes]


def _reference(data: bytes, mask: bytes) -> bytes:
    """The RFC 6455 definition, one byte at a time; obviously right, very slow."""
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def _implementations() -> list[object]:
    impls: list[object] = [pytest.param(apply_mask_python, id="python")]
    if speedups is not None:
        impls.append(pytest.param(speedups.apply_mask, id="c"))
    else:
        impls.append(
            pytest.param(
                None,
                id="c",
                marks=pytest.mark.skip(reason="C accelerator _speedups is not built"),
            )
        )
    impls.append(pytest.param(apply_mask, id="public"))
    return impls


IMPLEMENTATIONS = _implementations()

MASKS = [
    b"\x00\x00\x00\x00",
    b"\xff\xff\xff\xff",
    b"\x37\xfa\x21\x3d",
    b"\x01\x02\x03\x04",
    b"\x80\x00\x00\x01",
    bytes([0xA5, 0x5A, 0xC3, 0x3C]),
]

# Straddles the switches between strategies in the pure-Python version: big
# integers / one-piece translate / chunked translate.
EDGE_SIZES = [
    base + delta
    for base in (mask_module._TRANSLATE_MIN_SIZE, mask_module._CHUNK_SIZE)
    for delta in (-5, -4, -1, 0, 1, 3, 4, 7, 8)
] + [2 * mask_module._CHUNK_SIZE + 3]


# --- known vectors -----------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_rfc6455_section_5_7_example(impl: Masker) -> None:
    # "A single-frame masked text message" from RFC 6455, section 5.7.
    masked = impl(b"Hello", bytes.fromhex("37fa213d"))
    assert masked == bytes.fromhex("7f9f4d5158")
    assert impl(masked, bytes.fromhex("37fa213d")) == b"Hello"


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_known_vectors(impl: Masker) -> None:
    assert impl(b"\x00" * 9, b"\x01\x02\x03\x04") == bytes([1, 2, 3, 4, 1, 2, 3, 4, 1])
    assert impl(b"\xff" * 6, b"\x0f\xf0\x00\xff") == bytes([0xF0, 0x0F, 0xFF, 0x00, 0xF0, 0x0F])
    assert impl(b"abc", b"\x00\x00\x00\x00") == b"abc"


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_empty_data(impl: Masker) -> None:
    for empty in (b"", bytearray(), memoryview(b"")):
        result = impl(empty, b"\x01\x02\x03\x04")
        assert result == b""
        assert type(result) is bytes


# --- agreement between implementations -------------------------------------


@pytest.mark.parametrize("mask", MASKS, ids=lambda m: m.hex())
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_every_short_length_matches_reference(impl: Masker, mask: bytes) -> None:
    payload = os.urandom(70)
    for size in range(71):
        data = payload[:size]
        assert impl(data, mask) == _reference(data, mask), size


@pytest.mark.parametrize("mask", MASKS, ids=lambda m: m.hex())
@needs_speedups
def test_c_and_python_agree_for_lengths_0_to_70(mask: bytes) -> None:
    assert speedups is not None
    payload = os.urandom(70)
    for size in range(71):
        data = payload[:size]
        assert speedups.apply_mask(data, mask) == apply_mask_python(data, mask), size


@pytest.mark.parametrize("size", EDGE_SIZES)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_sizes_around_python_strategy_switch(impl: Masker, size: int) -> None:
    data = os.urandom(size)
    mask = b"\x9c\x11\xe0\x42"
    assert impl(data, mask) == _reference(data, mask)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_large_input(impl: Masker) -> None:
    # 1 MiB + 3 exercises the wide loop, the GIL-free path and a ragged tail.
    size = (1 << 20) + 3
    data = os.urandom(size)
    mask = b"\x12\x34\x56\x78"
    masked = impl(data, mask)
    assert type(masked) is bytes
    assert len(masked) == size
    # Spot-check against the definition without running it on 1 MiB.
    for i in (0, 1, 2, 3, 4, 4097, size // 2, size - 4, size - 3, size - 2, size - 1):
        assert masked[i] == data[i] ^ mask[i % 4], i
    assert masked[-3:] == _reference(data[-3:], mask[(size - 3) % 4 :] + mask)[:3]
    assert impl(masked, mask) == data


@needs_speedups
def test_large_input_c_matches_python() -> None:
    assert speedups is not None
    data = os.urandom((1 << 20) + 3)
    mask = os.urandom(4)
    assert speedups.apply_mask(data, mask) == apply_mask_python(data, mask)


# --- input types -------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 7, 64, 1000, 70_001])
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_bytearray_and_memoryview_inputs(impl: Masker, size: int) -> None:
    data = os.urandom(size)
    mask = b"\xde\xad\xbe\xef"
    expected = impl(data, mask)
    for variant in (bytearray(data), memoryview(data), memoryview(bytearray(data))):
        result = impl(variant, mask)
        assert type(result) is bytes
        assert result == expected


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_input_is_not_modified(impl: Masker) -> None:
    original = os.urandom(3000)
    buf = bytearray(original)
    impl(buf, b"\x01\x02\x03\x04")
    impl(memoryview(buf), b"\x01\x02\x03\x04")
    assert buf == original


@pytest.mark.parametrize("size", [10, 3000, 150_001])
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_memoryview_slices_and_strides(impl: Masker, size: int) -> None:
    data = os.urandom(size * 3)
    mask = b"\x0a\x0b\x0c\x0d"
    offset_view = memoryview(data)[5 : 5 + size]
    assert impl(offset_view, mask) == _reference(data[5 : 5 + size], mask)
    strided_view = memoryview(data)[::3]
    assert impl(strided_view, mask) == _reference(data[::3], mask)
    reversed_view = memoryview(bytearray(data))[::-1]
    assert impl(reversed_view, mask) == _reference(data[::-1], mask)


@pytest.mark.parametrize("count", [10, 1000, 40_000])
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_memoryview_with_wide_items_uses_raw_bytes(impl: Masker, count: int) -> None:
    words = array.array("I", range(count))
    raw = words.tobytes()
    mask = b"\x11\x22\x33\x44"
    assert impl(memoryview(words), mask) == _reference(raw, mask)
    # Non-contiguous too: every other item.
    assert impl(memoryview(words)[::2], mask) == _reference(words[::2].tobytes(), mask)


@pytest.mark.parametrize("rows", [3, 3000])
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_multidimensional_memoryview(impl: Masker, rows: int) -> None:
    data = os.urandom(rows * 30)
    grid = memoryview(data).cast("B", shape=[rows, 30])
    mask = b"\x55\x66\x77\x88"
    assert impl(grid, mask) == _reference(data, mask)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_mask_may_be_any_bytes_like(impl: Masker) -> None:
    data = os.urandom(600)
    expected = _reference(data, b"\x01\x02\x03\x04")
    assert impl(data, bytearray(b"\x01\x02\x03\x04")) == expected  # type: ignore[arg-type]
    assert impl(data, memoryview(b"\x01\x02\x03\x04")) == expected  # type: ignore[arg-type]


# --- properties --------------------------------------------------------------


@given(data=st.binary(max_size=4096), mask=st.binary(min_size=4, max_size=4))
def test_involution_python(data: bytes, mask: bytes) -> None:
    masked = apply_mask_python(data, mask)
    assert len(masked) == len(data)
    assert apply_mask_python(masked, mask) == data


@given(data=st.binary(max_size=4096), mask=st.binary(min_size=4, max_size=4))
def test_involution_public(data: bytes, mask: bytes) -> None:
    assert apply_mask(apply_mask(data, mask), mask) == data


@needs_speedups
@given(data=st.binary(max_size=4096), mask=st.binary(min_size=4, max_size=4))
def test_c_matches_python_property(data: bytes, mask: bytes) -> None:
    assert speedups is not None
    masked = speedups.apply_mask(data, mask)
    assert masked == apply_mask_python(data, mask)
    assert speedups.apply_mask(masked, mask) == data


# --- errors ------------------------------------------------------------------


BAD_MASKS = [b"", b"\x01", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05", b"\x00" * 8]


@needs_speedups
@pytest.mark.parametrize("bad", BAD_MASKS, ids=len)
def test_c_rejects_bad_mask_length(bad: bytes) -> None:
    assert speedups is not None
    with pytest.raises(ValueError, match="4 bytes"):
        speedups.apply_mask(b"payload", bad)
    with pytest.raises(ValueError, match="4 bytes"):
        speedups.apply_mask(b"", bad)


@pytest.mark.parametrize("bad", BAD_MASKS, ids=len)
def test_python_rejects_bad_mask_length(bad: bytes) -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        apply_mask_python(b"payload", bad)
    with pytest.raises(ValueError, match="4 bytes"):
        apply_mask_python(b"", bad)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_rejects_non_buffer_arguments(impl: Masker) -> None:
    # Both versions accept buffer-protocol objects only, for data and mask.
    good_mask = b"\x01\x02\x03\x04"
    bad_data: list[object] = ["text", [1, 2, 3], 4, None]
    for data in bad_data:
        with pytest.raises(TypeError):
            impl(data, good_mask)  # type: ignore[arg-type]
    bad_masks: list[object] = ["abcd", [1, 2, 3, 4], 4, None]
    for mask in bad_masks:
        with pytest.raises(TypeError):
            impl(b"data", mask)  # type: ignore[arg-type]


@needs_speedups
def test_c_rejects_wrong_argument_count() -> None:
    assert speedups is not None
    with pytest.raises(TypeError):
        speedups.apply_mask(b"data")
    with pytest.raises(TypeError):
        speedups.apply_mask(b"data", b"\x01\x02\x03\x04", b"extra")
    with pytest.raises(TypeError):
        speedups.apply_mask(data=b"data", mask=b"\x01\x02\x03\x04")


# --- dispatch ----------------------------------------------------------------


def test_accelerated_flag_matches_import() -> None:
    assert (speedups is not None) is ACCELERATED
    if ACCELERATED:
        assert speedups is not None
        assert apply_mask is speedups.apply_mask
    else:
        assert apply_mask is apply_mask_python


def test_public_names_are_documented() -> None:
    assert apply_mask.__doc__
    assert apply_mask_python.__doc__
    assert set(mask_module.__all__) == {"ACCELERATED", "apply_mask", "apply_mask_python"}


def test_falls_back_to_python_when_speedups_cannot_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry in sys.modules makes the import raise ImportError, as if the
    # extension had never been built.  Load a private copy of mask.py so the
    # module everyone else uses is left alone.
    monkeypatch.setitem(sys.modules, "django_websocket.protocol._speedups", None)
    spec = importlib.util.spec_from_file_location("_mask_without_c", mask_module.__file__)
    assert spec is not None and spec.loader is not None
    fallback = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fallback)
    assert fallback.ACCELERATED is False
    assert fallback.apply_mask is fallback.apply_mask_python
    assert fallback.apply_mask(b"Hello", bytes.fromhex("37fa213d")) == bytes.fromhex("7f9f4d5158")
