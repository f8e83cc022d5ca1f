"""``shouhou demo``: a demo marketplace and a week of cases on the virtual clock."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from shouhou.cli.options import LangOption, db_url
from shouhou.cli.output import console, fail, speak
from shouhou.errors import NoDatabase
from shouhou.i18n import N_

#: The demo's database when neither --db nor $SHOUHOU_DATABASE_URL names one.
DEMO_DB = "var/demo.db"

#: What ``demo`` says before it refuses.
HOLDS_DATA = N_("{where} holds data already; pass --fresh to start over")
NO_SERVER_DATABASE = N_("no database at {where}; create it on the server first")


def demo(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help=f"Database URL or SQLite file (default: $SHOUHOU_DATABASE_URL, else {DEMO_DB}).",
        ),
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            help="Start over: remove shouhou's tables (and only those) from the database first; "
            "a database holding other tables is refused."
        ),
    ] = False,
    days: Annotated[int, typer.Option(min=1, max=60, help="Days of new orders.")] = 7,
    settle_days: Annotated[
        int, typer.Option(min=0, max=90, help="Days the cases then run on without new orders.")
    ] = 21,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same week).")] = 7,
    orders_per_day: Annotated[int, typer.Option(min=1, max=2000, help="New orders a day.")] = 120,
    lang: LangOption = None,
) -> None:
    """Create a demo marketplace and run a realistic week of cases on the virtual clock."""
    from shouhou.db import engine as db_engine
    from shouhou.sim.demo import run_demo

    t = speak(lang)
    _ = t.gettext
    url = db_url(db) if db is not None or "SHOUHOU_DATABASE_URL" in os.environ else db_url(DEMO_DB)
    try:
        found = db_engine.look(url)
        if not found.exists and not found.file:
            raise fail(_(NO_SERVER_DATABASE).format(where=found.where))
        if found.exists and not found.empty:
            if not fresh:
                raise fail(_(HOLDS_DATA).format(where=found.where))
            db_engine.clear(url)
    except NoDatabase as exc:
        raise fail(str(exc)) from None
    run_demo(
        url,
        days=days,
        settle_days=settle_days,
        seed=seed,
        orders_per_day=orders_per_day,
        console=console,
        t=t,
    )
