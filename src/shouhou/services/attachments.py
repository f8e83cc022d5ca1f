"""Evidence files: what a file really is, parsed, not guessed from its first bytes.

A file is accepted as an image when Pillow decodes it whole, as a PDF when pypdf reads its
pages, and as an MP4 when its ISO base media boxes hold together: sizes that add up to the
end of the file, an ``ftyp`` box first with a known brand, and a ``moov`` box. So a file that
merely starts like one (``%PDF-<html>…``, ``AAAAftyp<svg…>``) is refused.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from collections.abc import Callable

#: Image formats accepted, by Pillow's name, and their media types.
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
#: The largest image decoded, in pixels (a small file may claim a huge canvas).
MAX_IMAGE_PIXELS = 64_000_000
#: ``ftyp`` major or compatible brands of MP4 and its ISO, 3GPP and QuickTime relatives.
MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9"}
    | {b"mp41", b"mp42", b"mp71", b"avc1", b"avc3", b"hvc1", b"hev1", b"av01", b"dash"}
    | {b"M4V ", b"M4A ", b"f4v ", b"MSNV", b"mmp4", b"qt  ", b"XAVC"}
    | {b"3gp4", b"3gp5", b"3gp6", b"3gp7", b"3g2a", b"3g2b"}
)
#: The top-level boxes an MP4 may hold (ISO/IEC 14496-12 and -14).
MP4_TOP_BOXES = frozenset(
    {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"meta", b"moof"}
    | {b"mfra", b"styp", b"sidx", b"ssix", b"prft", b"pdin", b"emsg", b"udta", b"pnot"}
)


def _image(data: bytes) -> str | None:
    from PIL import Image

    formats = list(IMAGE_TYPES)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=formats) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    return None
                image.verify()  # the structure: chunks, checksums, the end marker
            with Image.open(io.BytesIO(data), formats=formats) as image:
                image.load()  # every pixel decodes: a truncated or forged body fails here
                return IMAGE_TYPES.get(image.format or "")
    except Exception:  # Pillow raises many kinds on hostile input; each means "not an image"
        return None


def _pdf(data: bytes) -> str | None:
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns about every oddity
    try:
        reader = PdfReader(io.BytesIO(data), strict=True)
        if reader.is_encrypted or len(reader.pages) < 1:
            return None  # an agent could not read it
        reader.pages[0].mediabox  # noqa: B018 (a page object that does not parse raises)
    except Exception:  # pypdf raises many kinds on hostile input; each means "not a PDF"
        return None
    return "application/pdf"


def _boxes(data: bytes) -> list[tuple[bytes, int, int]] | None:
    """The top-level boxes of an ISO base media file (type, start, end), or None when their
    sizes do not add up to the end of the file."""
    boxes = []
    at = 0
    while at < len(data):
        if len(data) - at < 8:
            return None
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if len(data) - at < 16:
                return None
            (size,) = struct.unpack_from(">Q", data, at + 8)
            header = 16
        elif size == 0:  # the box runs to the end of the file
            size = len(data) - at
        if size < header or at + size > len(data):
            return None
        boxes.append((kind, at, at + size))
        at += size
    return boxes


def _mp4(data: bytes) -> str | None:
    boxes = _boxes(data)
    if not boxes or boxes[0][0] != b"ftyp":
        return None
    kinds = [kind for kind, _, _ in boxes]
    if b"moov" not in kinds or any(kind not in MP4_TOP_BOXES for kind in kinds):
        return None
    _, start, end = boxes[0]
    ftyp = data[start + 8 : end]
    if len(ftyp) < 8 or (len(ftyp) - 8) % 4:
        return None  # major brand, minor version, then whole compatible brands
    brands = {ftyp[:4]} | {ftyp[i : i + 4] for i in range(8, len(ftyp), 4)}
    return "video/mp4" if brands & MP4_BRANDS else None


#: Each accepted kind, tried in turn by a cheap look at the start, then parsed whole.
PARSERS: tuple[tuple[Callable[[bytes], bool], Callable[[bytes], str | None]], ...] = (
    (lambda d: d[:3] == b"\xff\xd8\xff" or d[:8] == b"\x89PNG\r\n\x1a\n", _image),
    (lambda d: d[:5] == b"%PDF-", _pdf),
    (lambda d: d[4:8] == b"ftyp", _mp4),
)
ACCEPTED_TYPES = ("image/jpeg", "image/png", "application/pdf", "video/mp4")


def media_type(data: bytes) -> str | None:
    """The accepted media type ``data`` parses as, or None."""
    for looks_like, parse in PARSERS:
        if looks_like(data):
            return parse(data)
    return None
