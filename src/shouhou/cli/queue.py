"""``shouhou queue interventions``: the agents' work queue."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from shouhou.cli.options import DbOption, open_existing
from shouhou.cli.output import console

queue_app = typer.Typer(help="Agent work queues.", no_args_is_help=True)


@queue_app.command("interventions")
def queue_interventions(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Cases in platform intervention: awaiting a ruling first, then by stage deadline."""
    from shouhou.domain.values import format_yuan, local

    engine = open_existing(db)
    try:
        waiting = engine.intervention_queue()
    finally:
        engine.close()
    if as_json:
        for case in waiting:
            due = case.deadline.due_at.isoformat() if case.deadline else None
            stage = case.stage.value if case.stage else None
            print(
                json.dumps(
                    {
                        "case": case.id,
                        "stage": stage,
                        "due_at": due,
                        "shop": case.shop,
                        "buyer": case.buyer,
                        "reason": case.reason.value,
                    }
                )
            )
        return
    table = Table("case", "stage", "due (Beijing)", "shop", "buyer", "reason", "requested")
    for case in waiting:
        due = local(case.deadline.due_at).strftime("%m-%d %H:%M") if case.deadline else "now"
        table.add_row(
            case.id,
            case.stage.value if case.stage else "",
            due,
            case.shop,
            case.buyer,
            case.reason.value,
            format_yuan(case.requested_amount),
        )
    console.print(table)
    console.print(f"{len(waiting)} case(s) in intervention")
