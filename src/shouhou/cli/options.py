"""What the commands take alike: ``--db``, ``--keep-days`` and ``--log-format``."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

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


KeepDaysOption = Annotated[
    int,
    typer.Option(
        "--keep-days",
        min=1,
        help="Days to keep fired or cancelled deadline rows (past their due time) and "
        "delivered webhook events (past their fan-out); their history stays in the timelines.",
    ),
]


LogFormatOption = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        help="Logs on stderr as text or json (one object a line): default $SHOUHOU_LOG_FORMAT, "
        "else text.",
    ),
]


def log_format(option: str | None) -> str:
    """``text`` or ``json``, from ``--log-format`` or ``$SHOUHOU_LOG_FORMAT``; refused clearly."""
    from shouhou.observability import log_format as chosen

    try:
        return chosen(option)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--log-format") from None


def check_timezone() -> None:
    """Refuse to start a long-running process on an unknown ``$SHOUHOU_TIMEZONE`` (else every
    answer would fail on it)."""
    from shouhou.cli.output import fail
    from shouhou.settings import display_zone

    try:
        display_zone()
    except ValueError as exc:
        raise fail(str(exc)) from None


def keep(settings: WorkerSettings, days: int) -> WorkerSettings:
    """``settings`` with the retention of ``--keep-days``."""
    kept = timedelta(days=days)
    return replace(settings, deadline_retention=kept, event_retention=kept)
