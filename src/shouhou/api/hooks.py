"""Webhook endpoints, the outbox of events, deliveries and their attempts, replay (platform)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from shouhou.api import wire
from shouhou.api.cases import ERRORS, MAX_PAGE
from shouhou.api.deps import Caller, Ctx, IdempotencyKey, page_of, write
from shouhou.domain.model import Role
from shouhou.errors import Invalid, NotFound
from shouhou.services import outbox
from shouhou.services.destinations import AllowList, registration_problem
from shouhou.services.ports import ApiUnitOfWork, Attempt, Delivery, Endpoint, OutboxEvent
from shouhou.services.webhooks import matches, new_secret, public_error
from shouhou.times import show, show_optional

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
EndpointId = Annotated[str, Path(min_length=1, max_length=32)]
EventId = Annotated[str, Path(min_length=1, max_length=40, description="evt_…")]


def endpoint_view(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "created_at": show(endpoint.created_at),
        "disabled_at": show_optional(endpoint.disabled_at),
    }


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event": f"evt_{delivery.event_id}",
        "endpoint": delivery.endpoint_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": show(delivery.next_attempt_at),
        "last_status_code": delivery.last_status_code,
        "last_error": public_error(delivery.last_error),
        "created_at": show(delivery.created_at),
        "delivered_at": show_optional(delivery.delivered_at),
    }


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "at": show(attempt.at),
        "status_code": attempt.status_code,
        "error": public_error(attempt.error),
        "duration_ms": attempt.duration_ms,
    }


def _number(text: str, prefix: str) -> int | None:
    """N of ``{prefix}N`` (or of a bare N); None when ``text`` is not one."""
    digits = text.removeprefix(prefix)
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 18:
        return None
    return int(digits)


def event_number(event_id: str, *, parameter: str | None = None) -> int:
    """The number in an event id ``evt_N``. One that cannot be an id names no event (404);
    given as a query ``parameter``, it is a bad parameter (422)."""
    number = _number(event_id, "evt_")
    if number is None:
        if parameter is not None:
            raise Invalid(f"bad {parameter} {event_id!r}: pass an event id such as evt_42")
        raise NotFound(f"no event {event_id}")
    return number


def _event(uow: ApiUnitOfWork, event_id: str) -> OutboxEvent:
    event = uow.webhooks.event(event_number(event_id))
    if event is None:
        raise NotFound(f"no event {event_id}")
    return event


@router.post(
    "/endpoints",
    status_code=201,
    response_model=wire.EndpointCreated,
    responses=ERRORS,
    summary="Subscribe a URL to events",
    description=(
        "Events are named `case.*`, `order.*`, `deadline.scheduled|approaching|fired|cleared`; "
        "a pattern `case.*` takes a whole family, `*` everything. The answer carries the "
        "signing secret, shown only once. The URL's host must be public: one that is, or "
        "resolves to, a loopback, private, link-local, multicast or reserved address is "
        "refused (invalid), here and again on every delivery, unless the server allow-lists "
        "it (`SHOUHOU_WEBHOOK_ALLOW_HOSTS`)."
    ),
)
def create_endpoint(
    ctx: Ctx,
    who: Caller,
    request: Request,
    body: wire.EndpointIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    who.require(Role.PLATFORM)
    payload = body.model_dump(mode="json", exclude_unset=True)
    allow = AllowList.parse(ctx.settings.webhook_allow_hosts)
    problem = registration_problem(body.url, allow)
    if problem is not None:
        raise Invalid(f"url: {problem}", rule="shouhou/webhook-destinations")

    def run(uow: ApiUnitOfWork) -> tuple[int, Any]:
        endpoint = Endpoint(
            id="we_" + secrets.token_hex(8),
            url=body.url,
            secret=new_secret(),
            events=tuple(body.events),
            description=body.description,
            created_by=who.key.id,
            created_at=ctx.now(),
        )
        uow.webhooks.add_endpoint(endpoint)
        return 201, {**endpoint_view(endpoint), "secret": endpoint.secret}

    return write(ctx, request, who, idempotency_key, payload, run)


@router.get("/endpoints", response_model=list[wire.EndpointView], responses=ERRORS)
def list_endpoints(ctx: Ctx, who: Caller) -> list[dict[str, Any]]:
    who.require(Role.PLATFORM)
    with ctx.reader() as uow:
        return [endpoint_view(e) for e in uow.webhooks.endpoints()]


@router.get("/endpoints/{endpoint_id}", response_model=wire.EndpointView, responses=ERRORS)
def get_endpoint(ctx: Ctx, who: Caller, endpoint_id: EndpointId) -> dict[str, Any]:
    who.require(Role.PLATFORM)
    with ctx.reader() as uow:
        endpoint = uow.webhooks.endpoint(endpoint_id)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint_view(endpoint)


@router.delete(
    "/endpoints/{endpoint_id}",
    response_model=wire.EndpointView,
    responses=ERRORS,
    summary="Disable an endpoint (its pending deliveries fail; its log stays)",
)
def disable_endpoint(
    ctx: Ctx,
    who: Caller,
    request: Request,
    endpoint_id: EndpointId,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    who.require(Role.PLATFORM)

    def run(uow: ApiUnitOfWork) -> tuple[int, Any]:
        uow.webhooks.disable_endpoint(endpoint_id, ctx.now())
        endpoint = uow.webhooks.endpoint(endpoint_id)
        if endpoint is None:
            raise NotFound(f"no webhook endpoint {endpoint_id}")
        return 200, endpoint_view(endpoint)

    return write(ctx, request, who, idempotency_key, None, run)


@router.get(
    "/events",
    response_model=wire.EventPage,
    responses=ERRORS,
    summary="The outbox: every event, in the order they were committed (catch up after downtime)",
    description=(
        "Paged with `next_cursor`: an event committed after a page was read comes on a later "
        "page, never behind the cursor. Events whose every delivery succeeded are forgotten "
        "after the worker's retention (`--keep-days`, 30 by default, counted from fan-out); "
        "events with a failed or unfinished delivery stay until a replay succeeds."
    ),
)
def list_events(
    ctx: Ctx,
    who: Caller,
    type: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=outbox.MAX_FEED_CURSOR,
            pattern=outbox.FEED_CURSOR_PATTERN,
            description="the next_cursor of the previous page",
        ),
    ] = None,
) -> dict[str, Any]:
    who.require(Role.PLATFORM)
    after = feed_position(cursor) if cursor else {}
    for _ in range(SEQUENCE_ROUNDS):  # events committed since the last look join the feed
        with ctx.writer() as uow:  # a bucket's at a time (0021)
            given = uow.webhooks.sequence(SEQUENCE_BATCH)
            uow.commit()
        if not given:
            break
    with ctx.reader() as uow:
        found = uow.webhooks.events(after=after, limit=limit + 1, types=type)
    page = found[:limit]
    seen = dict(after)
    for event in page:  # each bucket's position: its last event on the page
        assert event.position is not None
        seen[event.bucket] = event.position
    return {
        "items": [e.envelope() for e in page],
        "next_cursor": outbox.feed_cursor(seen) if len(found) > limit else None,
    }


#: Events given a feed position per bucket and request at most (the worker's fan-out gives
#: them too), and buckets numbered per request at most.
SEQUENCE_BATCH, SEQUENCE_ROUNDS = 10_000, 256


def feed_position(cursor: str) -> dict[int, int]:
    """Each bucket's last position a cursor carries."""
    try:
        return outbox.feed_positions(cursor)
    except ValueError:
        raise Invalid(f"bad cursor {cursor!r}: pass the next_cursor of the previous page") from None


@router.get("/events/{event_id}", response_model=wire.OutboxEventView, responses=ERRORS)
def get_event(ctx: Ctx, who: Caller, event_id: EventId) -> dict[str, Any]:
    who.require(Role.PLATFORM)
    with ctx.reader() as uow:
        return _event(uow, event_id).envelope()


@router.post(
    "/events/{event_id}/replay",
    status_code=202,
    response_model=wire.Replayed,
    responses=ERRORS,
    summary="Send an event again (to one endpoint, or to every active one that wants it)",
)
def replay_event(
    ctx: Ctx,
    who: Caller,
    request: Request,
    event_id: EventId,
    idempotency_key: IdempotencyKey = None,
    body: wire.ReplayIn | None = None,
) -> JSONResponse:
    who.require(Role.PLATFORM)
    payload = body.model_dump(mode="json", exclude_unset=True) if body else {}

    def run(uow: ApiUnitOfWork) -> tuple[int, Any]:
        event = _event(uow, event_id)
        if body is not None and body.endpoint is not None:
            endpoint = uow.webhooks.endpoint(body.endpoint)
            if endpoint is None or endpoint.disabled_at is not None:
                raise NotFound(f"no active webhook endpoint {body.endpoint}")
            targets = [endpoint.id]
        else:
            targets = [
                e.id
                for e in uow.webhooks.endpoints()
                if e.disabled_at is None and matches(e.events, event.type)
            ]
        return 202, {"deliveries": uow.webhooks.enqueue(event.id, targets, ctx.now())}

    number = event_number(event_id)  # an event id is n * buckets + its bucket (0021)
    bucket = number % ctx.engine.buckets
    return write(ctx, request, who, idempotency_key, payload, run, bucket=bucket)


@router.get("/deliveries", response_model=wire.DeliveryPage, responses=ERRORS)
def list_deliveries(
    ctx: Ctx,
    who: Caller,
    endpoint: Annotated[str | None, Query(max_length=32)] = None,
    event: Annotated[str | None, Query(max_length=40, pattern=r"^(evt_)?[0-9]{1,18}$")] = None,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> dict[str, Any]:
    who.require(Role.PLATFORM)
    event_id = event_number(event, parameter="event") if event else None
    with ctx.reader() as uow:
        found = uow.webhooks.deliveries(
            endpoint_id=endpoint,
            event_id=event_id,
            status=status,
            after=cursor or 0,
            limit=limit + 1,
        )
    return page_of(found, limit, delivery_view, lambda d: str(d.id))


@router.get(
    "/deliveries/{delivery_id}",
    response_model=wire.DeliveryDetail,
    responses=ERRORS,
    summary="One delivery with the log of its attempts",
)
def get_delivery(
    ctx: Ctx, who: Caller, delivery_id: Annotated[int, Path(ge=1, le=2**62)]
) -> dict[str, Any]:
    who.require(Role.PLATFORM)
    with ctx.reader() as uow:
        delivery = uow.webhooks.delivery(delivery_id)
        if delivery is None:
            raise NotFound(f"no delivery {delivery_id}")
        attempts = uow.webhooks.attempts(delivery_id)
    return {**delivery_view(delivery), "attempt_log": [attempt_view(a) for a in attempts]}
