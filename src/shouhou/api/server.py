"""Serving the API over HTTP: uvicorn, which only this package imports (``shouhou serve``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    from fastapi import FastAPI


def run(app: FastAPI, host: str, port: int, *, log_format: str = "text") -> None:
    """Serve ``app`` on ``host:port`` until uvicorn stops (Ctrl-C or SIGTERM); with
    ``log_format="json"`` uvicorn's logs go through the process's JSON handler and the API
    logs its own access lines (with the route template and duration) instead of uvicorn's."""
    if log_format == "json":
        uvicorn.run(app, host=host, port=port, log_level="info", log_config=None, access_log=False)
    else:
        uvicorn.run(app, host=host, port=port, log_level="info")
