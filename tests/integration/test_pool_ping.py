"""A PostgreSQL connection is pinged only when it waited in the pool a while (issue 19): a
unit of work that follows another at once makes no extra round trip, and a connection the
server dropped while it waited is replaced before anything uses it, as after a restart.

The server's side of a dropped connection is ``pg_terminate_backend`` on the connection's
own backend. PostgreSQL runs at ``$SHOUHOU_TEST_POSTGRES_URL`` (skipped where no server runs,
a failure in CI).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from pgscratch import POSTGRES_URL, scratch_schema
from shouhou.db import engine as db_engine


@pytest.fixture
def sql() -> Iterator[sa.Engine]:
    with scratch_schema("ping") as url:
        engine = db_engine.create(url, pool_size=1, max_overflow=0)
        try:
            yield engine
        finally:
            engine.dispose()


def _backend(sql: sa.Engine) -> int:
    with sql.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    admin = db_engine.create(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def test_a_connection_dropped_while_it_waited_is_replaced_before_use(
    sql: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_engine, "PING_AFTER_IDLE_S", 0.0)  # every wait is long enough
    first = _backend(sql)
    _terminate(first)
    second = _backend(sql)  # the ping found it dead: a new connection, and no error
    assert second != first


def test_a_connection_returned_a_moment_ago_is_not_pinged(
    sql: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_engine, "PING_AFTER_IDLE_S", 3600.0)
    pings: list[object] = []
    ping = sql.dialect.do_ping
    monkeypatch.setattr(sql.dialect, "do_ping", lambda conn: pings.append(conn) or ping(conn))
    first = _backend(sql)
    assert _backend(sql) == first and pings == []  # handed out again as it was
    # Dropped within the window, the connection fails its first statement; the pool throws
    # it (and every one older) away, and the next unit of work gets a new one.
    _terminate(first)
    with pytest.raises(sa.exc.OperationalError):
        _backend(sql)
    assert _backend(sql) != first
    monkeypatch.setattr(db_engine, "PING_AFTER_IDLE_S", 0.0)
    _backend(sql)
    assert len(pings) == 1  # waited long enough: pinged
