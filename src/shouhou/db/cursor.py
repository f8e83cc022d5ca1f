"""The driver's cursor inside the unit of work's transaction, and the dialect it speaks:
the named statements of :mod:`shouhou.db.queries` written for one database, and the value
conversions SQLAlchemy's types would do. Lost races become ``Conflict``."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from shouhou.db import queries, serial
from shouhou.domain.events import Event
from shouhou.errors import Conflict

#: SQLSTATEs of a lost race on PostgreSQL: unique violation, serialization failure, deadlock,
#: lock not available. The transaction is aborted; doing the use case again may succeed.
CONFLICT_SQLSTATES = frozenset({"23505", "40001", "40P01", "55P03"})

PLACEHOLDER = re.compile(r"(?<![:\w]):(\w+)")


class Dialect:
    """The statements for one database, and the value conversions SQLAlchemy's types do."""

    def __init__(self, name: str, *, readonly: bool) -> None:
        self.postgresql = name == "postgresql"
        self.readonly = readonly
        lock = not readonly
        fill = {
            "state": "CAST(state AS TEXT)" if self.postgresql else "state",
            "data": "CAST(data AS TEXT)" if self.postgresql else "data",
            "lock": " FOR NO KEY UPDATE" if self.postgresql and lock else "",
            # a locking clause cannot take the nullable side of an outer join: the order is
            # locked in its own subquery; it is in the case's bucket, named so that a
            # partitioned table is read in one partition
            "join_o": (
                "LEFT JOIN LATERAL (SELECT id, state, version FROM orders"
                " WHERE bucket = :bucket AND id = c.order_id FOR NO KEY UPDATE) AS o ON true"
                if self.postgresql and lock
                else "LEFT JOIN orders AS o ON o.bucket = :bucket AND o.id = c.order_id"
            ),
            "c_state": "CAST(c.state AS TEXT)" if self.postgresql else "c.state",
            "o_state": "CAST(o.state AS TEXT)" if self.postgresql else "o.state",
            "state_in": "CAST(:state AS JSON)" if self.postgresql else ":state",
        }
        sql = {key: text.format(**fill) for key, text in queries.STATEMENTS.items()}
        if self.postgresql:
            sql["next_due"] = queries.CLAIM_POSTGRESQL
            sql["next_orphan"] = queries.CLAIM_ORPHAN_POSTGRESQL
            sql["prefetch_cases"] = queries.PREFETCH_CASES_POSTGRESQL
            sql["prefetch_orders"] = queries.PREFETCH_ORDERS_POSTGRESQL
            sql = {key: PLACEHOLDER.sub(r"%(\1)s", text) for key, text in sql.items()}
        else:
            sql["prefetch_cases"] = queries.PREFETCH_CASES_SQLITE
            sql["prefetch_orders"] = queries.PREFETCH_ORDERS_SQLITE
        self.sql = sql
        self._rows: dict[tuple[str, int], str] = {}
        #: The last moment converted, and what it became: the events and messages of one
        #: change share their time, so most conversions repeat the one before.
        self._last: tuple[datetime | None, Any] = (None, None)

    def held_sqlite(
        self, kind: str, bucket: int, buckets: int, rows: list[tuple[Any, ...]]
    ) -> tuple[str, list[Any]]:
        """SQLite: the statement inserting held ``rows`` of ``kind`` ("append" or "outbox")
        in ``bucket`` at once, and its parameters."""
        key = (f"held_{kind}", len(rows))
        found = self._rows.get(key)
        if found is None:
            width = len(rows[0]) + (kind == "outbox")  # an outbox row's number comes first
            one = "(" + ", ".join("?" for _ in range(width)) + ")"
            found = queries.HELD_SQLITE[kind] + ", ".join(one for _ in rows) + ") AS v"
            self._rows[key] = found
        params: list[Any] = [bucket, buckets] if kind == "outbox" else [bucket]
        if kind == "outbox":
            for n, row in enumerate(rows, 1):
                params.append(n)
                params.extend(row)
        else:
            for row in rows:
                params.extend(row)
        return found, params

    def held(
        self,
        bucket: int,
        buckets: int,
        events: list[tuple[Any, ...]],
        outbox: list[tuple[Any, ...]],
    ) -> tuple[str, list[Any]]:
        """PostgreSQL: the one statement inserting held ``events`` and ``outbox`` rows of
        ``bucket`` (events in a data-modifying ``WITH`` before the outbox's ``INSERT``), each
        table's rows one JSON array, and its parameters."""
        params: list[Any] = []
        if events:
            params.extend((bucket, bucket, _records(EVENT_FIELDS, events)))
        if outbox:
            numbered = [(n, *row) for n, row in enumerate(outbox, 1)]
            params.extend((buckets, bucket, bucket, _records(MESSAGE_FIELDS, numbered)))
        return queries.HELD_POSTGRESQL[(bool(events), bool(outbox))], params

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


#: The keys of a held event's and outbox row's JSON record (PostgreSQL), in the rows' order;
#: the last, ``data``, is JSON text already and goes in as it is.
EVENT_FIELDS = ("stream", "stream_id", "n", "type", "at", "actor", "data")
MESSAGE_FIELDS = ("n", "type", "subject_type", "subject_id", "occurred_at", "data")


def _records(fields: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """``rows`` as a JSON array of records named by ``fields``."""
    fragment = orjson.Fragment
    return orjson.dumps(
        [dict(zip(fields, (*row[:-1], fragment(row[-1])), strict=True)) for row in rows]
    ).decode()


_DIALECTS: dict[tuple[str, bool], Dialect] = {}


def dialect(name: str, *, readonly: bool) -> Dialect:
    """The statements and conversions of database ``name``, made once per process."""
    found = _DIALECTS.get((name, readonly))
    if found is None:
        found = _DIALECTS[(name, readonly)] = Dialect(name, readonly=readonly)
    return found


class Cursor:
    """The driver's cursor inside the unit of work's transaction; lost races become Conflict."""

    def __init__(self, conn: Connection, dialect: Dialect) -> None:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        self.cursor = dbapi.cursor()
        self.d = dialect
        self.sql = dialect.sql
        #: Each event appended in this unit of work, as JSON, by ``id``: the outbox keeps the
        #: same text. The event is held with it, so that its ``id`` is not reused meanwhile.
        self.dumped: dict[int, tuple[Event, str]] = {}
        #: Rows read with another row (an order read with its case), by (stream, id), until
        #: their repository asks for them: one statement instead of two.
        self.preloaded: dict[tuple[str, str], tuple[str, int]] = {}
        #: The events and outbox rows of this unit of work not yet written: they go together,
        #: in one statement per bucket, before anything reads those tables and before commit.
        self.held = Held()
        #: The database's bucket count (outbox ids are ``n * buckets + bucket``); the unit of
        #: work sets it.
        self.buckets = 0

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
            raise_conflict(exc, key)
            raise
        return self.cursor

    def many(self, key: str, rows: list[dict[str, Any]]) -> int:
        """Run ``key`` once per row (SQLite: no round trips to save); the rows changed."""
        try:
            self.cursor.executemany(self.sql[key], rows)
        except Exception as exc:
            raise_conflict(exc, key)
            raise
        return int(self.cursor.rowcount)

    def one(self, key: str, params: dict[str, Any]) -> Any:
        return self.run(key, params).fetchone()

    def close(self) -> None:
        self.cursor.close()

    def write_held(self) -> None:
        """Write the held events and outbox rows: per bucket, one multi-row ``INSERT`` for
        each table on SQLite, one statement for both on PostgreSQL."""
        held = self.held
        if not held.events and not held.outbox:
            return
        self.held = Held()
        d = self.d
        for bucket in sorted(set(held.events) | set(held.outbox)):
            events, outbox = held.events.get(bucket, []), held.outbox.get(bucket, [])
            try:
                if d.postgresql:  # JSON arrays: one statement text whatever the rows
                    sql, params = d.held(bucket, self.buckets, events, outbox)
                    self.cursor.execute(sql, params)
                    continue
                for kind, chunk in _chunks(events, outbox):
                    sql, params = d.held_sqlite(kind, bucket, self.buckets, chunk)
                    self.cursor.execute(sql, params)
            except Exception as exc:
                raise_conflict(exc, "append")
                raise


class Held:
    """Rows written at once later (:meth:`Cursor.write_held`), by bucket: events as (stream,
    stream id, number in this unit of work, type, at, actor, data), outbox rows as (type,
    subject type, subject id, occurred at, data)."""

    __slots__ = ("counts", "events", "outbox")

    def __init__(self) -> None:
        self.events: dict[int, list[tuple[Any, ...]]] = {}
        self.outbox: dict[int, list[tuple[Any, ...]]] = {}
        #: How many events each stream got in this unit of work so far: the next is numbered
        #: on from them (the statement adds the stream's last stored number).
        self.counts: dict[tuple[int, str, str], int] = {}

    def event(self, bucket: int, stream: str, stream_id: str, row: tuple[Any, ...]) -> None:
        key = (bucket, stream, stream_id)
        n = self.counts.get(key, 0) + 1
        self.counts[key] = n
        self.events.setdefault(bucket, []).append((stream, stream_id, n, *row))

    def message(self, bucket: int, row: tuple[Any, ...]) -> None:
        self.outbox.setdefault(bucket, []).append(row)


#: The most rows of one table in one SQLite statement (it allows 32,766 parameters).
HELD_CHUNK = 400


def _chunks(
    events: list[tuple[Any, ...]], outbox: list[tuple[Any, ...]]
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """SQLite: the rows in statements of at most HELD_CHUNK rows each. An event's number in
    a later statement counts from the events of its stream the earlier ones wrote (the
    statement adds the stream's last stored number, theirs included); an outbox row's place
    counts within its statement (its id is added to the largest stored one, likewise)."""
    chunks: list[tuple[str, list[tuple[Any, ...]]]] = []
    written: dict[tuple[str, str], int] = {}
    for start in range(0, len(events), HELD_CHUNK):
        chunk = events[start : start + HELD_CHUNK]
        if start:
            chunk = [(s, i, n - written.get((s, i), 0), *rest) for s, i, n, *rest in chunk]
        for stream, stream_id, n, *_ in events[start : start + HELD_CHUNK]:
            written[(stream, stream_id)] = n
        chunks.append(("append", chunk))
    chunks += [
        ("outbox", outbox[start : start + HELD_CHUNK])
        for start in range(0, len(outbox), HELD_CHUNK)
    ]
    return chunks


def raise_conflict(exc: Exception, what: str) -> None:
    """Raise Conflict for a lost race: another transaction wrote the same key first."""
    state = getattr(exc, "sqlstate", None)
    unique = isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)
    if state in CONFLICT_SQLSTATES or unique:
        raise Conflict(
            f"another transaction changed the same data first ({what}); try again"
        ) from exc
