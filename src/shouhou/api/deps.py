"""What every route needs: the engine, the caller (API key, acting-as), and idempotent writes."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shouhou.api import wire
from shouhou.api.errors import SEND_A_KEY, ApiError
from shouhou.bootstrap import Engine
from shouhou.domain.buckets import bucket_of
from shouhou.domain.model import Actor, Case, Order, Role
from shouhou.errors import Forbidden, Invalid, NotFound
from shouhou.i18n import N_
from shouhou.services import idempotency
from shouhou.services.keys import authenticate
from shouhou.services.ports import ApiKey, ApiUnitOfWork
from shouhou.settings import Settings

T = TypeVar("T")

#: The header a platform key names the party it acts for in (``buyer:b1``, ``seller:s1``).
ON_BEHALF_HEADER = "X-On-Behalf-Of"
#: What the header holds: a buyer or seller and its id (the actor grammar of API keys).
ON_BEHALF = re.compile(r"(buyer|seller):[A-Za-z0-9_.\-]{1,64}")
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass
class Context:
    engine: Engine[ApiUnitOfWork]
    settings: Settings = field(default_factory=Settings.from_env)

    def writer(self) -> ApiUnitOfWork:
        return self.engine.uow_factory()

    def reader(self) -> ApiUnitOfWork:
        return self.engine.reader()

    def now(self) -> datetime:
        return self.engine.clock.now()


def view_in(ctx: Context, uow: ApiUnitOfWork, case_id: str, actor: Actor) -> dict[str, Any]:
    """The case view for ``actor``, read in ``uow`` (so it sees that transaction's changes)."""
    return ctx.engine.view_in(uow, case_id, actor=actor)


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


@dataclass(frozen=True)
class Principal:
    """Who calls: the API key, and the actor the request runs as (the key's, or on behalf)."""

    key: ApiKey
    actor: Actor

    def sees_case(self, case: Case) -> bool:
        return self.sees(case.shop, case.buyer)

    def sees_order(self, order: Order) -> bool:
        return self.sees(order.shop, order.buyer)

    def sees(self, shop: str, buyer: str) -> bool:
        """Whether this caller may see what belongs to ``shop`` and ``buyer``."""
        if self.actor.role == Role.BUYER:
            return buyer == self.actor.id
        if self.actor.role == Role.SELLER:
            return shop == self.actor.id
        return True  # agents and the platform see everything

    def scope(self, shop: str | None, buyer: str | None) -> tuple[str | None, str | None] | None:
        """A list's ``shop`` and ``buyer`` filters narrowed to what this caller may see, or
        None when the filters ask for someone else's (the list is then empty)."""
        if self.actor.role == Role.BUYER:
            return None if buyer not in (None, self.actor.id) else (shop, self.actor.id)
        if self.actor.role == Role.SELLER:
            return None if shop not in (None, self.actor.id) else (self.actor.id, buyer)
        return shop, buyer

    def require(self, *roles: Role) -> None:
        if self.actor.role not in roles:
            who = " or ".join(r.value for r in roles)
            raise Forbidden(f"only a {who} key may do this; this request runs as {self.actor}")


def principal_of_token(ctx: Context, token: str) -> Principal | None:
    """Who an API key is (acting as itself), or None for an unknown or revoked one: the API's
    bearer token and the console's session both come here."""
    key = authenticate(ctx.reader(), token)
    return None if key is None else Principal(key=key, actor=key.actor)


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `shouhou keys create ROLE[:SUBJECT]`: `Bearer shk_…`.",
)


def principal(
    ctx: Annotated[Context, Depends(context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    on_behalf_of: Annotated[
        str | None,
        Header(
            alias=ON_BEHALF_HEADER,
            max_length=80,
            pattern=r"^(buyer|seller):[A-Za-z0-9_.\-]{1,64}$",
            description=(
                "Platform keys only: act as this buyer or seller (`buyer:b1`; the id is 1-64 "
                "of `A-Z a-z 0-9 _ . -`). Without it a platform key acts as the platform, "
                "which takes no buyer's or seller's action."
            ),
            examples=["buyer:b1"],
        ),
    ] = None,
) -> Principal:
    if credentials is None:
        raise ApiError(401, SEND_A_KEY)
    found = principal_of_token(ctx, credentials.credentials)
    if found is None:
        raise ApiError(401, N_("unknown or revoked API key"))
    key = found.key
    if on_behalf_of is None:
        return found
    if key.role != Role.PLATFORM:
        raise Forbidden(f"only a platform key may send {ON_BEHALF_HEADER}")
    if ON_BEHALF.fullmatch(on_behalf_of) is None:
        raise Invalid(
            f"{ON_BEHALF_HEADER} names a buyer or seller, like buyer:b1 or seller:s1 (an id of "
            "1-64 letters, digits, '_', '.' or '-')"
        )
    return Principal(key=key, actor=Actor.parse(on_behalf_of))


Caller = Annotated[Principal, Depends(principal)]
Ctx = Annotated[Context, Depends(context)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description=(
            "Any unique string (a UUID). Sending the same key and body again within 24 hours "
            "replays the first answer instead of acting twice; the same key with another "
            "request is refused (422). A request sent while the first is still running waits "
            "for its answer, up to 10 s, then answers 409 with `Retry-After`."
        ),
    ),
]


def request_hash(request: Request, actor: Actor, payload: Any) -> str:
    text = json.dumps(
        [request.method, request.url.path, str(actor), payload],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write(
    ctx: Context,
    request: Request,
    who: Principal,
    idempotency_key: str | None,
    payload: Any,
    operation: Callable[[ApiUnitOfWork], tuple[int, Any]],
    names: str | None = None,
    bucket: int | None = None,
) -> JSONResponse:
    """Run ``operation`` in one transaction, once per ``Idempotency-Key`` (services/idempotency).

    ``names``: the order, case or complaint id the request acts on; its key is kept in that
    bucket (the engine makes case and complaint ids that hash to their order's bucket), and
    the key of a request that names none in the bucket the key itself hashes to; ``bucket``
    names the bucket itself (an event's, from its id).

    A refusal rolls everything back and is not stored: nothing changed, so sending the same
    request again simply runs it again.
    """
    if idempotency_key is None:
        with ctx.writer() as uow:
            status, body = operation(uow)
            uow.commit()
        return JSONResponse(body, status_code=status)
    digest = request_hash(request, who.actor, payload)
    if bucket is None:
        bucket = bucket_of(names if names is not None else idempotency_key, ctx.engine.buckets)
    answer = idempotency.run_once(
        ctx.writer,
        ctx.engine.clock,
        who.key.id,
        idempotency_key,
        digest,
        operation,
        bucket=bucket,
    )
    headers = {REPLAYED_HEADER: "true"} if answer.replayed else None
    return JSONResponse(answer.body, status_code=answer.status_code, headers=headers)


# --- pagination --------------------------------------------------------------------------


def page_of(
    found: Sequence[T], limit: int, view: Callable[[T], Any], cursor_of: Callable[[T], str]
) -> dict[str, Any]:
    """A list's answer from the ``limit + 1`` rows it read: the first ``limit`` as views, and
    the cursor of the last of them when there were more."""
    page = found[:limit]
    more = len(found) > limit
    return {"items": [view(x) for x in page], "next_cursor": cursor_of(page[-1]) if more else None}


def encode_cursor(at: datetime, last_id: str) -> str:
    raw = json.dumps([at.isoformat(), last_id], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, last_id = json.loads(raw)
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or not isinstance(last_id, str):
            raise ValueError("bad cursor")
        wire.in_range(moment)
    except (ValueError, TypeError) as exc:
        raise Invalid(f"bad cursor: pass the next_cursor of a previous page ({exc})") from None
    return moment, last_id


def not_found(what: str, ident: str) -> NotFound:
    return NotFound(f"no {what} {ident}")
