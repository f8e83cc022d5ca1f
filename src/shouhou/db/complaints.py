"""Complaints, the ledger and the shop's event log on SQL, in the unit of work's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from shouhou.db import serial, tables
from shouhou.domain.events import Event
from shouhou.domain.model import Complaint
from shouhou.errors import Conflict
from shouhou.services.ports import LedgerEntry, LoggedEvent, StoredEvent

C, E, L = tables.complaints, tables.events, tables.ledger


def _load(state: Any, version: int) -> Complaint:
    complaint: Complaint = serial._adapter(Complaint).validate_python({**state, "version": version})
    return complaint


def _state(complaint: Complaint) -> Any:
    data = serial.dump(complaint)
    data.pop("version", None)
    return data


class SqlComplaints:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _one(self, condition: Any) -> Complaint | None:
        row = self.conn.execute(select(C.c.state, C.c.version).where(condition)).first()
        return None if row is None else _load(row.state, row.version)

    def get(self, complaint_id: str) -> Complaint | None:
        return self._one(C.c.id == complaint_id)

    def for_order(self, order_id: str) -> Complaint | None:
        return self._one(C.c.order_id == order_id)

    def _append(self, complaint_id: str, events: Sequence[Event]) -> None:
        last = self.conn.execute(
            select(func.max(E.c.seq)).where(
                E.c.stream == "complaint", E.c.stream_id == complaint_id
            )
        ).scalar()
        start = (last or 0) + 1
        if events:
            self.conn.execute(
                insert(E),
                [
                    {
                        "stream": "complaint",
                        "stream_id": complaint_id,
                        "seq": start + i,
                        "type": type(ev).__name__,
                        "at": ev.at,
                        "actor": ev.actor,
                        "data": serial.dump(ev),
                    }
                    for i, ev in enumerate(events)
                ],
            )

    def add(self, complaint: Complaint, events: Sequence[Event]) -> None:
        try:
            self.conn.execute(
                insert(C).values(
                    id=complaint.id,
                    order_id=complaint.order_id,
                    shop=complaint.shop,
                    buyer=complaint.buyer,
                    status=complaint.status.value,
                    state=_state(complaint),
                    version=1,
                    filed_at=complaint.filed_at,
                    updated_at=complaint.filed_at,
                )
            )
        except IntegrityError:
            raise Conflict(
                f"complaint {complaint.id} or one on order {complaint.order_id} already exists"
            ) from None
        self._append(complaint.id, events)

    def save(self, complaint: Complaint, events: Sequence[Event]) -> None:
        done = self.conn.execute(
            update(C)
            .where(C.c.id == complaint.id, C.c.version == complaint.version)
            .values(
                status=complaint.status.value,
                state=_state(complaint),
                version=complaint.version + 1,
                updated_at=events[-1].at if events else complaint.filed_at,
            )
        )
        if done.rowcount != 1:
            raise Conflict(f"complaint {complaint.id} was changed by someone else; load it again")
        self._append(complaint.id, events)

    def timeline(self, complaint_id: str) -> list[StoredEvent]:
        rows = self.conn.execute(
            select(E.c.seq, E.c.type, E.c.data)
            .where(E.c.stream == "complaint", E.c.stream_id == complaint_id)
            .order_by(E.c.seq)
        )
        return [StoredEvent(seq=r.seq, event=serial.load_event(r.type, r.data)) for r in rows]

    def list(
        self,
        *,
        shop: str | None = None,
        buyer: str | None = None,
        status: str | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> list[Complaint]:
        query = select(C.c.state, C.c.version)
        for column, value in ((C.c.shop, shop), (C.c.buyer, buyer), (C.c.status, status)):
            if value is not None:
                query = query.where(column == value)
        if after is not None:
            query = query.where(tables.keyset_after(C.c.filed_at, C.c.id, after))
        rows = self.conn.execute(query.order_by(C.c.filed_at, C.c.id).limit(limit))
        return [_load(r.state, r.version) for r in rows]


class SqlLedger:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, entries: Sequence[LedgerEntry]) -> None:
        for entry in entries:
            try:
                self.conn.execute(insert(L).values(**vars(entry)))
            except IntegrityError:
                raise Conflict(
                    f"{entry.kind} for {entry.source} was already written to the ledger"
                ) from None

    def entries(self, account: str, kind: str | None = None) -> list[LedgerEntry]:
        query = select(*(L.c[name] for name in LedgerEntry.__dataclass_fields__)).where(
            L.c.account == account
        )
        if kind is not None:
            query = query.where(L.c.kind == kind)
        rows = self.conn.execute(query.order_by(L.c.at, L.c.id))
        return [LedgerEntry(**row._mapping) for row in rows]


class SqlEventLog:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def for_shop(self, shop: str, since: datetime, until: datetime) -> list[LoggedEvent]:
        streams = or_(
            and_(
                E.c.stream == "case",
                E.c.stream_id.in_(select(tables.cases.c.id).where(tables.cases.c.shop == shop)),
            ),
            and_(
                E.c.stream == "order",
                E.c.stream_id.in_(select(tables.orders.c.id).where(tables.orders.c.shop == shop)),
            ),
            and_(
                E.c.stream == "complaint", E.c.stream_id.in_(select(C.c.id).where(C.c.shop == shop))
            ),
        )
        rows = self.conn.execute(
            select(E.c.stream, E.c.stream_id, E.c.type, E.c.data)
            .where(streams, E.c.at >= since, E.c.at <= until)
            .order_by(E.c.at, E.c.id)
        )
        return [
            LoggedEvent(
                stream=r.stream, stream_id=r.stream_id, event=serial.load_event(r.type, r.data)
            )
            for r in rows
        ]


class SqlShops:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.t = tables.shops

    def return_address(self, shop: str) -> str | None:
        found = self.conn.execute(
            select(self.t.c.return_address).where(self.t.c.id == shop)
        ).scalar_one_or_none()
        return None if found is None else str(found)

    def set_return_address(self, shop: str, address: str | None, at: datetime) -> None:
        changed = self.conn.execute(
            update(self.t).where(self.t.c.id == shop).values(return_address=address, updated_at=at)
        )
        if changed.rowcount == 0:
            try:
                with self.conn.begin_nested():
                    self.conn.execute(
                        insert(self.t).values(id=shop, return_address=address, updated_at=at)
                    )
            except IntegrityError:
                raise Conflict(f"shop {shop} was changed at the same time; try again") from None
