"""Type stub for the optional C accelerator built from _speedups.c."""

def apply_mask(data: bytes | bytearray | memoryview, mask: bytes, /) -> bytes:
    """Return ``data`` XORed with the 4-byte WebSocket ``mask`` as new bytes."""
