"""The REST API (FastAPI): ``create_app(engine)``. Only this package and console/ import FastAPI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shouhou.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so ``shouhou keys`` and ``--help`` don't load FastAPI.
    if name == "create_app":
        from shouhou.api.app import create_app

        return create_app
    raise AttributeError(name)
