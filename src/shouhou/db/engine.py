"""Open a database: SQLite (WAL, immediate write transactions) or PostgreSQL; migrate it."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import ExceptionContext, make_url

from shouhou.errors import Conflict

#: How long a SQLite writer waits for another one before giving up, in seconds.
SQLITE_BUSY_TIMEOUT_S = 30
#: Connections a process keeps open to PostgreSQL; a unit of work holds one while it runs.
POSTGRES_POOL_SIZE = 5
#: Connections a process may open beyond the pool at a peak (closed again when returned).
POSTGRES_MAX_OVERFLOW = 5
#: SQLSTATEs of a lost race that doing the use case again may win: serialization failure,
#: deadlock detected, lock not available. (Unique violations are left to the code that
#: inserts, which knows what a duplicate means.)
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def create(
    url: str,
    *,
    pool_size: int = POSTGRES_POOL_SIZE,
    max_overflow: int = POSTGRES_MAX_OVERFLOW,
) -> Engine:
    """An engine for ``url``; for SQLite, WAL mode and ``BEGIN IMMEDIATE`` for writes.

    ``postgresql://`` means psycopg 3. On PostgreSQL a lost race raised by any statement
    (deadlock, serialization failure, lock timeout) becomes ``Conflict``; the pool settings
    apply to PostgreSQL only (docs/deployment.md).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite(url, parsed.database)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    engine = create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow)
    event.listen(engine, "handle_error", _lost_race)
    return engine


class _Held:
    """The connection one thread keeps between its units of work; returned to the pool when
    the thread ends (its thread-local storage goes, and this with it)."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn: Connection | None = conn

    def __del__(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()


class ConnectionKeeper:
    """Lets each thread keep the connection of its last writing unit of work for the next one.

    Checking a connection out of SQLAlchemy's pool and back costs a SQLite transition about
    7 % of its time (docs/performance.md). Only SQLite files keep connections: there they are
    file handles, and a thread keeps one only while the pool has room for the other threads
    (``pool_size`` kept at most), so the API's thread pool never waits for one. PostgreSQL
    connections stay in the pool, shared by all threads.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.local = threading.local()

    def take(self) -> Connection:
        """The thread's kept connection, or a new one from the pool."""
        held: _Held | None = getattr(self.local, "held", None)
        if held is not None and held.conn is not None:
            conn, held.conn = held.conn, None
            if not conn.closed and not conn.invalidated:
                return conn
            conn.close()
        return self.engine.connect()

    def give_back(self, conn: Connection) -> None:
        """Keep ``conn`` (out of any transaction) for the thread's next unit of work if the pool
        has room, else return it to the pool."""
        pool = self.engine.pool
        room = getattr(pool, "size", None)
        checked_out = getattr(pool, "checkedout", None)
        if (
            conn.invalidated
            or conn.in_transaction()
            or room is None
            or checked_out is None
            or checked_out() > room()
        ):
            conn.close()
            return
        self.local.held = _Held(conn)

    def release(self) -> None:
        """Return the calling thread's kept connection to the pool (before ``dispose``)."""
        held: _Held | None = getattr(self.local, "held", None)
        if held is not None and held.conn is not None:
            conn, held.conn = held.conn, None
            conn.close()


def keeper(engine: Engine) -> ConnectionKeeper | None:
    """The connection keeper of an engine made by :func:`create`, if it keeps connections."""
    found: ConnectionKeeper | None = engine.__dict__.get("shouhou_keeper")
    return found


def dispose(engine: Engine) -> None:
    """Close the engine's connections, the calling thread's kept one included."""
    kept = keeper(engine)
    if kept is not None:
        kept.release()
    engine.dispose()


def _lost_race(context: ExceptionContext) -> BaseException | None:
    state = getattr(context.original_exception, "sqlstate", None)
    if state in RETRYABLE_SQLSTATES:
        return Conflict(f"another transaction got in the way ({state}); try again")
    return None


def _sqlite(url: str, database: str | None) -> Engine:
    memory = database in (None, "", ":memory:")
    if not memory:
        assert database is not None
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    if memory:
        from sqlalchemy.pool import StaticPool

        kwargs = {"connect_args": {"check_same_thread": False}, "poolclass": StaticPool}
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    if not memory:  # a memory database has one connection, shared already
        engine.__dict__["shouhou_keeper"] = ConnectionKeeper(engine)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get("shouhou_readonly", False)
        # Straight to the driver: through SQLAlchemy's execution this costs a tenth of a
        # transition (docs/performance.md).
        conn.connection.driver_connection.execute("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "shouhou.db:migrations")
    cfg.attributes["engine"] = engine
    return cfg


#: The PostgreSQL advisory lock that makes processes migrating at once take turns.
MIGRATION_LOCK = 0x5348_4F55  # "SHOU"


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (all migrations by default).

    On PostgreSQL several processes starting together take turns (an advisory lock): the first
    migrates, the others find the schema at ``revision``. SQLite's writers take turns anyway.
    """
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), revision)
        return
    with engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        try:
            command.upgrade(alembic_config(engine), revision)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            lock.commit()
