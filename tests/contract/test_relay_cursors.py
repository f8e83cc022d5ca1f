"""The relay's cursors (``relay_cursors``, 0011) behave alike on the fake, SQLite and
PostgreSQL: 0 before anything is marked, moved on by ``advance``, never moved back, one per
stream.

PostgreSQL runs at ``$SHOUHOU_TEST_POSTGRES_URL`` (default ``postgresql://127.0.0.1:5432/test``),
in a schema of its own; skipped where no server runs, a failure in CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from shouhou.db import engine as db_engine
from shouhou.db.api_uow import SqlApiUnitOfWork
from shouhou.services.ports import ApiUnitOfWork
from shouhou.testing import MemoryApiUnitOfWork, MemoryStore

POSTGRES_URL = os.environ.get("SHOUHOU_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
T0 = datetime(2024, 3, 1, 10, tzinfo=UTC)


def _postgres() -> Iterator[sa.Engine]:
    schema = f"relay_cursors_{uuid.uuid4().hex[:12]}"
    admin = db_engine.create(POSTGRES_URL)
    try:
        try:
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        except sa.exc.OperationalError as exc:
            reason = f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc.orig}"
            if os.environ.get("CI"):
                pytest.fail(f"{reason} (CI must run the PostgreSQL tests)")
            pytest.skip(reason)
        url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        engine = db_engine.create(url.render_as_string(hide_password=False))
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
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
    db_engine.upgrade(sql)
    yield lambda: SqlApiUnitOfWork(sql)
    if request.param == "sqlite":
        sql.dispose()
    else:
        next(engines, None)


def position(new_uow: Callable[[], ApiUnitOfWork], stream: str) -> int:
    with new_uow() as uow:
        return uow.relay.position(stream)


def advance(new_uow: Callable[[], ApiUnitOfWork], stream: str, to: int, at: datetime) -> None:
    with new_uow() as uow:
        uow.relay.advance(stream, to, at)
        uow.commit()


def test_a_cursor_starts_at_0_moves_on_and_never_back(
    new_uow: Callable[[], ApiUnitOfWork],
) -> None:
    assert position(new_uow, "S") == 0
    advance(new_uow, "S", 5, T0)
    assert position(new_uow, "S") == 5
    advance(new_uow, "S", 3, T0 + timedelta(seconds=1))
    assert position(new_uow, "S") == 5
    advance(new_uow, "S", 9, T0 + timedelta(seconds=2))
    assert (position(new_uow, "S"), position(new_uow, "T")) == (9, 0)


def test_a_move_rolled_back_is_not_kept(new_uow: Callable[[], ApiUnitOfWork]) -> None:
    with new_uow() as uow:
        uow.relay.advance("S", 5, T0)
    assert position(new_uow, "S") == 0
