"""Bad input files for robustness tests, made cheaply: a decompression-bomb PNG header and corrupt images."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_bomb_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A valid PNG header claiming ``width`` x ``height`` 8-bit gray pixels, with almost no data (~70 bytes).

    Pillow refuses it at ``Image.open`` (``DecompressionBombError``) above twice its limit; a real bomb would
    also decode, so it must be refused from the header.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + _chunk(b"IEND", b""))
    return path


def write_truncated_png(path: Path, size: tuple[int, int] = (24, 20)) -> Path:
    """A real PNG cut in half: the header reads, the pixels do not."""
    import numpy as np
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path
