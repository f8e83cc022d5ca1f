"""The driver's cursor inside the unit of work's transaction, and the dialect it speaks:
the named statements of :mod:`shouhou.db.queries` written for one database, and the value
conversions SQLAlchemy's types would do. Lost races become ``Conflict``."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from typing import Any

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
        }
        sql = {key: text.format(**fill) for key, text in queries.STATEMENTS.items()}
        if self.postgresql:
            sql["next_due"] = queries.CLAIM_POSTGRESQL
            sql["next_orphan"] = queries.CLAIM_ORPHAN_POSTGRESQL
            sql = {key: PLACEHOLDER.sub(r"%(\1)s", text) for key, text in sql.items()}
        if not self.postgresql:
            for key, (head, row) in queries.ROWS.items():
                sql[key] = head + row
        self.sql = sql
        self._rows: dict[tuple[str, int], str] = {}
        #: The last moment converted, and what it became: the events and messages of one
        #: change share their time, so most conversions repeat the one before.
        self._last: tuple[datetime | None, Any] = (None, None)

    def rows(self, key: str, count: int) -> str:
        """On PostgreSQL, the statement inserting ``count`` rows at once."""
        found = self._rows.get((key, count))
        if found is None:
            head, row, tail = queries.ROWS_POSTGRESQL[key]
            rows = ", ".join(row.format(i=f"_{i}", n=i + 1) for i in range(count))
            text = head + rows + tail
            found = self._rows[(key, count)] = PLACEHOLDER.sub(r"%(\1)s", text)
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
            raise_conflict(exc, key)
            raise

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


def raise_conflict(exc: Exception, what: str) -> None:
    """Raise Conflict for a lost race: another transaction wrote the same key first."""
    state = getattr(exc, "sqlstate", None)
    unique = isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)
    if state in CONFLICT_SQLSTATES or unique:
        raise Conflict(
            f"another transaction changed the same data first ({what}); try again"
        ) from exc
