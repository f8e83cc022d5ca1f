"""A thread keeps its SQLite connection between writing units of work, within the pool's size,
and gives it back when it ends (docs/performance.md)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shouhou.db import engine as db_engine
from shouhou.db.uow import SqlUnitOfWork


@pytest.fixture
def sql(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = db_engine.create(f"sqlite:///{tmp_path / 'keep.db'}")
    db_engine.upgrade(engine)
    try:
        yield engine
    finally:
        db_engine.dispose(engine)


def driver_connection(uow: SqlUnitOfWork) -> object:
    assert uow.conn is not None
    return uow.conn.connection.driver_connection


def checked_out(sql: sa.Engine) -> int:
    pool = sql.pool
    assert isinstance(pool, sa.QueuePool)
    return pool.checkedout()


def test_consecutive_writers_on_one_thread_share_a_connection_readers_do_not(
    sql: sa.Engine,
) -> None:
    with SqlUnitOfWork(sql) as uow:
        first = driver_connection(uow)
        uow.commit()
    with SqlUnitOfWork(sql) as uow:
        assert driver_connection(uow) is first
    with SqlUnitOfWork(sql, readonly=True) as reader:
        assert driver_connection(reader) is not first
    assert checked_out(sql) == 1  # the kept one


def test_a_unit_of_work_that_failed_does_not_keep_its_connection(sql: sa.Engine) -> None:
    with SqlUnitOfWork(sql) as uow:
        first = driver_connection(uow)
    with pytest.raises(RuntimeError), SqlUnitOfWork(sql) as uow:
        assert driver_connection(uow) is first
        raise RuntimeError("boom")
    assert checked_out(sql) == 0
    with SqlUnitOfWork(sql) as uow:
        uow.deadlines.pending_count()  # a working connection, in a transaction of its own


def test_threads_keep_no_more_than_the_pool_holds_and_give_back_when_they_end(
    sql: sa.Engine,
) -> None:
    pool = sql.pool
    assert isinstance(pool, sa.QueuePool)
    threads = pool.size() + 3
    done = threading.Barrier(threads + 1)
    leave = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with SqlUnitOfWork(sql) as uow:
                uow.deadlines.pending_count()
                uow.commit()
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        done.wait()
        leave.wait()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    done.wait()
    assert not errors
    assert 1 <= checked_out(sql) <= pool.size()
    leave.set()
    for worker in workers:
        worker.join()
    gc.collect()
    assert checked_out(sql) == 0


def test_only_sqlite_files_keep_connections(tmp_path: Path) -> None:
    memory = db_engine.create("sqlite://")
    postgres = db_engine.create("postgresql://postgres@127.0.0.1:5432/test")
    try:
        assert db_engine.keeper(memory) is None
        assert db_engine.keeper(postgres) is None  # made lazily: no server is needed here
    finally:
        memory.dispose()
        postgres.dispose()


def test_a_writer_that_cannot_begin_holds_nothing_and_the_next_one_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    monkeypatch.setattr(db_engine, "SQLITE_BUSY_TIMEOUT_S", 0.1)
    path = tmp_path / "busy.db"
    sql = db_engine.create(f"sqlite:///{path}")
    db_engine.upgrade(sql)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database
        locked = (sqlite3.OperationalError, sa.exc.OperationalError)
        with pytest.raises(locked), SqlUnitOfWork(sql):
            pass
        assert checked_out(sql) == 0
        blocker.execute("ROLLBACK")
        with SqlUnitOfWork(sql) as uow:
            assert uow.deadlines.pending_count() == 0
            uow.commit()
    finally:
        blocker.close()
        db_engine.dispose(sql)
