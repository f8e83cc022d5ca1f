"""The SQL unit of work: one transaction and the repositories in it. Repositories never
commit; the unit of work does.

The statements every transition runs (load, save, append events, sync and fire deadlines,
claim) are plain SQL named in :mod:`shouhou.db.queries`, written once per dialect and run on
the driver's cursor (:mod:`shouhou.db.cursor`), inside the transaction SQLAlchemy opened:
building and compiling a Core statement costs ten to a hundred times what SQLite needs to run
it (docs/performance.md). The rest goes through SQLAlchemy Core.

The repositories: orders, cases and complaints (:mod:`shouhou.db.aggregates`), deadlines,
the outbox, the ledger, the event log and shops, each in the module of its name.

Concurrency (docs/deployment.md). On PostgreSQL the order row is the lock of everything that
belongs to the order: its cases, their deadlines and their events. A writing unit of work
locks the order when it loads it, before it changes anything (``FOR NO KEY UPDATE``); a worker
claims a due deadline together with its order's lock and passes over deadlines whose order
another process holds (``FOR NO KEY UPDATE OF d, o SKIP LOCKED``). As every process takes the
order first, none waits for another in a cycle. A stale write is still refused by the version
check, and firing is a conditional update whose row count is checked. On SQLite, ``BEGIN
IMMEDIATE`` makes writers take turns. Lost races and unique-key collisions become ``Conflict``.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine

from shouhou.db import engine as db_engine
from shouhou.db.buckets import Homes, Walk
from shouhou.db.cases import SqlCases
from shouhou.db.complaints import SqlComplaints
from shouhou.db.cursor import Cursor, dialect
from shouhou.db.deadlines import Known, SqlDeadlines
from shouhou.db.eventlog import SqlEventLog
from shouhou.db.ledger import SqlLedger
from shouhou.db.orders import SqlOrders
from shouhou.db.outbox import SqlOutbox
from shouhou.db.shops import SqlShops


def walk(engine: Engine) -> Walk:
    """The process's walk over the buckets of ``engine``'s database (one per engine)."""
    found: Walk | None = engine.__dict__.get("shouhou_walk")
    if found is None:
        found = engine.__dict__["shouhou_walk"] = Walk(db_engine.layout(engine).buckets)
    return found


class SqlUnitOfWork:
    """One database transaction; leaving without :meth:`commit` rolls it back."""

    def __init__(self, engine: Engine, *, readonly: bool = False) -> None:
        self.engine = engine
        self.readonly = readonly
        self.conn: Connection | None = None

    def __enter__(self) -> SqlUnitOfWork:
        self.layout = db_engine.layout(self.engine)  # read once per engine, before BEGIN
        kept = None if self.readonly else db_engine.keeper(self.engine)
        self._kept = kept
        self.conn = kept.take() if kept is not None else self.engine.connect()
        if self.readonly:
            self.conn.execution_options(shouhou_readonly=True)
        try:
            self.conn.begin()  # on SQLite, BEGIN IMMEDIATE may time out behind another writer
        except BaseException:
            self.conn.close()  # not kept: it may be in any state
            self.conn = None
            raise
        self._cursor = Cursor(self.conn, dialect(self.conn.dialect.name, readonly=self.readonly))
        self._cursor.buckets = self.layout.buckets
        known: Known = {}
        self.homes = homes = Homes(self._cursor, self.layout.buckets)
        self.orders = SqlOrders(self.conn, self._cursor, known, homes)
        self.cases = SqlCases(self.conn, self._cursor, known, homes)
        self.deadlines = SqlDeadlines(self.conn, self._cursor, known, homes, walk(self.engine))
        self.outbox = SqlOutbox(self._cursor, homes)
        self.complaints = SqlComplaints(self.conn, self._cursor, known, homes)
        self.ledger = SqlLedger(self.conn, homes)
        self.log = SqlEventLog(self.conn, self.write_through)
        self.shops = SqlShops(self.conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.conn is not None
        try:
            self._cursor.close()
            if self.conn.in_transaction():
                self.conn.rollback()
        finally:
            if self._kept is not None and exc_type is None:
                self._kept.give_back(self.conn)
            else:
                self.conn.close()
            self.conn = None

    def write_through(self) -> None:
        """Write what the repositories hold back (claimed deadlines fired, events and outbox
        rows), before a statement that may read them, and before commit."""
        self.deadlines.flush()
        self._cursor.write_held()

    def commit(self) -> None:
        assert self.conn is not None
        self.write_through()
        self.conn.commit()
