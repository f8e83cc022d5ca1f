"""The SQL unit of work and repositories. Repositories never commit; the unit of work does.

The statements every transition runs (load, save, append events, sync and fire deadlines,
claim) are plain SQL written once per dialect and run on the driver's cursor, inside the
transaction SQLAlchemy opened: building and compiling a Core statement costs ten to a hundred
times what SQLite needs to run it (docs/performance.md). The rest goes through SQLAlchemy Core.

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

import re
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Generic, TypeVar

from pydantic_core import to_json
from sqlalchemy import Connection, Engine, Table, func, select

from shouhou.db import engine as db_engine
from shouhou.db import serial, tables
from shouhou.db.complaints import SqlComplaints, SqlEventLog, SqlLedger, SqlShops
from shouhou.domain.events import Event
from shouhou.domain.model import Case, CaseStatus, Deadline, Order
from shouhou.errors import Conflict
from shouhou.services import outbox
from shouhou.services.ports import DueDeadline, OutboxMessage, StoredEvent

T = TypeVar("T", Case, Order)

#: SQLSTATEs of a lost race on PostgreSQL: unique violation, serialization failure, deadlock,
#: lock not available. The transaction is aborted; doing the use case again may succeed.
CONFLICT_SQLSTATES = frozenset({"23505", "40001", "40P01", "55P03"})

# --- the statements ----------------------------------------------------------------------
# Written with :name placeholders; PostgreSQL gets %(name)s. {state} reads a JSON column as
# text, {lock} locks the row of a writing unit of work on PostgreSQL.

_SQL = {
    "get_order": "SELECT {state}, version FROM orders WHERE id = :id{lock}",
    "get_case": "SELECT {state}, version FROM cases WHERE id = :id",
    "insert_order": (
        "INSERT INTO orders (id, shop, buyer, status, state, version, created_at, updated_at)"
        " VALUES (:id, :shop, :buyer, :status, :state, 1, :created_at, :updated_at)"
    ),
    "insert_case": (
        "INSERT INTO cases (id, order_id, shop, buyer, kind, status, state, version,"
        " opened_at, updated_at) VALUES (:id, :order_id, :shop, :buyer, :kind, :status,"
        " :state, 1, :opened_at, :updated_at)"
    ),
    "save_order": (
        "UPDATE orders SET state = :state, version = :version + 1, status = :status,"
        " updated_at = coalesce(:updated_at, updated_at) WHERE id = :id AND version = :version"
    ),
    "save_case": (
        "UPDATE cases SET state = :state, version = :version + 1, status = :status,"
        " kind = :kind, updated_at = coalesce(:updated_at, updated_at)"
        " WHERE id = :id AND version = :version"
    ),
    "timeline": (
        "SELECT seq, type, {data} FROM events WHERE stream = :stream AND stream_id = :stream_id"
        " ORDER BY seq"
    ),
    "pending": (
        "SELECT id, name, due_at, rule_id FROM deadlines WHERE subject_type = :subject_type"
        " AND subject_id = :subject_id AND status = 'pending'"
    ),
    "cancel": (
        "UPDATE deadlines SET status = 'cancelled' WHERE subject_type = :subject_type"
        " AND subject_id = :subject_id AND status = 'pending'"
    ),
    "schedule": (
        "INSERT INTO deadlines (subject_type, subject_id, name, due_at, on_expiry, rule_id,"
        " policy, status) VALUES (:subject_type, :subject_id, :name, :due_at, :on_expiry,"
        " :rule_id, :policy, 'pending')"
    ),
    "fire": (
        "UPDATE deadlines SET status = 'fired', fired_at = :fired_at"
        " WHERE subject_type = :subject_type AND subject_id = :subject_id"
        " AND status = 'pending' AND name = :name AND due_at = :due_at"
    ),
    "set_aside": (
        "UPDATE deadlines SET status = 'failed', error = :error"
        " WHERE id = :id AND status = 'pending'"
    ),
    "next_due": (
        "SELECT id, subject_type, subject_id, name, due_at FROM deadlines"
        " WHERE status = 'pending' AND due_at <= :now ORDER BY due_at, id LIMIT :limit"
    ),
}

#: Inserts of several rows at once: the statement and one row, numbered {i}. On SQLite the
#: row is run once per item (executemany: no round trips to save), each event taking the
#: next number of its stream in turn; on PostgreSQL all rows go in one statement, whose
#: subqueries all see the stream as it was before it, so row {i} takes that number plus {n}.
#: (The casts give PostgreSQL one type for a parameter used twice.)
_ROWS = {
    "append": (
        "INSERT INTO events (stream, stream_id, seq, type, at, actor, data) VALUES ",
        "(CAST(:stream AS VARCHAR(16)), CAST(:stream_id AS VARCHAR(64)), (SELECT"
        " coalesce(max(seq), 0) FROM events WHERE stream = CAST(:stream AS VARCHAR(16)) AND"
        " stream_id = CAST(:stream_id AS VARCHAR(64))) + {n}, :type{i}, :at{i}, :actor{i},"
        " :data{i})",
    ),
    "outbox": (
        "INSERT INTO outbox (type, subject_type, subject_id, occurred_at, data) VALUES ",
        "(:type{i}, :subject_type{i}, :subject_id{i}, :occurred_at{i}, :data{i})",
    ),
}

#: On PostgreSQL a worker claims the earliest due deadline whose order nobody holds, and
#: locks both; a deadline whose subject row is missing is never claimed.
_CLAIM_POSTGRESQL = """
SELECT d.id, d.subject_type, d.subject_id, d.name, d.due_at
FROM deadlines AS d
LEFT JOIN cases AS c ON d.subject_type = 'case' AND c.id = d.subject_id
JOIN orders AS o
  ON o.id = CASE WHEN d.subject_type = 'order' THEN d.subject_id ELSE c.order_id END
WHERE d.status = 'pending' AND d.due_at <= :now
ORDER BY d.due_at, d.id
LIMIT :limit
FOR NO KEY UPDATE OF d, o SKIP LOCKED
"""

#: The services never leave a deadline without its subject; should one exist, the claim
#: above passes over it, and this one still hands it out, so that the error surfaces.
_CLAIM_ORPHAN_POSTGRESQL = """
SELECT d.id, d.subject_type, d.subject_id, d.name, d.due_at
FROM deadlines AS d
WHERE d.status = 'pending' AND d.due_at <= :now
  AND NOT EXISTS (SELECT 1 FROM orders AS o WHERE d.subject_type = 'order' AND o.id = d.subject_id)
  AND NOT EXISTS (SELECT 1 FROM cases AS c WHERE d.subject_type = 'case' AND c.id = d.subject_id)
ORDER BY d.due_at, d.id
LIMIT :limit
FOR NO KEY UPDATE OF d SKIP LOCKED
"""

_PLACEHOLDER = re.compile(r"(?<![:\w]):(\w+)")


class _Dialect:
    """The statements for one database, and the value conversions SQLAlchemy's types do."""

    def __init__(self, name: str, *, readonly: bool) -> None:
        self.postgresql = name == "postgresql"
        self.readonly = readonly
        lock = not readonly
        fill = {
            "state": "CAST(state AS TEXT)" if self.postgresql else "state",
            "data": "CAST(data AS TEXT)" if self.postgresql else "data",
            "lock": " FOR NO KEY UPDATE" if self.postgresql and lock else "",
        }
        sql = {key: text.format(**fill) for key, text in _SQL.items()}
        if self.postgresql:
            sql["next_due"] = _CLAIM_POSTGRESQL
            sql["next_orphan"] = _CLAIM_ORPHAN_POSTGRESQL
            sql = {key: _PLACEHOLDER.sub(r"%(\1)s", text) for key, text in sql.items()}
        if not self.postgresql:
            for key, (head, row) in _ROWS.items():
                sql[key] = head + row.format(i="", n=1)
        self.sql = sql
        self._rows: dict[tuple[str, int], str] = {}
        #: The last moment converted, and what it became: the events and messages of one
        #: change share their time, so most conversions repeat the one before.
        self._last: tuple[datetime | None, Any] = (None, None)

    def rows(self, key: str, count: int) -> str:
        """On PostgreSQL, the statement inserting ``count`` rows at once."""
        found = self._rows.get((key, count))
        if found is None:
            head, row = _ROWS[key]
            text = head + ", ".join(row.format(i=f"_{i}", n=i + 1) for i in range(count))
            found = self._rows[(key, count)] = _PLACEHOLDER.sub(r"%(\1)s", text)
        return found

    def moment(self, value: datetime) -> Any:
        """``value`` as the database stores it: UTC, naive text on SQLite (as SQLAlchemy)."""
        last = self._last
        if last[0] is value:
            return last[1]
        if value.tzinfo is None:
            raise ValueError(f"a timezone-aware datetime is required, got {value!r}")
        utc = value if value.tzinfo is UTC else value.astimezone(UTC)
        out = utc if self.postgresql else utc.isoformat(" ", "microseconds")[:-6]  # "+00:00"
        self._last = (value, out)  # one assignment: safe when threads share the dialect
        return out

    def read_moment(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.fromisoformat(value).replace(tzinfo=UTC)


_DIALECTS: dict[tuple[str, bool], _Dialect] = {}


def _dialect(name: str, *, readonly: bool) -> _Dialect:
    found = _DIALECTS.get((name, readonly))
    if found is None:
        found = _DIALECTS[(name, readonly)] = _Dialect(name, readonly=readonly)
    return found


class _Cursor:
    """The driver's cursor inside the unit of work's transaction; lost races become Conflict."""

    def __init__(self, conn: Connection, dialect: _Dialect) -> None:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        self.cursor = dbapi.cursor()
        self.d = dialect
        self.sql = dialect.sql
        #: Each event appended in this unit of work, as JSON, by ``id``: the outbox keeps the
        #: same text. The event is held with it, so that its ``id`` is not reused meanwhile.
        self.dumped: dict[int, tuple[Event, str]] = {}

    def event_json(self, event: Event) -> str:
        """``event`` as the timeline stores it (serialized once per unit of work)."""
        found = self.dumped.get(id(event))
        if found is not None and found[0] is event:
            return found[1]
        text = serial.dump_json(event)
        self.dumped[id(event)] = (event, text)
        return text

    def run(self, key: str, params: dict[str, Any]) -> Any:
        try:
            self.cursor.execute(self.sql[key], params)
        except Exception as exc:
            _raise_conflict(exc, key)
            raise
        return self.cursor

    def insert(self, key: str, shared: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        """Insert ``rows`` (each with the ``shared`` values) in one round trip."""
        try:
            if self.d.postgresql:
                params = dict(shared)
                for i, row in enumerate(rows):
                    params.update({f"{name}_{i}": value for name, value in row.items()})
                self.cursor.execute(self.d.rows(key, len(rows)), params)
            else:
                self.cursor.executemany(self.sql[key], [shared | row for row in rows])
        except Exception as exc:
            _raise_conflict(exc, key)
            raise

    def many(self, key: str, rows: list[dict[str, Any]]) -> int:
        """Run ``key`` once per row (SQLite: no round trips to save); the rows changed."""
        try:
            self.cursor.executemany(self.sql[key], rows)
        except Exception as exc:
            _raise_conflict(exc, key)
            raise
        return int(self.cursor.rowcount)

    def one(self, key: str, params: dict[str, Any]) -> Any:
        return self.run(key, params).fetchone()

    def close(self) -> None:
        self.cursor.close()


def _raise_conflict(exc: Exception, what: str) -> None:
    """Raise Conflict for a lost race: another transaction wrote the same key first."""
    state = getattr(exc, "sqlstate", None)
    unique = isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)
    if state in CONFLICT_SQLSTATES or unique:
        raise Conflict(
            f"another transaction changed the same data first ({what}); try again"
        ) from exc


def _append(cur: _Cursor, stream: str, stream_id: str, events: Sequence[Event]) -> None:
    if not events:
        return
    moment = cur.d.moment
    cur.insert(
        "append",
        {"stream": stream, "stream_id": stream_id},
        [
            {
                "type": type(ev).__name__,
                "at": moment(ev.at),
                "actor": ev.actor,
                "data": cur.event_json(ev),
            }
            for ev in events
        ],
    )


def _timeline(cur: _Cursor, stream: str, stream_id: str) -> list[StoredEvent]:
    rows = cur.run("timeline", {"stream": stream, "stream_id": stream_id}).fetchall()
    return [
        StoredEvent(seq=seq, event=serial.load_event_json(kind, data)) for seq, kind, data in rows
    ]


#: What identifies a pending deadline row: name, due time, rule.
Slot = tuple[str, datetime, str]
#: The pending deadline that each subject loaded or synced in this unit of work has in the
#: table (None: none), so that an unchanged deadline costs no statement and a changed one no
#: read. Subjects not in it are looked up.
Known = dict[tuple[str, str], Slot | None]


def _slot(deadline: Deadline | None) -> Slot | None:
    return None if deadline is None else (deadline.name, deadline.due_at, deadline.rule_id)


class _Aggregates(Generic[T]):
    """Rows of one aggregate type: a JSON snapshot, a few indexed columns and a version."""

    stream: str
    table: Table

    def __init__(self, conn: Connection, cur: _Cursor, known: Known) -> None:
        self.conn = conn
        self.cur = cur
        self.known = known

    def _load(self, state: str, version: int) -> T:
        raise NotImplementedError

    def _columns(self, item: T) -> dict[str, Any]:
        """The indexed columns that change with the state."""
        raise NotImplementedError

    def _created(self, item: T) -> dict[str, Any]:
        """The columns written once, on insert."""
        raise NotImplementedError

    def _born(self, item: T) -> datetime:
        raise NotImplementedError

    def get(self, key: str) -> T | None:
        row = self.cur.one(f"get_{self.stream}", {"id": key})
        if row is None:
            return None
        item = self._load(row[0], row[1])
        if not self.cur.d.readonly:
            self.known[(self.stream, key)] = _slot(item.deadline)
        return item

    def add(self, item: T, events: Sequence[Event]) -> None:
        self.cur.run(
            f"insert_{self.stream}",
            {
                "id": item.id,
                "state": serial.dump_json(item),
                **self._created(item),
                **self._columns(item),
                "updated_at": self.cur.d.moment(events[-1].at if events else self._born(item)),
            },
        )
        _append(self.cur, self.stream, item.id, events)
        self.known[(self.stream, item.id)] = None  # new, so nothing of it is pending yet

    def save(self, item: T, events: Sequence[Event]) -> None:
        updated_at = self.cur.d.moment(events[-1].at) if events else None
        saved = self.cur.run(
            f"save_{self.stream}",
            {
                "id": item.id,
                "version": item.version,
                "state": serial.dump_json(item),
                "updated_at": updated_at,
                **self._columns(item),
            },
        )
        if saved.rowcount != 1:
            raise Conflict(f"{self.stream} {item.id} was changed by someone else; load it again")
        _append(self.cur, self.stream, item.id, events)

    def timeline(self, key: str) -> list[StoredEvent]:
        return _timeline(self.cur, self.stream, key)


class SqlOrders(_Aggregates[Order]):
    """Orders. In a writing unit of work on PostgreSQL, :meth:`get` locks the order row."""

    stream, table = "order", tables.orders

    def _load(self, state: str, version: int) -> Order:
        return serial.load_order_json(state, version)

    def _columns(self, item: Order) -> dict[str, Any]:
        return {"status": item.status.value}

    def _born(self, item: Order) -> datetime:
        return item.created_at

    def _created(self, item: Order) -> dict[str, Any]:
        return {
            "created_at": self.cur.d.moment(item.created_at),
            "shop": item.shop,
            "buyer": item.buyer,
        }


class SqlCases(_Aggregates[Case]):
    stream, table = "case", tables.cases

    def _load(self, state: str, version: int) -> Case:
        return serial.load_case_json(state, version)

    def _columns(self, item: Case) -> dict[str, Any]:
        return {"status": item.status.value, "kind": item.kind.value}

    def _born(self, item: Case) -> datetime:
        return item.opened_at

    def _created(self, item: Case) -> dict[str, Any]:
        return {
            "opened_at": self.cur.d.moment(item.opened_at),
            "order_id": item.order_id,
            "shop": item.shop,
            "buyer": item.buyer,
        }

    def list(
        self,
        *,
        shop: str | None = None,
        buyer: str | None = None,
        status: CaseStatus | None = None,
        limit: int = 100,
        order: str | None = None,
    ) -> list[Case]:
        query = select(tables.cases.c.state, tables.cases.c.version)
        if order is not None:
            query = query.where(tables.cases.c.order_id == order)
        if shop is not None:
            query = query.where(tables.cases.c.shop == shop)
        if buyer is not None:
            query = query.where(tables.cases.c.buyer == buyer)
        if status is not None:
            query = query.where(tables.cases.c.status == status.value)
        query = query.order_by(tables.cases.c.opened_at, tables.cases.c.id).limit(limit)
        return [serial.load_case(r.state, r.version) for r in self.conn.execute(query)]


class SqlDeadlines:
    def __init__(self, conn: Connection, cur: _Cursor, known: Known) -> None:
        self.conn = conn
        self.cur = cur
        self.known = known
        self.t = tables.deadlines
        self.scheduled: set[tuple[str, str]] = set()  # subjects given a deadline here
        #: What this unit of work claimed, by subject: (name, due time). A claimed
        #: row is locked (PostgreSQL) or the writer holds the database (SQLite), so only this
        #: unit of work can change it until it ends.
        self.claimed: dict[tuple[str, str], tuple[str, datetime]] = {}
        #: Claimed deadlines fired here and not yet marked, as parameters of ``fire``. They
        #: are marked together before any other statement on deadlines, and before commit.
        self.firing: list[dict[str, Any]] = []

    def _stored(self, subject_type: str, subject_id: str) -> Slot | None:
        key = (subject_type, subject_id)
        if key in self.known:
            return self.known[key]
        self.flush()
        row = self.cur.one("pending", {"subject_type": subject_type, "subject_id": subject_id})
        return None if row is None else (row[1], self.cur.d.read_moment(row[2]), row[3])

    def sync(self, subject_type: str, subject_id: str, deadline: Deadline | None) -> None:
        stored, wanted = self._stored(subject_type, subject_id), _slot(deadline)
        if stored == wanted:
            return
        self.flush()
        subject = {"subject_type": subject_type, "subject_id": subject_id}
        if stored is not None and self.cur.run("cancel", subject).rowcount != 1:
            raise Conflict(f"{subject_type} {subject_id}: its deadline changed meanwhile")
        if deadline is not None:
            self.cur.run(
                "schedule",
                {
                    **subject,
                    "name": deadline.name,
                    "due_at": self.cur.d.moment(deadline.due_at),
                    "on_expiry": deadline.on_expiry,
                    "rule_id": deadline.rule_id,
                    "policy": deadline.policy,
                },
            )
            self.scheduled.add((subject_type, subject_id))
        self.known[(subject_type, subject_id)] = wanted

    def fire(
        self, subject_type: str, subject_id: str, name: str, due_at: datetime, fired_at: datetime
    ) -> None:
        key = (subject_type, subject_id)
        row = self._fire_row(subject_type, subject_id, name, due_at, fired_at)
        if self.claimed.get(key) == (name, due_at) and self._unchanged(key, name, due_at):
            # Claimed here and unchanged since, so pending: marked with the batch.
            del self.claimed[key]
            self.firing.append(row)
            self.known[key] = None
            return
        self.flush()
        if self.cur.run("fire", row).rowcount != 1:
            raise Conflict(f"{subject_type} {subject_id}: deadline {name} was already handled")
        self.known[key] = None

    def _fire_row(
        self, subject_type: str, subject_id: str, name: str, due_at: datetime, fired_at: datetime
    ) -> dict[str, Any]:
        moment = self.cur.d.moment
        return {
            "subject_type": subject_type,
            "subject_id": subject_id,
            "name": name,
            "due_at": moment(due_at),
            "fired_at": moment(fired_at),
        }

    def next_due(self, now: datetime) -> DueDeadline | None:
        """The earliest due deadline; on PostgreSQL locked with its order, or None."""
        claimed = self.claim_due(now, 1)
        return claimed[0] if claimed else None

    def claim_due(self, now: datetime, limit: int) -> list[DueDeadline]:
        self.flush()
        params = {"now": self.cur.d.moment(now), "limit": limit}
        rows = self.cur.run("next_due", params).fetchall()
        if not rows and self.cur.d.postgresql:
            rows = self.cur.run("next_orphan", params).fetchall()
        read = self.cur.d.read_moment
        claimed = [
            DueDeadline(
                id=row_id,
                subject_type=subject_type,
                subject_id=subject_id,
                name=name,
                due_at=read(due_at),
            )
            for row_id, subject_type, subject_id, name, due_at in rows
        ]
        if not self.cur.d.readonly:
            for due in claimed:
                self.claimed[(due.subject_type, due.subject_id)] = (due.name, due.due_at)
        return claimed

    def flush(self) -> None:
        """Mark the claimed deadlines fired here with the conditional statement of ``fire``,
        sent at once (on PostgreSQL one pipeline, not a round trip each); a row that was not
        pending any more fails the commit (the claim's lock makes that a bug, not a race)."""
        if not self.firing:
            return
        firing, self.firing = self.firing, []
        marked = self.cur.many("fire", firing)
        if marked != len(firing):
            raise Conflict(f"{len(firing) - marked} claimed deadlines were handled meanwhile")

    def earliest_scheduled(self) -> datetime | None:
        slots = (self.known[key] for key in self.scheduled)
        return min((slot[1] for slot in slots if slot is not None), default=None)

    def still_due(self, due: DueDeadline) -> bool:
        """Asks nothing of the database: a claimed deadline is locked (PostgreSQL) or the
        writer holds the database (SQLite), so only this unit of work can have changed it,
        and it records every change of a subject's deadline it makes."""
        return self._unchanged((due.subject_type, due.subject_id), due.name, due.due_at)

    def _unchanged(self, key: tuple[str, str], name: str, due_at: datetime) -> bool:
        """Whether this unit of work left the subject's pending deadline ``name`` at
        ``due_at`` as it was (a subject it never touched counts as left)."""
        if key not in self.known:
            return True
        slot = self.known[key]
        return slot is not None and (slot[0], slot[1]) == (name, due_at)

    def set_aside(self, due: DueDeadline, error: str) -> bool:
        self.flush()
        marked = bool(self.cur.run("set_aside", {"id": due.id, "error": error}).rowcount == 1)
        if marked:  # the subject has no pending deadline now
            self.known[(due.subject_type, due.subject_id)] = None
        return marked

    def pending_count(self) -> int:
        self.flush()
        return int(
            self.conn.execute(
                select(func.count()).select_from(self.t).where(self.t.c.status == "pending")
            ).scalar_one()
        )


class _Outbox:
    """The outbox table (``tables.outbox``), written through the unit of work's cursor: every
    transition writes to it, so it is on the hot path."""

    def __init__(self, cur: _Cursor) -> None:
        self.cur = cur
        #: The data last serialized, and its text: the messages of one change share it.
        self._last: tuple[dict[str, Any], str] | None = None

    def add(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        moment = self.cur.d.moment
        self.cur.insert(
            "outbox",
            {},
            [
                {
                    "type": m.type,
                    "subject_type": m.subject_type,
                    "subject_id": m.subject_id,
                    "occurred_at": moment(m.occurred_at),
                    "data": self._data(m),
                }
                for m in messages
            ],
        )

    def _data(self, message: OutboxMessage) -> str:
        """The row's JSON: the data, and the event as the timeline stores it (the payload's
        view of it is rendered when the row is read, by :func:`outbox.from_stored`)."""
        data = message.data
        last = self._last
        if last is not None and last[0] is data:
            text = last[1]
        else:
            text = to_json(data).decode()
            self._last = (data, text)
        if message.event is None:
            return text
        stored = (
            f'"{outbox.STORED_EVENT}":{{"type":"{type(message.event).__name__}",'
            f'"data":{self.cur.event_json(message.event)}}}'
        )
        return f"{text[:-1]},{stored}}}" if text != "{}" else f"{{{stored}}}"


class SqlUnitOfWork:
    """One database transaction; leaving without :meth:`commit` rolls it back."""

    def __init__(self, engine: Engine, *, readonly: bool = False) -> None:
        self.engine = engine
        self.readonly = readonly
        self.conn: Connection | None = None

    def __enter__(self) -> SqlUnitOfWork:
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
        self._cursor = _Cursor(self.conn, _dialect(self.conn.dialect.name, readonly=self.readonly))
        known: Known = {}
        self.orders = SqlOrders(self.conn, self._cursor, known)
        self.cases = SqlCases(self.conn, self._cursor, known)
        self.deadlines = SqlDeadlines(self.conn, self._cursor, known)
        self.outbox = _Outbox(self._cursor)
        self.complaints = SqlComplaints(self.conn)
        self.ledger = SqlLedger(self.conn)
        self.log = SqlEventLog(self.conn)
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

    def commit(self) -> None:
        assert self.conn is not None
        self.deadlines.flush()
        self.conn.commit()
