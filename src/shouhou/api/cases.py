"""Cases: apply, list, view, and one route per case action (generated from the commands)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shouhou.api import wire
from shouhou.api.actions import add_action_route, refuses
from shouhou.api.deps import (
    Caller,
    Context,
    Ctx,
    IdempotencyKey,
    Principal,
    decode_cursor,
    encode_cursor,
    page_of,
    view_in,
    write,
)
from shouhou.domain import applications
from shouhou.domain import cases as case_rules
from shouhou.domain import commands as c
from shouhou.domain.model import Case, CaseStatus, Order
from shouhou.errors import NotFound
from shouhou.services import uploads, views
from shouhou.services.ports import ApiUnitOfWork, CaseFilter, joined

router = APIRouter(prefix="/v1", tags=["cases"])

#: Error answers every case route may give, for the OpenAPI document.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": wire.ErrorBody, "description": "no or unknown API key"},
    403: {"model": wire.ErrorBody, "description": "forbidden: this actor may not"},
    404: {"model": wire.ErrorBody, "description": "not_found (or not visible to the caller)"},
    409: {"model": wire.ErrorBody, "description": "not_allowed in this status, or conflict"},
    422: {"model": wire.ErrorBody, "description": "invalid parameters or not_eligible now"},
}
CaseId = Annotated[str, Path(min_length=1, max_length=64, description="the case id")]
IdQuery = Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
#: The largest page a list returns.
MAX_PAGE = 200


def summary(case: Case, order: Order, who: Principal, ctx: Context) -> views.CaseSummary:
    """A case in a list; its ``available_actions`` are tried against its order, as in the case
    view, so that a list never offers an action the case would refuse."""
    actions = case_rules.available_actions(
        case, who.actor, order=order, rules=ctx.engine.rules_at(case.opened_at), now=ctx.now()
    )
    return views.case_summary(case, actions)


def visible_case(uow: ApiUnitOfWork, who: Principal, case_id: str) -> Case:
    """The case, if it exists and the caller may see it; ``not_found`` otherwise."""
    case = uow.cases.get(case_id)
    if case is None or not who.sees_case(case):
        raise NotFound(f"no case {case_id}", case=case_id)
    return case


@router.get(
    "/cases",
    response_model=wire.CasePage,
    responses=ERRORS,
    summary="List cases the caller may see",
    description=(
        "Buyers see their own cases, sellers their shop's, agents and the platform all. "
        "Filters combine; `status` may repeat. `sort=due_at` lists only cases with a running "
        "deadline, soonest first (a work queue)."
    ),
)
def list_cases(
    ctx: Ctx,
    who: Caller,
    status: Annotated[list[CaseStatus], Query()] = [],  # noqa: B006 (FastAPI copies it)
    shop: Annotated[str | None, IdQuery] = None,
    buyer: Annotated[str | None, IdQuery] = None,
    order: Annotated[str | None, IdQuery] = None,
    due_before: Annotated[
        wire.Instant | None, Query(description="deadline due before this instant")
    ] = None,
    sort: Literal["opened_at", "due_at"] = "opened_at",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> dict[str, Any]:
    scoped = who.scope(shop, buyer)
    if scoped is None:
        return {"items": [], "next_cursor": None}
    shop, buyer = scoped
    where = CaseFilter(
        statuses=tuple(status),
        shop=shop,
        buyer=buyer,
        order=order,
        due_before=due_before,
        sort=sort,
        after=decode_cursor(cursor),
    )
    with ctx.reader() as uow:
        found = uow.queries.cases(where, limit + 1)
    return page_of(
        found,
        limit,
        lambda i: summary(i.case, i.order, who, ctx),
        lambda i: encode_cursor(*i.sort_key),
    )


@router.get(
    "/cases/{case_id}",
    response_model=wire.CaseView,
    responses=ERRORS,
    summary="One case: status, deadline, timeline, explanation, your available actions",
)
def get_case(ctx: Ctx, who: Caller, case_id: CaseId) -> dict[str, Any]:
    with ctx.reader() as uow:
        visible_case(uow, who, case_id)
        return view_in(ctx, uow, case_id, who.actor)


@router.get(
    "/cases/{case_id}/events",
    response_model=list[wire.Event],
    responses=ERRORS,
    summary="The case timeline",
)
def case_events(ctx: Ctx, who: Caller, case_id: CaseId) -> list[dict[str, Any]]:
    with ctx.reader() as uow:
        visible_case(uow, who, case_id)
        return [views.event_view(s, int) for s in uow.cases.timeline(case_id)]


async def applicant_first(request: Request, who: Caller) -> None:
    """A role that never applies is ``forbidden`` before its body is read (SPEC §1 order)."""
    if refuses(wire.ApplyIn, True, await request.body()):
        applications.check_applicant(who.actor)


@router.post(
    "/cases",
    status_code=201,
    dependencies=[Depends(applicant_first)],
    response_model=wire.CaseView,
    responses=ERRORS,
    summary="Apply for after-sales on an order (the buyer's apply)",
    description="Opens a case; the answer is the new case view with its first deadline.",
)
def apply(
    ctx: Ctx,
    who: Caller,
    request: Request,
    body: wire.ApplyIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    params = body.model_dump(mode="json", exclude_unset=True)

    def run(uow: ApiUnitOfWork) -> tuple[int, Any]:
        order = uow.orders.get(body.order)
        if order is None or not who.sees_order(order):
            raise NotFound(f"no order {body.order}")
        cmd = ctx.engine.build("apply", actor=who.actor, target={}, params=params)
        case = ctx.engine.execute(cmd, uow=joined(uow))
        return 201, view_in(ctx, uow, case.id, who.actor)

    return write(ctx, request, who, idempotency_key, params, run, names=body.order)


def _act(
    ctx: Context,
    who: Principal,
    request: Request,
    action: str,
    case_id: str,
    body: BaseModel | None,
    idempotency_key: str | None,
) -> JSONResponse:
    params = body.model_dump(mode="json", exclude_unset=True) if body is not None else {}

    def run(uow: ApiUnitOfWork) -> tuple[int, Any]:
        visible_case(uow, who, case_id)
        target = {"case_id": case_id}
        cmd = ctx.engine.build(
            action, actor=who.actor, target=target, params=params, uow=joined(uow)
        )
        ctx.engine.execute(cmd, uow=joined(uow))
        return 200, view_in(ctx, uow, case_id, who.actor)

    return write(ctx, request, who, idempotency_key, params, run, names=case_id)


def _admit(ctx: Context, who: Principal, action: str, case_id: str) -> None:
    ctx.engine.admit(action, who.actor, case_id, visible=who.sees_case)


#: Actions no API caller sends: ``apply`` is POST /v1/cases, ``timeout`` is the system's.
NOT_ROUTED = frozenset({"apply", "timeout"})

for _name, _cls in c.CASE_COMMANDS.items():
    if _name not in NOT_ROUTED:
        add_action_route(
            router,
            subject="case",
            id_type=CaseId,
            action=_name,
            cls=_cls,
            act=_act,
            admit=_admit,
            response_model=wire.CaseView,
            responses=ERRORS,
            summary=f"{_name} (SPEC §1 action)",
            note="Refused with not_allowed (409), not_eligible (422), forbidden (403) or invalid "
            "(422), naming the rule; the answer is the case view after the action.",
        )


@router.post(
    "/attachments",
    status_code=201,
    response_model=wire.AttachmentView,
    responses={
        **ERRORS,
        413: {"model": wire.ErrorBody, "description": "over 10 MiB"},
        429: {
            "model": wire.ErrorBody,
            "description": "too_many_requests: the caller's daily upload quota is used up",
            "headers": {
                "Retry-After": {
                    "description": "seconds until the quota resets (midnight, Asia/Shanghai)",
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
        },
    },
    summary="Upload an evidence file (photo, PDF, video); submit it by its sha256",
    description=(
        "Send the file itself as the body. Its type is recognised by parsing its content (a "
        "JPEG or PNG that decodes, a PDF whose pages read, an MP4 whose boxes hold together), "
        "not from its name or first bytes; at most 10 MiB. The same content is kept once, "
        "so sending it again is harmless. Then pass the `sha256` in `submit_evidence`. Each "
        "caller may upload so many files and bytes per day (midnight to midnight in "
        "Asia/Shanghai; `SHOUHOU_UPLOAD_FILES_PER_DAY`, `SHOUHOU_UPLOAD_BYTES_PER_DAY`); "
        "beyond that the answer is 429 with `Retry-After`, and nothing is kept."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in ("image/jpeg", "image/png", "application/pdf", "video/mp4")
            },
        }
    },
)
async def upload_attachment(
    ctx: Ctx,
    who: Caller,
    request: Request,
    filename: Annotated[str, Query(min_length=1, max_length=200)] = "evidence",
) -> views.AttachmentView:
    data = await request.body()
    quota = uploads.UploadQuota(
        files=ctx.settings.upload_files_per_day, bytes=ctx.settings.upload_bytes_per_day
    )
    attachment = await run_in_threadpool(
        uploads.upload,
        ctx.writer(),
        ctx.engine.attachments,
        str(who.actor),
        data,
        filename,
        quota,
        ctx.now(),
    )
    return views.attachment_view(attachment)
