"""What the commands take alike: ``--db`` (and opening the database it names),
``--lang``, ``--keep-days`` and ``--log-format``."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shouhou.cli.output import current, fail
from shouhou.errors import Invalid, NoDatabase
from shouhou.i18n import N_, parse_lang
from shouhou.settings import Settings

if TYPE_CHECKING:
    from shouhou.bootstrap import Engine
    from shouhou.policy.loader import Registry
    from shouhou.services.ports import ApiUnitOfWork
    from shouhou.worker import WorkerSettings

#: What a command that reads says of a database that is not there (it creates none).
NO_DATABASE = N_(
    "no database at {where}; create one with `shouhou db upgrade --db {where}` "
    "or `shouhou demo --db {where}`"
)
NO_SERVER_DATABASE = N_(
    "no database at {where}; create it on the server, then `shouhou db upgrade`"
)
NO_SCHEMA = N_("{where} has no shouhou schema; create it with `shouhou db upgrade`")
#: What a long-running command says of an unknown ``$SHOUHOU_TIMEZONE`` before it refuses.
NOT_A_ZONE = N_("{variable}={name} is not a time zone: name one like Asia/Shanghai")
#: What a ``--policy`` pack file that cannot be read is said to be (a policy error, exit 2).
CANT_READ = N_("{path}: can't read: {why}")

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


def existing(db: str | None) -> tuple[str, str | None]:
    """The URL ``--db`` names and the schema revision found there; exit 1 saying what is
    missing when there is no database or no shouhou schema, having created nothing (no file,
    no folder, no table)."""
    from shouhou.db import engine as db_engine

    _ = current().gettext
    url = db_url(db)
    try:
        found = db_engine.look(url)
    except NoDatabase as exc:
        raise fail(str(exc)) from None
    if not found.exists:
        missing = NO_DATABASE if found.file else NO_SERVER_DATABASE
        raise fail(_(missing).format(where=found.where))
    if found.revision is None:
        raise fail(_(NO_SCHEMA).format(where=found.where))
    return url, found.revision


def open_existing(db: str | None) -> Engine[ApiUnitOfWork]:
    """An engine on the database ``--db`` names, which must hold shouhou's schema already;
    else exit 1 saying so, having created nothing (no file, no folder, no table)."""
    from shouhou.bootstrap import Engine

    url, _revision = existing(db)
    return Engine.open(url)


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
    import os

    from shouhou.settings import TIMEZONE_VARIABLE, display_zone

    try:
        display_zone()
    except ValueError:
        name = os.environ.get(TIMEZONE_VARIABLE, "")
        said = current().gettext(NOT_A_ZONE).format(variable=TIMEZONE_VARIABLE, name=repr(name))
        raise fail(said) from None


def keep(settings: WorkerSettings, days: int) -> WorkerSettings:
    """``settings`` with the retention of ``--keep-days``."""
    kept = timedelta(days=days)
    return replace(settings, deadline_retention=kept, event_retention=kept)


PolicyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--policy",
        help="A rulebook pack to run on: a known pack's name (taobao) or a pack file; repeat "
        "it for holiday packs. The packs in $SHOUHOU_POLICY_DIR are known too.",
    ),
]


def rulebooks(policy: list[str] | None) -> tuple[Registry, list[str] | None]:
    """The packs known (bundled, ``$SHOUHOU_POLICY_DIR``'s, and the files ``--policy`` names),
    all validated, and the selection ``--policy`` makes (None: the default one). A pack that
    fails raises PolicyError naming its file and line: the command exits 2."""
    from shouhou.policy.loader import Registry, pack_files, read_yaml

    folder = Settings.from_env().policy_dir
    files = pack_files(Path(folder)) if folder else []
    names: list[str] = []
    for value in policy or []:
        path = Path(value)
        if path.suffix in (".yaml", ".yml") or path.is_file():
            files.append(path)
            names.append(str(read_yaml(_text(path), str(path)).get("name", "")))
        else:
            names.append(value)
    registry = Registry.default(extra=files)
    return registry, (registry.selection(names) if names else None)


def _text(path: Path) -> str:
    from shouhou.errors import PolicyError

    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        said = current().gettext(CANT_READ).format(path=path, why=exc.strerror)
        raise PolicyError(said) from None
