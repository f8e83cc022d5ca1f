"""Complaints (规则类投诉, SPEC §6): file, list, read, withdraw and rule on them."""

from __future__ import annotations

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
from shouhou.domain.model import Complaint
from shouhou.errors import NotFound
from shouhou.services import views
from shouhou.services.ports import ApiUnitOfWork, joined

router = APIRouter(prefix="/v1", tags=["complaints"])
ComplaintId = Annotated[str, Path(min_length=1, max_length=64)]


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
        target = {"complaint_id": ctx.engine.new_complaint_id(body.order)}
        cmd = ctx.engine.build("file_complaint", actor=who.actor, target=target, params=payload)
        filed = ctx.engine.execute(cmd, uow=joined(uow))
        assert isinstance(filed, Complaint)
        return 201, views.complaint_view(filed)

    return write(ctx, request, who, idempotency_key, payload, run, names=body.order)


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

    return write(ctx, request, who, idempotency_key, payload, run, names=complaint_id)


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
