"""Evidence uploads: a file checked, counted against its actor's daily quota, and kept.

The quota is per actor and per marketplace day (midnight to midnight in Asia/Shanghai): so
many files and so many bytes. The file is parsed before the transaction starts (parsing a
large PDF takes a while, and a SQLite writer holds the database's one write lock); then, in
one unit of work, the day's count is taken with a conditional update and the file is kept.
An upload over the quota keeps nothing and counts nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from shouhou.domain.model import Attachment
from shouhou.domain.values import SHANGHAI
from shouhou.errors import Invalid, OverQuota
from shouhou.services.ports import ApiUnitOfWork, AttachmentStore


@dataclass(frozen=True)
class UploadQuota:
    """What one actor may upload per marketplace day."""

    files: int
    bytes: int


def marketplace_day(now: datetime) -> date:
    """The marketplace's calendar day at ``now`` (Asia/Shanghai)."""
    return now.astimezone(SHANGHAI).date()


def next_midnight(now: datetime) -> datetime:
    """The start of the marketplace day after ``now``'s: when a day's quota resets."""
    tomorrow = marketplace_day(now) + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=SHANGHAI)


def _refusal(actor: str, attachment: Attachment, quota: UploadQuota, now: datetime) -> OverQuota:
    until = next_midnight(now)
    return OverQuota(
        f"{actor} has used up today's evidence upload quota ({quota.files} files, "
        f"{quota.bytes} bytes per day; this file is {attachment.size} bytes); uploads are "
        f"allowed again from {until.isoformat()}",
        actor=actor,
        until=until,
        retry_after_s=max(1, math.ceil((until - now).total_seconds())),
    )


def upload(
    new_uow: ApiUnitOfWork,
    store: AttachmentStore | None,
    actor: str,
    data: bytes,
    filename: str,
    quota: UploadQuota,
    now: datetime,
) -> Attachment:
    """Check ``data``, count it against ``actor``'s quota of ``now``'s day and keep it, in one
    unit of work; ``invalid`` for a bad file, ``OverQuota`` over the quota (nothing kept)."""
    if store is None:
        raise Invalid("this engine keeps no attachments")
    attachment = store.check(data, filename)
    with new_uow as uow:
        if not uow.uploads.take(
            actor, marketplace_day(now), attachment.size, quota.files, quota.bytes
        ):
            raise _refusal(actor, attachment, quota, now)
        kept = store.keep(data, attachment)
        uow.commit()
    return kept
