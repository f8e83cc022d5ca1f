"""``shouhou shop metrics|report``: the seller's workbench (SPEC §8–9).

Thin like the rest of the CLI: the services compute, this module prints and writes files.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shouhou.cli.options import DbOption, LangOption, open_existing
from shouhou.cli.output import console, fail, id_column, speak, table
from shouhou.domain.values import format_yuan, parse_duration
from shouhou.i18n import N_, Translator
from shouhou.services.report import REPORT_DAYS
from shouhou.settings import display_zone
from shouhou.times import show

shop_app = typer.Typer(help="A shop's metrics and after-sales report.", no_args_is_help=True)

#: The longest history a report draws, in days.
MAX_REPORT_DAYS = 730

AtOption = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="End of the window, ISO 8601 (no offset: Asia/Shanghai time). Default: now.",
    ),
]
WindowOption = Annotated[
    str, typer.Option("--window", help="Length of the rolling window (30d, 7d, 72h).")
]


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time (2023-03-31T10:00:00+08:00)", param_hint="--at"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=display_zone())


def _window(text: str) -> timedelta:
    try:
        window = parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--window") from None
    if window <= timedelta(0):
        raise typer.BadParameter("the window must be longer than 0", param_hint="--window")
    return window


def _figure(t: Translator, value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{t.term(k, 'CaseKind')} {v:.2f}h" for k, v in value.items()) or "—"
    return str(value)


#: The SPEC §9 metrics in the order a shop reads them, and what each means.
METRICS = {
    "dispute_rate": N_("refunds ruled against the seller ÷ paid orders (退款纠纷率)"),
    "self_completion_rate": N_("refunds done without agent or timeout ÷ refunds (退款自主完结率)"),
    "avg_completion_hours": N_("mean hours from application to refund, by kind (退款完结时长)"),
    "within_72h_rate": N_("requests handled within 72h ÷ requests due"),
    "refund_rate": N_("refunds ÷ paid orders"),
    "penalty_points": N_("points of upheld complaints"),
    "compensation_paid": N_("compensation paid to buyers (yuan)"),
}


def _metrics_table(t: Translator, view: dict[str, Any]) -> Table:
    _ = t.gettext
    shown = table(id_column(_("metric"), METRICS), _("value"), _("meaning"))
    for name, meaning in METRICS.items():
        shown.add_row(name, _figure(t, view[name]), _(meaning))
    return shown


def _window_line(t: Translator, view: dict[str, Any]) -> str:
    since = show(datetime.fromisoformat(view["since"]))
    until = show(datetime.fromisoformat(view["until"]))
    return t.gettext(
        "{since} – {until} (Beijing): {paid} paid orders, {refunds} refunds, {disputes} disputes"
    ).format(
        since=since,
        until=until,
        paid=view["paid_orders"],
        refunds=view["refunds"],
        disputes=view["disputes"],
    )


@shop_app.command("metrics")
def shop_metrics(
    shop: str,
    at: AtOption = None,
    window: WindowOption = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    db: DbOption = None,
    lang: LangOption = None,
) -> None:
    """A shop's SPEC §9 metrics over the rolling window ending at --at (rates are 0–1)."""
    from shouhou.services.views import shop_view

    t = speak(lang)
    when, span = _moment(at), _window(window)
    engine = open_existing(db)
    try:
        metrics = engine.shop_metrics(shop, when, span)
    finally:
        engine.close()
    view = shop_view(shop, metrics, money=format_yuan)
    if as_json:
        print(json.dumps(view, ensure_ascii=False, indent=2))
        return
    head = t.gettext("shop {shop}").format(shop=shop)
    console.print(f"[bold]{head}[/bold]  {_window_line(t, view)}", highlight=False)
    console.print(_metrics_table(t, view))


@shop_app.command("report")
def shop_report(
    shop: str,
    at: AtOption = None,
    days: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_REPORT_DAYS, help="Days covered: ended cases and the chart's points."
        ),
    ] = REPORT_DAYS,
    window: WindowOption = "30d",
    out: Annotated[
        Path, typer.Option(help="Folder for the chart (PNG, SVG) and the report's JSON.")
    ] = Path("var/reports"),
    db: DbOption = None,
    lang: LangOption = None,
) -> None:
    """Classified cases by product and cause, the cases awaiting a classification, the
    metrics, and a chart of the metrics a day at a time over the last --days days."""
    from shouhou.charts import file_stem, render_metrics
    from shouhou.services.report import report_view

    t = speak(lang)
    _ = t.gettext
    when, span = _moment(at), _window(window)
    engine = open_existing(db)
    try:
        report = engine.shop_report(shop, when, days=days, window=span)
    finally:
        engine.close()
    view = report_view(report, money=format_yuan)
    _print_report(t, view)
    try:
        charts = render_metrics(shop, report.series, span, out)
        data = out / f"{file_stem(shop, 'report')}.json"
        data.write_text(json.dumps(view, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise fail(
            _("can't write to {out}: {reason}").format(out=out, reason=exc.strerror)
        ) from None
    for path in [*charts, data]:
        console.print(_("wrote {path}").format(path=path), highlight=False, markup=False)


def _print_report(t: Translator, view: dict[str, Any]) -> None:
    _ = t.gettext
    since = show(datetime.fromisoformat(view["since"]))
    at = show(datetime.fromisoformat(view["at"]))
    head = _("shop {shop} after-sales report").format(shop=view["shop"])
    span = _("cases ended {since} – {at} (Beijing)").format(since=since, at=at)
    console.print(f"[bold]{head}[/bold], {span}", highlight=False)
    window = _window_line(t, view["metrics"])
    heading = _("metrics")
    console.print(f"\n[bold]{heading}[/bold]  {window}", highlight=False)
    console.print(_metrics_table(t, view["metrics"]))
    causes = list(view["by_cause"])
    heading = _("classified cases by product and cause")
    console.print(f"\n[bold]{heading}[/bold] ({view['classified']})", highlight=False)
    cause_names = [t.term(cause, "Cause") for cause in causes]
    skus = [line["sku"] for line in view["by_product"]]
    shown = table(
        id_column(_("sku"), skus), _("title"), _("cases"), *cause_names, _("top categories")
    )
    for line in view["by_product"]:
        counts = [str(line["causes"].get(cause, "")) for cause in causes]
        top = ", ".join(f"{name} {n}" for name, n in list(line["categories"].items())[:3])
        shown.add_row(line["sku"], line["title"], str(line["cases"]), *counts, top)
    every = [str(n) for n in view["by_cause"].values()]
    shown.add_row(_("all"), "", str(view["classified"]), *every, "")
    console.print(shown)
    waiting = view["unclassified"]
    heading = _("ended cases waiting for a classification")
    console.print(f"\n[bold]{heading}[/bold] ({len(waiting)})", highlight=False)
    if waiting:
        shown = table(
            id_column(_("case"), [u["case"] for u in waiting]),
            id_column(_("order"), [u["order"] for u in waiting]),
            _("status"),
            _("reason"),
            _("ended (Beijing)"),
            _("sku"),
            _("title"),
        )
        for u in waiting:
            ended = u["ended_at"]
            shown_at = show(datetime.fromisoformat(ended)) if ended else ""
            shown.add_row(
                u["case"],
                u["order"],
                t.term(u["status"], "CaseStatus"),
                t.term(u["reason"], "Reason"),
                shown_at,
                u["sku"],
                u["title"],
            )
        console.print(shown)
