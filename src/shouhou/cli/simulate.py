"""``shouhou simulate``: run a workload through the engine under several rulebooks, compare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shouhou.cli.options import DbOption, LangOption, db_url
from shouhou.cli.output import console, err, fail, speak
from shouhou.errors import ScenarioError


def simulate(
    workload: Annotated[Path, typer.Argument(help="A workload file (examples/workloads/).")],
    policy: Annotated[
        list[str],
        typer.Option(
            "--policy",
            help="A rulebook to run, as for `policy diff` (tmall-standard, cny-2022, "
            "taobao+cny-2022, a pack file); repeat to compare.",
        ),
    ],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Write charts (PNG, SVG) and report.html here.")
    ] = None,
    lang: LangOption = None,
) -> None:
    """Run WORKLOAD's marketplace through the engine under each --policy, on the virtual
    clock until every case has ended, and print the policies side by side."""
    from shouhou.clock import VirtualClock
    from shouhou.policy.selection import registry_for, select
    from shouhou.sim import lab, lab_report
    from shouhou.sim.workload import load_file

    t = speak(lang)
    _ = t.gettext
    if db is not None and len(policy) > 1:
        raise fail(_("--db keeps one policy's run: give one --policy per database"), 2)
    try:
        spec = load_file(workload)
    except ScenarioError as exc:
        raise fail(str(exc), 2) from None
    registry = registry_for(policy)
    selections = [select(registry, p) for p in policy]
    plan = lab.plan(spec)
    figures: list[dict[str, Any]] = []
    progress = Progress(
        TextColumn("[bold]{task.description}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(_("cases ended")),
        TimeElapsedColumn(),
        console=err,
        transient=as_json,
    )
    with progress:
        for chosen in selections:
            task = progress.add_task(chosen.label, total=len(plan.cases))

            def advance(done: int, total: int, task: Any = task) -> None:
                if done % 200 == 0 or done == total:
                    progress.update(task, completed=done)

            clock = VirtualClock(spec.start)
            if db is None:
                run = lab.simulate(plan, chosen, clock=clock, on_progress=advance)
            else:
                from shouhou.bootstrap import Engine

                engine = Engine.open(
                    db_url(db), clock=clock, registry=chosen.registry(), policies=chosen.names
                )
                try:
                    run = lab.simulate(
                        plan, chosen, engine=engine, clock=clock, on_progress=advance
                    )
                    figures.append(lab.results(plan, run))
                finally:
                    engine.close()
                progress.update(task, completed=len(plan.cases))
                continue
            figures.append(lab.results(plan, run))
            progress.update(task, completed=len(plan.cases))
    if out is not None:
        written = lab_report.write(figures, out, f"{spec.name}: {' vs '.join(policy)}")
        said = t.ngettext("wrote {n} file to {out}", "wrote {n} files to {out}", len(written))
        err.print(said.format(n=len(written), out=out), highlight=False, markup=False)
    if as_json:
        plain = [{k: v for k, v in f.items() if k != "resolution_hours_all"} for f in figures]
        typer.echo(
            json.dumps({"workload": spec.name, "policies": plain}, ensure_ascii=False, indent=2)
        )
        return
    table = Table(title=_("{workload} (seed {seed})").format(workload=spec.name, seed=spec.seed))
    table.add_column("")
    for f in figures:
        table.add_column(f["policy"], justify="right")
    for name, values in lab_report.table_rows(figures, t):
        table.add_row(name, *values)
    console.print(table)
