"""A tiny PNG decoder (8-bit RGB/RGBA, not interlaced: what Chromium writes), to check screenshots
without Pillow or matplotlib, and an encoder to crop them for a look."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def read_png(path: str | Path) -> np.ndarray:
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(height, 1 + width * bpp)
    rows = []
    prev = bytes(width * bpp)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:]
        if kind == 0:
            cur = line.tobytes()
        elif kind == 2:  # Up: vectorised
            cur = ((line.astype(np.uint16) + np.frombuffer(prev, np.uint8)) & 0xFF).astype(np.uint8).tobytes()
        else:
            cur = _unfilter_left(kind, line.tobytes(), prev, bpp)
        rows.append(cur)
        prev = cur
    out = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(height, width * bpp)
    return out.reshape(height, width, bpp)[:, :, :3]


def _unfilter_left(kind: int, line: bytes, prev: bytes, bpp: int) -> bytes:
    # Sub, Average and Paeth depend on the byte to the left: a sequential loop over plain ints.
    cur = bytearray(line)
    for x in range(len(cur)):
        a = cur[x - bpp] if x >= bpp else 0
        b = prev[x]
        if kind == 1:
            p = a
        elif kind == 3:
            p = (a + b) >> 1
        else:
            c = prev[x - bpp] if x >= bpp else 0
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        cur[x] = (cur[x] + p) & 0xFF
    return bytes(cur)


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    height, width, _ = rgb.shape
    rows = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
