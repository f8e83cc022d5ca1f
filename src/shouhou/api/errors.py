"""One JSON shape for every error, and the one place the error tree becomes HTTP.

    {"error": {"code": "not_allowed", "message": "...", "rule": "...", "allowed_from": "...",
               "case": "...", "status": "...", "errors": [...field errors...]}}

``code`` is one of the SPEC codes (``not_allowed``, ``not_eligible``, ``forbidden``,
``invalid``, ``not_found``, ``conflict``) or, for failures outside the engine,
``unauthenticated``, ``payload_too_large``, ``unsupported_media_type``,
``method_not_allowed``, ``request_timeout`` (a body that stalled), ``too_many_requests`` (a
quota; with ``Retry-After``) and ``internal``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from shouhou.errors import ActionRefused, OverQuota, StillRunning

log = logging.getLogger("shouhou.api")

#: HTTP status of each refusal code (docs/decisions/0004-rest-api.md says why).
HTTP_STATUS: dict[str, int] = {
    "not_allowed": 409,
    "conflict": 409,
    "not_eligible": 422,
    "invalid": 422,
    "forbidden": 403,
    "not_found": 404,
}
#: Codes for HTTP-level failures, by status.
HTTP_CODES: dict[int, str] = {
    400: "invalid",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
}


class ApiError(Exception):
    """An HTTP-level failure (authentication, body size, media type) in the error shape."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or HTTP_CODES.get(status, "invalid")
        self.message = message


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, **extra}}
    return JSONResponse(body, status_code=status, headers=headers)


def refusal_status(exc: ActionRefused) -> int:
    return HTTP_STATUS.get(exc.code, 422)


def _refused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ActionRefused)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, StillRunning) else None
    return JSONResponse({"error": exc.to_dict()}, status_code=refusal_status(exc), headers=headers)


def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(exc.status, exc.code, exc.message, headers)


def _over_quota(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OverQuota)
    return error_response(
        429,
        exc.code,
        exc.message,
        {"Retry-After": str(exc.retry_after_s)},
        allowed_from=exc.until.isoformat(),
    )


def _where(loc: Any) -> str:
    return ".".join(str(part) for part in loc)


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if _anonymous(request):  # who calls is checked before what they send
        return error_response(
            401,
            "unauthenticated",
            "send an API key: Authorization: Bearer shk_…",
            {"WWW-Authenticate": "Bearer"},
        )
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "message": e.get("msg", ""), "type": e["type"]}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return error_response(
            400, "invalid", "the body is not valid JSON", rule="shouhou/parameters", errors=errors
        )
    first = errors[0] if errors else {"loc": [], "message": "invalid request"}
    message = f"{_where(first['loc'])}: {first['message']}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return error_response(422, "invalid", message, rule="shouhou/parameters", errors=errors)


def _anonymous(request: Request) -> bool:
    """Whether a request to the key-guarded ``/v1`` API carries no bearer token at all."""
    if not request.url.path.startswith("/v1/"):
        return False
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() != "bearer" or not token.strip()


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404 and exc.detail == "Not Found":  # no route serves the path
        return _no_route(request)
    if exc.status_code == 405:
        return _no_method(request)
    code = HTTP_CODES.get(exc.status_code, "invalid")
    message = str(exc.detail) if exc.detail else code.replace("_", " ")
    extra = {"rule": "shouhou/parameters"} if exc.status_code == 400 else {}
    return error_response(exc.status_code, code, message, dict(exc.headers or {}), **extra)


#: ``/v1/cases/c1/actions/agree``: the subject's collection, and the action asked for.
ACTION_PATH = re.compile(r"^(/v1/[a-z_]+/)[^/]+/actions/([^/]*)$")
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _documented(request: Request) -> dict[str, set[str]]:
    """Each path template of the API's OpenAPI document, with its methods."""
    paths = request.app.openapi()["paths"]
    return {path: {m.upper() for m in ops if m in HTTP_METHODS} for path, ops in paths.items()}


def _serves(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


def _no_route(request: Request) -> JSONResponse:
    """404 for a path no route serves; for an unknown action, the subject's known actions."""
    path = request.url.path
    found = ACTION_PATH.match(path)
    if found:
        collection, action = found.groups()
        actions = sorted(
            template.rsplit("/", 1)[1]
            for template in _documented(request)
            if template.startswith(collection) and template.rsplit("/", 2)[1] == "actions"
        )
        if actions:
            subject = collection.strip("/").split("/")[-1]
            message = f"no action {action!r} on {subject}; known actions: {', '.join(actions)}"
            return error_response(404, "not_found", message, actions=actions)
    return error_response(404, "not_found", f"no route {request.method} {path}")


def _no_method(request: Request) -> JSONResponse:
    """405 whose ``Allow`` names the methods of every route serving the path (Starlette's
    names only the first route's, though /v1/cases has one route for GET and one for POST)."""
    path = request.url.path
    allowed = sorted(
        {
            m
            for template, methods in _documented(request).items()
            if _serves(template, path)
            for m in methods
        }
    )
    message = f"{request.method} is not allowed on {path}; allowed: {', '.join(allowed)}"
    return error_response(405, "method_not_allowed", message, {"Allow": ", ".join(allowed)})


def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal error; it was logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ActionRefused, _refused)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(OverQuota, _over_quota)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _internal)
