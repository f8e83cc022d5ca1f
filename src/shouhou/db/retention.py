"""SQL for forgetting what nothing reads any more: old deadlines, delivered events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select

from shouhou.db import tables


def _newest(column: Any) -> Any:
    """The largest value of ``column`` in its table. Retention never forgets that row: SQLite
    gives a new row the largest id plus one (its tables have no AUTOINCREMENT), and the feed
    the largest position plus one, so deleting the newest rows would hand their ids or
    positions out again, to events a subscriber has seen the ids of (``webhook-id``) or paged
    past (the feed's cursor)."""
    return select(func.max(column)).correlate(None).scalar_subquery()  # the whole table's


class SqlRetention:
    def __init__(self, conn: Connection, before_deadlines: Callable[[], None]) -> None:
        self.conn = conn
        self.before_deadlines = before_deadlines

    def _ids(self, query: Any) -> list[int]:
        return [int(r[0]) for r in self.conn.execute(query)]

    def forget_deadlines(self, before: datetime, limit: int) -> int:
        self.before_deadlines()
        d, n = tables.deadlines, tables.deadline_notices
        # No order: any chunk will do, and without one each status's range of the claim index
        # is read only as far as the chunk needs, not sorted whole.
        ids = self._ids(
            select(d.c.id)
            .where(d.c.status.in_(["fired", "cancelled"]), d.c.due_at < before)
            .limit(limit)
        )
        if not ids:
            return 0
        self.conn.execute(delete(n).where(n.c.deadline_id.in_(ids)))
        return int(self.conn.execute(delete(d).where(d.c.id.in_(ids))).rowcount)

    def forget_events(self, before: datetime, limit: int) -> int:
        o, d, a = tables.outbox, tables.webhook_deliveries, tables.webhook_attempts
        done = d.alias("done")
        replayed = select(done.c.id).where(
            done.c.outbox_id == d.c.outbox_id,
            done.c.endpoint_id == d.c.endpoint_id,
            done.c.status == "delivered",
        )
        # an event waits for each endpoint it has not reached yet (a successful replay
        # reaches it), and the newest delivery stays, so that SQLite never hands its id out
        # again
        kept = select(d.c.id).where(
            d.c.outbox_id == o.c.id,
            or_(and_(d.c.status != "delivered", ~replayed.exists()), d.c.id == _newest(d.c.id)),
        )
        ids = self._ids(
            select(o.c.id)
            .where(
                o.c.dispatched_at < before,
                o.c.id < _newest(o.c.id),
                o.c.position < _newest(o.c.position),  # the feed never gives one out twice
                ~kept.exists(),
            )
            .order_by(o.c.id)
            .limit(limit)
        )
        if not ids:
            return 0
        deliveries = select(d.c.id).where(d.c.outbox_id.in_(ids))
        self.conn.execute(delete(a).where(a.c.delivery_id.in_(deliveries)))
        self.conn.execute(delete(d).where(d.c.outbox_id.in_(ids)))
        return int(self.conn.execute(delete(o).where(o.c.id.in_(ids))).rowcount)
