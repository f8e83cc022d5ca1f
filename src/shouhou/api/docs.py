"""``/docs``: the API's reference pages (Swagger UI), served from this server alone.

The page's scripts and styles come from the ``swagger-ui-bundle`` package, mounted at
``/docs/assets``, never from a CDN: the docs work offline and behind a firewall, and the page
loads nothing a third party could change.
"""

from __future__ import annotations

import swagger_ui_bundle  # type: ignore[import-untyped]  # ships no type hints
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"


def install(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` with its assets at ``/docs/assets`` (same origin)."""
    app.mount(ASSETS_URL, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs")
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} — docs"

    @app.get(DOCS_URL, include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            # Swagger UI would send the document to validator.swagger.io for a badge: not here.
            swagger_ui_parameters={"validatorUrl": None},
        )
