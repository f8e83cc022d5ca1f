"""Plumbing shared by the benchmarks: fresh databases, a bare driver connection on them,
recording what the engine sends to the driver and replaying it, and printing results.

The raw baseline of a benchmark is the same statements, with the same parameters and the
same transaction boundaries, replayed through the bare driver (sqlite3 or psycopg) on an
identical database: what is left between the two numbers is the engine's own cost (domain,
serialization, SQLAlchemy's connection handling, the unit of work).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shouhou.db import cursor as sql_cursor
from shouhou.db import engine as db_engine
from shouhou.db import tables
from shouhou.db import uow as sql_uow

DEFAULT_POSTGRES = os.environ.get(
    "SHOUHOU_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--url",
        default=DEFAULT_POSTGRES,
        help="PostgreSQL server and database; each run works in a schema of its own",
    )
    return parser


# --- databases ---------------------------------------------------------------------------


@dataclass
class Database:
    """A fresh database: its URL for the engine and a bare driver connection on it."""

    kind: str
    url: str
    connect_raw: Callable[[], Any]

    def engine(self) -> sa.Engine:
        return db_engine.create(self.url)


@contextmanager
def fresh_database(kind: str, server: str, name: str) -> Iterator[Database]:
    """A new, migrated database, removed afterwards: a SQLite file or a PostgreSQL schema."""
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix=f"shouhou-bench-{name}-"))
        path = folder / "bench.db"
        try:
            db = Database(kind, f"sqlite:///{path}", lambda: _sqlite_raw(path))
            _migrate(db.url)
            yield db
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = db_engine.create(server)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = sa.make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
            rendered = url.render_as_string(hide_password=False)
            db = Database(kind, rendered, lambda: _postgres_raw(server, schema))
            _migrate(db.url)
            yield db
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def _migrate(url: str) -> None:
    sql = db_engine.create(url)
    try:
        db_engine.upgrade(sql)
    finally:
        sql.dispose()


def _sqlite_raw(path: Path) -> sqlite3.Connection:
    """sqlite3 set up as the engine sets it up: WAL, synchronous=NORMAL, explicit BEGIN."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=db_engine.SQLITE_BUSY_TIMEOUT_S)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _postgres_raw(server: str, schema: str) -> Any:
    import psycopg

    url = sa.make_url(server)
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=url.database,
        options=f"-csearch_path={schema}",
    )


def number_buckets(
    conn: Any,
    count: int,
    order_id: Callable[[int], str],
    case_id: Callable[[int], str] | None = None,
    matched: int = 0,
) -> None:
    """``_nb (n, bucket, case_id)`` for n in 1..count: the bucket of order ``order_id(n)``
    (decision 0021: crc32 of the id, which SQL cannot compute alike on both databases), and,
    for the first ``matched``, a case id made from ``case_id(n)`` that hashes to the same
    bucket, as the engine makes them (the others keep ``case_id(n)``: never looked up by id).
    Bulk copies join it to give each row its bucket."""
    from shouhou.domain.buckets import DEFAULT_BUCKETS, bucket_of, in_bucket

    conn.execute(
        sa.text("CREATE TABLE _nb (n INTEGER PRIMARY KEY, bucket INTEGER, case_id VARCHAR(64))")
    )
    rows = []
    for n in range(1, count + 1):
        bucket = bucket_of(order_id(n), DEFAULT_BUCKETS)
        case = None if case_id is None else case_id(n)
        if case is not None and n <= matched:
            case = in_bucket(case, bucket, DEFAULT_BUCKETS)
        rows.append({"n": n, "bucket": bucket, "case_id": case})
    insert = sa.text("INSERT INTO _nb (n, bucket, case_id) VALUES (:n, :bucket, :case_id)")
    for start in range(0, len(rows), 10_000):
        conn.execute(insert, rows[start : start + 10_000])


def analyze(db: Database) -> None:
    """Statistics for PostgreSQL's planner, as autovacuum would have them in production."""
    if db.kind == "postgresql":
        sql = db.engine()
        try:
            with sql.connect() as conn:
                conn.execute(sa.text("ANALYZE"))
                conn.commit()
        finally:
            sql.dispose()


def mark_outbox_delivered(db: Database) -> None:
    sql = db.engine()
    try:
        with sql.begin() as conn:
            conn.execute(sa.update(tables.outbox).values(dispatched_at=sa.func.now()))
    finally:
        sql.dispose()


# --- recording and replay ----------------------------------------------------------------


@dataclass
class Recording:
    """What the engine sent to the driver, transaction by transaction."""

    transactions: list[list[tuple[str, Any, bool]]] = field(default_factory=list)
    current: list[tuple[str, Any, bool]] = field(default_factory=list)

    def statements(self) -> int:
        """Driver calls, ``BEGIN IMMEDIATE`` included (an ``executemany`` is one)."""
        return sum(len(t) for t in self.transactions)

    def executed(self) -> int:
        """SQL statements the database ran, without ``BEGIN`` and ``COMMIT``: an
        ``executemany`` of n rows counts n (on SQLite it runs the statement n times; on
        PostgreSQL psycopg sends the n in one pipeline)."""
        return sum(
            len(params) if many else 1
            for transaction in self.transactions
            for text, params, many in transaction
            if text != "BEGIN IMMEDIATE"
        )


class _RecordingCursor:
    def __init__(self, cursor: Any, recording: Recording) -> None:
        self._cursor = cursor
        self._recording = recording

    def execute(self, sql: str, params: Any = None) -> Any:
        self._recording.current.append((sql, params, False))
        return self._cursor.execute(sql, params)

    def executemany(self, sql: str, params: Any) -> Any:
        params = list(params)
        self._recording.current.append((sql, params, True))
        return self._cursor.executemany(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


@contextmanager
def recording(sql: sa.Engine) -> Iterator[Recording]:
    """Record every statement the unit of work sends, and where transactions end.

    Transaction boundaries are taken from the unit of work itself (its cursor is made right
    after the transaction begins; it commits or leaves), not from SQLAlchemy's ``begin`` and
    ``commit`` events: listeners on those cost a transition several microseconds, which would
    be charged to ours. Statements SQLAlchemy runs (the Core ones off the hot path) still come
    through its ``before_cursor_execute`` event.
    """
    rec = Recording()
    cursor_init = sql_cursor.Cursor.__init__
    commit = sql_uow.SqlUnitOfWork.commit
    leave = sql_uow.SqlUnitOfWork.__exit__

    def init(self: Any, conn: Any, dialect: Any) -> None:
        cursor_init(self, conn, dialect)
        if not dialect.postgresql:  # the engine's BEGIN IMMEDIATE goes to the driver
            rec.current.append(("BEGIN IMMEDIATE", (), False))
        self.cursor = _RecordingCursor(self.cursor, rec)

    def committed(self: Any) -> None:
        commit(self)
        if rec.current:
            rec.transactions.append(rec.current)
        rec.current = []

    def left(self: Any, *exc_info: Any) -> None:
        try:
            leave(self, *exc_info)
        finally:
            rec.current = []  # whatever was not committed was rolled back

    def statement(conn: Any, cursor: Any, text: str, params: Any, ctx: Any, many: bool) -> None:
        rec.current.append((text, params, many))

    sql_cursor.Cursor.__init__ = init  # type: ignore[method-assign]
    sql_uow.SqlUnitOfWork.commit = committed  # type: ignore[method-assign]
    sql_uow.SqlUnitOfWork.__exit__ = left  # type: ignore[method-assign]
    sa.event.listen(sql, "before_cursor_execute", statement)
    try:
        yield rec
    finally:
        sql_cursor.Cursor.__init__ = cursor_init  # type: ignore[method-assign]
        sql_uow.SqlUnitOfWork.commit = commit  # type: ignore[method-assign]
        sql_uow.SqlUnitOfWork.__exit__ = leave  # type: ignore[method-assign]
        sa.event.remove(sql, "before_cursor_execute", statement)


def replay(conn: Any, rec: Recording) -> float:
    """Run the recorded transactions on a bare driver connection; the seconds it took."""
    cursor = conn.cursor()
    started = time.perf_counter()
    for transaction in rec.transactions:
        for sql, params, many in transaction:
            if many:
                cursor.executemany(sql, params)
            else:
                cursor.execute(sql, params)
        conn.commit()
    return time.perf_counter() - started


#: Transactions run by one side before the other takes its turn: ours and the baseline
#: alternate in blocks, so that a change in the machine's load hits both alike.
BLOCK = 100


@dataclass
class Race:
    """Our seconds, the replay's and the floor's (``floor.py``), and the statements, added
    up."""

    ours: float = 0.0
    raw: float = 0.0
    floor: float = 0.0
    statements: int = 0
    executed: int = 0
    transactions: int = 0
    #: Whether the recorded statements include a ``BEGIN IMMEDIATE`` each (SQLite).
    begins: bool = False

    def add(self, ours: float, raw: float, rec: Recording, floor: float = 0.0) -> None:
        self.ours += ours
        self.raw += raw
        self.floor += floor
        self.statements += rec.statements()
        self.executed += rec.executed()
        self.transactions += len(rec.transactions)
        self.begins = self.begins or any(
            t and t[0][0] == "BEGIN IMMEDIATE" for t in rec.transactions
        )

    def per_transaction(self) -> float:
        return self.statements / max(1, self.transactions)

    def calls_per(self, items: int) -> float:
        """Driver calls per item, without BEGIN and COMMIT (an ``executemany`` is one)."""
        begins = self.transactions if self.begins else 0
        return (self.statements - begins) / max(1, items)

    def executed_per(self, items: int) -> float:
        """SQL statements run per item (transition, timeout), without BEGIN and COMMIT."""
        return self.executed / max(1, items)


# --- printing ----------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def header(title: str, db: str) -> None:
    print(f"# {title} — {db} — {machine()}")


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes): the machine is shared."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def row3(label: str, ours: float, raw: float, floor: float) -> None:
    """Our rate, the replay's and the floor's, and ours ÷ replay, ours ÷ floor."""
    print(
        f"{label:<34} ours {ours:>8.0f}/s  replay {raw:>8.0f}/s  floor {floor:>8.0f}/s"
        f"   ours÷replay {ours / raw:5.2f}   ours÷floor {ours / floor:5.2f}"
    )


def row(label: str, ours: float, raw: float, unit: str = "/s") -> None:
    """Our rate next to the baseline's, and the ratio (ours ÷ baseline)."""
    print(
        f"{label:<34} ours {ours:>10.0f}{unit}   raw {raw:>10.0f}{unit}   ratio {ours / raw:6.2f}"
    )
