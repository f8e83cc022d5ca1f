"""Open a database: SQLite (WAL, immediate write transactions) or PostgreSQL; migrate it."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DatabaseError, DisconnectionError, OperationalError
from sqlalchemy.pool import NullPool

from shouhou.domain.buckets import DEFAULT_BUCKETS
from shouhou.errors import Conflict, Invalid, NoDatabase

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
#: A PostgreSQL connection that waited in the pool longer than this, in seconds, is pinged
#: before it is handed out (a round trip; a dead one is replaced). One returned more recently
#: is handed out as it is: it was working a moment ago (docs/performance.md, issue 19).
PING_AFTER_IDLE_S = 1.0


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
    engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
    event.listen(engine, "handle_error", _lost_race)
    event.listen(engine.pool, "checkin", _returned)
    event.listen(engine.pool, "checkout", _pinger(engine))
    return engine


def _returned(dbapi_connection: Any, record: Any) -> None:
    """Note when a connection went back to the pool."""
    if record is not None:
        record.info["shouhou_returned"] = time.monotonic()


def _pinger(engine: Engine) -> Any:
    """The checkout hook that pings a connection which waited in the pool longer than
    ``PING_AFTER_IDLE_S`` (a new one has not waited), with the dialect's own ping. A failed
    ping makes the pool throw the connection away and hand out another (SQLAlchemy retries a
    checkout that raises ``DisconnectionError``): this is what survives a database restart,
    as ``pool_pre_ping`` did for every checkout, a round trip each."""

    def ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned = record.info.get("shouhou_returned")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection is dead: {exc}") from exc
        if not alive:
            raise DisconnectionError("a pooled connection is dead")

    return ping_if_idle


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


#: The table whose lock makes processes migrating a PostgreSQL database at once take turns
#: (a table lock, held for the migration's length; made by the first one to come).
MIGRATION_LOCK = "shouhou_migration_lock"


@dataclass(frozen=True)
class Layout:
    """What an installation chose once: how many buckets, and how many hash partitions its
    bucketed tables have on PostgreSQL (0: plain tables). Stored in ``shouhou_meta``."""

    buckets: int
    partitions: int = 0


def layout(engine: Engine) -> Layout:
    """The installation's layout, read once per engine from its meta table (a database
    without one, before migration 0011, has the default buckets and no partitions)."""
    found: Layout | None = engine.__dict__.get("shouhou_layout")
    if found is None:
        found = engine.__dict__["shouhou_layout"] = read_layout(engine) or Layout(DEFAULT_BUCKETS)
    return found


def read_layout(engine: Engine) -> Layout | None:
    """The layout stored in the database (None: it has no meta table yet)."""
    with engine.connect() as conn:
        conn.execution_options(shouhou_readonly=True)  # SQLite: BEGIN, not BEGIN IMMEDIATE
        if not inspect(conn).has_table("shouhou_meta"):
            conn.rollback()
            return None
        rows = dict(conn.execute(text("SELECT name, value FROM shouhou_meta")).tuples().all())
        conn.rollback()
    return Layout(int(rows["buckets"]), int(rows.get("partitions", 0)))


@dataclass(frozen=True)
class Upgraded:
    """What :func:`upgrade` did: the schema revision before (None: there was no schema) and
    after."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def upgrade(
    engine: Engine,
    revision: str = "head",
    *,
    buckets: int | None = None,
    partitions: int | None = None,
) -> Upgraded:
    """Bring the schema to ``revision`` (all migrations by default); the revisions before and
    after.

    ``buckets`` and ``partitions`` choose the layout of a new database (migration 0011 stores
    it); a database that has one already keeps it, and asking for another is refused
    (``Invalid``): buckets are never renumbered.

    On PostgreSQL several processes starting together take turns (a table lock): the first
    migrates, the others find the schema at ``revision``. SQLite's writers take turns anyway.
    """
    if engine.dialect.name != "postgresql":
        return _upgrade(engine, revision, buckets, partitions)
    with engine.connect() as lock:
        for _ in range(3):  # two processes creating the table at once: one of them fails
            try:
                lock.execute(text(f"CREATE TABLE IF NOT EXISTS {MIGRATION_LOCK} (id INTEGER)"))
                lock.commit()
                break
            except DatabaseError:
                lock.rollback()
        lock.execute(text(f"LOCK TABLE {MIGRATION_LOCK} IN ACCESS EXCLUSIVE MODE"))
        try:
            return _upgrade(engine, revision, buckets, partitions)
        finally:
            lock.rollback()  # ends the transaction that held the lock


def _upgrade(
    engine: Engine, revision: str, buckets: int | None, partitions: int | None
) -> Upgraded:
    stored = read_layout(engine)
    if stored is not None:
        asked = {"buckets": buckets, "partitions": partitions}
        kept = {"buckets": stored.buckets, "partitions": stored.partitions}
        for name, value in asked.items():
            if value is not None and value != kept[name]:
                raise Invalid(
                    f"this database has {kept[name]} {name}, chosen when it was made; "
                    f"it can't be given {value}"
                )
    if buckets is not None and buckets <= 0:
        raise Invalid(f"the number of buckets must be above 0, not {buckets}")
    if partitions:
        if engine.dialect.name != "postgresql":
            raise Invalid("partitions are for PostgreSQL; a SQLite database has none")
        if partitions < 0:
            raise Invalid(f"the number of partitions can't be {partitions}")
    before = current_revision(engine)
    config = alembic_config(engine)
    config.attributes["buckets"] = buckets
    config.attributes["partitions"] = partitions
    command.upgrade(config, revision)
    engine.__dict__.pop("shouhou_layout", None)
    return Upgraded(before, current_revision(engine))


def current_revision(engine: Engine) -> str | None:
    """The schema revision the migrations left in the database (None: no shouhou schema)."""
    with engine.connect() as conn:
        found = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
    return found


def head_revision() -> str:
    """The newest schema revision this version of shouhou knows."""
    head = _scripts().get_current_head()
    assert head is not None  # the package ships its migrations
    return head


def _scripts() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", "shouhou.db:migrations")
    return ScriptDirectory.from_config(cfg)


@dataclass(frozen=True)
class Found:
    """What a database URL names, looked at without creating or changing anything."""

    #: Where it is, for people: the file of a SQLite URL, else the URL without its password.
    where: str
    #: The SQLite file or PostgreSQL database is there.
    exists: bool
    #: The revision of shouhou's schema in it (None: it has none).
    revision: str | None = None
    #: Every table in it (in the connection's schema), shouhou's and any other.
    tables: tuple[str, ...] = ()
    #: It is (or would be) a SQLite file, not a database on a server.
    file: bool = False

    @property
    def shouhou(self) -> bool:
        """It holds shouhou's schema: a revision of shouhou's own migrations."""
        if self.revision is None:
            return False
        try:
            return _scripts().get_revision(self.revision) is not None
        except RevisionError:  # not one of ours
            return False

    @property
    def empty(self) -> bool:
        """No table, or only the empty revision table a cleared schema leaves."""
        return self.revision is None and not set(self.tables) - {"alembic_version", MIGRATION_LOCK}


def where(url: str) -> str:
    """``url`` as people read it: a SQLite URL's file, any other URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


#: What PostgreSQL says when the database to connect to does not exist.
MISSING_DATABASE = re.compile(r'database ".*" does not exist')


def look(url: str) -> Found:
    """What ``url`` names (NoDatabase when a server can't be reached); creates nothing: no
    SQLite file, no folder, no table."""
    shown = where(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            return Found(shown, exists=True)
        if not Path(parsed.database or "").is_file():
            return Found(shown, exists=False, file=True)
        # Read-only, so that looking can't create the file or change it.
        uri = Path(parsed.database or "").resolve().as_uri() + "?mode=ro"
        probe = create_engine(
            "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True), poolclass=NullPool
        )
    else:
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        probe = create_engine(parsed, poolclass=NullPool)
    try:
        with probe.connect() as conn:
            tables = tuple(sorted(inspect(conn).get_table_names()))
            revision = MigrationContext.configure(conn).get_current_revision()
            conn.rollback()
    except OperationalError as exc:
        # psycopg gives a failed connection no SQLSTATE: the server's message tells.
        if MISSING_DATABASE.search(str(exc.orig)):
            return Found(shown, exists=False)
        raise NoDatabase(f"can't reach {shown}: {_first_line(exc.orig)}") from None
    except DatabaseError as exc:
        raise NoDatabase(f"{shown} is not a database: {_first_line(exc.orig)}") from None
    finally:
        probe.dispose()
    file = parsed.get_backend_name() == "sqlite"
    return Found(shown, exists=True, revision=revision, tables=tables, file=file)


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def clear(url: str) -> Found:
    """Remove shouhou's schema and data from ``url`` and nothing else (``demo --fresh``).

    A SQLite file goes with its journal; in a PostgreSQL database shouhou's migrations are run
    backwards, which drops only the tables they made. A database that holds tables but not
    shouhou's schema is refused (NoDatabase), never touched.
    """
    found = look(url)
    if not found.exists or found.empty:
        return found
    if not found.shouhou:
        raise NoDatabase(
            f"{found.where} holds tables that are not shouhou's "
            f"({', '.join(found.tables[:5])}{' …' if len(found.tables) > 5 else ''}); "
            "refusing to clear it"
        )
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return found
    sql = create(url, pool_size=1, max_overflow=0)
    try:
        command.downgrade(alembic_config(sql), "base")
        with sql.begin() as conn:  # the revision table too: nothing of shouhou's is left
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            conn.execute(text(f"DROP TABLE IF EXISTS {MIGRATION_LOCK}"))
    finally:
        dispose(sql)
    return found
