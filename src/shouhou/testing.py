"""Public fakes: in-memory implementations of every storage port, for tests and embedding.

:class:`MemoryUnitOfWork` has the core repositories; :class:`MemoryApiUnitOfWork` adds what
the API and the worker reach (keys, idempotency records, lists, webhooks, retention), so that
``Engine(lambda: MemoryApiUnitOfWork(store))`` serves both.

They keep the same promises as the SQL ones: versions refuse stale writes, one pending
deadline per subject, and leaving a unit of work without commit rolls everything back.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from shouhou.db.attachments import check
from shouhou.domain.events import Event
from shouhou.domain.model import Attachment, Case, CaseStatus, Complaint, Deadline, Order
from shouhou.errors import Conflict
from shouhou.services.outbox import payload
from shouhou.services.ports import (
    PENDING_STATUS,
    ApiKey,
    Approaching,
    Attempt,
    Backlog,
    CaseFilter,
    Claimed,
    Delivery,
    DueDeadline,
    Endpoint,
    LedgerEntry,
    ListedCase,
    ListedOrder,
    LoggedEvent,
    OrderFilter,
    OutboxEvent,
    OutboxMessage,
    StoredEvent,
    StoredResponse,
)
from shouhou.services.webhooks import MAX_ERROR_CHARS, matches

if TYPE_CHECKING:
    from shouhou.services.ports import ApiUnitOfWork


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
class _Event:
    """An outbox row: the message, its id, feed position and fan-out time."""

    id: int
    message: OutboxMessage
    position: int | None = None
    dispatched_at: datetime | None = None


@dataclass
class _Delivery:
    delivery: Delivery
    lease_until: datetime | None = None


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
    #: The id of the newest deadline row ever added (ids are never given out twice).
    last_deadline: int = 0
    # what MemoryApiUnitOfWork adds
    api_keys: dict[str, tuple[ApiKey, str]] = field(default_factory=dict)  # by id, with hash
    idempotency: dict[tuple[str, str], tuple[StoredResponse, datetime]] = field(
        default_factory=dict
    )
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    events: dict[int, _Event] = field(default_factory=dict)
    deliveries: dict[int, _Delivery] = field(default_factory=dict)
    attempts: dict[int, list[Attempt]] = field(default_factory=dict)
    notices: dict[int, datetime] = field(default_factory=dict)  # announced deadline ids
    #: Evidence files and bytes counted per actor and marketplace day.
    uploads: dict[tuple[str, date], tuple[int, int]] = field(default_factory=dict)
    last_event: int = 0
    last_position: int = 0
    #: How far each JetStream stream has been published (``shouhou relay``), per bucket.
    relay_cursors: dict[tuple[str, int], int] = field(default_factory=dict)
    last_delivery: int = 0


def _pending(store: MemoryStore, chosen: Callable[[_Row], bool]) -> list[_Row]:
    """The pending deadline rows ``chosen`` picks, in due order (ties by id)."""
    rows = [r for r in store.deadlines if r.status == "pending" and chosen(r)]
    return sorted(rows, key=lambda r: (r.deadline.due_at, r.id))


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
            case = item.id if self.stream == "case" else None
            raise Conflict(f"{self.stream} {item.id} already exists", case=case)
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
        self.first_new = store.last_deadline  # rows with a larger id were added by this work

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
            self.store.last_deadline += 1
            self.store.deadlines.append(
                _Row(self.store.last_deadline, subject_type, subject_id, deadline)
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
        due = _pending(self.store, lambda r: r.deadline.due_at <= now)
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
        new = [r for r in self.store.deadlines if r.id > self.first_new]
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

    def backlog(self, now: datetime) -> Backlog:
        due = _pending(self.store, lambda r: r.deadline.due_at <= now)
        return Backlog(due=len(due), oldest_due_at=due[0].deadline.due_at if due else None)


class MemoryAttachmentStore:
    """Attachments in memory, checked like the file store's."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[Attachment, bytes]] = {}

    def put(self, data: bytes, filename: str) -> Attachment:
        return self.keep(data, self.check(data, filename))

    def check(self, data: bytes, filename: str) -> Attachment:
        return check(data, filename)

    def keep(self, data: bytes, attachment: Attachment) -> Attachment:
        if hashlib.sha256(data).hexdigest() != attachment.sha256:
            raise ValueError("keep() was given other bytes than the ones checked")  # a bug
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
        for one in fields(MemoryStore):
            setattr(self.shared, one.name, getattr(self.work, one.name))
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


# --- what the API and the worker reach -------------------------------------------------------


class MemoryKeys:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def add(self, key: ApiKey, token_hash: str) -> None:
        if key.id in self.store.api_keys:
            raise Conflict(f"API key {key.id} already exists")
        self.store.api_keys[key.id] = (key, token_hash)

    def by_hash(self, token_hash: str) -> ApiKey | None:
        return next((k for k, h in self.store.api_keys.values() if h == token_hash), None)

    def all(self) -> list[ApiKey]:
        keys = [k for k, _ in self.store.api_keys.values()]
        return sorted(keys, key=lambda k: (k.created_at, k.id))

    def revoke(self, key_id: str, at: datetime) -> bool:
        found = self.store.api_keys.get(key_id)
        if found is None or found[0].revoked_at is not None:
            return False
        self.store.api_keys[key_id] = (replace(found[0], revoked_at=at), found[1])
        return True


class MemoryIdempotency:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def get(
        self, scope: str, key: str, since: datetime, *, bucket: int = 0
    ) -> StoredResponse | None:
        found = self.store.idempotency.get((scope, key))
        return found[0] if found is not None and found[1] >= since else None

    def claim(
        self,
        scope: str,
        key: str,
        request_hash: str,
        at: datetime,
        since: datetime,
        stale_before: datetime,
        *,
        bucket: int = 0,
    ) -> StoredResponse | None:
        found = self.store.idempotency.get((scope, key))
        if found is not None:
            record, created = found
            stale = record.pending and created < stale_before
            if created >= since and not stale:
                return record
        claim = StoredResponse(request_hash=request_hash, status_code=PENDING_STATUS, body={})
        self.store.idempotency[(scope, key)] = (claim, at)
        return None

    def finish(
        self,
        scope: str,
        key: str,
        response: StoredResponse,
        claimed_at: datetime,
        *,
        bucket: int = 0,
    ) -> None:
        if not self._holds(scope, key, claimed_at):
            raise Conflict(
                f"the request with Idempotency-Key {key!r} took so long that another one took "
                "the key over; nothing was changed, send it again to get that one's answer",
                rule="shouhou/idempotency",
            )
        self.store.idempotency[(scope, key)] = (response, claimed_at)

    def release(self, scope: str, key: str, claimed_at: datetime, *, bucket: int = 0) -> None:
        if self._holds(scope, key, claimed_at):
            del self.store.idempotency[(scope, key)]

    def _holds(self, scope: str, key: str, claimed_at: datetime) -> bool:
        found = self.store.idempotency.get((scope, key))
        return found is not None and found[0].pending and found[1] == claimed_at

    def forget_before(self, at: datetime) -> int:
        old = [k for k, (_, created) in self.store.idempotency.items() if created < at]
        for k in old:
            del self.store.idempotency[k]
        return len(old)


def _pending_due(store: MemoryStore, subject_type: str, subject_id: str) -> datetime | None:
    for row in store.deadlines:
        if (row.subject_type, row.subject_id, row.status) == (subject_type, subject_id, "pending"):
            return row.deadline.due_at
    return None


class MemoryQueries:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def cases(self, where: CaseFilter, limit: int) -> list[ListedCase]:
        found = []
        for case in self.store.cases.values():
            due = _pending_due(self.store, "case", case.id)
            if (
                (where.statuses and case.status not in where.statuses)
                or (where.shop is not None and case.shop != where.shop)
                or (where.buyer is not None and case.buyer != where.buyer)
                or (where.order is not None and case.order_id != where.order)
                or (where.due_before is not None and (due is None or due >= where.due_before))
            ):
                continue
            if where.sort == "due_at":
                if due is None:
                    continue
                key = (due, case.id)
            else:
                key = (case.opened_at, case.id)
            if where.after is None or key > where.after:
                order = self.store.orders[case.order_id]
                found.append(ListedCase(case=case, order=order, sort_key=key))
        return sorted(found, key=lambda x: x.sort_key)[:limit]

    def orders(self, where: OrderFilter, limit: int) -> list[ListedOrder]:
        found = [
            ListedOrder(order=o, sort_key=(o.created_at, o.id))
            for o in self.store.orders.values()
            if (not where.statuses or o.status in where.statuses)
            and (where.shop is None or o.shop == where.shop)
            and (where.buyer is None or o.buyer == where.buyer)
            and (where.after is None or (o.created_at, o.id) > where.after)
        ]
        return sorted(found, key=lambda x: x.sort_key)[:limit]


class MemoryFeedOutbox(MemoryOutbox):
    """The outbox of :class:`MemoryApiUnitOfWork`: each message also becomes an event row."""

    def add(self, messages: Sequence[OutboxMessage]) -> None:
        super().add(messages)
        for message in messages:
            self.store.last_event += 1
            self.store.events[self.store.last_event] = _Event(self.store.last_event, message)


class MemoryWebhooks:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    @staticmethod
    def _event(row: _Event) -> OutboxEvent:
        m = row.message
        return OutboxEvent(
            id=row.id,
            type=m.type,
            subject_type=m.subject_type,
            subject_id=m.subject_id,
            occurred_at=m.occurred_at,
            data=payload(m),
            position=row.position,
        )

    def add_endpoint(self, endpoint: Endpoint) -> None:
        if endpoint.id in self.store.endpoints:
            raise Conflict(f"endpoint {endpoint.id} already exists")
        self.store.endpoints[endpoint.id] = endpoint

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        return self.store.endpoints.get(endpoint_id)

    def endpoints(self) -> list[Endpoint]:
        return sorted(self.store.endpoints.values(), key=lambda e: (e.created_at, e.id))

    def disable_endpoint(self, endpoint_id: str, at: datetime) -> bool:
        found = self.store.endpoints.get(endpoint_id)
        if found is None or found.disabled_at is not None:
            return False
        self.store.endpoints[endpoint_id] = replace(found, disabled_at=at)
        return True

    def event(self, event_id: int) -> OutboxEvent | None:
        row = self.store.events.get(event_id)
        return None if row is None else self._event(row)

    def sequence(self, limit: int) -> int:
        rows = sorted((r for r in self.store.events.values() if r.position is None), key=_id)
        for row in rows[:limit]:
            self.store.last_position += 1
            row.position = self.store.last_position
        return len(rows[:limit])

    def events(
        self, *, after: Mapping[int, int], limit: int, types: Sequence[str] = ()
    ) -> list[OutboxEvent]:
        """One feed: every event in bucket 0."""
        rows = [
            r
            for r in self.store.events.values()
            if r.position is not None
            and r.position > after.get(0, 0)
            and (not types or r.message.type in types)
        ]
        return [self._event(r) for r in sorted(rows, key=lambda r: r.position or 0)[:limit]]

    def enqueue(self, event_id: int, endpoint_ids: Sequence[str], at: datetime) -> list[int]:
        ids = []
        for endpoint_id in endpoint_ids:
            self.store.last_delivery += 1
            new = Delivery(
                id=self.store.last_delivery,
                event_id=event_id,
                endpoint_id=endpoint_id,
                status="pending",
                attempts=0,
                next_attempt_at=at,
                last_status_code=None,
                last_error=None,
                created_at=at,
                delivered_at=None,
            )
            self.store.deliveries[new.id] = _Delivery(new)
            ids.append(new.id)
        return ids

    def dispatch(self, now: datetime, limit: int) -> int:
        self.sequence(limit)
        rows = sorted((r for r in self.store.events.values() if r.dispatched_at is None), key=_id)
        active = [e for e in self.endpoints() if e.disabled_at is None]
        for row in rows[:limit]:
            row.dispatched_at = now
            wanted = [e.id for e in active if matches(e.events, row.message.type)]
            self.enqueue(row.id, wanted, now)
        return len(rows[:limit])

    def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
        due = [
            row
            for row in self.store.deliveries.values()
            if row.delivery.status == "pending"
            and row.delivery.next_attempt_at <= now
            and (row.lease_until is None or row.lease_until <= now)
        ]
        due.sort(key=lambda row: (row.delivery.next_attempt_at, row.delivery.id))
        claimed = []
        for row in due[:limit]:
            row.lease_until = now + lease
            claimed.append(
                Claimed(
                    delivery=row.delivery,
                    endpoint=self.store.endpoints[row.delivery.endpoint_id],
                    event=self._event(self.store.events[row.delivery.event_id]),
                    lease_until=row.lease_until,
                )
            )
        return claimed

    def record(
        self,
        delivery_id: int,
        attempt: Attempt,
        *,
        status: str,
        next_attempt_at: datetime,
        held_until: datetime | None = None,
    ) -> bool:
        row = self.store.deliveries.get(delivery_id)
        if row is None:
            return False
        if held_until is not None and (
            row.delivery.status != "pending" or row.lease_until != held_until
        ):
            return False
        error = attempt.error[:MAX_ERROR_CHARS] if attempt.error else None
        row.lease_until = None
        row.delivery = replace(
            row.delivery,
            status=status,
            attempts=attempt.number,
            next_attempt_at=next_attempt_at,
            last_status_code=attempt.status_code,
            last_error=error,
            delivered_at=attempt.at if status == "delivered" else None,
        )
        self.store.attempts.setdefault(delivery_id, []).append(replace(attempt, error=error))
        return True

    def delivery(self, delivery_id: int) -> Delivery | None:
        row = self.store.deliveries.get(delivery_id)
        return None if row is None else row.delivery

    def deliveries(
        self,
        *,
        endpoint_id: str | None = None,
        event_id: int | None = None,
        status: str | None = None,
        after: int = 0,
        limit: int = 50,
    ) -> list[Delivery]:
        found = [
            d
            for d in (row.delivery for row in self.store.deliveries.values())
            if d.id > after
            and (endpoint_id is None or d.endpoint_id == endpoint_id)
            and (event_id is None or d.event_id == event_id)
            and (status is None or d.status == status)
        ]
        return sorted(found, key=_id)[:limit]

    def attempts(self, delivery_id: int) -> list[Attempt]:
        return sorted(self.store.attempts.get(delivery_id, []), key=lambda a: a.number)

    def approaching(self, now: datetime, until: datetime, limit: int) -> list[Approaching]:
        rows = _pending(
            self.store,
            lambda r: now < r.deadline.due_at <= until and r.id not in self.store.notices,
        )
        return [
            Approaching(
                deadline_id=r.id,
                subject_type=r.subject_type,
                subject_id=r.subject_id,
                name=r.deadline.name,
                due_at=r.deadline.due_at,
                on_expiry=r.deadline.on_expiry,
                rule_id=r.deadline.rule_id,
                policy=r.deadline.policy,
                facts=self._facts(r.subject_type, r.subject_id),
            )
            for r in rows[:limit]
        ]

    def _facts(self, subject_type: str, subject_id: str) -> dict[str, Any]:
        if subject_type == "case":
            case = self.store.cases.get(subject_id)
            if case is None:
                return {"case": subject_id}
            return {
                "case": subject_id,
                "order": case.order_id,
                "shop": case.shop,
                "buyer": case.buyer,
                "status": case.status.value,
            }
        order = self.store.orders.get(subject_id)
        if order is None:
            return {"order": subject_id}
        return {
            "order": subject_id,
            "shop": order.shop,
            "buyer": order.buyer,
            "status": order.status.value,
        }

    def announced(self, deadline_id: int, at: datetime) -> bool:
        if deadline_id in self.store.notices:
            return False
        self.store.notices[deadline_id] = at
        return True


def _id(row: Any) -> int:
    return int(row.id)


class MemoryRetention:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def forget_deadlines(self, before: datetime, limit: int) -> int:
        old = [
            r.id
            for r in self.store.deadlines
            if r.status in ("fired", "cancelled") and r.deadline.due_at < before
        ][:limit]
        gone = set(old)
        self.store.deadlines = [r for r in self.store.deadlines if r.id not in gone]
        for deadline_id in old:
            self.store.notices.pop(deadline_id, None)
        return len(old)

    def _reached_all(self, event_id: int) -> bool:
        """Whether every endpoint the event was fanned out to has had it delivered."""
        mine = [
            r.delivery for r in self.store.deliveries.values() if r.delivery.event_id == event_id
        ]
        reached = {d.endpoint_id for d in mine if d.status == "delivered"}
        return all(d.endpoint_id in reached for d in mine)

    def forget_events(self, before: datetime, limit: int) -> int:
        old = [
            r.id
            for r in sorted(self.store.events.values(), key=_id)
            if r.dispatched_at is not None
            and r.dispatched_at < before
            and r.position is not None
            and self._reached_all(r.id)
        ][:limit]
        for event_id in old:
            del self.store.events[event_id]
            for delivery_id in [
                i for i, r in self.store.deliveries.items() if r.delivery.event_id == event_id
            ]:
                del self.store.deliveries[delivery_id]
                self.store.attempts.pop(delivery_id, None)
        return len(old)


class MemoryUploads:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def take(self, actor: str, day: date, size: int, max_files: int, max_bytes: int) -> bool:
        files, size_so_far = self.store.uploads.get((actor, day), (0, 0))
        if files + 1 > max_files or size_so_far + size > max_bytes:
            return False
        self.store.uploads[(actor, day)] = (files + 1, size_so_far + size)
        return True

    def counted(self, actor: str, day: date) -> tuple[int, int]:
        return self.store.uploads.get((actor, day), (0, 0))


class MemoryRelayCursors:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def positions(self, stream: str) -> dict[int, int]:
        return {b: p for (s, b), p in self.store.relay_cursors.items() if s == stream}

    def advance(self, stream: str, bucket: int, to: int, at: datetime) -> None:
        cursors = self.store.relay_cursors
        cursors[stream, bucket] = max(cursors.get((stream, bucket), 0), to)


class MemoryApiUnitOfWork(MemoryUnitOfWork):
    """A unit of work over a :class:`MemoryStore` that also reaches keys, idempotency records,
    lists, webhooks, retention and the upload quota: the fake of ``ApiUnitOfWork``."""

    def __enter__(self) -> MemoryApiUnitOfWork:
        super().__enter__()
        return self

    def _attach_more(self) -> None:
        super()._attach_more()
        self.outbox = MemoryFeedOutbox(self.work)
        self.keys = MemoryKeys(self.work)
        self.idempotency = MemoryIdempotency(self.work)
        self.queries = MemoryQueries(self.work)
        self.webhooks = MemoryWebhooks(self.work)
        self.retention = MemoryRetention(self.work)
        self.uploads = MemoryUploads(self.work)
        self.relay = MemoryRelayCursors(self.work)


if TYPE_CHECKING:
    _IS_AN_API_UNIT_OF_WORK: type[ApiUnitOfWork] = MemoryApiUnitOfWork


# --- evidence files that parse ------------------------------------------------------------


def _mp4_box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def evidence_file(media_type: str) -> bytes:
    """A small file of ``media_type`` (image/png, image/jpeg, application/pdf, video/mp4) that
    parses as one: for tests and demos that upload evidence."""
    import io

    buffer = io.BytesIO()
    if media_type in ("image/png", "image/jpeg"):
        from PIL import Image

        Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format=media_type.split("/")[1])
        return buffer.getvalue()
    if media_type == "application/pdf":
        from pypdf import PdfWriter

        writer = PdfWriter()
        writer.add_blank_page(width=200, height=200)
        writer.write(buffer)
        return buffer.getvalue()
    if media_type == "video/mp4":
        ftyp = _mp4_box(b"ftyp", b"isom" + b"\x00\x00\x02\x00" + b"isomiso2mp41")
        mvhd = _mp4_box(b"mvhd", bytes(100))
        return ftyp + _mp4_box(b"moov", mvhd) + _mp4_box(b"mdat", b"\x00" * 16)
    raise ValueError(f"no sample of {media_type}")
