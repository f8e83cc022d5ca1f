"""The ports the services need; ``shouhou.db`` and ``shouhou.testing`` implement them.

The API and the worker also reach API keys, idempotency records, case and order lists and
webhooks, through :class:`ApiUnitOfWork`: on the connection of the use case, so an idempotency
record or a webhook delivery commits or rolls back with the change it belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, TypeVar, cast

from shouhou.domain.events import Event
from shouhou.domain.model import (
    Actor,
    Attachment,
    Case,
    CaseStatus,
    Complaint,
    Deadline,
    Order,
    OrderStatus,
    Role,
)
from shouhou.times import show


@dataclass(frozen=True, kw_only=True)
class StoredEvent:
    """An event as kept in a timeline: its stream position and the event."""

    seq: int
    event: Event


@dataclass(frozen=True, kw_only=True)
class DueDeadline:
    """A pending deadline row that is due."""

    id: int
    subject_type: str
    subject_id: str
    name: str
    due_at: datetime


@dataclass(frozen=True, kw_only=True)
class Backlog:
    """The pending deadlines already due: how many, and the due time of the oldest."""

    due: int
    oldest_due_at: datetime | None


A = TypeVar("A")


class AggregateRepository(Protocol[A]):
    """Orders, cases and complaints alike: kept whole, saved on their version, with a timeline."""

    def get(self, ident: str) -> A | None: ...

    def add(self, aggregate: A, events: Sequence[Event]) -> None: ...

    def save(self, aggregate: A, events: Sequence[Event]) -> None:
        """Store ``aggregate`` if its stored version is still its ``version``; else Conflict."""

    def timeline(self, ident: str) -> list[StoredEvent]: ...


class OrderRepository(AggregateRepository[Order], Protocol):
    pass


class CaseRepository(AggregateRepository[Case], Protocol):
    def list(
        self,
        *,
        shop: str | None = None,
        buyer: str | None = None,
        status: CaseStatus | None = None,
        limit: int = 100,
        order: str | None = None,
    ) -> list[Case]: ...


class DeadlineStore(Protocol):
    def sync(self, subject_type: str, subject_id: str, deadline: Deadline | None) -> None:
        """Make ``deadline`` the subject's one pending deadline (None: it has none)."""

    def fire(
        self, subject_type: str, subject_id: str, name: str, due_at: datetime, fired_at: datetime
    ) -> None:
        """Mark the subject's pending deadline fired; Conflict if another run fired it."""

    def next_due(self, now: datetime) -> DueDeadline | None:
        """The earliest pending deadline due at or before ``now`` (ties by id)."""

    def claim_due(self, now: datetime, limit: int) -> list[DueDeadline]:
        """Up to ``limit`` pending deadlines due at or before ``now``, earliest first (ties by
        id), in one statement; on PostgreSQL each is locked with its order, and deadlines
        whose order another transaction holds are passed over."""

    def still_due(self, due: DueDeadline) -> bool:
        """Whether ``due``, claimed in this unit of work, is still the subject's pending
        deadline: firing an earlier one of a batch may have fired or replaced it."""

    def earliest_scheduled(self) -> datetime | None:
        """The earliest due time of the deadlines this unit of work scheduled that are still
        pending: the batch stops before a claimed deadline due later than it, so that
        deadlines fire in due order however they were claimed."""

    def set_aside(self, due: DueDeadline, error: str) -> bool:
        """Mark ``due`` failed with ``error`` if it is still pending, so that claims pass
        over it; whether it was."""

    def pending_count(self) -> int: ...

    def backlog(self, now: datetime) -> Backlog:
        """The pending deadlines due at or before ``now`` (one index range: cheap while the
        workers keep up, which is when it is read most)."""


@dataclass(frozen=True, kw_only=True)
class OutboxMessage:
    """A webhook event waiting to be delivered, written in the transaction of its change.

    The payload is ``data``; with ``event`` it is ``data`` plus the event's view under
    ``"event"`` (:func:`shouhou.services.outbox.payload`). The view is left to whoever reads
    the message, so that storage may keep the event as the timeline stores it and render the
    view when the message is delivered: off the path of the change (docs/performance.md).
    """

    type: str  # ``case.agreed``, ``deadline.fired``, ``order.shipped`` …
    subject_type: str  # ``case`` or ``order``
    subject_id: str
    occurred_at: datetime
    data: dict[str, Any]
    event: Event | None = None


class Outbox(Protocol):
    def add(self, messages: Sequence[OutboxMessage]) -> None:
        """Queue ``messages`` in the current transaction (gone if it rolls back)."""


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One line of a ledger: a shop's penalty points or a buyer's compensation."""

    account: str
    kind: str
    amount: int
    unit: str
    order_id: str
    source: str
    rule_id: str
    at: datetime


@dataclass(frozen=True, kw_only=True)
class LoggedEvent:
    """An event of the log with its stream (``case``, ``order``, ``complaint``)."""

    stream: str
    stream_id: str
    event: Event


class ComplaintRepository(AggregateRepository[Complaint], Protocol):
    def for_order(self, order_id: str) -> Complaint | None: ...

    def list(
        self,
        *,
        shop: str | None = None,
        buyer: str | None = None,
        status: str | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> list[Complaint]:
        """In filing order (ties by id), those filed after ``after`` (a filing time and id)."""


class Ledger(Protocol):
    def add(self, entries: Sequence[LedgerEntry]) -> None:
        """Write ``entries``; Conflict when one's ``(kind, source)`` was written before."""

    def entries(self, account: str, kind: str | None = None) -> list[LedgerEntry]: ...


class EventLog(Protocol):
    def for_shop(self, shop: str, since: datetime, until: datetime) -> list[LoggedEvent]:
        """Every event between the times on the shop's orders, cases and complaints, in order."""


class Shops(Protocol):
    """Shops' settings."""

    def return_address(self, shop: str) -> str | None:
        """The shop's default return address (None: it has given none)."""

    def set_return_address(self, shop: str, address: str | None, at: datetime) -> None: ...


class UnitOfWork(Protocol):
    @property
    def orders(self) -> OrderRepository: ...

    @property
    def cases(self) -> CaseRepository: ...

    @property
    def deadlines(self) -> DeadlineStore: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def complaints(self) -> ComplaintRepository: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def log(self) -> EventLog: ...

    @property
    def shops(self) -> Shops: ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leaving without commit rolls back."""

    def commit(self) -> None: ...


class AttachmentStore(Protocol):
    """Evidence files named by their content's SHA-256."""

    def put(self, data: bytes, filename: str) -> Attachment: ...

    def check(self, data: bytes, filename: str) -> Attachment:
        """What :meth:`put` would keep (size and type checked); ``invalid`` otherwise. Keeps
        nothing: the upload parses a file before its transaction starts."""

    def keep(self, data: bytes, attachment: Attachment) -> Attachment:
        """Keep ``data``, already checked as ``attachment``; the same content is kept once."""

    def get(self, sha256: str) -> Attachment | None: ...

    def read(self, sha256: str) -> bytes: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


# --- the API and the worker: keys, idempotency, lists, webhooks, retention ----------


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    """A stored API key; the secret itself is never kept, only its SHA-256."""

    id: str
    prefix: str
    role: Role
    subject: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def actor(self) -> Actor:
        return Actor(role=self.role, id=self.subject)


# --- idempotency -------------------------------------------------------------------------


#: The ``status_code`` of a key claimed by a request that is still running: no HTTP answer
#: has status 0, so a stored record is either this claim or a real answer.
PENDING_STATUS = 0


@dataclass(frozen=True, kw_only=True)
class StoredResponse:
    """The first answer to a write sent with an ``Idempotency-Key``, or the claim of the
    request still running under the key (``pending``)."""

    request_hash: str
    status_code: int
    body: Any

    @property
    def pending(self) -> bool:
        """Whether the request that claimed the key has not answered yet."""
        return self.status_code == PENDING_STATUS


# --- lists -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CaseFilter:
    """Which cases a list shows; ``after`` is the sort key of the last one already shown."""

    statuses: tuple[CaseStatus, ...] = ()
    shop: str | None = None
    buyer: str | None = None
    order: str | None = None
    due_before: datetime | None = None
    sort: str = "opened_at"  # or "due_at": only cases with a running deadline, soonest first
    after: tuple[datetime, str] | None = None


@dataclass(frozen=True, kw_only=True)
class OrderFilter:
    statuses: tuple[OrderStatus, ...] = ()
    shop: str | None = None
    buyer: str | None = None
    after: tuple[datetime, str] | None = None


@dataclass(frozen=True, kw_only=True)
class ListedCase:
    case: Case
    order: Order  # what the case's available actions are tried against
    sort_key: tuple[datetime, str]


@dataclass(frozen=True, kw_only=True)
class ListedOrder:
    order: Order
    sort_key: tuple[datetime, str]


# --- webhooks ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A subscriber's URL, the secret its deliveries are signed with, and its event filter."""

    id: str
    url: str
    secret: str
    events: tuple[str, ...]
    description: str
    created_by: str
    created_at: datetime
    disabled_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class OutboxEvent:
    """An outbox row: the webhook event as subscribers receive it."""

    id: int
    type: str
    subject_type: str
    subject_id: str
    occurred_at: datetime
    data: dict[str, Any]
    #: Its place in its bucket's event feed (None until :meth:`Webhooks.sequence` gives it
    #: one).
    position: int | None = None
    #: The bucket of its order (docs/decisions/0021-fixed-buckets.md).
    bucket: int = 0

    @property
    def public_id(self) -> str:
        return f"evt_{self.id}"

    def envelope(self) -> dict[str, Any]:
        """The JSON body of a delivery."""
        return {
            "id": self.public_id,
            "type": self.type,
            "occurred_at": show(self.occurred_at),
            "subject": {"type": self.subject_type, "id": self.subject_id},
            "data": self.data,
        }


@dataclass(frozen=True, kw_only=True)
class Attempt:
    number: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, kw_only=True)
class Delivery:
    id: int
    event_id: int
    endpoint_id: str
    status: str  # pending, delivered, failed
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class Claimed:
    """A delivery leased to one worker, with what it needs to send it."""

    delivery: Delivery
    endpoint: Endpoint
    event: OutboxEvent
    #: The end of this worker's lease: its record of the attempt counts only while it holds it.
    lease_until: datetime


@dataclass(frozen=True, kw_only=True)
class Approaching:
    """A pending deadline close to its due time that has not been announced yet."""

    deadline_id: int
    subject_type: str
    subject_id: str
    name: str
    due_at: datetime
    on_expiry: str
    rule_id: str
    policy: str
    facts: dict[str, Any]  # order, shop, buyer, status of the subject


# --- their ports ---------------------------------------------------------------------------


class Keys(Protocol):
    def add(self, key: ApiKey, token_hash: str) -> None: ...

    def by_hash(self, token_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not."""

    def all(self) -> list[ApiKey]: ...

    def revoke(self, key_id: str, at: datetime) -> bool:
        """Revoke a key; False when there is no such key still active."""


#: How long an ``Idempotency-Key`` replays its first answer.
IDEMPOTENCY_TTL = timedelta(hours=24)


class Idempotency(Protocol):
    def get(
        self, scope: str, key: str, since: datetime, *, bucket: int = 0
    ) -> StoredResponse | None:
        """The answer stored under ``key`` at ``since`` or later (an older one has expired,
        whether or not the worker has forgotten it yet). ``bucket``: the bucket of the order
        the request acts on, where the key is kept (docs/decisions/0021-fixed-buckets.md)."""

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
        """Claim ``key`` at ``at`` for a request about to run (None), or the record that holds
        it: an answer stored at ``since`` or later, or another request's claim made at
        ``stale_before`` or later. An expired answer or a stale claim is taken over. Run it in
        a transaction of its own, so that the claim is seen by other requests at once."""

    def finish(
        self,
        scope: str,
        key: str,
        response: StoredResponse,
        claimed_at: datetime,
        *,
        bucket: int = 0,
    ) -> None:
        """Store the answer in the claim made at ``claimed_at``; ``conflict`` when that claim
        is gone (it went stale and another request took the key over)."""

    def release(self, scope: str, key: str, claimed_at: datetime, *, bucket: int = 0) -> None:
        """Drop the claim made at ``claimed_at``: its request was refused, nothing to replay."""

    def forget_before(self, at: datetime) -> int: ...


class Queries(Protocol):
    def cases(self, where: CaseFilter, limit: int) -> list[ListedCase]: ...

    def orders(self, where: OrderFilter, limit: int) -> list[ListedOrder]: ...


class Webhooks(Protocol):
    def add_endpoint(self, endpoint: Endpoint) -> None: ...

    def endpoint(self, endpoint_id: str) -> Endpoint | None: ...

    def endpoints(self) -> list[Endpoint]: ...

    def disable_endpoint(self, endpoint_id: str, at: datetime) -> bool: ...

    def event(self, event_id: int) -> OutboxEvent | None: ...

    def sequence(self, limit: int) -> int:
        """Give feed positions to up to ``limit`` committed events that have none, in id
        order, after every position given so far in their bucket; how many. One transaction
        at a time does it for a bucket, so a position is never visible before a smaller one
        of its bucket."""

    def events(
        self, *, after: Mapping[int, int], limit: int, types: Sequence[str] = ()
    ) -> list[OutboxEvent]:
        """Events with a feed position above their bucket's in ``after`` (0 for a bucket
        not in it), each bucket's in position order."""

    def enqueue(self, event_id: int, endpoint_ids: Sequence[str], at: datetime) -> list[int]:
        """New pending deliveries of one event, due at ``at``."""

    def dispatch(self, now: datetime, limit: int) -> int:
        """Fan undispatched outbox events out to the endpoints that want them; how many."""

    def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
        """Lease due deliveries to this worker (another worker skips them until the lease
        ends). A delivery whose event cannot be read is failed at once, with the reason, and
        not handed out: it never holds up the others."""

    def record(
        self,
        delivery_id: int,
        attempt: Attempt,
        *,
        status: str,
        next_attempt_at: datetime,
        held_until: datetime | None = None,
    ) -> bool:
        """Log an attempt and move the delivery on (delivered, pending again, or failed);
        with ``held_until``, only while the lease that ends then is still the delivery's
        (a worker whose lease ran out and was taken over records nothing). Whether it did."""

    def delivery(self, delivery_id: int) -> Delivery | None: ...

    def deliveries(
        self,
        *,
        endpoint_id: str | None = None,
        event_id: int | None = None,
        status: str | None = None,
        after: int = 0,
        limit: int = 50,
    ) -> list[Delivery]: ...

    def attempts(self, delivery_id: int) -> list[Attempt]: ...

    def approaching(self, now: datetime, until: datetime, limit: int) -> list[Approaching]:
        """Pending deadlines due in ``(now, until]`` not announced yet, soonest first."""

    def announced(self, deadline_id: int, at: datetime) -> bool:
        """Mark a deadline announced; False if another worker did it first."""


class Retention(Protocol):
    """Forgetting what nothing reads any more, a bounded chunk per call."""

    def forget_deadlines(self, before: datetime, limit: int) -> int:
        """Fired or cancelled deadline rows due before ``before`` (the timelines keep their
        history), with their ``deadline.approaching`` notices; how many."""

    def forget_events(self, before: datetime, limit: int) -> int:
        """Outbox events fanned out before ``before`` whose every delivery succeeded, with
        their deliveries and attempts; events with a failed or unfinished delivery are kept
        for a replay. How many events."""


class Uploads(Protocol):
    """Evidence files and bytes each actor uploaded on each marketplace day (the quota)."""

    def take(self, actor: str, day: date, size: int, max_files: int, max_bytes: int) -> bool:
        """Count one file of ``size`` bytes for ``actor`` on ``day`` unless that would pass
        ``max_files`` or ``max_bytes``; whether it did. Atomic: two uploads at once never
        both take the last place."""

    def counted(self, actor: str, day: date) -> tuple[int, int]:
        """The files and bytes counted for ``actor`` on ``day``."""


class RelayCursors(Protocol):
    """How far ``shouhou relay`` has published each bucket's event feed to each JetStream
    stream (decision 0022)."""

    def positions(self, stream: str) -> dict[int, int]:
        """Each bucket's feed position up to which ``stream`` holds every event of that
        bucket (a bucket not in it: none yet)."""

    def advance(self, stream: str, bucket: int, to: int, at: datetime) -> None:
        """Record that ``stream`` holds every event of ``bucket`` up to its feed position
        ``to``; a cursor already further on stays where it is. Writes ``bucket`` only."""


class ApiUnitOfWork(UnitOfWork, Protocol):
    """A unit of work that also reaches API keys, idempotency records, lists, webhooks,
    retention and the upload quota."""

    def __enter__(self) -> ApiUnitOfWork: ...

    @property
    def keys(self) -> Keys: ...

    @property
    def idempotency(self) -> Idempotency: ...

    @property
    def queries(self) -> Queries: ...

    @property
    def webhooks(self) -> Webhooks: ...

    @property
    def retention(self) -> Retention: ...

    @property
    def uploads(self) -> Uploads: ...

    @property
    def relay(self) -> RelayCursors: ...


# --- a use case inside another's transaction ---------------------------------------------


class _Joined:
    def __init__(self, outer: UnitOfWork) -> None:
        self._outer = outer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._outer, name)  # every repository of the outer unit of work

    def __enter__(self) -> _Joined:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """The outer unit of work rolls back or commits."""

    def commit(self) -> None:
        """The outer unit of work commits."""


def joined(outer: UnitOfWork) -> UnitOfWork:
    """A unit of work joined to an open outer one: a use case run in it commits nothing.

    The API runs a use case, renders its answer and stores it under the request's
    ``Idempotency-Key`` in one transaction; the outer unit of work commits all of it at once.
    Entering, leaving and committing do nothing; everything else is the outer one's.
    """
    return cast(UnitOfWork, _Joined(outer))
