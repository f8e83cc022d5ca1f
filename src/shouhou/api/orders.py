"""Orders: the platform records them and their moves; parties see their own."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shouhou.api import wire
from shouhou.api.actions import add_action_route
from shouhou.api.cases import ERRORS, MAX_PAGE, IdQuery
from shouhou.api.deps import (
    Caller,
    Context,
    Ctx,
    IdempotencyKey,
    Principal,
    decode_cursor,
    encode_cursor,
    page_of,
    write,
)
from shouhou.domain import commands as c
from shouhou.domain.model import Discounts, Item, Order, OrderStatus, Role
from shouhou.domain.values import parse_duration
from shouhou.errors import NotFound
from shouhou.services import views
from shouhou.services.ports import ApiUnitOfWork, OrderFilter, joined

router = APIRouter(prefix="/v1", tags=["orders"])
OrderId = Annotated[str, Path(min_length=1, max_length=64, description="the order id")]


def visible_order(uow: ApiUnitOfWork, who: Principal, order_id: str) -> Order:
    order = uow.orders.get(order_id)
    if order is None or not who.sees_order(order):
        raise NotFound(f"no order {order_id}")
    return order


def to_order(body: wire.OrderIn, now: datetime) -> Order:
    return Order(
        id=body.id,
        shop=body.shop,
        buyer=body.buyer,
        total=body.total,
        shipping_fee=body.shipping_fee,
        free_shipping=body.free_shipping,
        items=tuple(
            Item(
                sku=i.sku,
                title=i.title,
                quantity=i.quantity,
                unit_price=i.unit_price,
                line=i.line or "",
                discount=i.discount,
            )
            for i in body.items
        ),
        discounts=Discounts(**body.discounts.model_dump()),
        promotion=body.promotion,
        promised_ship_by=body.promised_ship_by,
        shipping_method=body.shipping_method,
        no_reason_return=body.no_reason_return,
        sanbao=tuple((k, parse_duration(v)) for k, v in (body.sanbao or {}).items()),
        freight_insurance=body.freight_insurance,
        created_at=body.created_at
        or min((t for t in (body.paid_at, body.shipped_at, body.delivered_at) if t), default=now),
        paid_at=body.paid_at,
        shipped_at=body.shipped_at,
        delivered_at=body.delivered_at,
        trade_success_at=body.trade_success_at,
    )


@router.post(
    "/orders",
    status_code=201,
    response_model=wire.OrderView,
    responses=ERRORS,
    summary="Record an order (platform keys)",
    description=(
        "The order starts in the status its times describe (paid_at, shipped_at, …), with its "
        "deadlines running from those times; no time may lie in the future. Amounts in fen."
    ),
)
def place_order(
    ctx: Ctx,
    who: Caller,
    request: Request,
    body: wire.OrderIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    who.require(Role.PLATFORM)
    payload = body.model_dump(mode="json", exclude_unset=True)

    def run(uow: ApiUnitOfWork) -> tuple[int, Any]:
        order = ctx.engine.place_order(to_order(body, ctx.now()), uow=joined(uow))
        return 201, views.order_view(order)

    return write(ctx, request, who, idempotency_key, payload, run, names=body.id)


@router.get(
    "/orders",
    response_model=wire.OrderPage,
    responses=ERRORS,
    summary="List orders the caller may see",
)
def list_orders(
    ctx: Ctx,
    who: Caller,
    status: Annotated[list[OrderStatus], Query()] = [],  # noqa: B006 (FastAPI copies it)
    shop: Annotated[str | None, IdQuery] = None,
    buyer: Annotated[str | None, IdQuery] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> dict[str, Any]:
    scoped = who.scope(shop, buyer)
    if scoped is None:
        return {"items": [], "next_cursor": None}
    shop, buyer = scoped
    where = OrderFilter(statuses=tuple(status), shop=shop, buyer=buyer, after=decode_cursor(cursor))
    with ctx.reader() as uow:
        found = uow.queries.orders(where, limit + 1)
    return page_of(
        found, limit, lambda i: views.order_view(i.order), lambda i: encode_cursor(*i.sort_key)
    )


@router.get(
    "/orders/{order_id}", response_model=wire.OrderView, responses=ERRORS, summary="One order"
)
def get_order(ctx: Ctx, who: Caller, order_id: OrderId) -> dict[str, Any]:
    with ctx.reader() as uow:
        return views.order_view(visible_order(uow, who, order_id))


@router.get(
    "/orders/{order_id}/events",
    response_model=list[wire.Event],
    responses=ERRORS,
    summary="The order's events (placed, paid, shipped, deadlines …)",
)
def order_events(ctx: Ctx, who: Caller, order_id: OrderId) -> list[dict[str, Any]]:
    with ctx.reader() as uow:
        visible_order(uow, who, order_id)
        return [views.event_view(s, int) for s in uow.orders.timeline(order_id)]


def _act(
    ctx: Context,
    who: Principal,
    request: Request,
    action: str,
    order_id: str,
    body: BaseModel | None,
    idempotency_key: str | None,
) -> JSONResponse:
    params = body.model_dump(mode="json", exclude_unset=True) if body is not None else {}

    def run(uow: ApiUnitOfWork) -> tuple[int, Any]:
        visible_order(uow, who, order_id)
        target = {"order_id": order_id}
        cmd = ctx.engine.build(action, actor=who.actor, target=target, params=params)
        order = ctx.engine.execute(cmd, uow=joined(uow))
        assert isinstance(order, Order)
        return 200, views.order_view(order)

    return write(ctx, request, who, idempotency_key, params, run, names=order_id)


for _name, _cls in c.ORDER_COMMANDS.items():
    if _name != "timeout":
        add_action_route(
            router,
            subject="order",
            id_type=OrderId,
            action=_name,
            cls=_cls,
            act=_act,
            response_model=wire.OrderView,
            responses=ERRORS,
            summary=f"{_name} an order",
            note="Platform keys (agents for reopen); the answer is the order after the action.",
        )
