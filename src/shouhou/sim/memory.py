"""A fast in-memory store for the simulator: the storage ports, with changes staged per unit of
work and applied on commit.

``shouhou.testing.MemoryUnitOfWork`` copies its whole store on entering and on committing,
which is simple and right for tests, and quadratic for a simulated Double-11. These units of
work read through to the shared store, keep their own writes apart (read back first), and
apply them on commit; leaving without commit drops them. They keep the fakes' promises:
versions refuse stale writes, one pending deadline per subject, claims in due order.

Single-threaded by design: the simulator runs one unit of work at a time. Outbox messages are
counted, not kept: the lab delivers no webhooks.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar

from shouhou.domain.events import Event
from shouhou.domain.model import Case, CaseStatus, Complaint, Deadline, Order, evolve
from shouhou.errors import Conflict
from shouhou.services.ports import (
    Backlog,
    DueDeadline,
    LedgerEntry,
    LoggedEvent,
    OutboxMessage,
    StoredEvent,
)

Key = tuple[str, str]  # (subject type, subject id)


@dataclass
class _Row:
    id: int
    key: Key
    deadline: Deadline


@dataclass
class LabStore:
    """The data every unit of work shares."""

    orders: dict[str, Order] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)
    complaints: dict[str, Complaint] = field(default_factory=dict)
    streams: dict[Key, list[StoredEvent]] = field(default_factory=dict)
    #: Each shop's events as (stream, stream id, event), in commit order.
    by_shop: dict[str, list[tuple[str, str, Event]]] = field(default_factory=dict)
    cases_of_order: dict[str, list[str]] = field(default_factory=dict)
    pending: dict[Key, _Row] = field(default_factory=dict)
    #: (due_at, row id, subject) of every row ever scheduled; rows no longer pending are
    #: dropped when they reach the top (lazy deletion keeps a claim O(log n)).
    heap: list[tuple[datetime, int, Key]] = field(default_factory=list)
    last_row: int = 0
    fired: int = 0
    ledger: list[LedgerEntry] = field(default_factory=list)
    ledger_keys: set[tuple[str, str]] = field(default_factory=set)
    return_addresses: dict[str, str | None] = field(default_factory=dict)
    outbox_messages: int = 0
    commits: int = 0

    def next_due_at(self) -> datetime | None:
        """The earliest due time of a pending deadline."""
        self.drop_stale()
        return self.heap[0][0] if self.heap else None

    def drop_stale(self) -> None:
        """Drop heap entries whose row is no longer pending."""
        while self.heap:
            _, row_id, key = self.heap[0]
            row = self.pending.get(key)
            if row is not None and row.id == row_id:
                return
            heapq.heappop(self.heap)


T = TypeVar("T", Case, Order, Complaint)


class _Repo(Generic[T]):
    def __init__(self, store: LabStore, stream: str, items: dict[str, T]) -> None:
        self.store, self.stream = store, stream
        self.items: dict[str, T] = items
        self.staged: dict[str, T] = {}
        self.events: dict[str, list[Event]] = {}

    def get(self, key: str) -> T | None:
        found = self.staged.get(key)
        return found if found is not None else self.items.get(key)

    def add(self, item: T, events: Sequence[Event]) -> None:
        if self.get(item.id) is not None:
            case = item.id if self.stream == "case" else None
            raise Conflict(f"{self.stream} {item.id} already exists", case=case)
        self.staged[item.id] = evolve(item, version=1)
        self.events.setdefault(item.id, []).extend(events)

    def save(self, item: T, events: Sequence[Event]) -> None:
        stored = self.get(item.id)
        if stored is None or stored.version != item.version:
            raise Conflict(f"{self.stream} {item.id} was changed by someone else; load it again")
        self.staged[item.id] = evolve(item, version=item.version + 1)
        self.events.setdefault(item.id, []).extend(events)

    def timeline(self, key: str) -> list[StoredEvent]:
        log = list(self.store.streams.get((self.stream, key), []))
        start = len(log)
        staged = self.events.get(key, [])
        log += [StoredEvent(seq=start + i + 1, event=ev) for i, ev in enumerate(staged)]
        return log

    def staged_events(self, shop: str) -> list[tuple[str, str, Event]]:
        """The events of ``shop``'s subjects this unit of work has not applied yet."""
        return [
            (self.stream, key, ev)
            for key, events in self.events.items()
            if (item := self.get(key)) is not None and item.shop == shop
            for ev in events
        ]

    def apply(self) -> None:
        for key, item in self.staged.items():
            new = key not in self.items
            self.items[key] = item
            if new and isinstance(item, Case):
                self.store.cases_of_order.setdefault(item.order_id, []).append(key)
        for key, events in self.events.items():
            log = self.store.streams.setdefault((self.stream, key), [])
            start = len(log)
            log += [StoredEvent(seq=start + i + 1, event=ev) for i, ev in enumerate(events)]
            shop = self.items[key].shop
            self.store.by_shop.setdefault(shop, []).extend((self.stream, key, ev) for ev in events)


class _Cases(_Repo[Case]):
    def list(
        self,
        *,
        shop: str | None = None,
        buyer: str | None = None,
        status: CaseStatus | None = None,
        limit: int = 100,
        order: str | None = None,
    ) -> list[Case]:
        if order is not None:
            ids = set(self.store.cases_of_order.get(order, []))
            ids |= {k for k, c in self.staged.items() if c.order_id == order}
        else:
            ids = set(self.items) | set(self.staged)
        found = [
            c
            for c in (self.get(i) for i in ids)
            if c is not None
            and (shop is None or c.shop == shop)
            and (buyer is None or c.buyer == buyer)
            and (status is None or c.status == status)
            and (order is None or c.order_id == order)
        ]
        return sorted(found, key=lambda c: (c.opened_at, c.id))[:limit]


class _Complaints(_Repo[Complaint]):
    def for_order(self, order_id: str) -> Complaint | None:
        everything = [*self.staged.values(), *self.items.values()]
        return next((k for k in everything if k.order_id == order_id), None)

    def add(self, item: Complaint, events: Sequence[Event]) -> None:
        if self.for_order(item.order_id) is not None:
            raise Conflict(f"order {item.order_id} already has a complaint")
        super().add(item, events)

    def list(
        self,
        *,
        shop: str | None = None,
        buyer: str | None = None,
        status: str | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> list[Complaint]:
        everything = {**self.items, **self.staged}.values()
        found = [
            k
            for k in everything
            if (shop is None or k.shop == shop)
            and (buyer is None or k.buyer == buyer)
            and (status is None or k.status.value == status)
            and (after is None or (k.filed_at, k.id) > after)
        ]
        return sorted(found, key=lambda k: (k.filed_at, k.id))[:limit]


class _Deadlines:
    def __init__(self, store: LabStore) -> None:
        self.store = store
        #: Subjects whose pending row this work changed: the new row, or None (none pending).
        self.staged: dict[Key, _Row | None] = {}
        self.next_id = store.last_row
        self.fired = 0

    def _pending(self, key: Key) -> _Row | None:
        if key in self.staged:
            return self.staged[key]
        return self.store.pending.get(key)

    def sync(self, subject_type: str, subject_id: str, deadline: Deadline | None) -> None:
        key = (subject_type, subject_id)
        row = self._pending(key)
        if (
            row is not None
            and deadline is not None
            and (row.deadline.name, row.deadline.due_at, row.deadline.rule_id)
            == (deadline.name, deadline.due_at, deadline.rule_id)
        ):
            return
        if deadline is None:
            if row is not None:
                self.staged[key] = None
            return
        self.next_id += 1
        self.staged[key] = _Row(self.next_id, key, deadline)

    def fire(
        self, subject_type: str, subject_id: str, name: str, due_at: datetime, fired_at: datetime
    ) -> None:
        key = (subject_type, subject_id)
        row = self._pending(key)
        if row is None or (row.deadline.name, row.deadline.due_at) != (name, due_at):
            raise Conflict(f"{subject_type} {subject_id}: deadline {name} was already handled")
        self.staged[key] = None
        self.fired += 1

    def next_due(self, now: datetime) -> DueDeadline | None:
        claimed = self.claim_due(now, 1)
        return claimed[0] if claimed else None

    def claim_due(self, now: datetime, limit: int) -> list[DueDeadline]:
        heap = self.store.heap
        taken: list[tuple[datetime, int, Key]] = []
        self.store.drop_stale()
        # pop the due entries in order, then put them back: claiming changes nothing
        while heap and heap[0][0] <= now and len(taken) < limit + len(self.staged):
            taken.append(heapq.heappop(heap))
        for entry in taken:
            heapq.heappush(heap, entry)
        rows = [
            self.store.pending[key]
            for _, row_id, key in taken
            if key in self.store.pending
            and self.store.pending[key].id == row_id
            and key not in self.staged
        ]
        rows += [r for r in self.staged.values() if r is not None and r.deadline.due_at <= now]
        rows.sort(key=lambda r: (r.deadline.due_at, r.id))
        return [
            DueDeadline(
                id=r.id,
                subject_type=r.key[0],
                subject_id=r.key[1],
                name=r.deadline.name,
                due_at=r.deadline.due_at,
            )
            for r in rows[:limit]
        ]

    def earliest_scheduled(self) -> datetime | None:
        return min((r.deadline.due_at for r in self.staged.values() if r is not None), default=None)

    def still_due(self, due: DueDeadline) -> bool:
        row = self._pending((due.subject_type, due.subject_id))
        return row is not None and (row.deadline.name, row.deadline.due_at) == (
            due.name,
            due.due_at,
        )

    def set_aside(self, due: DueDeadline, error: str) -> bool:
        key = (due.subject_type, due.subject_id)
        row = self._pending(key)
        if row is None or row.id != due.id:
            return False
        self.staged[key] = None
        return True

    def backlog(self, now: datetime) -> Backlog:
        due = [r.deadline.due_at for r in self.store.pending.values() if r.deadline.due_at <= now]
        return Backlog(due=len(due), oldest_due_at=min(due, default=None))

    def pending_count(self) -> int:
        count = len(self.store.pending)
        for key, row in self.staged.items():
            count += (row is not None) - (key in self.store.pending)
        return count

    def apply(self) -> None:
        for key, row in self.staged.items():
            if row is None:
                self.store.pending.pop(key, None)
            else:
                self.store.pending[key] = row
                heapq.heappush(self.store.heap, (row.deadline.due_at, row.id, key))
        self.store.last_row = max(self.store.last_row, self.next_id)
        self.store.fired += self.fired


class _Ledger:
    def __init__(self, store: LabStore) -> None:
        self.store = store
        self.staged: list[LedgerEntry] = []

    def add(self, entries: Sequence[LedgerEntry]) -> None:
        for entry in entries:
            key = (entry.kind, entry.source)
            if key in self.store.ledger_keys or any((x.kind, x.source) == key for x in self.staged):
                raise Conflict(f"{entry.kind} for {entry.source} was already written")
            self.staged.append(entry)

    def entries(self, account: str, kind: str | None = None) -> list[LedgerEntry]:
        return [
            x
            for x in [*self.store.ledger, *self.staged]
            if x.account == account and (kind is None or x.kind == kind)
        ]

    def apply(self) -> None:
        self.store.ledger += self.staged
        self.store.ledger_keys.update((x.kind, x.source) for x in self.staged)


class _Log:
    def __init__(self, store: LabStore, repos: Sequence[_Repo[Any]]) -> None:
        self.store = store
        self.repos = repos  # their events staged in this unit of work count too

    def for_shop(self, shop: str, since: datetime, until: datetime) -> list[LoggedEvent]:
        staged = [found for repo in self.repos for found in repo.staged_events(shop)]
        found = [
            LoggedEvent(stream=stream, stream_id=key, event=ev)
            for stream, key, ev in [*self.store.by_shop.get(shop, []), *staged]
            if since <= ev.at <= until
        ]
        return sorted(found, key=lambda x: x.event.at)


class _Shops:
    def __init__(self, store: LabStore) -> None:
        self.store = store

    def return_address(self, shop: str) -> str | None:
        return self.store.return_addresses.get(shop)

    def set_return_address(self, shop: str, address: str | None, at: datetime) -> None:
        self.store.return_addresses[shop] = address


class _Outbox:
    def __init__(self) -> None:
        self.count = 0

    def add(self, messages: Sequence[OutboxMessage]) -> None:
        self.count += len(messages)


class LabUnitOfWork:
    """A unit of work over a :class:`LabStore`; its changes are seen by others after commit."""

    def __init__(self, store: LabStore) -> None:
        self.store = store
        self.orders = _Repo[Order](store, "order", store.orders)
        self.cases = _Cases(store, "case", store.cases)
        self.complaints = _Complaints(store, "complaint", store.complaints)
        self.deadlines = _Deadlines(store)
        self.ledger = _Ledger(store)
        self.log = _Log(store, (self.orders, self.cases, self.complaints))
        self.shops = _Shops(store)
        self.outbox = _Outbox()

    def _fresh(self) -> None:
        """Forget this work's staged changes (after a commit applied them, or to roll back)."""
        for repo in (self.orders, self.cases, self.complaints):
            if repo.staged or repo.events:
                repo.staged, repo.events = {}, {}
        deadlines = self.deadlines
        deadlines.staged, deadlines.fired = {}, 0
        deadlines.next_id = self.store.last_row
        self.ledger.staged = []
        self.outbox.count = 0

    def __enter__(self) -> LabUnitOfWork:
        self._fresh()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._fresh()

    def commit(self) -> None:
        # orders and complaints before cases: the event log finds each stream's shop
        self.orders.apply()
        self.complaints.apply()
        self.cases.apply()
        self.deadlines.apply()
        self.ledger.apply()
        self.store.outbox_messages += self.outbox.count
        self.store.commits += 1
        self._fresh()
