"""Width and height from the first bytes of a PNG, JPEG or WebP file: pure, no I/O.

Formats: PNG (https://www.w3.org/TR/png/#11IHDR), JPEG (ITU T.81 B.2: markers, SOFn frame
header), WebP (https://developers.google.com/speed/webp/docs/riff_container: VP8, VP8L, VP8X).
"""

from __future__ import annotations

from typing import Final

# FFmpeg's own image outputs carry their frame header within the first few hundred bytes; a
# JPEG with large EXIF/ICC segments before it is simply not recognised (the caller then probes).
MAX_HEADER_BYTES: Final = 64 * 1024

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers C0..CF, except C4 (DHT), C8 (JPG extension) and CC (DAC).
_JPEG_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0..7, SOI.
_JPEG_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD9)})

Dimensions = tuple[str, int, int]
"""(FFmpeg codec name, width, height)"""


def dimensions(header: bytes) -> Dimensions | None:
    if header.startswith(_PNG_SIGNATURE):
        return _png(header)
    if header.startswith(b"\xff\xd8"):
        return _jpeg(header)
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return _webp(header)
    return None


def _valid(codec: str, width: int, height: int) -> Dimensions | None:
    return (codec, width, height) if width > 0 and height > 0 else None


def _png(data: bytes) -> Dimensions | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    return _valid("png", width, height)


def _jpeg(data: bytes) -> Dimensions | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker in _JPEG_SOF:
            if i + 9 > len(data):
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return _valid("mjpeg", width, height)
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _webp(data: bytes) -> Dimensions | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
        return _valid("webp", width, height)
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return _valid("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return _valid("webp", width, height)
    return None
