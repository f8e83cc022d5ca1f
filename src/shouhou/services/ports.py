"""The ports the services need; ``shouhou.db`` and ``shouhou.testing`` implement them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from shouhou.domain.events import Event
from shouhou.domain.model import Attachment, Case, CaseStatus, Complaint, Deadline, Order


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


class OrderRepository(Protocol):
    def get(self, order_id: str) -> Order | None: ...

    def add(self, order: Order, events: Sequence[Event]) -> None: ...

    def save(self, order: Order, events: Sequence[Event]) -> None:
        """Store ``order`` if its stored version is still ``order.version``; else Conflict."""

    def timeline(self, order_id: str) -> list[StoredEvent]: ...


class CaseRepository(Protocol):
    def get(self, case_id: str) -> Case | None: ...

    def add(self, case: Case, events: Sequence[Event]) -> None: ...

    def save(self, case: Case, events: Sequence[Event]) -> None:
        """Store ``case`` if its stored version is still ``case.version``; else Conflict."""

    def timeline(self, case_id: str) -> list[StoredEvent]: ...

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


class ComplaintRepository(Protocol):
    def get(self, complaint_id: str) -> Complaint | None: ...

    def for_order(self, order_id: str) -> Complaint | None: ...

    def add(self, complaint: Complaint, events: Sequence[Event]) -> None: ...

    def save(self, complaint: Complaint, events: Sequence[Event]) -> None:
        """Store ``complaint`` if its stored version is still its ``version``; else Conflict."""

    def timeline(self, complaint_id: str) -> list[StoredEvent]: ...

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

    def get(self, sha256: str) -> Attachment | None: ...

    def read(self, sha256: str) -> bytes: ...


class Clock(Protocol):
    def now(self) -> datetime: ...
