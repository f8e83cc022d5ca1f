"""One JSON shape for every error, and the one place the error tree becomes HTTP.

    {"error": {"code": "not_allowed", "message": "...", "rule": "...", "allowed_from": "...",
               "case": "...", "status": "...", "errors": [...field errors...]}}

``code`` is one of the SPEC codes (``not_allowed``, ``not_eligible``, ``forbidden``,
``invalid``, ``not_found``, ``conflict``) or, for failures outside the engine,
``unauthenticated``, ``payload_too_large``, ``unsupported_media_type``,
``method_not_allowed``, ``request_timeout`` (a body that stalled), ``too_many_requests`` (a
quota; with ``Retry-After``) and ``internal``.

``message`` is in the language of the request's ``Accept-Language`` (en, zh-Hans, zh-Hant; en
when none of them is asked for). The engine's refusals are written in English with their
particulars (amounts, ids, times): in Chinese, ``message`` says what kind of refusal it is and
``detail`` keeps the English particulars; the server's own messages are translated whole.
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
from shouhou.i18n import N_, Lang, negotiate, translator

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


#: What a refusal of each code says where its English particulars are not read.
HEADLINES: dict[str, str] = {
    "not_allowed": N_("This action is not allowed in the case's current status."),
    "not_eligible": N_("A rule does not allow this now."),
    "forbidden": N_("You may not do this."),
    "invalid": N_("Something sent is not valid."),
    "not_found": N_("There is no such thing, or it is not yours to see."),
    "conflict": N_("Someone else changed this first: read it again, then retry."),
    "too_many_requests": N_("The daily upload quota is used up."),
}


def lang_of(request: Request) -> Lang:
    """The language the request's ``Accept-Language`` asks for (en when none spoken here)."""
    return negotiate(request.headers.get("accept-language"))


def say(lang: Lang, message: str, **values: Any) -> str:
    """One of this module's own messages in ``lang`` (the English text is its msgid)."""
    text = translator(lang).gettext(message)
    return text.format(**values) if values else text


def localized_message(exc: ActionRefused | OverQuota, lang: Lang) -> str:
    """A refusal's message for a reader of ``lang``: the engine's own English message, or in
    Chinese what kind of refusal it is (its English particulars go in ``detail``)."""
    if lang == "en":
        return exc.message
    return say(lang, HEADLINES.get(exc.code, HEADLINES["invalid"]))


def _localized(body: dict[str, Any], exc: ActionRefused | OverQuota, lang: Lang) -> dict[str, Any]:
    if lang != "en":
        body["detail"] = exc.message
        body["message"] = localized_message(exc, lang)
    return body


class ApiError(Exception):
    """An HTTP-level failure (authentication, body size, media type) in the error shape."""

    def __init__(self, status: int, message: str, code: str | None = None, **values: Any) -> None:
        super().__init__(message.format(**values) if values else message)
        self.status = status
        self.code = code or HTTP_CODES.get(status, "invalid")
        #: The English message (the catalog's msgid) and what fills its placeholders.
        self.template = message
        self.values = values
        self.message = str(self)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, **extra}}
    return JSONResponse(body, status_code=status, headers=headers)


def refusal_status(exc: ActionRefused) -> int:
    return HTTP_STATUS.get(exc.code, 422)


def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ActionRefused)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, StillRunning) else None
    body = _localized(exc.to_dict(), exc, lang_of(request))
    return JSONResponse({"error": body}, status_code=refusal_status(exc), headers=headers)


def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    message = say(lang_of(request), exc.template, **exc.values)
    return error_response(exc.status, exc.code, message, headers)


def _over_quota(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OverQuota)
    lang = lang_of(request)
    extra = {"detail": exc.message} if lang != "en" else {}
    return error_response(
        429,
        exc.code,
        localized_message(exc, lang),
        {"Retry-After": str(exc.retry_after_s)},
        allowed_from=exc.until.isoformat(),
        **extra,
    )


def _where(loc: Any) -> str:
    return ".".join(str(part) for part in loc)


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    lang = lang_of(request)
    if _anonymous(request):  # who calls is checked before what they send
        return error_response(
            401,
            "unauthenticated",
            say(lang, SEND_A_KEY),
            {"WWW-Authenticate": "Bearer"},
        )
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "message": e.get("msg", ""), "type": e["type"]}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return error_response(
            400,
            "invalid",
            say(lang, N_("the body is not valid JSON")),
            rule="shouhou/parameters",
            errors=errors,
        )
    first = errors[0] if errors else {"loc": [], "message": "invalid request"}
    message = f"{_where(first['loc'])}: {first['message']}"
    if len(errors) > 1:
        message += say(lang, N_(" (and {count} more)"), count=len(errors) - 1)
    if lang != "en":
        return error_response(
            422,
            "invalid",
            say(lang, HEADLINES["invalid"]),
            rule="shouhou/parameters",
            errors=errors,
            detail=message,
        )
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
    extra: dict[str, Any] = {"rule": "shouhou/parameters"} if exc.status_code == 400 else {}
    lang = lang_of(request)
    if lang != "en" and code in HEADLINES:
        extra["detail"] = message
        message = say(lang, HEADLINES[code])
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
            message = say(
                lang_of(request),
                N_("no action {action} on {subject}; known actions: {actions}"),
                action=repr(action),
                subject=subject,
                actions=", ".join(actions),
            )
            return error_response(404, "not_found", message, actions=actions)
    message = say(
        lang_of(request), N_("no route {method} {path}"), method=request.method, path=path
    )
    return error_response(404, "not_found", message)


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
    message = say(
        lang_of(request),
        N_("{method} is not allowed on {path}; allowed: {allowed}"),
        method=request.method,
        path=path,
        allowed=", ".join(allowed),
    )
    return error_response(405, "method_not_allowed", message, {"Allow": ", ".join(allowed)})


def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500, "internal", say(lang_of(request), N_("internal error; it was logged"))
    )


#: What a request to the ``/v1`` API without a key is told.
SEND_A_KEY = N_("send an API key: Authorization: Bearer shk_…")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ActionRefused, _refused)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(OverQuota, _over_quota)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _internal)
