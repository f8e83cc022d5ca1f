"""``shouhou queue interventions``: the agents' work queue."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from shouhou.cli.options import DbOption, LangOption, open_existing
from shouhou.cli.output import console, id_column, speak, table

queue_app = typer.Typer(help="Agent work queues.", no_args_is_help=True)


@queue_app.command("interventions")
def queue_interventions(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    lang: LangOption = None,
) -> None:
    """Cases in platform intervention: awaiting a ruling first, then by stage deadline."""
    from shouhou.domain.values import format_yuan
    from shouhou.times import show

    t = speak(lang)
    _ = t.gettext
    engine = open_existing(db)
    try:
        waiting = engine.intervention_queue()
    finally:
        engine.close()
    if as_json:
        for case in waiting:
            due = show(case.deadline.due_at) if case.deadline else None
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
    shown = table(
        id_column(_("case"), [case.id for case in waiting]),
        _("stage"),
        _("due (Beijing)"),
        _("shop"),
        _("buyer"),
        _("reason"),
        _("requested"),
        title=_("cases in platform intervention"),
    )
    for case in waiting:
        due = show(case.deadline.due_at) if case.deadline else _("now")
        shown.add_row(
            case.id,
            t.term(case.stage) if case.stage else "",
            due,
            case.shop,
            case.buyer,
            t.term(case.reason),
            format_yuan(case.requested_amount),
        )
    console.print(shown)
    count = len(waiting)
    console.print(
        t.ngettext("{n} case in intervention", "{n} cases in intervention", count).format(n=count)
    )
