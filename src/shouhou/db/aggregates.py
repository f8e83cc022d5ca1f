"""One SQL repository for the aggregates (orders, cases, complaints): each a row of a JSON
snapshot, a few indexed columns and a version, with its events in the ``events`` table.

A save is a conditional update on the version the aggregate was loaded at; a stale one is
refused with ``Conflict``. Every statement is a named one of :mod:`shouhou.db.queries`, run
on the unit of work's cursor (this is the hot path)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Connection, Table

from shouhou.db import serial
from shouhou.db.buckets import Homes
from shouhou.db.cursor import Cursor
from shouhou.db.deadlines import Known, Slot
from shouhou.domain.events import Event
from shouhou.domain.model import Case, Complaint, Order
from shouhou.errors import Conflict
from shouhou.services.ports import StoredEvent

T = TypeVar("T", Case, Order, Complaint)


def append_events(
    cur: Cursor, bucket: int, stream: str, stream_id: str, events: Sequence[Event]
) -> None:
    """Add ``events`` to the stream's timeline, numbered on from its last. They are held and
    written with the rest of the unit of work's events (:meth:`Cursor.write_held`)."""
    moment, held = cur.d.moment, cur.held
    for ev in events:
        held.event(
            bucket,
            stream,
            stream_id,
            (type(ev).__name__, moment(ev.at), ev.actor, cur.event_json(ev)),
        )


def timeline(cur: Cursor, bucket: int, stream: str, stream_id: str) -> list[StoredEvent]:
    """The stream's events in order, numbered from one."""
    cur.write_held()
    params = {"bucket": bucket, "stream": stream, "stream_id": stream_id}
    rows = cur.run("timeline", params).fetchall()
    return [
        StoredEvent(seq=seq, event=serial.load_event_json(kind, data)) for seq, kind, data in rows
    ]


class Aggregates(Generic[T]):
    """Rows of one aggregate type: a JSON snapshot, a few indexed columns and a version.

    A subclass names its ``stream`` (its statements are ``get_<stream>``, ``insert_<stream>``
    and ``save_<stream>``) and says which columns it writes."""

    stream: ClassVar[str]
    table: ClassVar[Table]
    #: Whether the aggregate has deadlines, whose pending slot the unit of work keeps known.
    has_deadlines: ClassVar[bool] = False
    #: Whether the ``INSERT`` refuses an id routed from its bucket (``insert_<stream>``).
    insert_checks: ClassVar[bool] = False

    def __init__(self, conn: Connection, cur: Cursor, known: Known, homes: Homes) -> None:
        self.conn = conn
        self.cur = cur
        self.known = known
        self.homes = homes

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

    def _pending(self, item: T) -> Slot | None:
        """The deadline ``item`` has pending; aggregates without deadlines return None."""
        return None

    def _order_of(self, item: T) -> str:
        """The order ``item`` belongs to (an order: itself)."""
        raise NotImplementedError

    def get(self, key: str) -> T | None:
        statement, homes = f"get_{self.stream}", self.homes
        row = self.cur.preloaded.pop((self.stream, key), None)  # read with another row
        if row is not None:
            return self._found(key, row)
        bucket = homes.guess(self.stream, key)
        row = self.cur.one(statement, {"bucket": bucket, "id": key})
        if row is None and (self.stream, key) not in homes.known:
            home = homes.route(self.stream, key)  # an id its caller chose
            if home is None or home == bucket:
                return None
            bucket = home
            row = self.cur.one(statement, {"bucket": bucket, "id": key})
        if row is None:
            return None
        homes.known[(self.stream, key)] = bucket
        if len(row) > 2 and row[2] is not None:  # the subject's order came with it
            homes.preload("order", row[2], bucket, row[3], row[4])
        return self._found(key, row)

    def _found(self, key: str, row: Any) -> T:
        item = self._load(row[0], row[1])
        if self.has_deadlines and not self.cur.d.readonly:
            self.known[(self.stream, key)] = self._pending(item)
        return item

    def add(self, item: T, events: Sequence[Event]) -> None:
        if self.stream == "order":
            bucket = self.homes.order(item.id)
            self.homes.known[("order", item.id)] = bucket
            self.cur.preloaded.pop(("order", item.id), None)
        try:
            if self.stream != "order":  # refuses an id taken elsewhere, or adds its route
                bucket = self.homes.place(
                    self.stream, item.id, self._order_of(item), insert_checks=self.insert_checks
                )
            added = self.cur.run(
                f"insert_{self.stream}",
                {
                    "bucket": bucket,
                    "id": item.id,
                    "state": serial.dump_json(item),
                    **self._created(item),
                    **self._columns(item),
                    "updated_at": self.cur.d.moment(events[-1].at if events else self._born(item)),
                },
            ).rowcount
        except Conflict:
            added = 0
        if added != 1:
            case = item.id if self.stream == "case" else None
            raise Conflict(f"{self.stream} {item.id} already exists", case=case)
        append_events(self.cur, bucket, self.stream, item.id, events)
        if self.has_deadlines:
            self.known[(self.stream, item.id)] = None  # new, so nothing of it is pending yet

    def save(self, item: T, events: Sequence[Event]) -> None:
        updated_at = self.cur.d.moment(events[-1].at) if events else None
        bucket = self.homes.of(self.stream, item.id)
        self.cur.preloaded.pop((self.stream, item.id), None)  # read before this change
        saved = self.cur.run(
            f"save_{self.stream}",
            {
                "bucket": bucket,
                "id": item.id,
                "version": item.version,
                "state": serial.dump_json(item),
                "updated_at": updated_at,
                **self._columns(item),
            },
        )
        if saved.rowcount != 1:
            raise Conflict(f"{self.stream} {item.id} was changed by someone else; load it again")
        append_events(self.cur, bucket, self.stream, item.id, events)

    def timeline(self, key: str) -> list[StoredEvent]:
        return timeline(self.cur, self.homes.of(self.stream, key), self.stream, key)
