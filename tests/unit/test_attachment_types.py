"""An evidence file is what its content parses as, not what its first bytes claim."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from shouhou.services.attachments import media_type
from shouhou.testing import _mp4_box, evidence_file

PNG = evidence_file("image/png")
JPEG = evidence_file("image/jpeg")
PDF = evidence_file("application/pdf")
MP4 = evidence_file("video/mp4")
FTYP = _mp4_box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2")
MOOV = _mp4_box(b"moov", _mp4_box(b"mvhd", bytes(100)))
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'


def _png_of(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (PDF, "application/pdf"),
        (MP4, "video/mp4"),
        (FTYP + MOOV, "video/mp4"),  # no media data yet is still a box structure
        (FTYP + MOOV + b"\x00\x00\x00\x00mdat" + bytes(8), "video/mp4"),  # size 0: to the end
        (FTYP + (1).to_bytes(4, "big") + b"moov" + (24).to_bytes(8, "big") + bytes(8), "video/mp4"),
    ],
    ids=["png", "jpeg", "pdf", "mp4", "mp4 without mdat", "mp4 last box to end", "64-bit size"],
)
def test_a_file_that_parses_is_accepted_as_its_type(data: bytes, kind: str) -> None:
    assert media_type(data) == kind


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-<html><script>alert(1)</script></html>",
        b"%PDF-1.7\n" + b"%" * 64,
        PDF[: len(PDF) // 2],  # cut short
        b"\x00\x00\x00\x18ftyp" + SVG,  # AAAAftyp<svg…>
        b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00isomiso2" + SVG,  # a real ftyp, then junk
        FTYP + MOOV + SVG,  # sizes that do not reach the end
        FTYP + _mp4_box(b"mdat", bytes(16)),  # no moov
        MOOV + FTYP,  # ftyp not first
        _mp4_box(b"ftyp", b"evil\x00\x00\x00\x00evil") + MOOV,  # no known brand
        _mp4_box(b"ftyp", b"isom\x00\x00") + MOOV,  # ftyp too short
        FTYP + b"\x00\x00\x00\x04moov",  # a size smaller than its header
        FTYP + b"\xff\xff\xff\xffmoov",  # a size past the end
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,  # a PNG signature and nothing
        PNG[:-20],  # a PNG cut short
        b"\xff\xd8\xff\xe0" + b"<html></html>",
        JPEG[: len(JPEG) // 2],
        _png_of(10_000, 10_000),  # 100 megapixels in a small file
        SVG,
        b"GIF89a" + bytes(20),
        b"MZ\x90\x00",
    ],
    ids=[
        "pdf header then html",
        "pdf header then filler",
        "truncated pdf",
        "ftyp then svg",
        "real ftyp then svg",
        "trailing junk after boxes",
        "mp4 without moov",
        "ftyp not first",
        "unknown brand",
        "short ftyp",
        "box smaller than header",
        "box past the end",
        "png signature only",
        "truncated png",
        "jpeg header then html",
        "truncated jpeg",
        "decompression bomb",
        "svg",
        "gif (not accepted)",
        "executable",
    ],
)
def test_a_file_that_only_starts_like_an_accepted_type_is_refused(data: bytes) -> None:
    assert media_type(data) is None
