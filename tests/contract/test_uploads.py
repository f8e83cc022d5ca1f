"""The upload quota port on the fake, SQLite and PostgreSQL: counts per actor and day, taken
only within the limits, rolled back with the unit of work, and atomic under concurrent takes.

PostgreSQL runs at ``$SHOUHOU_TEST_POSTGRES_URL`` in a schema of its own; without the server
it is skipped (a failure in CI).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest

from pgscratch import scratch_schema
from shouhou.db import engine as db_engine
from shouhou.db.api_uow import SqlApiUnitOfWork
from shouhou.domain.values import SHANGHAI
from shouhou.errors import Invalid, OverQuota
from shouhou.services import uploads
from shouhou.services.ports import ApiUnitOfWork
from shouhou.testing import MemoryApiUnitOfWork, MemoryAttachmentStore, MemoryStore, evidence_file

DAY = date(2026, 3, 2)
#: How many uploads race for the last places of a quota.
RACERS = 8


@dataclass
class Backend:
    name: str
    new_uow: Callable[[], ApiUnitOfWork]


def _sql(url: str, name: str, partitions: int = 0) -> Iterator[Backend]:
    sql = db_engine.create(url)
    try:
        db_engine.upgrade(sql, partitions=partitions)
        yield Backend(name, lambda: SqlApiUnitOfWork(sql))
    finally:
        sql.dispose()


def _postgres(partitions: int = 0) -> Iterator[Backend]:
    with scratch_schema("uploads") as url:
        yield from _sql(url, "partitioned" if partitions else "postgresql", partitions)


#: The partitions of the partitioned PostgreSQL variant (0021).
PARTITIONS = 8


@pytest.fixture(params=["memory", "sqlite", "postgresql", "partitioned"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        store = MemoryStore()
        yield Backend("memory", lambda: MemoryApiUnitOfWork(store))
    elif request.param == "sqlite":
        yield from _sql(f"sqlite:///{tmp_path / 'uploads.db'}", "sqlite")
    else:
        yield from _postgres(PARTITIONS if request.param == "partitioned" else 0)


@pytest.fixture(params=["sqlite", "postgresql", "partitioned"])
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The backends with real transactions, for the races (the fake has no concurrency)."""
    if request.param == "sqlite":
        yield from _sql(f"sqlite:///{tmp_path / 'uploads.db'}", "sqlite")
    else:
        yield from _postgres(PARTITIONS if request.param == "partitioned" else 0)


def _take(backend: Backend, actor: str, size: int, files: int = 3, size_cap: int = 1000) -> bool:
    with backend.new_uow() as uow:
        taken = uow.uploads.take(actor, DAY, size, files, size_cap)
        uow.commit()
    return taken


def _counted(backend: Backend, actor: str, day: date = DAY) -> tuple[int, int]:
    with backend.new_uow() as uow:
        return uow.uploads.counted(actor, day)


def test_files_are_counted_up_to_the_limit_and_not_past_it(backend: Backend) -> None:
    taken = [_take(backend, "buyer:b1", 10) for _ in range(4)]

    assert taken == [True, True, True, False]
    assert _counted(backend, "buyer:b1") == (3, 30)


def test_a_file_that_would_pass_the_bytes_limit_counts_nothing(backend: Backend) -> None:
    assert _take(backend, "buyer:b1", 600)
    assert not _take(backend, "buyer:b1", 401)
    assert _take(backend, "buyer:b1", 400)  # exactly at the limit

    assert _counted(backend, "buyer:b1") == (2, 1000)


def test_actors_and_days_are_counted_apart(backend: Backend) -> None:
    for _ in range(3):
        assert _take(backend, "buyer:b1", 1)
    with backend.new_uow() as uow:
        next_day = uow.uploads.take("buyer:b1", date(2026, 3, 3), 1, 3, 1000)
        uow.commit()

    assert _take(backend, "buyer:b2", 1)
    assert next_day
    assert _counted(backend, "buyer:b1") == (3, 3)
    assert _counted(backend, "buyer:b2") == (1, 1)


def test_a_take_left_without_commit_is_rolled_back(backend: Backend) -> None:
    with backend.new_uow() as uow:
        assert uow.uploads.take("buyer:b1", DAY, 10, 3, 1000)

    assert _counted(backend, "buyer:b1") == (0, 0)


def test_uploads_racing_for_the_last_places_take_exactly_those(sql_backend: Backend) -> None:
    backend = sql_backend
    assert _take(backend, "buyer:b1", 1, files=RACERS // 2)  # the row exists, one place used
    start = threading.Barrier(RACERS)
    results: list[bool] = []

    def race() -> None:
        start.wait()
        results.append(_take(backend, "buyer:b1", 1, files=RACERS // 2))

    threads = [threading.Thread(target=race) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * (RACERS - RACERS // 2 + 1) + [True] * (RACERS // 2 - 1)
    assert _counted(backend, "buyer:b1") == (RACERS // 2, RACERS // 2)


def test_first_uploads_of_a_day_racing_each_make_the_row_once(sql_backend: Backend) -> None:
    backend = sql_backend
    start = threading.Barrier(RACERS)
    results: list[bool] = []

    def race() -> None:
        start.wait()
        results.append(_take(backend, "buyer:b9", 1, files=RACERS))

    threads = [threading.Thread(target=race) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [True] * RACERS
    assert _counted(backend, "buyer:b9") == (RACERS, RACERS)


# --- the use case, on each backend ---------------------------------------------------------

NOW = datetime(2026, 3, 2, 23, 59, 30, tzinfo=SHANGHAI)


def test_an_upload_over_the_quota_keeps_nothing_and_says_when_it_resets(backend: Backend) -> None:
    store = MemoryAttachmentStore()
    png, pdf = evidence_file("image/png"), evidence_file("application/pdf")
    quota = uploads.UploadQuota(files=1, bytes=10**6)

    kept = uploads.upload(backend.new_uow(), store, "buyer:b1", png, "a.png", quota, NOW)
    with pytest.raises(OverQuota) as refused:
        uploads.upload(backend.new_uow(), store, "buyer:b1", pdf, "b.pdf", quota, NOW)

    assert store.get(kept.sha256) is not None
    assert list(store.files) == [kept.sha256]
    assert refused.value.until == datetime(2026, 3, 3, tzinfo=SHANGHAI)
    assert refused.value.retry_after_s == 30
    assert refused.value.actor == "buyer:b1"


def test_a_file_that_does_not_parse_is_invalid_and_counts_nothing(backend: Backend) -> None:
    store = MemoryAttachmentStore()
    quota = uploads.UploadQuota(files=1, bytes=10**6)

    with pytest.raises(Invalid):
        uploads.upload(backend.new_uow(), store, "buyer:b1", b"%PDF-<html>", "x.pdf", quota, NOW)

    assert _counted(backend, "buyer:b1", NOW.date()) == (0, 0)
    assert store.files == {}
