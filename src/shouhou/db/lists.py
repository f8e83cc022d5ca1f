"""SQL for the case and order lists of the API: filtered, in keyset pages."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from shouhou.db import queries, serial, tables
from shouhou.domain.buckets import bucket_of
from shouhou.services.ports import (
    CaseFilter,
    ListedCase,
    ListedOrder,
    OrderFilter,
)


class SqlQueries:
    def __init__(
        self, conn: Connection, before_deadlines: Callable[[], None], buckets: int
    ) -> None:
        self.conn = conn
        self.buckets = buckets
        #: Marks the deadlines this unit of work fired before a query reads the table.
        self.before_deadlines = before_deadlines

    def cases(self, where: CaseFilter, limit: int) -> list[ListedCase]:
        self.before_deadlines()
        c, d = tables.cases, tables.deadlines
        query = queries.listed_cases()
        if where.statuses:
            query = query.where(c.c.status.in_([s.value for s in where.statuses]))
        for column, value in ((c.c.shop, where.shop), (c.c.buyer, where.buyer)):
            if value is not None:
                query = query.where(column == value)
        if where.order is not None:  # one bucket's
            bucket = bucket_of(where.order, self.buckets)
            query = query.where(c.c.bucket == bucket, c.c.order_id == where.order)
        if where.due_before is not None:
            query = query.where(d.c.due_at < where.due_before)
        sort = d.c.due_at if where.sort == "due_at" else c.c.opened_at
        if where.sort == "due_at":
            query = query.where(d.c.due_at.is_not(None))
        after = tables.keyset_after(sort, c.c.id, where.after)
        if after is not None:
            query = query.where(after)
        query = query.order_by(sort, c.c.id).limit(limit)
        out = []
        for row in self.conn.execute(query):
            key_at = row.due_at if where.sort == "due_at" else row.opened_at
            out.append(
                ListedCase(
                    case=serial.load_case(row.state, row.version),
                    order=serial.load_order(row.order_state, row.order_version),
                    sort_key=(key_at, row.id),
                )
            )
        return out

    def orders(self, where: OrderFilter, limit: int) -> list[ListedOrder]:
        o = tables.orders
        query = queries.listed_orders()
        if where.statuses:
            query = query.where(o.c.status.in_([s.value for s in where.statuses]))
        for column, value in ((o.c.shop, where.shop), (o.c.buyer, where.buyer)):
            if value is not None:
                query = query.where(column == value)
        after = tables.keyset_after(o.c.created_at, o.c.id, where.after)
        if after is not None:
            query = query.where(after)
        query = query.order_by(o.c.created_at, o.c.id).limit(limit)
        return [
            ListedOrder(order=serial.load_order(r.state, r.version), sort_key=(r.created_at, r.id))
            for r in self.conn.execute(query)
        ]
