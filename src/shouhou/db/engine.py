"""Open a database: SQLite (WAL, immediate write transactions) or PostgreSQL; migrate it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
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
