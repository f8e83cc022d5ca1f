"""The FastAPI application: ``create_app(engine)``.

Routes live in ``cases``, ``orders``, ``complaints``, ``shops`` and ``hooks``, the front page
in ``home`` and the reference pages in ``docs``; this module
adds health, the caller's identity, the rulebooks, the body-size and media-type guards, and
the error handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shouhou.api import (
    cases,
    complaints,
    docs,
    errors,
    home,
    hooks,
    observability,
    orders,
    shops,
    wire,
)
from shouhou.api.deps import Caller, Context, Ctx
from shouhou.api.timeouts import BodyTimeout
from shouhou.bootstrap import Engine
from shouhou.errors import NotFound, PolicyError
from shouhou.i18n import N_, negotiate
from shouhou.observability import Telemetry
from shouhou.services.ports import ApiUnitOfWork
from shouhou.settings import Settings

#: The largest request body the API reads, in bytes (requests carry JSON, not files).
MAX_BODY_BYTES = 256 * 1024
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Routes that take a file, not JSON, and how large it may be in bytes (the store checks too).
UPLOADS = {"/v1/attachments": 10 * 1024 * 1024, "/console/upload": 10 * 1024 * 1024}
#: Where the web console's pages and forms live (shouhou.console).
CONSOLE_PREFIX = "/console/"

DESCRIPTION = """\
The after-sales engine over HTTP: orders, cases and their actions, deadlines, webhooks.

* **Authentication**: `Authorization: Bearer shk_…`, a key bound to a role and subject
  (`buyer:b1`, `seller:s1`, `agent:a1`, `platform`), made with `shouhou keys create`. A platform
  key may act for a buyer or seller with `X-On-Behalf-Of: buyer:b1`.
* **Visibility**: buyers see their own cases and orders, sellers their shop's, agents and the
  platform everything; what you can't see answers 404.
* **Writes** accept `Idempotency-Key`: the same key and body within 24 hours replays the first
  answer (header `Idempotent-Replayed: true`); the same key with another request is refused.
* **Money** is integer fen; **times** are ISO 8601 with an offset; answers give them to the
  second in the marketplace's zone (`2023-03-08T12:00:00+08:00`, `SHOUHOU_TIMEZONE`).
* **Errors** have one shape, `{"error": {"code", "message", "rule", "allowed_from", …}}`:
  not_allowed 409, conflict 409, not_eligible 422, invalid 422 (400 for malformed JSON),
  forbidden 403, not_found 404, unauthenticated 401, payload_too_large 413.
* **Webhooks** are signed like Standard Webhooks (`webhook-id`, `webhook-timestamp`,
  `webhook-signature: v1,<base64 HMAC-SHA256>`); see `shouhou.webhooks.verify`.
"""


class BodyGuard:
    """Refuse bodies over ``limit`` bytes (413) and write bodies that are not JSON (415)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        lang = negotiate(headers.get("accept-language"))
        upload = scope["path"] in UPLOADS
        limit = UPLOADS.get(scope["path"], self.limit)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            message = errors.say(lang, N_("the body is over {limit} bytes"), limit=limit)
            await self._refuse(send, 413, message)
            return
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        has_body = (length.isdigit() and int(length) > 0) or "transfer-encoding" in headers
        # the console's forms post application/x-www-form-urlencoded to its own paths
        api_path = not scope["path"].startswith(CONSOLE_PREFIX)
        json_only = scope["method"] in WRITE_METHODS and not upload and api_path
        if json_only and has_body and media and not _is_json(media):
            message = errors.say(lang, N_("send JSON (application/json), not {media}"), media=media)
            await self._refuse(send, 415, message)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"the body is over {limit} bytes")
            return message

        await self.app(scope, limited, send)

    @staticmethod
    async def _refuse(send: Send, status: int, message: str) -> None:
        response = errors.error_response(status, errors.HTTP_CODES[status], message)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in response.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": response.body})


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


meta = APIRouter(tags=["meta"])


@meta.get("/health", response_model=wire.Health, summary="Is the API up and its database?")
def health(ctx: Ctx) -> dict[str, Any]:
    with ctx.reader() as uow:
        uow.orders.get("-")  # one indexed read proves the database answers
    return {"status": "ok", "database": "ok", "version": version("shouhou")}


@meta.get("/v1/me", response_model=wire.Me, responses=cases.ERRORS, summary="Who am I?")
def me(who: Caller) -> dict[str, Any]:
    return {
        "key": who.key.id,
        "role": who.key.role.value,
        "subject": who.key.subject,
        "acting_as": str(who.actor),
    }


@meta.get(
    "/v1/policies",
    response_model=list[wire.PolicySummary],
    responses=cases.ERRORS,
    tags=["policies"],
    summary="Rulebook packs and their versions; `selected` ones are in force here",
)
def policies(ctx: Ctx, who: Caller) -> list[dict[str, Any]]:
    registry = ctx.engine.registry
    return [
        {
            "name": name,
            "selected": name in ctx.engine.policies,
            "versions": [
                {
                    "version": v.pack.version,
                    "kind": v.pack.kind,
                    "title": {"zh": v.pack.title.zh, "en": v.pack.title.en},
                }
                for v in registry.versions(name)
            ],
        }
        for name in registry.names()
    ]


@meta.get(
    "/v1/policies/{name}",
    response_model=dict[str, Any],
    responses=cases.ERRORS,
    tags=["policies"],
    summary="One pack (its newest version): every rule with its provenance",
)
def policy(
    ctx: Ctx, who: Caller, name: Annotated[str, Path(min_length=1, max_length=64)]
) -> dict[str, Any]:
    try:
        loaded = ctx.engine.registry.versions(name)[-1]
    except PolicyError:
        raise NotFound(f"no policy pack {name}") from None
    data: dict[str, Any] = loaded.pack.model_dump(mode="json")
    return data


#: What an operation that reads a body may answer before its route runs (BodyGuard, the JSON
#: parser), so the OpenAPI document lists every status the API really sends.
BODY_ERRORS = {
    "400": "invalid: the body is not valid JSON",
    "413": "payload_too_large: the body is over the limit",
    "415": "unsupported_media_type: the body is not JSON",
}


def _truthful_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` say what the API does where FastAPI's document does not:
    :data:`BODY_ERRORS` on operations with a body, and optional parameters without ``null``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for operations in document["paths"].values():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    parameter["schema"] = _without_null(parameter["schema"])
                if "requestBody" in operation:
                    for status, text in BODY_ERRORS.items():
                        answer = {"description": text, "content": error}
                        operation["responses"].setdefault(status, answer)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without the ``null`` FastAPI adds for ``X | None``: a header or
    query parameter is text or absent, and the text ``null`` is not absent."""
    choices = [c for c in schema.get("anyOf", []) if c.get("type") != "null"]
    if "anyOf" not in schema or len(choices) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**choices[0], **rest}


def create_app(
    engine: Engine[ApiUnitOfWork],
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    settings: Settings | None = None,
    telemetry: Telemetry | None = None,
    console: bool = True,
    demo_logins: Mapping[str, tuple[str, str]] | None = None,
) -> FastAPI:
    """The REST API over ``engine`` (``Engine.open``, or one on the fakes of shouhou.testing);
    ``settings`` default to the environment's; its metrics go to ``telemetry`` (one of its own
    when None), served at ``/metrics``. With ``console``, the web console too (``/`` for a
    browser, ``/console/…``); ``demo_logins`` are its one-click sign-ins (serve --demo-keys)."""
    settings = settings or Settings.from_env()
    app = FastAPI(
        title="shouhou (售后) API",
        version=version("shouhou"),
        description=DESCRIPTION,
        # Our own /docs (api/docs.py) serves Swagger UI from a package, not a CDN; no ReDoc.
        docs_url=None,
        redoc_url=None,
        openapi_tags=[
            {"name": "cases", "description": "After-sales cases and their actions"},
            {"name": "orders", "description": "Orders, recorded by the platform"},
            {"name": "complaints", "description": "Rule complaints (规则类投诉)"},
            {"name": "ledgers", "description": "Penalty points, compensation, shop metrics"},
            {"name": "shops", "description": "A shop's settings: its default return address"},
            {"name": "webhooks", "description": "Subscriptions, the outbox, deliveries"},
            {"name": "policies", "description": "Rulebook packs"},
            {"name": "meta", "description": "Health and identity"},
        ],
    )
    app.state.ctx = Context(engine=engine, settings=settings)
    _truthful_openapi(app)
    errors.install(app)
    app.add_middleware(BodyGuard, limit=max_body_bytes)
    app.include_router(home.router)
    app.add_middleware(BodyTimeout, timeout_s=settings.body_timeout_s)
    app.include_router(meta)
    docs.install(app)
    app.include_router(cases.router)
    app.include_router(orders.router)
    app.include_router(complaints.router)
    app.include_router(shops.router)
    app.include_router(hooks.router)
    if console:
        from shouhou.console import install

        install(app, demo_logins=demo_logins)
    # added last, so outermost: refusals of the guards above are counted too
    observability.install(app, engine, telemetry or Telemetry())
    return app


__all__ = ["MAX_BODY_BYTES", "Context", "create_app"]
