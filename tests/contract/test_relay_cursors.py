"""The relay's cursors (``relay_cursors``, 0012) behave alike on the fake, SQLite and
PostgreSQL (plain and partitioned by bucket): none before anything is marked, moved on by
``advance``, never moved back, one per stream and bucket.

PostgreSQL runs at ``$SHOUHOU_TEST_POSTGRES_URL`` (default ``postgresql://127.0.0.1:5432/test``),
in a schema of its own; skipped where no server runs, a failure in CI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pgscratch import scratch_schema
from shouhou.db import engine as db_engine
from shouhou.db.api_uow import SqlApiUnitOfWork
from shouhou.services.ports import ApiUnitOfWork
from shouhou.testing import MemoryApiUnitOfWork, MemoryStore

T0 = datetime(2024, 3, 1, 10, tzinfo=UTC)


def _postgres() -> Iterator[sa.Engine]:
    with scratch_schema("relay_cursors") as url:
        engine = db_engine.create(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(params=["memory", "sqlite", "postgresql", "partitioned"])
def new_uow(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], ApiUnitOfWork]]:
    if request.param == "memory":
        store = MemoryStore()
        yield lambda: MemoryApiUnitOfWork(store)
        return
    engines = (
        iter([db_engine.create(f"sqlite:///{tmp_path / 'relay.db'}")])
        if request.param == "sqlite"
        else _postgres()
    )
    sql = next(engines)
    db_engine.upgrade(sql, partitions=8 if request.param == "partitioned" else 0)
    yield lambda: SqlApiUnitOfWork(sql)
    if request.param == "sqlite":
        sql.dispose()
    else:
        next(engines, None)


def positions(new_uow: Callable[[], ApiUnitOfWork], stream: str) -> dict[int, int]:
    with new_uow() as uow:
        return uow.relay.positions(stream)


def advance(
    new_uow: Callable[[], ApiUnitOfWork], stream: str, bucket: int, to: int, at: datetime
) -> None:
    with new_uow() as uow:
        uow.relay.advance(stream, bucket, to, at)
        uow.commit()


def test_a_cursor_starts_at_nothing_moves_on_and_never_back(
    new_uow: Callable[[], ApiUnitOfWork],
) -> None:
    assert positions(new_uow, "S") == {}
    advance(new_uow, "S", 3, 5, T0)
    assert positions(new_uow, "S") == {3: 5}
    advance(new_uow, "S", 3, 2, T0 + timedelta(seconds=1))
    assert positions(new_uow, "S") == {3: 5}
    advance(new_uow, "S", 3, 9, T0 + timedelta(seconds=2))
    assert (positions(new_uow, "S"), positions(new_uow, "T")) == ({3: 9}, {})


def test_each_bucket_has_its_own_cursor(new_uow: Callable[[], ApiUnitOfWork]) -> None:
    advance(new_uow, "S", 0, 4, T0)
    advance(new_uow, "S", 255, 7, T0)
    advance(new_uow, "T", 0, 1, T0)
    advance(new_uow, "S", 0, 6, T0)
    assert positions(new_uow, "S") == {0: 6, 255: 7}
    assert positions(new_uow, "T") == {0: 1}


def test_a_move_rolled_back_is_not_kept(new_uow: Callable[[], ApiUnitOfWork]) -> None:
    with new_uow() as uow:
        uow.relay.advance("S", 1, 5, T0)
    assert positions(new_uow, "S") == {}
