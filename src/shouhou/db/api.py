"""SQL for the integration side: outbox, API keys, idempotency keys, lists, webhooks.

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
    Engine,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from shouhou.db import serial, tables
from shouhou.db.uow import SqlUnitOfWork
from shouhou.domain.model import Role
from shouhou.errors import UNREADABLE, Conflict
from shouhou.services import outbox
from shouhou.services.integration import (
    ApiKey,
    Approaching,
    Attempt,
    CaseFilter,
    Claimed,
    Delivery,
    Endpoint,
    ListedCase,
    ListedOrder,
    OrderFilter,
    OutboxEvent,
    StoredResponse,
    matches,
)

log = logging.getLogger("shouhou.webhooks")
#: The PostgreSQL advisory lock that makes the givers of feed positions take turns.
FEED_LOCK = 0x5348_4F56  # "SHOV"

#: Longest error text kept for a delivery attempt, in characters.
MAX_ERROR_CHARS = 500


class SqlKeys:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.t = tables.api_keys

    @staticmethod
    def _key(row: Any) -> ApiKey:
        return ApiKey(
            id=row.id,
            prefix=row.prefix,
            role=Role(row.role),
            subject=row.subject,
            name=row.name,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )

    def add(self, key: ApiKey, token_hash: str) -> None:
        self.conn.execute(
            insert(self.t).values(
                id=key.id,
                hash=token_hash,
                prefix=key.prefix,
                role=key.role.value,
                subject=key.subject,
                name=key.name,
                created_at=key.created_at,
                revoked_at=key.revoked_at,
            )
        )

    def by_hash(self, token_hash: str) -> ApiKey | None:
        row = self.conn.execute(select(self.t).where(self.t.c.hash == token_hash)).first()
        return None if row is None else self._key(row)

    def all(self) -> list[ApiKey]:
        rows = self.conn.execute(select(self.t).order_by(self.t.c.created_at, self.t.c.id))
        return [self._key(r) for r in rows]

    def revoke(self, key_id: str, at: datetime) -> bool:
        result = self.conn.execute(
            update(self.t)
            .where(self.t.c.id == key_id, self.t.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return result.rowcount == 1


class SqlIdempotency:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.t = tables.idempotency_keys

    def get(self, scope: str, key: str, since: datetime) -> StoredResponse | None:
        row = self.conn.execute(
            select(self.t.c.request_hash, self.t.c.status_code, self.t.c.response).where(
                self.t.c.scope == scope, self.t.c.key == key, self.t.c.created_at >= since
            )
        ).first()
        if row is None:
            return None
        return StoredResponse(
            request_hash=row.request_hash, status_code=row.status_code, body=row.response
        )

    def put(
        self, scope: str, key: str, response: StoredResponse, at: datetime, since: datetime
    ) -> None:
        t = self.t
        self.conn.execute(  # an expired answer the worker has not forgotten yet
            delete(t).where(t.c.scope == scope, t.c.key == key, t.c.created_at < since)
        )
        try:
            with self.conn.begin_nested():
                self.conn.execute(
                    insert(self.t).values(
                        scope=scope,
                        key=key,
                        request_hash=response.request_hash,
                        status_code=response.status_code,
                        response=response.body,
                        created_at=at,
                    )
                )
        except IntegrityError:
            raise Conflict(
                f"another request with Idempotency-Key {key!r} finished first; send it again "
                "to get its answer",
                rule="shouhou/idempotency",
            ) from None

    def forget_before(self, at: datetime) -> int:
        return self.conn.execute(delete(self.t).where(self.t.c.created_at < at)).rowcount


class SqlQueries:
    def __init__(self, conn: Connection, before_deadlines: Callable[[], None]) -> None:
        self.conn = conn
        #: Marks the deadlines this unit of work fired before a query reads the table.
        self.before_deadlines = before_deadlines

    def cases(self, where: CaseFilter, limit: int) -> list[ListedCase]:
        self.before_deadlines()
        c, d, o = tables.cases, tables.deadlines, tables.orders
        pending = and_(
            d.c.subject_type == "case", d.c.subject_id == c.c.id, d.c.status == "pending"
        )
        query = select(
            c.c.state,
            c.c.version,
            c.c.opened_at,
            c.c.id,
            d.c.due_at,
            o.c.state.label("order_state"),
            o.c.version.label("order_version"),
        ).select_from(c.join(o, o.c.id == c.c.order_id).outerjoin(d, pending))
        if where.statuses:
            query = query.where(c.c.status.in_([s.value for s in where.statuses]))
        for column, value in ((c.c.shop, where.shop), (c.c.buyer, where.buyer)):
            if value is not None:
                query = query.where(column == value)
        if where.order is not None:
            query = query.where(c.c.order_id == where.order)
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
        query = select(o.c.state, o.c.version, o.c.created_at, o.c.id)
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
        return Endpoint(
            id=row.id,
            url=row.url,
            secret=row.secret,
            events=tuple(row.events),
            description=row.description,
            created_by=row.created_by,
            created_at=row.created_at,
            disabled_at=row.disabled_at,
        )

    @staticmethod
    def _event(row: Any) -> OutboxEvent:
        return OutboxEvent(
            id=row.id,
            type=row.type,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            occurred_at=row.occurred_at,
            data=outbox.from_stored(row.data, serial.load_event),
            position=row.position,
        )

    @staticmethod
    def _delivery(row: Any) -> Delivery:
        return Delivery(
            id=row.id,
            event_id=row.outbox_id,
            endpoint_id=row.endpoint_id,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
        )

    def add_endpoint(self, endpoint: Endpoint) -> None:
        self.conn.execute(
            insert(self.e).values(
                id=endpoint.id,
                url=endpoint.url,
                secret=endpoint.secret,
                events=list(endpoint.events),
                description=endpoint.description,
                created_by=endpoint.created_by,
                created_at=endpoint.created_at,
                disabled_at=endpoint.disabled_at,
            )
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


class SqlApiUnitOfWork(SqlUnitOfWork):
    """The SQL unit of work with the integration tables on the same transaction."""

    def __init__(self, engine: Engine, *, readonly: bool = False) -> None:
        super().__init__(engine, readonly=readonly)

    def __enter__(self) -> SqlApiUnitOfWork:
        super().__enter__()
        assert self.conn is not None
        self.keys = SqlKeys(self.conn)
        self.idempotency = SqlIdempotency(self.conn)
        self.queries = SqlQueries(self.conn, self.deadlines.flush)
        self.webhooks = SqlWebhooks(self.conn, self.deadlines.flush)
        self.retention = SqlRetention(self.conn, self.deadlines.flush)
        return self
