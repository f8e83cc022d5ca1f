"""``shouhou case show|explain|replies`` and ``shouhou attach``: one case and its evidence."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shouhou.cli.options import DbOption, db_url
from shouhou.cli.output import console, fail
from shouhou.errors import ActionRefused

case_app = typer.Typer(help="Look at one case.", no_args_is_help=True)


@case_app.command("replies")
def case_replies(
    case_id: str,
    lang: Annotated[str, typer.Option(help="zh (zh-Hans) or en.")] = "zh",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    db: DbOption = None,
) -> None:
    """Suggested replies for a case in its situation now, by service-log step."""
    from shouhou.bootstrap import Engine
    from shouhou.policy.replies import language, pick

    try:
        chosen = language(lang)
    except ActionRefused as exc:
        raise typer.BadParameter(exc.message, param_hint="--lang") from None
    engine = Engine.open(db_url(db))
    try:
        case = engine.case(case_id)
        order = engine.order(case.order_id)
    except ActionRefused as exc:
        raise fail(exc.message) from None
    finally:
        engine.close()
    replies = pick(case, order_status=order.status, lang=chosen)
    if as_json:
        for reply in replies:
            print(
                json.dumps(
                    {
                        "situation": reply.situation,
                        "step": reply.step.value,
                        "lang": reply.lang,
                        "text": reply.text,
                        "source": reply.source,
                        "noted": reply.noted,
                    },
                    ensure_ascii=False,
                )
            )
        return
    console.print(
        f"[bold]case {case.id}[/bold]  {case.kind.value} · {case.reason.value} · "
        f"[bold]{case.status.value}[/bold] · order {order.status.value}",
        highlight=False,
    )
    for reply in replies:
        done = "  (already in the service log)" if reply.noted else ""
        console.print(
            f"\n[bold]{reply.step.value}[/bold] · {reply.situation}{done}", highlight=False
        )
        console.print(reply.text, markup=False, highlight=False)
    if not replies:
        console.print("no suggested reply for this situation")


@case_app.command("show")
def case_show(
    case_id: str,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the case view as JSON.")] = False,
    lang: Annotated[str, typer.Option(help="Explanation language: zh or en.")] = "en",
) -> None:
    """Print one case: status, deadline, timeline and explanation."""
    from shouhou.bootstrap import Engine
    from shouhou.domain.values import format_yuan, local

    engine = Engine.open(db_url(db))
    try:
        view = engine.view(case_id, money=format_yuan)
    except ActionRefused as exc:
        raise fail(exc.message) from None
    finally:
        engine.close()
    if as_json:
        print(json.dumps(view, ensure_ascii=False, indent=2))
        return
    console.print(
        f"[bold]case {view['id']}[/bold]  order {view['order']}  shop {view['shop']}  "
        f"buyer {view['buyer']}"
    )
    console.print(
        f"{view['kind']} · {view['reason']} · {view['phase']} · [bold]{view['status']}[/bold]"
        f"  requested ¥{view['requested_amount']}  refunded ¥{view['refund_amount']}"
        f" (+ ¥{view['platform_amount']} platform subsidy reclaimed from the seller)"
    )
    for line in view["lines"]:
        units = line["quantity"] or "the rest"
        console.print(
            f"  line {line['line']} {line['sku']} {line['title']} × {units}:"
            f" ¥{line['refund_amount']} to the buyer, ¥{line['platform_amount']} to the platform",
            markup=False,
        )
    if view["deadline"]:
        d = view["deadline"]
        due = local(datetime.fromisoformat(d["due_at"])).strftime("%Y-%m-%d %H:%M")
        console.print(f"deadline {d['name']} due {due} → {d['on_expiry']} ({d['rule_id']})")
    table = Table("#", "at (Beijing)", "actor", "event", "details")
    for ev in view["timeline"]:
        at = local(datetime.fromisoformat(ev["at"])).strftime("%m-%d %H:%M")
        table.add_row(str(ev["seq"]), at, ev["actor"], ev["type"], _summary(ev))
    console.print(table)
    console.print(f"[bold]why[/bold]: {view['explanation'][lang]}")
    for rule in view["explanation"]["rules"]:
        console.print(f"  • {rule['id']} ({rule['source']}): {rule[lang]}", markup=False)


@case_app.command("explain")
def case_explain(
    case_id: str,
    db: DbOption = None,
    lang: Annotated[str, typer.Option(help="zh or en.")] = "zh",
) -> None:
    """Print why a case stands where it does, with every rule behind it."""
    from shouhou.bootstrap import Engine

    engine = Engine.open(db_url(db))
    try:
        view = engine.view(case_id)
    except ActionRefused as exc:
        raise fail(exc.message) from None
    finally:
        engine.close()
    console.print(view["explanation"][lang], markup=False)
    for rule in view["explanation"]["rules"]:
        console.print(f"  • {rule['id']} ({rule['source']}): {rule[lang]}", markup=False)


def _summary(ev: dict[str, Any]) -> str:
    """One short line for a timeline event."""
    from shouhou.domain.values import local

    if ev["type"] == "DeadlineSet":
        d = ev["deadline"]
        if d is None:
            return "no deadline"
        due = local(datetime.fromisoformat(d["due_at"])).strftime("%m-%d %H:%M")
        return f"{d['name']} due {due} → {d['on_expiry']} ({d['rule_id']})"
    if ev["type"] == "StatusChanged":
        return f"{ev['source']} → {ev['target']}"
    if ev["type"] == "DeadlineFired":
        return f"{ev['name']} ({ev['rule_id']})"
    skip = {"seq", "type", "at", "actor", "case_id", "order_id", "shop", "buyer"}
    return ", ".join(f"{k}={v}" for k, v in ev.items() if k not in skip and v not in ("", None))


def attach(file: Path, db: DbOption = None) -> None:
    """Keep an evidence file (photo, PDF or MP4, ≤10 MiB); prints the name to submit it by."""
    from shouhou.bootstrap import Engine

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise fail(f"can't read {file}: {exc.strerror}") from None
    engine = Engine.open(db_url(db))
    try:
        stored = engine.attach(data, file.name)
    except ActionRefused as exc:
        raise fail(exc.message) from None
    finally:
        engine.close()
    print(
        json.dumps({"sha256": stored.sha256, "media_type": stored.media_type, "size": stored.size})
    )
