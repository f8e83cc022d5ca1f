"""The web console (SPEC §10): buyers, sellers and agents work their cases in a browser.

Served by ``shouhou serve`` in the API's process, under ``/`` (for a browser) and
``/console/…``: Jinja2 templates, a small hand-written script for countdowns, live updates and
uploads, and a stylesheet, all served from this package (no CDN, no build step). Pages act
through the same engine and services as the API, with its authorization and its 404s.

    from shouhou.console import install
    install(app, demo_logins={"…": "shk_…"})
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from starlette.exceptions import HTTPException

from shouhou.console.pages import ConsoleError, SignInNeeded, home, router
from shouhou.console.web import HERE, Console, Page, Sessions, templates, who_of
from shouhou.errors import ActionRefused
from shouhou.i18n import N_

#: The console's own paths (``/`` is shared with the API's JSON home).
PREFIX = "/console/"
STATIC = HERE / "static"
#: The files under static/ and their media types.
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


def is_console(request: Request) -> bool:
    return request.url.path.startswith(PREFIX)


def error_page(request: Request, status: int, message: str) -> Response:
    page = Page(request, who_of(request))
    return page.render("error.html", status=status, message=page.gettext(message), rule="")


def install(app: FastAPI, *, demo_logins: Mapping[str, tuple[str, str]] | None = None) -> None:
    """Mount the console on the API's app; ``demo_logins`` are the one-click sign-ins of
    ``serve --demo-keys`` (path part to who and their API key)."""
    app.state.console = Console(
        sessions=Sessions(), demo_logins=dict(demo_logins or {}), templates=templates()
    )
    app.state.console_home = home
    app.include_router(router)

    @app.get("/console/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        path = STATIC / name
        kind = STATIC_TYPES.get(path.suffix)
        if kind is None or path.parent != STATIC or not path.is_file():
            raise ConsoleError(404, N_("There is no such page, or it is not yours to see."))
        return FileResponse(path, media_type=kind, headers={"Cache-Control": "max-age=300"})

    @app.get("/console/", include_in_schema=False)
    def console_home(request: Request) -> Response:
        return home(request)

    _wrap_errors(app)


def _wrap_errors(app: FastAPI) -> None:
    """Console paths answer errors as pages; the API's paths keep the API's JSON handlers."""
    handlers: dict[Any, Handler] = app.exception_handlers

    def console_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleError)
        return error_page(request, exc.status, exc.message)

    def sign_in_needed(request: Request, exc: Exception) -> Response:
        page = Page(request)
        back = request.url.path if request.method == "GET" else "/"
        demo = request.app.state.console.demo()
        return page.render("signin.html", status=401, demo=demo, next=back)

    app.add_exception_handler(ConsoleError, console_error)
    app.add_exception_handler(SignInNeeded, sign_in_needed)
    for kind, status in (
        (ActionRefused, None),
        (HTTPException, None),
        (RequestValidationError, 404),
    ):
        api = handlers.get(kind)
        assert api is not None, f"install the API's error handlers first ({kind.__name__})"
        app.add_exception_handler(kind, _either(api, status))


def _either(api: Handler, status: int | None) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if is_console(request):
            code = status or getattr(exc, "status_code", None) or _refusal_status(exc)
            if code == 404:
                message = N_("There is no such page, or it is not yours to see.")
            else:
                message = N_("This request can't be answered.")
            return error_page(request, code, message)
        answer = api(request, exc)
        return await answer if isinstance(answer, Awaitable) else answer

    return handle


def _refusal_status(exc: Exception) -> int:
    if isinstance(exc, ActionRefused):
        return 404 if exc.code == "not_found" else 403 if exc.code == "forbidden" else 422
    return 400


__all__ = ["install"]
