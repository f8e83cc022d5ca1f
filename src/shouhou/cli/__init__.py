"""The ``shouhou`` command line (Typer). Thin: every rule lives in the engine.

One module per command group (``case``, ``queue``, ``policy``, ``scenario``, ``db``, ``shop``,
``keys``) or long-running command (``serve``, ``worker``, ``relay``, ``demo``); what they take
alike is in ``options`` (``--db``, ``--lang``, …), where and in which language they print in
``output``.
This module only assembles the root app.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from shouhou.cli import (
    case,
    db,
    demo,
    keys,
    policy,
    queue,
    relay,
    scenario,
    serve,
    shop,
    simulate,
    worker,
)
from shouhou.cli.options import LangOption
from shouhou.cli.output import choose, current, err
from shouhou.errors import PolicyError

app = typer.Typer(help="shouhou (售后): the after-sales engine.", no_args_is_help=True)


@app.callback()
def root(lang: LangOption = None) -> None:
    """shouhou (售后): the after-sales engine."""
    choose(lang)


app.add_typer(queue.queue_app, name="queue")
app.add_typer(policy.policy_app, name="policy")
app.add_typer(scenario.scenario_app, name="scenario")
app.add_typer(case.case_app, name="case")
app.add_typer(db.db_app, name="db")
app.add_typer(shop.shop_app, name="shop")
app.add_typer(keys.keys_app, name="keys")
app.command()(serve.serve)
app.command()(case.attach)
app.command()(worker.worker)
app.command(**relay.COMMAND)(relay.relay)
app.command()(demo.demo)
app.command()(simulate.simulate)


def main() -> None:
    """Run the command line; a broken rulebook pack exits 2 with a ``policy error`` line."""
    try:
        app()
    except PolicyError as exc:
        label = current().gettext("policy error:")
        err.print(f"[red]{label}[/red] {escape(str(exc))}", highlight=False)
        sys.exit(2)
