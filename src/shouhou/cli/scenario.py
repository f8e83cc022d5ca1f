"""``shouhou scenario run``: scenario files, the executable examples of the rules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shouhou.cli.options import db_url

scenario_app = typer.Typer(
    help="Scenario files: executable examples of the rules.", no_args_is_help=True
)


@scenario_app.command("run")
def scenario_run(
    files: list[Path],
    db: Annotated[str, typer.Option("--db", help="Database for the run.")] = "sqlite:///:memory:",
) -> None:
    """Run scenario files; print JSON lines; exit 0 (all hold), 1 (a failure), 2 (invalid file)."""
    from shouhou.sim.scenario import print_json, run_files

    raise typer.Exit(run_files(files, print_json, db_url(db)))
