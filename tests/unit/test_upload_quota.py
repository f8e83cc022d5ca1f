"""The daily evidence upload quota on the fakes: the marketplace day, the use case, the
settings that size it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shouhou.domain.values import SHANGHAI
from shouhou.errors import OverQuota
from shouhou.services import uploads
from shouhou.settings import DEFAULT_UPLOAD_BYTES_PER_DAY, Settings
from shouhou.testing import MemoryApiUnitOfWork, MemoryAttachmentStore, MemoryStore, evidence_file

QUOTA = uploads.UploadQuota(files=2, bytes=10**6)
#: Midnight in Shanghai, written in UTC.
MIDNIGHT_UTC = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


def test_the_marketplace_day_turns_at_midnight_in_shanghai_not_in_utc() -> None:
    before = MIDNIGHT_UTC - timedelta(microseconds=1)

    assert uploads.marketplace_day(before) == date(2026, 3, 2)
    assert uploads.marketplace_day(MIDNIGHT_UTC) == date(2026, 3, 3)
    assert uploads.next_midnight(before) == MIDNIGHT_UTC
    assert uploads.next_midnight(MIDNIGHT_UTC) == MIDNIGHT_UTC + timedelta(days=1)


def test_uploads_on_the_fakes_are_counted_and_the_one_past_the_quota_refused() -> None:
    store, files = MemoryStore(), MemoryAttachmentStore()
    now = datetime(2026, 3, 2, 22, 0, tzinfo=SHANGHAI)
    kinds = ("image/png", "image/jpeg", "application/pdf")

    def send(kind: str) -> object:
        data = evidence_file(kind)
        return uploads.upload(
            MemoryApiUnitOfWork(store), files, "seller:s1", data, kind, QUOTA, now
        )

    send(kinds[0])
    send(kinds[1])
    with pytest.raises(OverQuota) as refused:
        send(kinds[2])

    assert refused.value.retry_after_s == 2 * 3600
    assert "seller:s1" in refused.value.message
    assert len(files.files) == 2
    sizes = len(evidence_file(kinds[0])) + len(evidence_file(kinds[1]))
    assert store.uploads == {("seller:s1", date(2026, 3, 2)): (2, sizes)}


def test_the_quota_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOUHOU_UPLOAD_FILES_PER_DAY", "7")
    monkeypatch.delenv("SHOUHOU_UPLOAD_BYTES_PER_DAY", raising=False)

    settings = Settings.from_env()

    assert (settings.upload_files_per_day, settings.upload_bytes_per_day) == (
        7,
        DEFAULT_UPLOAD_BYTES_PER_DAY,
    )
    assert DEFAULT_UPLOAD_BYTES_PER_DAY == 100 * 1024 * 1024


@pytest.mark.parametrize("raw", ["0", "-3", "1.5", "many"])
def test_a_quota_setting_that_is_not_a_positive_whole_number_is_refused(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("SHOUHOU_UPLOAD_BYTES_PER_DAY", raw)

    with pytest.raises(ValueError, match="SHOUHOU_UPLOAD_BYTES_PER_DAY"):
        Settings.from_env()
