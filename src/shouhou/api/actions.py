"""One POST route per action of a subject (case or order), built from its command class."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from shouhou.api import wire
from shouhou.api.deps import Caller, Context, Ctx, IdempotencyKey, Principal
from shouhou.domain import commands as c

#: Carries out ``action`` on the subject: ctx, caller, request, action, id, body, key.
Act = Callable[[Any, Any, Request, str, str, Any, str | None], JSONResponse]
#: Refuses ``action`` on the subject as it would be refused before its parameters are read
#: (not_found, forbidden, not_allowed): ctx, caller, action, id.
Admit = Callable[[Context, Principal, str, str], None]


def refuses(model: type[BaseModel], required: bool, raw: bytes) -> bool:
    """Whether the route's body validation will refuse ``raw`` (a JSON body, as read)."""
    if not raw:
        return required
    try:
        data = json.loads(raw)
        if data is None and not required:
            return False
        model.model_validate(data)
    except (ValueError, ValidationError):
        return True
    return False


def admission(
    model: type[BaseModel], required: bool, action: str, id_name: str, admit: Admit
) -> Any:
    """A dependency run before the body is validated: when the body will be refused, the
    caller learns first whether it may act at all, and in this status (SPEC §1 order).

    A body that passes goes on to the use case, where the domain checks who and when before
    the parameters; so does an ``Idempotency-Key`` replay, which a status its first run
    changed must not refuse."""

    async def gate(request: Request, ctx: Ctx, who: Caller) -> None:
        if refuses(model, required, await request.body()):
            await run_in_threadpool(admit, ctx, who, action, request.path_params[id_name])

    return Depends(gate)


def add_action_route(
    router: APIRouter,
    *,
    subject: str,
    id_type: Any,
    action: str,
    cls: type[c.Command],
    act: Act,
    response_model: Any,
    responses: dict[int | str, dict[str, Any]],
    summary: str,
    note: str,
    admit: Admit | None = None,
) -> None:
    """``POST /{subject}s/{id}/actions/{action}`` with the command's parameters as its body;
    with ``admit``, who and when are refused before a body is."""
    id_name = f"{subject}_id"
    model = wire.params_model(cls, frozenset({id_name}))
    required = wire.has_required(model)
    gates = [admission(model, required, action, id_name, admit)] if admit is not None else []

    def endpoint(**kwargs: Any) -> JSONResponse:
        return act(
            kwargs["ctx"],
            kwargs["who"],
            kwargs["request"],
            action,
            kwargs[id_name],
            kwargs["body"],
            kwargs["idempotency_key"],
        )

    keyword = inspect.Parameter.KEYWORD_ONLY
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("ctx", keyword, annotation=Ctx),
            inspect.Parameter("who", keyword, annotation=Caller),
            inspect.Parameter("request", keyword, annotation=Request),
            inspect.Parameter(id_name, keyword, annotation=id_type),
            inspect.Parameter(
                "body",
                keyword,
                annotation=model if required else model | None,
                default=Body() if required else Body(default=None),
            ),
            inspect.Parameter("idempotency_key", keyword, annotation=IdempotencyKey, default=None),
        ]
    )
    doc = (cls.__doc__ or "").strip()
    generated = doc.startswith(cls.__name__ + "(")  # dataclasses write a signature as doc
    router.add_api_route(
        f"/{subject}s/{{{id_name}}}/actions/{action}",
        endpoint,
        methods=["POST"],
        response_model=response_model,
        responses=responses,
        name=f"{subject}_{action}",
        dependencies=gates,
        summary=summary,
        description=("" if generated else doc + "\n\n") + note,
    )
