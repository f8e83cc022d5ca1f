"""Complaints (规则类投诉), ledgers (penalty points, compensation) and shop metrics."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from shouhou.api import wire
from shouhou.api.cases import ERRORS, MAX_PAGE, IdQuery
from shouhou.api.deps import (
    Caller,
    Ctx,
    IdempotencyKey,
    Principal,
    decode_cursor,
    encode_cursor,
    page_of,
    write,
)
from shouhou.domain.model import Complaint, Role
from shouhou.errors import Forbidden, NotFound
from shouhou.services import views
from shouhou.services.ports import ApiUnitOfWork, joined

router = APIRouter(prefix="/v1", tags=["complaints"])
ComplaintId = Annotated[str, Path(min_length=1, max_length=64)]
ShopId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
#: The longest metrics window the API computes, in days.
MAX_WINDOW_DAYS = 365


class ComplaintIn(wire.Strict):
    """File a rule complaint (the buyer's ``file_complaint``, SPEC §6)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"order": "o1001", "type": "not_as_described", "subtype": "minor"}]
        },
    )

    order: wire.Ident
    type: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_]+$")]
    subtype: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_]+$")] = "default"
    case: wire.Ident | None = Field(default=None, description="the case it goes with, if any")


class WithdrawComplaintIn(wire.Strict):
    pass


class RuleComplaintIn(wire.Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"decision": "upheld", "reason": "photos match"}]},
    )

    decision: Literal["upheld", "dismissed"]
    reason: wire.Text


def visible_complaint(uow: ApiUnitOfWork, who: Principal, complaint_id: str) -> Complaint:
    found = uow.complaints.get(complaint_id)
    if found is None or not who.sees(found.shop, found.buyer):
        raise NotFound(f"no complaint {complaint_id}")
    return found


@router.post(
    "/complaints",
    status_code=201,
    response_model=wire.ComplaintView,
    responses=ERRORS,
    summary="File a complaint on an order (buyers; one per order)",
)
def file_complaint(
    ctx: Ctx,
    who: Caller,
    request: Request,
    body: ComplaintIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    payload = body.model_dump(mode="json", exclude_unset=True)

    def run(uow: ApiUnitOfWork) -> tuple[int, Any]:
        order = uow.orders.get(body.order)
        if order is None or not who.sees(order.shop, order.buyer):
            raise NotFound(f"no order {body.order}")
        target = {"complaint_id": "k" + uuid.uuid4().hex[:16]}
        cmd = ctx.engine.build("file_complaint", actor=who.actor, target=target, params=payload)
        filed = ctx.engine.execute(cmd, uow=joined(uow))
        assert isinstance(filed, Complaint)
        return 201, views.complaint_view(filed)

    return write(ctx, request, who, idempotency_key, payload, run)


@router.get(
    "/complaints",
    response_model=wire.ComplaintPage,
    responses=ERRORS,
    summary="Complaints the caller may see (agents: the queue with status=filed)",
)
def list_complaints(
    ctx: Ctx,
    who: Caller,
    status: Literal["filed", "withdrawn", "upheld", "dismissed"] | None = None,
    shop: Annotated[str | None, IdQuery] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> dict[str, Any]:
    scoped = who.scope(shop, None)
    if scoped is None:
        return {"items": [], "next_cursor": None}
    shop, buyer = scoped
    with ctx.reader() as uow:
        found = uow.complaints.list(
            shop=shop, buyer=buyer, status=status, after=decode_cursor(cursor), limit=limit + 1
        )
    return page_of(found, limit, views.complaint_view, lambda k: encode_cursor(k.filed_at, k.id))


@router.get(
    "/complaints/{complaint_id}",
    response_model=wire.ComplaintView,
    responses=ERRORS,
    summary="One complaint",
)
def get_complaint(ctx: Ctx, who: Caller, complaint_id: ComplaintId) -> dict[str, Any]:
    with ctx.reader() as uow:
        return views.complaint_view(visible_complaint(uow, who, complaint_id))


def _complaint_action(
    ctx: Ctx,
    who: Principal,
    request: Request,
    action: str,
    complaint_id: str,
    payload: dict[str, Any],
    idempotency_key: str | None,
) -> JSONResponse:
    def run(uow: ApiUnitOfWork) -> tuple[int, Any]:
        visible_complaint(uow, who, complaint_id)
        target = {"complaint_id": complaint_id}
        cmd = ctx.engine.build(action, actor=who.actor, target=target, params=payload)
        done = ctx.engine.execute(cmd, uow=joined(uow))
        assert isinstance(done, Complaint)
        return 200, views.complaint_view(done)

    return write(ctx, request, who, idempotency_key, payload, run)


@router.post(
    "/complaints/{complaint_id}/actions/withdraw_complaint",
    response_model=wire.ComplaintView,
    responses=ERRORS,
    summary="The buyer withdraws a complaint before it is ruled (never filed again)",
)
def withdraw_complaint(
    ctx: Ctx,
    who: Caller,
    request: Request,
    complaint_id: ComplaintId,
    body: WithdrawComplaintIn | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return _complaint_action(
        ctx, who, request, "withdraw_complaint", complaint_id, {}, idempotency_key
    )


@router.post(
    "/complaints/{complaint_id}/actions/rule_complaint",
    response_model=wire.ComplaintView,
    responses=ERRORS,
    summary="An agent upholds (penalty points or compensation) or dismisses a complaint",
)
def rule_complaint(
    ctx: Ctx,
    who: Caller,
    request: Request,
    complaint_id: ComplaintId,
    body: RuleComplaintIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    payload = body.model_dump(mode="json")
    return _complaint_action(
        ctx, who, request, "rule_complaint", complaint_id, payload, idempotency_key
    )


# --- ledgers and metrics ---------------------------------------------------------------------


@router.get(
    "/ledgers/{account}",
    response_model=wire.LedgerView,
    responses=ERRORS,
    tags=["ledgers"],
    summary="A ledger: `shop:s1` penalty points, `buyer:b1` compensation (fen)",
)
def ledger(
    ctx: Ctx,
    who: Caller,
    account: Annotated[str, Path(max_length=80, pattern=r"^(shop|buyer):[A-Za-z0-9_.\-]+$")],
    kind: Literal["penalty_points", "compensation"] | None = None,
) -> dict[str, Any]:
    owner, _, ident = account.partition(":")
    allowed = who.sees(ident, "") if owner == "shop" else who.sees("", ident)
    if not allowed:
        raise NotFound(f"no ledger {account}")
    with ctx.reader() as uow:
        entries = uow.ledger.entries(account, kind)
    balances: dict[str, int] = {}
    for entry in entries:
        balances[entry.kind] = balances.get(entry.kind, 0) + entry.amount
    return {
        "account": account,
        "balances": balances,
        "entries": [
            {
                "kind": e.kind,
                "amount": e.amount,
                "unit": e.unit,
                "order": e.order_id,
                "source": e.source,
                "rule_id": e.rule_id,
                "at": e.at.isoformat(),
            }
            for e in entries
        ],
    }


@router.get(
    "/shops/{shop}/metrics",
    response_model=wire.MetricsView,
    responses=ERRORS,
    tags=["ledgers"],
    summary="SPEC §9 metrics of a shop over a rolling window (sellers: their own shop)",
)
def shop_metrics(
    ctx: Ctx,
    who: Caller,
    shop: ShopId,
    at: Annotated[wire.Instant | None, Query(description="window end (default: now)")] = None,
    days: Annotated[int, Query(ge=1, le=MAX_WINDOW_DAYS, description="window length")] = 30,
) -> dict[str, Any]:
    if who.actor.role == Role.BUYER:
        raise Forbidden("shop metrics are for the shop, agents and the platform")
    if not who.sees(shop, ""):
        raise NotFound(f"no shop {shop}")
    metrics = ctx.engine.shop_metrics(shop, at or ctx.now(), timedelta(days=days))
    return views.shop_view(shop, metrics)


class ReturnAddressIn(wire.Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"return_address": "杭州市余杭区文一西路 1 号 售后部"}]},
    )

    return_address: Annotated[wire.Text, Field(min_length=1, max_length=500)] | None = Field(
        description="where buyers send goods back when the system agrees for the shop; null "
        "to clear it"
    )


class ReturnAddressView(wire.Open):
    shop: str
    return_address: str | None


def _may_change(who: Principal, shop: str) -> None:
    """The shop's own seller, or the platform (on its own or on the seller's behalf)."""
    if who.key.role == Role.PLATFORM and who.actor.role == Role.PLATFORM:
        return
    if who.actor.role != Role.SELLER or who.actor.id != shop:
        raise Forbidden(f"only shop {shop}'s seller or the platform may change its settings")


@router.get(
    "/shops/{shop}/return-address",
    response_model=ReturnAddressView,
    responses=ERRORS,
    tags=["shops"],
    summary="The shop's default return address (sellers: their own shop)",
)
def get_return_address(ctx: Ctx, who: Caller, shop: ShopId) -> dict[str, Any]:
    if who.actor.role == Role.BUYER or not who.sees(shop, ""):
        raise NotFound(f"no shop {shop}")
    with ctx.reader() as uow:
        return {"shop": shop, "return_address": uow.shops.return_address(shop)}


@router.put(
    "/shops/{shop}/return-address",
    response_model=ReturnAddressView,
    responses=ERRORS,
    tags=["shops"],
    summary="Set the shop's default return address",
    description=(
        "When a seller lets `seller_respond` pass on a return, exchange or repair, the system "
        "agrees for the shop with this address (SPEC §2), and the buyer is told where to send "
        "the goods. Without one, the agreement carries no address."
    ),
)
def put_return_address(
    ctx: Ctx,
    who: Caller,
    request: Request,
    shop: ShopId,
    body: ReturnAddressIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    _may_change(who, shop)
    payload = body.model_dump(mode="json")

    def run(uow: ApiUnitOfWork) -> tuple[int, Any]:
        uow.shops.set_return_address(shop, body.return_address, ctx.now())
        return 200, {"shop": shop, "return_address": body.return_address}

    return write(ctx, request, who, idempotency_key, payload, run)
