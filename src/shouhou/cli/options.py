"""What the commands take alike: ``--db``, ``--lang`` and ``--keep-days``."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from shouhou.errors import Invalid
from shouhou.i18n import parse_lang
from shouhou.settings import Settings

if TYPE_CHECKING:
    from shouhou.worker import WorkerSettings

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


def _lang(value: str | None) -> str | None:
    """A ``--lang`` value as its language tag; an unknown one is a usage error (exit 2)."""
    if value is None:
        return None
    try:
        return parse_lang(value)
    except Invalid as exc:
        raise typer.BadParameter(exc.message) from None


LangOption = Annotated[
    str | None,
    typer.Option(
        "--lang",
        callback=_lang,
        help="Language of the output: en, zh-Hans (or zh), zh-Hant "
        "(default: $SHOUHOU_LANG, else the locale, else en).",
    ),
]


KeepDaysOption = Annotated[
    int,
    typer.Option(
        "--keep-days",
        min=1,
        help="Days to keep fired or cancelled deadline rows (past their due time) and "
        "delivered webhook events (past their fan-out); their history stays in the timelines.",
    ),
]


def keep(settings: WorkerSettings, days: int) -> WorkerSettings:
    """``settings`` with the retention of ``--keep-days``."""
    kept = timedelta(days=days)
    return replace(settings, deadline_retention=kept, event_retention=kept)
