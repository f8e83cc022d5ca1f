"""The integration side of the engine: API keys, idempotent writes, case lists, webhooks.

The REST API (``shouhou.api``) and the worker (``shouhou.worker``) use these ports; the SQL
unit of work of ``shouhou.db.api`` implements them, on the connection of the use case, so an
idempotency record or a webhook delivery commits or rolls back with the change it belongs to.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, cast

from shouhou.domain.model import Actor, Case, CaseStatus, Order, OrderStatus, Role
from shouhou.errors import Invalid
from shouhou.services.ports import (
    OutboxMessage,
    UnitOfWork,
)

#: Every API key starts with this, so leaked keys are easy to find in logs and code.
KEY_PREFIX = "shk_"
#: Roles an API key can be bound to (``system`` acts only through deadlines).
KEY_ROLES = (Role.BUYER, Role.SELLER, Role.AGENT, Role.PLATFORM)


# --- API keys ----------------------------------------------------------------------------


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


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_principal(text: str) -> Actor:
    """``buyer:b1``, ``seller:s1``, ``agent:a1`` or ``platform``; ``invalid`` otherwise."""
    actor = Actor.parse(text)
    if actor.role not in KEY_ROLES:
        raise Invalid(f"an API key can't be bound to role {actor.role.value}")
    if actor.role == Role.PLATFORM and actor.id:
        raise Invalid("a platform key has no subject: write just 'platform'")
    if actor.role != Role.PLATFORM and not actor.id:
        raise Invalid(f"a {actor.role.value} key needs a subject, like {actor.role.value}:x1")
    return actor


# --- idempotency -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StoredResponse:
    """The first answer to a write sent with an ``Idempotency-Key``."""

    request_hash: str
    status_code: int
    body: Any


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
    #: Its place in the event feed (None until :meth:`Webhooks.sequence` gives it one).
    position: int | None = None

    @property
    def public_id(self) -> str:
        return f"evt_{self.id}"

    def envelope(self) -> dict[str, Any]:
        """The JSON body of a delivery."""
        return {
            "id": self.public_id,
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat(),
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


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """``case.*`` matches ``case.agreed``; ``*`` matches everything; otherwise exact names."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


# --- ports -------------------------------------------------------------------------------


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
    def get(self, scope: str, key: str, since: datetime) -> StoredResponse | None:
        """The answer stored under ``key`` at ``since`` or later (an older one has expired,
        whether or not the worker has forgotten it yet)."""

    def put(
        self, scope: str, key: str, response: StoredResponse, at: datetime, since: datetime
    ) -> None:
        """Remember the first answer, in place of one stored before ``since``; ``conflict``
        when another request took the key first."""

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
        order, after every position given so far; how many. One transaction at a time does
        it, so a position is never visible before a smaller one."""

    def events(self, *, after: int, limit: int, types: Sequence[str] = ()) -> list[OutboxEvent]:
        """Events with a feed position above ``after``, in feed order."""

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


class ApiUnitOfWork(UnitOfWork, Protocol):
    """A unit of work that also reaches the integration tables."""

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


# --- use cases ---------------------------------------------------------------------------


def new_token() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def create_key(uow: ApiUnitOfWork, principal: str, name: str, now: datetime) -> tuple[ApiKey, str]:
    """A new API key bound to ``principal``; returns the key and its secret (shown once)."""
    actor = parse_principal(principal)
    token = new_token()
    key = ApiKey(
        id="key_" + secrets.token_hex(6),
        prefix=token[: len(KEY_PREFIX) + 6],
        role=actor.role,
        subject=actor.id,
        name=name,
        created_at=now,
    )
    with uow:
        uow.keys.add(key, hash_token(token))
        uow.commit()
    return key, token


def authenticate(uow: ApiUnitOfWork, token: str) -> ApiKey | None:
    """The active key whose secret is ``token``, or None."""
    with uow:
        key = uow.keys.by_hash(hash_token(token))
    if key is None or key.revoked_at is not None:
        return None
    return key


def new_secret() -> str:
    """A webhook signing secret in the Standard Webhooks form (``whsec_`` + base64)."""
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def approaching_message(due: Approaching, now: datetime) -> OutboxMessage:
    return OutboxMessage(
        type="deadline.approaching",
        subject_type=due.subject_type,
        subject_id=due.subject_id,
        occurred_at=now,
        data={
            **due.facts,
            "deadline": {
                "name": due.name,
                "due_at": due.due_at.isoformat(),
                "on_expiry": due.on_expiry,
                "rule_id": due.rule_id,
                "policy": due.policy,
            },
        },
    )


def announce_approaching(uow: ApiUnitOfWork, now: datetime, lead: timedelta, limit: int) -> int:
    """Write ``deadline.approaching`` for deadlines due within ``lead``; one transaction."""
    with uow:
        due = uow.webhooks.approaching(now, now + lead, limit)
        # another worker may announce the same ones meanwhile: each goes out once, by either
        mine = [one for one in due if uow.webhooks.announced(one.deadline_id, now)]
        uow.outbox.add([approaching_message(one, now) for one in mine])
        uow.commit()
    return len(mine)


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
