"""Public fakes: in-memory implementations of every storage port, for tests and embedding.

They keep the same promises as the SQL ones: versions refuse stale writes, one pending
deadline per subject, and leaving a unit of work without commit rolls everything back.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar

from shouhou.db.attachments import check
from shouhou.domain.events import Event
from shouhou.domain.model import Attachment, Case, CaseStatus, Complaint, Deadline, Order
from shouhou.errors import Conflict
from shouhou.services.ports import (
    DueDeadline,
    LedgerEntry,
    LoggedEvent,
    OutboxMessage,
    StoredEvent,
)


@dataclass
class _Row:
    id: int
    subject_type: str
    subject_id: str
    deadline: Deadline
    status: str = "pending"
    fired_at: datetime | None = None
    error: str | None = None


@dataclass
class MemoryStore:
    """The data behind the fakes; share one between units of work."""

    orders: dict[str, Order] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)
    streams: dict[tuple[str, str], list[StoredEvent]] = field(default_factory=dict)
    deadlines: list[_Row] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)
    complaints: dict[str, Complaint] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    return_addresses: dict[str, str | None] = field(default_factory=dict)


T = TypeVar("T", Case, Order, Complaint)


class _Versioned(Generic[T]):
    def __init__(self, store: MemoryStore, stream: str, items: dict[str, T]) -> None:
        self.store = store
        self.stream = stream
        self.items: dict[str, T] = items

    def get(self, key: str) -> T | None:
        return self.items.get(key)

    def _append(self, key: str, events: Sequence[Event]) -> None:
        log = self.store.streams.setdefault((self.stream, key), [])
        start = len(log)
        log.extend(StoredEvent(seq=start + i + 1, event=ev) for i, ev in enumerate(events))

    def add(self, item: T, events: Sequence[Event]) -> None:
        if item.id in self.items:
            raise Conflict(f"{self.stream} {item.id} already exists")
        self.items[item.id] = replace(item, version=1)
        self._append(item.id, events)

    def save(self, item: T, events: Sequence[Event]) -> None:
        stored = self.items.get(item.id)
        if stored is None or stored.version != item.version:
            raise Conflict(f"{self.stream} {item.id} was changed by someone else; load it again")
        self.items[item.id] = replace(item, version=item.version + 1)
        self._append(item.id, events)

    def timeline(self, key: str) -> list[StoredEvent]:
        return list(self.store.streams.get((self.stream, key), []))


class MemoryCases(_Versioned[Case]):
    def list(
        self,
        *,
        shop: str | None = None,
        buyer: str | None = None,
        status: CaseStatus | None = None,
        limit: int = 100,
        order: str | None = None,
    ) -> list[Case]:
        found = [
            c
            for c in self.items.values()
            if (shop is None or c.shop == shop)
            and (buyer is None or c.buyer == buyer)
            and (status is None or c.status == status)
            and (order is None or c.order_id == order)
        ]
        return sorted(found, key=lambda c: (c.opened_at, c.id))[:limit]


class MemoryDeadlines:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.first_new = len(store.deadlines)  # rows from here on were added by this work

    def _pending(self, subject_type: str, subject_id: str) -> _Row | None:
        for row in self.store.deadlines:
            if (row.subject_type, row.subject_id, row.status) == (
                subject_type,
                subject_id,
                "pending",
            ):
                return row
        return None

    def sync(self, subject_type: str, subject_id: str, deadline: Deadline | None) -> None:
        row = self._pending(subject_type, subject_id)
        if (
            row is not None
            and deadline is not None
            and (row.deadline.name, row.deadline.due_at, row.deadline.rule_id)
            == (deadline.name, deadline.due_at, deadline.rule_id)
        ):
            return
        if row is not None:
            row.status = "cancelled"
        if deadline is not None:
            self.store.deadlines.append(
                _Row(len(self.store.deadlines) + 1, subject_type, subject_id, deadline)
            )

    def fire(
        self, subject_type: str, subject_id: str, name: str, due_at: datetime, fired_at: datetime
    ) -> None:
        row = self._pending(subject_type, subject_id)
        if row is None or (row.deadline.name, row.deadline.due_at) != (name, due_at):
            raise Conflict(f"{subject_type} {subject_id}: deadline {name} was already handled")
        row.status, row.fired_at = "fired", fired_at

    def next_due(self, now: datetime) -> DueDeadline | None:
        claimed = self.claim_due(now, 1)
        return claimed[0] if claimed else None

    def claim_due(self, now: datetime, limit: int) -> list[DueDeadline]:
        due = [
            r for r in self.store.deadlines if r.status == "pending" and r.deadline.due_at <= now
        ]
        due.sort(key=lambda r: (r.deadline.due_at, r.id))
        return [
            DueDeadline(
                id=row.id,
                subject_type=row.subject_type,
                subject_id=row.subject_id,
                name=row.deadline.name,
                due_at=row.deadline.due_at,
            )
            for row in due[:limit]
        ]

    def earliest_scheduled(self) -> datetime | None:
        new = self.store.deadlines[self.first_new :]
        return min((r.deadline.due_at for r in new if r.status == "pending"), default=None)

    def still_due(self, due: DueDeadline) -> bool:
        row = self._pending(due.subject_type, due.subject_id)
        return row is not None and (row.deadline.name, row.deadline.due_at) == (
            due.name,
            due.due_at,
        )

    def set_aside(self, due: DueDeadline, error: str) -> bool:
        for row in self.store.deadlines:
            if row.id == due.id and row.status == "pending":
                row.status, row.error = "failed", error
                return True
        return False

    def pending_count(self) -> int:
        return sum(1 for r in self.store.deadlines if r.status == "pending")


class MemoryAttachmentStore:
    """Attachments in memory, checked like the file store's."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[Attachment, bytes]] = {}

    def put(self, data: bytes, filename: str) -> Attachment:
        attachment = check(data, filename)
        self.files.setdefault(attachment.sha256, (attachment, data))
        return self.files[attachment.sha256][0]

    def get(self, sha256: str) -> Attachment | None:
        found = self.files.get(sha256)
        return found[0] if found else None

    def read(self, sha256: str) -> bytes:
        return self.files[sha256][1]


class MemoryComplaints(_Versioned[Complaint]):
    def add(self, item: Complaint, events: Sequence[Event]) -> None:
        if self.for_order(item.order_id) is not None:
            raise Conflict(f"order {item.order_id} already has a complaint")
        super().add(item, events)

    def for_order(self, order_id: str) -> Complaint | None:
        return next((k for k in self.items.values() if k.order_id == order_id), None)

    def list(
        self,
        *,
        shop: str | None = None,
        buyer: str | None = None,
        status: str | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> list[Complaint]:
        found = [
            k
            for k in self.items.values()
            if (shop is None or k.shop == shop)
            and (buyer is None or k.buyer == buyer)
            and (status is None or k.status.value == status)
            and (after is None or (k.filed_at, k.id) > after)
        ]
        return sorted(found, key=lambda k: (k.filed_at, k.id))[:limit]


class MemoryLedger:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def add(self, entries: Sequence[LedgerEntry]) -> None:
        for entry in entries:
            if any((x.kind, x.source) == (entry.kind, entry.source) for x in self.store.ledger):
                raise Conflict(f"{entry.kind} for {entry.source} was already written")
            self.store.ledger.append(entry)

    def entries(self, account: str, kind: str | None = None) -> list[LedgerEntry]:
        return [
            x
            for x in self.store.ledger
            if x.account == account and (kind is None or x.kind == kind)
        ]


class MemoryEventLog:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def for_shop(self, shop: str, since: datetime, until: datetime) -> list[LoggedEvent]:
        owners: dict[str, dict[str, Any]] = {
            "case": self.store.cases,
            "order": self.store.orders,
            "complaint": self.store.complaints,
        }
        found = [
            LoggedEvent(stream=stream, stream_id=key, event=stored.event)
            for (stream, key), log in self.store.streams.items()
            if stream in owners and key in owners[stream] and owners[stream][key].shop == shop
            for stored in log
            if since <= stored.event.at <= until
        ]
        return sorted(found, key=lambda x: x.event.at)


class MemoryUnitOfWork:
    """A unit of work over a :class:`MemoryStore`; changes are visible only after commit."""

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.shared = store if store is not None else MemoryStore()

    def __enter__(self) -> MemoryUnitOfWork:
        self.work = copy.deepcopy(self.shared)
        self.orders = _Versioned[Order](self.work, "order", self.work.orders)
        self.cases = MemoryCases(self.work, "case", self.work.cases)
        self.deadlines = MemoryDeadlines(self.work)
        self.outbox = MemoryOutbox(self.work)
        self._attach_more()
        return self

    def _attach_more(self) -> None:
        self.complaints = MemoryComplaints(self.work, "complaint", self.work.complaints)
        self.ledger = MemoryLedger(self.work)
        self.log = MemoryEventLog(self.work)
        self.shops = MemoryShops(self.work)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        del self.work

    def commit(self) -> None:
        for name in (
            "orders",
            "cases",
            "streams",
            "deadlines",
            "outbox",
            "complaints",
            "ledger",
            "return_addresses",
        ):
            setattr(self.shared, name, getattr(self.work, name))
        self.work = copy.deepcopy(self.shared)
        self.orders = _Versioned[Order](self.work, "order", self.work.orders)
        self.cases = MemoryCases(self.work, "case", self.work.cases)
        self.deadlines = MemoryDeadlines(self.work)
        self.outbox = MemoryOutbox(self.work)
        self._attach_more()


class MemoryShops:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def return_address(self, shop: str) -> str | None:
        return self.store.return_addresses.get(shop)

    def set_return_address(self, shop: str, address: str | None, at: datetime) -> None:
        self.store.return_addresses[shop] = address


class MemoryOutbox:
    """The outbox of the fakes: messages kept in the store, committed with the rest."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def add(self, messages: Sequence[OutboxMessage]) -> None:
        self.store.outbox.extend(messages)
