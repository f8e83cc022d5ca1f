"""What every command line (``shouhou``, ``shouhou shop``, ``shouhou keys``) takes alike."""

from __future__ import annotations

from typing import Annotated

import typer

from shouhou.settings import Settings

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL or SQLite file (default: $SHOUHOU_DATABASE_URL)."),
]


def db_url(db: str | None) -> str:
    """The database URL of a ``--db`` value: a URL as given, a path as a SQLite file, and
    ``$SHOUHOU_DATABASE_URL`` (or its default) when there is none."""
    if db is None:
        return Settings.from_env().database_url
    return db if "://" in db else f"sqlite:///{db}"
