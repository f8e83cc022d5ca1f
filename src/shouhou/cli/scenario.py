"""``shouhou scenario run``: scenario files, the executable examples of the rules."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from shouhou.cli.options import LangOption, db_url
from shouhou.cli.output import speak
from shouhou.i18n import N_

#: The tally ``scenario run`` ends with, and the count of files it could not run.
TALLY = N_("{passed} passed, {failed} failed")
INVALID = N_("{invalid} invalid file(s)")

scenario_app = typer.Typer(
    help="Scenario files: executable examples of the rules.", no_args_is_help=True
)


@scenario_app.command("run")
def scenario_run(
    files: list[Path],
    db: Annotated[str, typer.Option("--db", help="Database for the run.")] = "sqlite:///:memory:",
    lang: LangOption = None,
) -> None:
    """Run scenario files; print JSON lines, then ``N passed, M failed`` on stderr; exit 0 (all
    hold), 1 (a failure), 2 (invalid file)."""
    from shouhou.sim.scenario import print_json, run_files

    _ = speak(lang).gettext
    counts = {"passed": 0, "failed": 0, "invalid": 0}

    def emit(record: dict[str, Any]) -> None:
        if record["event"] == "result":
            counts["passed" if record["ok"] else "failed"] += 1
        elif record["event"] == "invalid":
            counts["invalid"] += 1
        print_json(record)

    code = run_files(files, emit, db_url(db))
    # On stderr: stdout stays JSON lines (SPEC §11), one object per line, for programs to read.
    print(_(TALLY).format(**counts), file=sys.stderr, flush=True)
    if counts["invalid"]:
        print(_(INVALID).format(**counts), file=sys.stderr, flush=True)
    raise typer.Exit(code)
