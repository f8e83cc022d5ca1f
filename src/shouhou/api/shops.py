"""Shops: their ledgers (penalty points, compensation), metrics and settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from shouhou.api import wire
from shouhou.api.cases import ERRORS
from shouhou.api.deps import Caller, Ctx, IdempotencyKey, Principal, write
from shouhou.domain.model import Role
from shouhou.errors import Forbidden, NotFound
from shouhou.services import views
from shouhou.services.ports import ApiUnitOfWork
from shouhou.times import show

router = APIRouter(prefix="/v1")
ShopId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
#: The longest metrics window the API computes, in days.
MAX_WINDOW_DAYS = 365


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
                "at": show(e.at),
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
