"""``shouhou case show|explain|replies`` and ``shouhou attach``: one case and its evidence."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from shouhou.cli.options import DbOption, LangOption, db_url, open_existing
from shouhou.cli.output import actor, console, current, fail, speak
from shouhou.cli.output import table as output_table
from shouhou.errors import ActionRefused
from shouhou.i18n import N_, Translator
from shouhou.times import show

case_app = typer.Typer(help="Look at one case.", no_args_is_help=True)


@case_app.command("replies")
def case_replies(
    case_id: str,
    lang: LangOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    db: DbOption = None,
) -> None:
    """Suggested replies for a case in its situation now, by service-log step."""
    from shouhou.hanzi import traditional
    from shouhou.policy.replies import pick

    t = speak(lang)
    _ = t.gettext
    engine = open_existing(db)
    try:
        case = engine.case(case_id)
        order = engine.order(case.order_id)
    except ActionRefused as exc:
        raise fail(exc.message) from None
    finally:
        engine.close()
    # The replies are written in zh-Hans and en; zh-Hant reads the zh-Hans text converted.
    replies = pick(case, order_status=order.status, lang="en" if t.lang == "en" else "zh-Hans")
    texts = [traditional(r.text) if t.lang == "zh-Hant" else r.text for r in replies]
    if as_json:
        for reply, text in zip(replies, texts, strict=True):
            print(
                json.dumps(
                    {
                        "situation": reply.situation,
                        "step": reply.step.value,
                        "lang": t.lang,
                        "text": text,
                        "source": reply.source,
                        "noted": reply.noted,
                    },
                    ensure_ascii=False,
                )
            )
        return
    head = _("case {case}").format(case=case.id)
    words = " · ".join([t.term(case.kind), t.term(case.reason)])
    order_line = _("order {status}").format(status=t.term(order.status))
    console.print(
        f"[bold]{head}[/bold]  {words} · [bold]{t.term(case.status)}[/bold] · {order_line}",
        highlight=False,
    )
    for reply, text in zip(replies, texts, strict=True):
        done = "  " + _("(already in the service log)") if reply.noted else ""
        console.print(
            f"\n[bold]{t.term(reply.step)}[/bold] · {reply.situation}{done}", highlight=False
        )
        console.print(text, markup=False, highlight=False)
    if not replies:
        console.print(_("no suggested reply for this situation"))


@case_app.command("show")
def case_show(
    case_id: str,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the case view as JSON.")] = False,
    lang: LangOption = None,
) -> None:
    """Print one case: status, deadline, timeline and explanation."""
    from shouhou.domain.values import format_yuan
    from shouhou.times import show

    t = speak(lang)
    _ = t.gettext
    engine = open_existing(db)
    try:
        view = engine.view(case_id, money=format_yuan)
    except ActionRefused as exc:
        raise fail(exc.message) from None
    finally:
        engine.close()
    if as_json:
        print(json.dumps(view, ensure_ascii=False, indent=2))
        return
    head = _("case {case}").format(case=view["id"])
    parties = _("order {order}  shop {shop}  buyer {buyer}").format(
        order=view["order"], shop=view["shop"], buyer=view["buyer"]
    )
    console.print(f"[bold]{head}[/bold]  {parties}", highlight=False)
    words = " · ".join(
        [
            t.term(view["kind"], "CaseKind"),
            t.term(view["reason"], "Reason"),
            t.term(view["phase"], "Phase"),
        ]
    )
    amounts = _("requested ¥{requested}  refunded ¥{refunded}").format(
        requested=view["requested_amount"], refunded=view["refund_amount"]
    )
    if view["platform_amount"] != format_yuan(0):
        reclaimed = _("(+ ¥{platform} platform subsidy reclaimed from the seller)")
        amounts += " " + reclaimed.format(platform=view["platform_amount"])
    status = t.term(view["status"], "CaseStatus")
    console.print(f"{words} · [bold]{status}[/bold]  {amounts}", highlight=False)
    for line in view["lines"]:
        units = line["quantity"] or _("the rest")
        told = _(
            "line {line} {sku} {title} × {units}: "
            "¥{buyer} to the buyer, ¥{platform} to the platform"
        )
        console.print(
            "  "
            + told.format(
                line=line["line"],
                sku=line["sku"],
                title=line["title"],
                units=units,
                buyer=line["refund_amount"],
                platform=line["platform_amount"],
            ),
            markup=False,
        )
    if view["deadline"]:
        d = view["deadline"]
        due = show(datetime.fromisoformat(d["due_at"]))
        console.print(
            _("deadline: {deadline}").format(deadline=_deadline(t, d, due)), highlight=False
        )
    table = output_table(
        "#", _("at (Beijing)"), _("actor"), _("event"), _("details"), title=_("timeline")
    )
    for ev in view["timeline"]:
        at = show(datetime.fromisoformat(ev["at"]))
        table.add_row(
            str(ev["seq"]), at, actor(t, ev["actor"]), t.term(ev["type"], "event"), _summary(t, ev)
        )
    console.print(table)
    explanation = view["explanation"]
    why = _("why")
    console.print(
        f"[bold]{why}[/bold]: {t.pick(explanation['zh'], explanation['en'])}", highlight=False
    )
    _print_rules(t, explanation["rules"])


@case_app.command("explain")
def case_explain(case_id: str, db: DbOption = None, lang: LangOption = None) -> None:
    """Print why a case stands where it does, with every rule behind it."""

    t = speak(lang)
    engine = open_existing(db)
    try:
        view = engine.view(case_id)
    except ActionRefused as exc:
        raise fail(exc.message) from None
    finally:
        engine.close()
    explanation = view["explanation"]
    console.print(t.pick(explanation["zh"], explanation["en"]), markup=False)
    _print_rules(t, explanation["rules"])


def _print_rules(t: Translator, rules: list[dict[str, str]]) -> None:
    """The rules an explanation rests on, one a line, in the language of ``t``."""
    for rule in rules:
        text = t.pick(rule["zh"], rule["en"])
        console.print(f"  • {rule['id']} ({rule['source']}): {text}", markup=False)


#: What a deadline does when it passes (its ``on_expiry``), for the timeline.
ON_EXPIRY = {
    "refund": N_("refund"),
    "agree": N_("agree"),
    "close": N_("close"),
    "complete": N_("complete"),
    "review": N_("review"),
    "mark_late": N_("mark_late"),
    "trade_success": N_("trade_success"),
}
#: The enum behind a timeline event's field, so that its value is shown as a word.
FIELD_TERMS = {
    "kind": "CaseKind",
    "reason": "Reason",
    "phase": "Phase",
    "stage": "Stage",
    "outcome": "RulingOutcome",
    "liable": "Liable",
    "closed_reason": "ClosedReason",
    "step": "NoteStep",
    "cause": "Cause",
    "condition": "ReceiptCondition",
}


def _deadline(t: Translator, d: dict[str, Any], due: str) -> str:
    """A deadline as the case view shows it: name, due time, what then, rule."""
    then = d["on_expiry"]
    return t.gettext("{name} due {due} → {then} ({rule})").format(
        name=d["name"], due=due, then=t.gettext(ON_EXPIRY.get(then, then)), rule=d["rule_id"]
    )


def _summary(t: Translator, ev: dict[str, Any]) -> str:
    """One short line for a timeline event."""
    if ev["type"] == "DeadlineSet":
        d = ev["deadline"]
        if d is None:
            return t.gettext("no deadline")
        due = show(datetime.fromisoformat(d["due_at"]))
        return _deadline(t, d, due)
    if ev["type"] == "StatusChanged":
        return f"{t.term(ev['source'], 'CaseStatus')} → {t.term(ev['target'], 'CaseStatus')}"
    if ev["type"] == "DeadlineFired":
        return f"{ev['name']} ({ev['rule_id']})"
    skip = {"seq", "type", "at", "actor", "case_id", "order_id", "shop", "buyer"}
    return ", ".join(
        f"{k}={_field(t, k, v)}" for k, v in ev.items() if k not in skip and v not in ("", None)
    )


def _field(t: Translator, key: str, value: Any) -> str:
    """A timeline field's value, a word of the domain translated."""
    context = FIELD_TERMS.get(key)
    return t.term(value, context) if context and isinstance(value, str) else str(value)


def attach(file: Path, db: DbOption = None) -> None:
    """Keep an evidence file (photo, PDF or MP4, ≤10 MiB); prints the name to submit it by."""
    from shouhou.bootstrap import Engine

    try:
        data = file.read_bytes()
    except OSError as exc:
        message = current().gettext("can't read {file}: {reason}")
        raise fail(message.format(file=file, reason=exc.strerror)) from None
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
