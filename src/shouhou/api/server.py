"""Serving the API over HTTP: uvicorn, which only this package imports (``shouhou serve``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    from fastapi import FastAPI


def run(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` on ``host:port`` until uvicorn stops (Ctrl-C or SIGTERM)."""
    uvicorn.run(app, host=host, port=port, log_level="info")
