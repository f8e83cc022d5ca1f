"""Evidence attachments on disk, named by the SHA-256 of their content.

Files are checked before they are kept: at most ``MAX_ATTACHMENT_BYTES``, and only the types of
the allow-list, recognised by parsing the content (:mod:`shouhou.services.attachments`; the name
and the client's claimed type are not trusted). A file is stored without an extension, not
executable, under a path made from its hash alone, so nothing about it can be guessed or run;
the same content is stored once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from shouhou.domain.model import Attachment
from shouhou.errors import Invalid
from shouhou.services.attachments import ACCEPTED_TYPES, media_type

#: The largest attachment accepted, in bytes (10 MiB).
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
ALLOWED_TYPES = frozenset(ACCEPTED_TYPES)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check(data: bytes, filename: str, max_bytes: int = MAX_ATTACHMENT_BYTES) -> Attachment:
    """The attachment ``data`` would be; ``invalid`` when too large or of a refused type."""
    if not data:
        raise Invalid("an attachment can't be empty")
    if len(data) > max_bytes:
        raise Invalid(f"attachment {filename!r} is {len(data)} bytes; the limit is {max_bytes}")
    kind = media_type(data)
    if kind is None:
        allowed = ", ".join(sorted(ALLOWED_TYPES))
        raise Invalid(
            f"attachment {filename!r} is not an accepted type ({allowed}): its content does "
            "not parse as one"
        )
    clean = re.sub(r"[^\w.\- ]", "_", os.path.basename(filename))[:100]
    return Attachment(
        sha256=hashlib.sha256(data).hexdigest(), media_type=kind, size=len(data), filename=clean
    )


class FileAttachmentStore:
    """Attachments in a directory: ``ab/abcdef…`` holds the bytes, ``ab/abcdef….json`` the facts."""

    def __init__(self, root: Path, max_bytes: int = MAX_ATTACHMENT_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def _path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise Invalid(f"{sha256!r} is not an attachment name (a SHA-256 in hex)")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes, filename: str) -> Attachment:
        """Check and keep ``data``; the same content is kept once."""
        return self.keep(data, self.check(data, filename))

    def check(self, data: bytes, filename: str) -> Attachment:
        """What :meth:`put` would keep; ``invalid`` when too large or of a refused type."""
        return check(data, filename, self.max_bytes)

    def keep(self, data: bytes, attachment: Attachment) -> Attachment:
        """Keep ``data``, checked as ``attachment``; the same content is kept once."""
        if hashlib.sha256(data).hexdigest() != attachment.sha256:
            raise ValueError("keep() was given other bytes than the ones checked")  # a bug
        path = self._path(attachment.sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            partial = path.with_suffix(".partial")
            partial.write_bytes(data)
            partial.chmod(0o600)
            partial.replace(path)
            facts = {
                "media_type": attachment.media_type,
                "size": attachment.size,
                "filename": attachment.filename,
            }
            path.with_suffix(".json").write_text(json.dumps(facts), encoding="utf-8")
        return attachment

    def get(self, sha256: str) -> Attachment | None:
        """The facts of a stored attachment, or None."""
        meta = self._path(sha256).with_suffix(".json")
        if not meta.exists():
            return None
        facts = json.loads(meta.read_text(encoding="utf-8"))
        return Attachment(
            sha256=sha256,
            media_type=facts["media_type"],
            size=facts["size"],
            filename=facts["filename"],
        )

    def read(self, sha256: str) -> bytes:
        """The stored bytes (for an edge that serves them with their recorded media type)."""
        return self._path(sha256).read_bytes()
