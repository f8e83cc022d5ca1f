"""One POST route per action of a subject (case or order), built from its command class."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from shouhou.api import wire
from shouhou.api.deps import Caller, Ctx, IdempotencyKey
from shouhou.domain import commands as c

#: Carries out ``action`` on the subject: ctx, caller, request, action, id, body, key.
Act = Callable[[Any, Any, Request, str, str, Any, str | None], JSONResponse]


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
) -> None:
    """``POST /{subject}s/{id}/actions/{action}`` with the command's parameters as its body."""
    id_name = f"{subject}_id"
    model = wire.params_model(cls, frozenset({id_name}))
    required = wire.has_required(model)

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
        summary=summary,
        description=("" if generated else doc + "\n\n") + note,
    )
