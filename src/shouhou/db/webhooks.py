"""SQL for webhooks: endpoints, the event feed, fan-out, deliveries and their claims, and
``deadline.approaching`` notices.

Claims are correct with several workers: a conditional update whose row count is checked
(SQLite and PostgreSQL), after a ``FOR UPDATE SKIP LOCKED`` read on PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from shouhou.db import serial, tables
from shouhou.errors import UNREADABLE
from shouhou.services import outbox
from shouhou.services.ports import (
    Approaching,
    Attempt,
    Claimed,
    Delivery,
    Endpoint,
    OutboxEvent,
)
from shouhou.services.webhooks import MAX_ERROR_CHARS, matches

log = logging.getLogger("shouhou.webhooks")


class SqlWebhooks:
    """Endpoints are a reference table; events, deliveries and attempts live in their
    order's bucket, and an event's or a delivery's id is ``n * buckets + bucket``."""

    def __init__(self, conn: Connection, write_through: Callable[[], None], buckets: int) -> None:
        self.conn = conn
        #: Writes what the unit of work holds back (fired deadlines, events and outbox rows)
        #: before a query reads those tables.
        self.write_through = write_through
        self.buckets = buckets
        self.e = tables.webhook_endpoints
        self.d = tables.webhook_deliveries
        self.o = tables.outbox
        #: The bucket of each deadline :meth:`approaching` handed out, for :meth:`announced`.
        self._deadline_buckets: dict[int, int] = {}

    @property
    def _postgres(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    # --- endpoints and events ---

    @staticmethod
    def _endpoint(row: Any) -> Endpoint:
        return serial.from_row(Endpoint, row, events=tuple(row.events))

    @staticmethod
    def _event(row: Any) -> OutboxEvent:
        data = outbox.from_stored(row.data, serial.load_event)
        return serial.from_row(OutboxEvent, row, data=data)

    @staticmethod
    def _delivery(row: Any) -> Delivery:
        return serial.from_row(Delivery, row, event_id=row.outbox_id)

    def add_endpoint(self, endpoint: Endpoint) -> None:
        self.conn.execute(
            insert(self.e).values(serial.row_values(endpoint, events=list(endpoint.events)))
        )

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        row = self.conn.execute(select(self.e).where(self.e.c.id == endpoint_id)).first()
        return None if row is None else self._endpoint(row)

    def endpoints(self) -> list[Endpoint]:
        rows = self.conn.execute(select(self.e).order_by(self.e.c.created_at, self.e.c.id))
        return [self._endpoint(r) for r in rows]

    def disable_endpoint(self, endpoint_id: str, at: datetime) -> bool:
        result = self.conn.execute(
            update(self.e)
            .where(self.e.c.id == endpoint_id, self.e.c.disabled_at.is_(None))
            .values(disabled_at=at)
        )
        return result.rowcount == 1

    def bucket(self, numbered: int) -> int:
        """The bucket of an outbox event or delivery id."""
        return numbered % self.buckets

    def _next_id(self, table: Any, bucket: int) -> Any:
        """A new id of ``table`` in ``bucket``: ``n * buckets + bucket``."""
        if self._postgres:
            return func.nextval(f"{table.name}_id_seq") * self.buckets + bucket
        top = select(func.coalesce(func.max(table.c.id), 0)).scalar_subquery()
        return (top // self.buckets + 1) * self.buckets + bucket

    def event(self, event_id: int) -> OutboxEvent | None:
        self.write_through()
        o = self.o
        row = self.conn.execute(
            select(o).where(o.c.bucket == self.bucket(event_id), o.c.id == event_id)
        ).first()
        return None if row is None else self._event(row)

    def sequence(self, limit: int) -> int:
        """Number the committed events of one bucket that have none (the first waiting
        bucket whose feed row this transaction can lock); how many. The bucket's feed row is
        locked ``FOR UPDATE`` until commit: one giver at a time per bucket, so its positions
        rise as seen. A bucket another giver holds is passed over (``SKIP LOCKED``): that one
        is giving its positions, and what it does not see, the next call numbers. No giver
        waits for another, and a transaction gives the positions of one bucket only."""
        self.write_through()
        o = self.o
        waiting = self.conn.scalars(
            select(o.c.bucket).where(o.c.position.is_(None)).distinct().order_by(o.c.bucket)
        ).all()
        for bucket in waiting:
            given = self._sequence_bucket(bucket, limit)
            if given is not None:
                return given
        return 0

    def _sequence_bucket(self, bucket: int, limit: int) -> int | None:
        """Number up to ``limit`` events of ``bucket``; None when another giver holds it."""
        o, f = self.o, tables.feeds
        top = self.conn.execute(
            select(f.c.position).where(f.c.bucket == bucket).with_for_update(skip_locked=True)
        ).scalar_one_or_none()
        if top is None:
            return None
        ids = self.conn.scalars(
            select(o.c.id)
            .where(o.c.bucket == bucket, o.c.position.is_(None))
            .order_by(o.c.id)
            .limit(limit)
        ).all()
        if ids:  # one statement, run per row (one pipeline on psycopg)
            self.conn.execute(
                update(o)
                .where(o.c.bucket == bucket, o.c.id == bindparam("event"))
                .values(position=bindparam("at")),
                [{"event": i, "at": n} for n, i in enumerate(ids, start=int(top) + 1)],
            )
            self.conn.execute(
                update(f).where(f.c.bucket == bucket).values(position=int(top) + len(ids))
            )
        return len(ids)

    def events(
        self, *, after: Mapping[int, int], limit: int, types: Sequence[str] = ()
    ) -> list[OutboxEvent]:
        self.write_through()
        o = self.o
        if after:
            seen = case(
                *((o.c.bucket == bucket, position) for bucket, position in after.items()),
                else_=0,
            )
            query = select(o).where(o.c.position > seen)
        else:
            query = select(o).where(o.c.position > 0)
        if types:
            query = query.where(o.c.type.in_(list(types)))
        # Any order that keeps each bucket's positions rising makes a page end, in each
        # bucket, at a position below which that bucket has nothing left to give.
        rows = self.conn.execute(query.order_by(o.c.position, o.c.bucket).limit(limit))
        return [self._event(r) for r in rows]

    # --- deliveries ---

    def enqueue(self, event_id: int, endpoint_ids: Sequence[str], at: datetime) -> list[int]:
        self.write_through()
        d = self.d
        bucket = self.bucket(event_id)
        ids = []
        for endpoint_id in endpoint_ids:
            row = select(
                self._next_id(d, bucket),
                literal(bucket),
                literal(event_id, type_=d.c.outbox_id.type),
                literal(endpoint_id, type_=d.c.endpoint_id.type),
                literal("pending", type_=d.c.status.type),
                literal(0),
                literal(at, type_=d.c.next_attempt_at.type),
                literal(at, type_=d.c.created_at.type),
            )
            columns = [
                "id",
                "bucket",
                "outbox_id",
                "endpoint_id",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
            ]
            made = self.conn.execute(
                insert(d).from_select(columns, row).returning(d.c.id)
            ).scalar_one()
            ids.append(int(made))
        return ids

    def dispatch(self, now: datetime, limit: int) -> int:
        """Fan out the undispatched events of one bucket (the first waiting whose events this
        transaction can lock), after numbering them in the feed; how many."""
        self.write_through()
        o = self.o
        waiting = self.conn.scalars(
            select(o.c.bucket).where(o.c.dispatched_at.is_(None)).distinct().order_by(o.c.bucket)
        ).all()
        rows: list[Any] = []
        for bucket in waiting:
            # the feed keeps up even when nobody reads it (a bucket another giver holds is
            # numbered by it)
            self._sequence_bucket(bucket, limit)
            query = (
                select(o.c.id, o.c.type, o.c.bucket)
                .where(o.c.bucket == bucket, o.c.dispatched_at.is_(None))
                .order_by(o.c.id)
                .limit(limit)
            )
            if self._postgres:
                query = query.with_for_update(skip_locked=True)
            rows = list(self.conn.execute(query).all())
            if rows:
                break
        if not rows:
            return 0
        active = [e for e in self.endpoints() if e.disabled_at is None]
        done = 0
        for row in rows:
            claimed = self.conn.execute(
                update(o)
                .where(o.c.bucket == row.bucket, o.c.id == row.id, o.c.dispatched_at.is_(None))
                .values(dispatched_at=now)
            )
            if claimed.rowcount != 1:
                continue  # another worker dispatched it
            wanted = [e.id for e in active if matches(e.events, row.type)]
            self.enqueue(row.id, wanted, now)
            done += 1
        return done

    def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
        """Lease the due deliveries of one bucket (the first waiting whose deliveries this
        transaction can lock: ``SKIP LOCKED`` on PostgreSQL)."""
        d = self.d
        free = or_(d.c.lease_until.is_(None), d.c.lease_until <= now)
        due = and_(d.c.status == "pending", d.c.next_attempt_at <= now, free)
        waiting = self.conn.scalars(
            select(d.c.bucket).where(due).distinct().order_by(d.c.bucket)
        ).all()
        found: list[int] = []
        for bucket in waiting:
            query = (
                select(d.c.id)
                .where(d.c.bucket == bucket, due)
                .order_by(d.c.next_attempt_at, d.c.id)
                .limit(limit)
            )
            if self._postgres:
                query = query.with_for_update(skip_locked=True)
            found = list(self.conn.scalars(query).all())
            if found:
                break
        claimed = []
        until = now + lease
        for delivery_id in found:
            bucket = self.bucket(delivery_id)
            mine = and_(d.c.bucket == bucket, d.c.id == delivery_id)
            result = self.conn.execute(update(d).where(mine, due).values(lease_until=until))
            if result.rowcount != 1:
                continue
            delivery = self._delivery(self.conn.execute(select(d).where(mine)).one())
            endpoint = self.conn.execute(
                select(self.e).where(self.e.c.id == delivery.endpoint_id)
            ).one()
            o = self.o
            row = self.conn.execute(
                select(o).where(o.c.bucket == bucket, o.c.id == delivery.event_id)
            ).one()
            try:
                event = self._event(row)
            except UNREADABLE as exc:  # a row no reader can load
                self._unreadable(delivery_id, exc)
                continue
            claimed.append(
                Claimed(
                    delivery=delivery,
                    endpoint=self._endpoint(endpoint),
                    event=event,
                    lease_until=until,
                )
            )
        return claimed

    def _unreadable(self, delivery_id: int, exc: Exception) -> None:
        error = f"the event cannot be read: {exc!r}"[:MAX_ERROR_CHARS]
        log.error("webhook delivery %s failed: %s", delivery_id, error)
        self.conn.execute(
            update(self.d)
            .where(self.d.c.bucket == self.bucket(delivery_id), self.d.c.id == delivery_id)
            .values(status="failed", lease_until=None, last_error=error)
        )

    def record(
        self,
        delivery_id: int,
        attempt: Attempt,
        *,
        status: str,
        next_attempt_at: datetime,
        held_until: datetime | None = None,
    ) -> bool:
        error = attempt.error[:MAX_ERROR_CHARS] if attempt.error else None
        bucket = self.bucket(delivery_id)
        mine = and_(self.d.c.bucket == bucket, self.d.c.id == delivery_id)
        if held_until is not None:
            mine = and_(mine, self.d.c.status == "pending", self.d.c.lease_until == held_until)
        moved = self.conn.execute(
            update(self.d)
            .where(mine)
            .values(
                status=status,
                attempts=attempt.number,
                next_attempt_at=next_attempt_at,
                lease_until=None,
                last_status_code=attempt.status_code,
                last_error=error,
                delivered_at=attempt.at if status == "delivered" else None,
            )
        )
        if moved.rowcount != 1:
            return False
        self.conn.execute(
            insert(tables.webhook_attempts).values(
                bucket=bucket,
                delivery_id=delivery_id,
                number=attempt.number,
                at=attempt.at,
                status_code=attempt.status_code,
                error=error,
                duration_ms=attempt.duration_ms,
            )
        )
        return True

    def delivery(self, delivery_id: int) -> Delivery | None:
        d = self.d
        row = self.conn.execute(
            select(d).where(d.c.bucket == self.bucket(delivery_id), d.c.id == delivery_id)
        ).first()
        return None if row is None else self._delivery(row)

    def deliveries(
        self,
        *,
        endpoint_id: str | None = None,
        event_id: int | None = None,
        status: str | None = None,
        after: int = 0,
        limit: int = 50,
    ) -> list[Delivery]:
        query = select(self.d).where(self.d.c.id > after)
        if endpoint_id is not None:
            query = query.where(self.d.c.endpoint_id == endpoint_id)
        if event_id is not None:
            query = query.where(
                self.d.c.bucket == self.bucket(event_id), self.d.c.outbox_id == event_id
            )
        if status is not None:
            query = query.where(self.d.c.status == status)
        rows = self.conn.execute(query.order_by(self.d.c.id).limit(limit))
        return [self._delivery(r) for r in rows]

    def attempts(self, delivery_id: int) -> list[Attempt]:
        a = tables.webhook_attempts
        rows = self.conn.execute(
            select(a)
            .where(a.c.bucket == self.bucket(delivery_id), a.c.delivery_id == delivery_id)
            .order_by(a.c.number, a.c.id)
        )
        return [
            Attempt(
                number=r.number,
                at=r.at,
                status_code=r.status_code,
                error=r.error,
                duration_ms=r.duration_ms,
            )
            for r in rows
        ]

    # --- deadline.approaching ---

    def approaching(self, now: datetime, until: datetime, limit: int) -> list[Approaching]:
        self.write_through()
        d, n = tables.deadlines, tables.deadline_notices
        rows = self.conn.execute(
            select(d)
            .select_from(d.outerjoin(n, and_(n.c.bucket == d.c.bucket, n.c.deadline_id == d.c.id)))
            .where(
                d.c.status == "pending",
                d.c.due_at > now,
                d.c.due_at <= until,
                n.c.deadline_id.is_(None),
            )
            .order_by(d.c.due_at, d.c.id)
            .limit(limit)
        ).all()
        # one bucket's at a time (0021): the first one's, the others on the next call
        rows = [r for r in rows if r.bucket == rows[0].bucket]
        for r in rows:
            self._deadline_buckets[r.id] = r.bucket
        return [
            Approaching(
                deadline_id=r.id,
                subject_type=r.subject_type,
                subject_id=r.subject_id,
                name=r.name,
                due_at=r.due_at,
                on_expiry=r.on_expiry,
                rule_id=r.rule_id,
                policy=r.policy,
                facts=self._facts(r.bucket, r.subject_type, r.subject_id),
            )
            for r in rows
        ]

    def _facts(self, bucket: int, subject_type: str, subject_id: str) -> dict[str, Any]:
        if subject_type == "case":
            c = tables.cases
            row = self.conn.execute(
                select(c.c.order_id, c.c.shop, c.c.buyer, c.c.status).where(
                    c.c.bucket == bucket, c.c.id == subject_id
                )
            ).first()
            if row is None:
                return {"case": subject_id}
            return {
                "case": subject_id,
                "order": row.order_id,
                "shop": row.shop,
                "buyer": row.buyer,
                "status": row.status,
            }
        o = tables.orders
        row = self.conn.execute(
            select(o.c.shop, o.c.buyer, o.c.status).where(
                o.c.bucket == bucket, o.c.id == subject_id
            )
        ).first()
        if row is None:
            return {"order": subject_id}
        return {"order": subject_id, "shop": row.shop, "buyer": row.buyer, "status": row.status}

    def announced(self, deadline_id: int, at: datetime) -> bool:
        bucket = self._deadline_buckets.get(deadline_id)
        if bucket is None:  # not handed out by approaching(): looked up
            d = tables.deadlines
            bucket = self.conn.execute(select(d.c.bucket).where(d.c.id == deadline_id)).scalar_one()
        try:
            with self.conn.begin_nested():  # on a duplicate, only this insert is undone
                self.conn.execute(
                    insert(tables.deadline_notices).values(
                        bucket=bucket, deadline_id=deadline_id, sent_at=at
                    )
                )
        except IntegrityError:
            return False
        return True
