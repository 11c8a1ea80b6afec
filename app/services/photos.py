"""A resident's photo, made safe to keep and show: a JPEG or PNG rewritten with only the parts
that draw the picture. Camera metadata (EXIF: GPS position, time, device), comments, text
chunks and anything after the image's end marker are dropped — that is where a photo carries
where it was taken, and where an HTML/script polyglot hides its payload.

No imaging library is installed (Pillow is not a dependency): both formats are chunked by
design, and the walk below only copies chunks, never decodes pixels. A file whose structure
does not parse is refused rather than passed on.
"""
from __future__ import annotations

import struct

from app.errors import DomainError

_BROKEN = "图片文件已损坏或格式不正确，请重新拍照上传"

# JPEG segments kept: the frame, tables and scans, restart intervals, JFIF (APP0) and the
# colour profile and Adobe colour transform (APP2, APP14). Dropped: APP1 (EXIF, XMP) and the
# other application segments, comments (COM).
_JPEG_KEPT_APPS = {0xE0, 0xE2, 0xEE}
_JPEG_STANDALONE = {0x01} | set(range(0xD0, 0xD8))


def _jpeg(data: bytes) -> bytes:
    if not data.startswith(b"\xff\xd8"):
        raise DomainError(_BROKEN, "photo")
    out = bytearray(b"\xff\xd8")
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            raise DomainError(_BROKEN, "photo")
        while i < n and data[i] == 0xFF:  # fill bytes before a marker
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0xD9:  # end of image: whatever follows is not the picture
            out += b"\xff\xd9"
            return bytes(out)
        if marker in _JPEG_STANDALONE:
            out += bytes((0xFF, marker))
            continue
        if i + 2 > n:
            raise DomainError(_BROKEN, "photo")
        (length,) = struct.unpack(">H", data[i:i + 2])
        if length < 2 or i + length > n:
            raise DomainError(_BROKEN, "photo")
        segment = data[i:i + length]
        i += length
        is_app = 0xE0 <= marker <= 0xEF
        if marker == 0xFE or (is_app and marker not in _JPEG_KEPT_APPS):
            continue
        out += bytes((0xFF, marker)) + segment
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            start = i
            while i + 1 < n and not (data[i] == 0xFF and data[i + 1] not in (0x00, *range(0xD0, 0xD8))):
                i += 1
            out += data[start:i]
            if i + 1 >= n:
                raise DomainError(_BROKEN, "photo")
    raise DomainError(_BROKEN, "photo")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Critical chunks and those that only say how to show the pixels; text, EXIF, time and
# private chunks are dropped.
_PNG_KEPT = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP",
             b"sBIT", b"bKGD", b"pHYs"}


def _png(data: bytes) -> bytes:
    if not data.startswith(_PNG_SIGNATURE):
        raise DomainError(_BROKEN, "photo")
    out = bytearray(_PNG_SIGNATURE)
    i, n = len(_PNG_SIGNATURE), len(data)
    while i + 8 <= n:
        length, kind = struct.unpack(">I4s", data[i:i + 8])
        end = i + 12 + length
        if end > n:
            raise DomainError(_BROKEN, "photo")
        if kind in _PNG_KEPT:
            out += data[i:end]
        i = end
        if kind == b"IEND":
            return bytes(out)
    raise DomainError(_BROKEN, "photo")


def cleaned(ext: str, data: bytes) -> bytes:
    """The photo without its metadata and trailing bytes (`ext`: jpg, jpeg or png)."""
    return _png(data) if ext == "png" else _jpeg(data)
