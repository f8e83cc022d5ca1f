"""SQL for webhooks: endpoints, the event feed, fan-out, deliveries and their claims, and
``deadline.approaching`` notices.

Claims are correct with several workers: a conditional update whose row count is checked
(SQLite and PostgreSQL), after a ``FOR UPDATE SKIP LOCKED`` read on PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
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
#: The PostgreSQL advisory lock that makes the givers of feed positions take turns.
FEED_LOCK = 0x5348_4F56  # "SHOV"


class SqlWebhooks:
    def __init__(self, conn: Connection, before_deadlines: Callable[[], None]) -> None:
        self.conn = conn
        #: Marks the deadlines this unit of work fired before a query reads the table.
        self.before_deadlines = before_deadlines
        self.e = tables.webhook_endpoints
        self.d = tables.webhook_deliveries
        self.o = tables.outbox

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

    def event(self, event_id: int) -> OutboxEvent | None:
        row = self.conn.execute(select(self.o).where(self.o.c.id == event_id)).first()
        return None if row is None else self._event(row)

    def sequence(self, limit: int) -> int:
        o = self.o
        if self._postgres:  # held to commit: sequencers take turns, so positions rise as seen
            self.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_LOCK})
        top = self.conn.execute(select(func.coalesce(func.max(o.c.position), 0))).scalar_one()
        ids = self.conn.scalars(
            select(o.c.id).where(o.c.position.is_(None)).order_by(o.c.id).limit(limit)
        ).all()
        if ids:  # one statement, run per row (one pipeline on psycopg)
            self.conn.execute(
                update(o).where(o.c.id == bindparam("event")).values(position=bindparam("at")),
                [{"event": i, "at": n} for n, i in enumerate(ids, start=int(top) + 1)],
            )
        return len(ids)

    def events(self, *, after: int, limit: int, types: Sequence[str] = ()) -> list[OutboxEvent]:
        query = select(self.o).where(self.o.c.position > after)
        if types:
            query = query.where(self.o.c.type.in_(list(types)))
        rows = self.conn.execute(query.order_by(self.o.c.position).limit(limit))
        return [self._event(r) for r in rows]

    # --- deliveries ---

    def enqueue(self, event_id: int, endpoint_ids: Sequence[str], at: datetime) -> list[int]:
        ids = []
        for endpoint_id in endpoint_ids:
            result = self.conn.execute(
                insert(self.d).values(
                    outbox_id=event_id,
                    endpoint_id=endpoint_id,
                    status="pending",
                    attempts=0,
                    next_attempt_at=at,
                    created_at=at,
                )
            )
            assert result.inserted_primary_key is not None
            ids.append(int(result.inserted_primary_key[0]))
        return ids

    def dispatch(self, now: datetime, limit: int) -> int:
        self.sequence(limit)  # the feed keeps up even when nobody reads it
        query = (
            select(self.o.c.id, self.o.c.type)
            .where(self.o.c.dispatched_at.is_(None))
            .order_by(self.o.c.id)
            .limit(limit)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        rows = self.conn.execute(query).all()
        if not rows:
            return 0
        active = [e for e in self.endpoints() if e.disabled_at is None]
        done = 0
        for row in rows:
            claimed = self.conn.execute(
                update(self.o)
                .where(self.o.c.id == row.id, self.o.c.dispatched_at.is_(None))
                .values(dispatched_at=now)
            )
            if claimed.rowcount != 1:
                continue  # another worker dispatched it
            wanted = [e.id for e in active if matches(e.events, row.type)]
            self.enqueue(row.id, wanted, now)
            done += 1
        return done

    def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
        d = self.d
        free = or_(d.c.lease_until.is_(None), d.c.lease_until <= now)
        due = and_(d.c.status == "pending", d.c.next_attempt_at <= now, free)
        query = select(d.c.id).where(due).order_by(d.c.next_attempt_at, d.c.id).limit(limit)
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        claimed = []
        until = now + lease
        for (delivery_id,) in self.conn.execute(query).all():
            result = self.conn.execute(
                update(d).where(d.c.id == delivery_id, due).values(lease_until=until)
            )
            if result.rowcount != 1:
                continue
            delivery = self._delivery(
                self.conn.execute(select(d).where(d.c.id == delivery_id)).one()
            )
            endpoint = self.conn.execute(
                select(self.e).where(self.e.c.id == delivery.endpoint_id)
            ).one()
            row = self.conn.execute(select(self.o).where(self.o.c.id == delivery.event_id)).one()
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
            .where(self.d.c.id == delivery_id)
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
        mine = self.d.c.id == delivery_id
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
        row = self.conn.execute(select(self.d).where(self.d.c.id == delivery_id)).first()
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
            query = query.where(self.d.c.outbox_id == event_id)
        if status is not None:
            query = query.where(self.d.c.status == status)
        rows = self.conn.execute(query.order_by(self.d.c.id).limit(limit))
        return [self._delivery(r) for r in rows]

    def attempts(self, delivery_id: int) -> list[Attempt]:
        a = tables.webhook_attempts
        rows = self.conn.execute(
            select(a).where(a.c.delivery_id == delivery_id).order_by(a.c.number, a.c.id)
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
        self.before_deadlines()
        d, n = tables.deadlines, tables.deadline_notices
        rows = self.conn.execute(
            select(d)
            .select_from(d.outerjoin(n, n.c.deadline_id == d.c.id))
            .where(
                d.c.status == "pending",
                d.c.due_at > now,
                d.c.due_at <= until,
                n.c.deadline_id.is_(None),
            )
            .order_by(d.c.due_at, d.c.id)
            .limit(limit)
        ).all()
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
                facts=self._facts(r.subject_type, r.subject_id),
            )
            for r in rows
        ]

    def _facts(self, subject_type: str, subject_id: str) -> dict[str, Any]:
        if subject_type == "case":
            c = tables.cases
            row = self.conn.execute(
                select(c.c.order_id, c.c.shop, c.c.buyer, c.c.status).where(c.c.id == subject_id)
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
            select(o.c.shop, o.c.buyer, o.c.status).where(o.c.id == subject_id)
        ).first()
        if row is None:
            return {"order": subject_id}
        return {"order": subject_id, "shop": row.shop, "buyer": row.buyer, "status": row.status}

    def announced(self, deadline_id: int, at: datetime) -> bool:
        try:
            with self.conn.begin_nested():  # on a duplicate, only this insert is undone
                self.conn.execute(
                    insert(tables.deadline_notices).values(deadline_id=deadline_id, sent_at=at)
                )
        except IntegrityError:
            return False
        return True
