"""The SQL unit of work and repositories. Repositories never commit; the unit of work does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine, Table, func, insert, select, update

from shouhou.db import serial, tables
from shouhou.db.outbox import SqlOutbox
from shouhou.domain.events import Event
from shouhou.domain.model import Case, CaseStatus, Deadline, Order
from shouhou.errors import Conflict
from shouhou.services.ports import DueDeadline, StoredEvent

T = TypeVar("T", Case, Order)


def _append(
    conn: Connection, stream: str, stream_id: str, start: int, events: Sequence[Event]
) -> None:
    if not events:
        return
    conn.execute(
        insert(tables.events),
        [
            {
                "stream": stream,
                "stream_id": stream_id,
                "seq": start + i,
                "type": type(ev).__name__,
                "at": ev.at,
                "actor": ev.actor,
                "data": serial.dump(ev),
            }
            for i, ev in enumerate(events)
        ],
    )


def _timeline(conn: Connection, stream: str, stream_id: str) -> list[StoredEvent]:
    rows = conn.execute(
        select(tables.events.c.seq, tables.events.c.type, tables.events.c.data)
        .where(tables.events.c.stream == stream, tables.events.c.stream_id == stream_id)
        .order_by(tables.events.c.seq)
    )
    return [StoredEvent(seq=r.seq, event=serial.load_event(r.type, r.data)) for r in rows]


def _next_seq(conn: Connection, stream: str, stream_id: str) -> int:
    last = conn.execute(
        select(func.max(tables.events.c.seq)).where(
            tables.events.c.stream == stream, tables.events.c.stream_id == stream_id
        )
    ).scalar()
    return 1 if last is None else int(last) + 1


def _state(value: Case | Order) -> Any:
    data = serial.dump(value)
    data.pop("version", None)
    return data


class _Aggregates(Generic[T]):
    """Rows of one aggregate type: a JSON snapshot, a few indexed columns and a version."""

    stream: str
    table: Table

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _load(self, state: Any, version: int) -> T:
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
        t = self.table
        row = self.conn.execute(select(t.c.state, t.c.version).where(t.c.id == key)).first()
        return None if row is None else self._load(row.state, row.version)

    def add(self, item: T, events: Sequence[Event]) -> None:
        created = self._created(item)
        self.conn.execute(
            insert(self.table).values(
                id=item.id,
                state=_state(item),
                version=1,
                **created,
                **self._columns(item),
                updated_at=events[-1].at if events else self._born(item),
            )
        )
        _append(self.conn, self.stream, item.id, 1, events)

    def save(self, item: T, events: Sequence[Event]) -> None:
        t = self.table
        values = {"state": _state(item), "version": item.version + 1, **self._columns(item)}
        if events:
            values["updated_at"] = events[-1].at
        result = self.conn.execute(
            update(t).where(t.c.id == item.id, t.c.version == item.version).values(**values)
        )
        if result.rowcount != 1:
            raise Conflict(f"{self.stream} {item.id} was changed by someone else; load it again")
        seq = _next_seq(self.conn, self.stream, item.id)
        _append(self.conn, self.stream, item.id, seq, events)

    def timeline(self, key: str) -> list[StoredEvent]:
        return _timeline(self.conn, self.stream, key)


class SqlOrders(_Aggregates[Order]):
    stream, table = "order", tables.orders

    def _load(self, state: Any, version: int) -> Order:
        return serial.load_order(state, version)

    def _columns(self, item: Order) -> dict[str, Any]:
        return {"status": item.status.value}

    def _born(self, item: Order) -> datetime:
        return item.created_at

    def _created(self, item: Order) -> dict[str, Any]:
        return {"created_at": item.created_at, "shop": item.shop, "buyer": item.buyer}


class SqlCases(_Aggregates[Case]):
    stream, table = "case", tables.cases

    def _load(self, state: Any, version: int) -> Case:
        return serial.load_case(state, version)

    def _columns(self, item: Case) -> dict[str, Any]:
        return {"status": item.status.value, "kind": item.kind.value}

    def _born(self, item: Case) -> datetime:
        return item.opened_at

    def _created(self, item: Case) -> dict[str, Any]:
        return {
            "opened_at": item.opened_at,
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
    ) -> list[Case]:
        query = select(tables.cases.c.state, tables.cases.c.version)
        if shop is not None:
            query = query.where(tables.cases.c.shop == shop)
        if buyer is not None:
            query = query.where(tables.cases.c.buyer == buyer)
        if status is not None:
            query = query.where(tables.cases.c.status == status.value)
        query = query.order_by(tables.cases.c.opened_at, tables.cases.c.id).limit(limit)
        return [serial.load_case(r.state, r.version) for r in self.conn.execute(query)]


class SqlDeadlines:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.t = tables.deadlines

    def _pending(self, subject_type: str, subject_id: str) -> Any:
        return self.conn.execute(
            select(self.t.c.id, self.t.c.name, self.t.c.due_at, self.t.c.rule_id).where(
                self.t.c.subject_type == subject_type,
                self.t.c.subject_id == subject_id,
                self.t.c.status == "pending",
            )
        ).first()

    def sync(self, subject_type: str, subject_id: str, deadline: Deadline | None) -> None:
        row = self._pending(subject_type, subject_id)
        if (
            row is not None
            and deadline is not None
            and (row.name, row.due_at, row.rule_id)
            == (deadline.name, deadline.due_at, deadline.rule_id)
        ):
            return
        if row is not None:
            self.conn.execute(
                update(self.t).where(self.t.c.id == row.id).values(status="cancelled")
            )
        if deadline is not None:
            self.conn.execute(
                insert(self.t).values(
                    subject_type=subject_type,
                    subject_id=subject_id,
                    name=deadline.name,
                    due_at=deadline.due_at,
                    on_expiry=deadline.on_expiry,
                    rule_id=deadline.rule_id,
                    policy=deadline.policy,
                    status="pending",
                )
            )

    def fire(
        self, subject_type: str, subject_id: str, name: str, due_at: datetime, fired_at: datetime
    ) -> None:
        result = self.conn.execute(
            update(self.t)
            .where(
                self.t.c.subject_type == subject_type,
                self.t.c.subject_id == subject_id,
                self.t.c.status == "pending",
                self.t.c.name == name,
                self.t.c.due_at == due_at,
            )
            .values(status="fired", fired_at=fired_at)
        )
        if result.rowcount != 1:
            raise Conflict(f"{subject_type} {subject_id}: deadline {name} was already handled")

    def next_due(self, now: datetime) -> DueDeadline | None:
        query = (
            select(
                self.t.c.id,
                self.t.c.subject_type,
                self.t.c.subject_id,
                self.t.c.name,
                self.t.c.due_at,
            )
            .where(self.t.c.status == "pending", self.t.c.due_at <= now)
            .order_by(self.t.c.due_at, self.t.c.id)
            .limit(1)
        )
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = self.conn.execute(query).first()
        if row is None:
            return None
        return DueDeadline(
            id=row.id,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            name=row.name,
            due_at=row.due_at,
        )

    def pending_count(self) -> int:
        return int(
            self.conn.execute(
                select(func.count()).select_from(self.t).where(self.t.c.status == "pending")
            ).scalar_one()
        )


class SqlUnitOfWork:
    """One database transaction; leaving without :meth:`commit` rolls it back."""

    def __init__(self, engine: Engine, *, readonly: bool = False) -> None:
        self.engine = engine
        self.readonly = readonly
        self.conn: Connection | None = None

    def __enter__(self) -> SqlUnitOfWork:
        options = {"shouhou_readonly": True} if self.readonly else {}
        self.conn = self.engine.connect().execution_options(**options)
        self.conn.begin()
        self.orders = SqlOrders(self.conn)
        self.cases = SqlCases(self.conn)
        self.deadlines = SqlDeadlines(self.conn)
        self.outbox = SqlOutbox(self.conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.conn is not None
        try:
            if self.conn.in_transaction():
                self.conn.rollback()
        finally:
            self.conn.close()
            self.conn = None

    def commit(self) -> None:
        assert self.conn is not None
        self.conn.commit()
