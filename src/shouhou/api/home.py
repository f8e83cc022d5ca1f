"""``/``: what this server is and where to go next.

JSON for programs; for a browser (``Accept: text/html``) the web console's front page when the
console is mounted (shouhou.console), else a short HTML page of the same links.
"""

from __future__ import annotations

from html import escape
from importlib.metadata import version
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

router = APIRouter()

#: Where to go from ``/``, and what each place is.
LINKS = {
    "/docs": "API reference (Swagger UI)",
    "/openapi.json": "OpenAPI document",
    "/v1/cases": "the API, version 1: the cases you may see (Authorization: Bearer shk_…)",
    "/health": "is the API up and its database?",
}


def home_data() -> dict[str, Any]:
    """The name, version and links of the service."""
    return {
        "name": "shouhou (售后)",
        "description": "after-sales engine: refunds, returns, deadlines, arbitration",
        "version": version("shouhou"),
        "links": LINKS,
    }


@router.get("/", include_in_schema=False)
def home(request: Request) -> Any:
    data = home_data()
    if "text/html" not in request.headers.get("accept", ""):
        return JSONResponse(data)
    console_home = getattr(request.app.state, "console_home", None)
    if console_home is not None:
        return console_home(request)
    items = "".join(
        f'<li><a href="{escape(url)}">{escape(url)}</a> — {escape(what)}</li>'
        for url, what in LINKS.items()
    )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(data['name'])}</title></head><body>"
        f"<h1>{escape(data['name'])} {escape(data['version'])}</h1>"
        f"<p>{escape(data['description'])}</p><ul>{items}</ul></body></html>"
    )
    return HTMLResponse(page)
