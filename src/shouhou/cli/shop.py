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

from shouhou.cli.options import DbOption, open_existing
from shouhou.cli.output import console, fail
from shouhou.domain.values import SHANGHAI, format_yuan, local, parse_duration
from shouhou.services.report import REPORT_DAYS

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
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


def _window(text: str) -> timedelta:
    try:
        window = parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--window") from None
    if window <= timedelta(0):
        raise typer.BadParameter("the window must be longer than 0", param_hint="--window")
    return window


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.2f}h" for k, v in value.items()) or "—"
    return str(value)


#: The SPEC §9 metrics in the order a shop reads them, and what each means.
METRICS = {
    "dispute_rate": "refunds ruled against the seller ÷ paid orders (退款纠纷率)",
    "self_completion_rate": "refunds done without agent or timeout ÷ refunds (退款自主完结率)",
    "avg_completion_hours": "mean hours from application to refund, by kind (退款完结时长)",
    "within_72h_rate": "requests handled within 72h ÷ requests due",
    "refund_rate": "refunds ÷ paid orders",
    "penalty_points": "points of upheld complaints",
    "compensation_paid": "compensation paid to buyers (yuan)",
}


def _metrics_table(view: dict[str, Any]) -> Table:
    table = Table("metric", "value", "meaning")
    for name, meaning in METRICS.items():
        table.add_row(name, _figure(view[name]), meaning)
    return table


def _window_line(view: dict[str, Any]) -> str:
    since = local(datetime.fromisoformat(view["since"])).strftime("%Y-%m-%d %H:%M")
    until = local(datetime.fromisoformat(view["until"])).strftime("%Y-%m-%d %H:%M")
    return (
        f"{since} – {until} (Beijing): {view['paid_orders']} paid orders, "
        f"{view['refunds']} refunds, {view['disputes']} disputes"
    )


@shop_app.command("metrics")
def shop_metrics(
    shop: str,
    at: AtOption = None,
    window: WindowOption = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    db: DbOption = None,
) -> None:
    """A shop's SPEC §9 metrics over the rolling window ending at --at (rates are 0–1)."""
    from shouhou.services.views import shop_view

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
    console.print(f"[bold]shop {shop}[/bold]  {_window_line(view)}", highlight=False)
    console.print(_metrics_table(view))


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
) -> None:
    """Classified cases by product and cause, the cases awaiting a classification, the
    metrics, and a chart of the metrics a day at a time over the last --days days."""
    from shouhou.charts import file_stem, render_metrics
    from shouhou.services.report import report_view

    when, span = _moment(at), _window(window)
    engine = open_existing(db)
    try:
        report = engine.shop_report(shop, when, days=days, window=span)
    finally:
        engine.close()
    view = report_view(report, money=format_yuan)
    _print_report(view)
    try:
        charts = render_metrics(shop, report.series, span, out)
        data = out / f"{file_stem(shop, 'report')}.json"
        data.write_text(json.dumps(view, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise fail(f"can't write to {out}: {exc.strerror}") from None
    for path in [*charts, data]:
        console.print(f"wrote {path}", highlight=False, markup=False)


def _print_report(view: dict[str, Any]) -> None:
    since = local(datetime.fromisoformat(view["since"])).strftime("%Y-%m-%d %H:%M")
    at = local(datetime.fromisoformat(view["at"])).strftime("%Y-%m-%d %H:%M")
    console.print(
        f"[bold]shop {view['shop']}[/bold] after-sales report, cases ended {since} – {at}"
        " (Beijing)",
        highlight=False,
    )
    console.print(f"\n[bold]metrics[/bold]  {_window_line(view['metrics'])}", highlight=False)
    console.print(_metrics_table(view["metrics"]))
    causes = list(view["by_cause"])
    console.print(
        f"\n[bold]classified cases by product and cause[/bold] ({view['classified']})",
        highlight=False,
    )
    table = Table("sku", "title", "cases", *causes, "top categories")
    for line in view["by_product"]:
        counts = [str(line["causes"].get(cause, "")) for cause in causes]
        top = ", ".join(f"{name} {n}" for name, n in list(line["categories"].items())[:3])
        table.add_row(line["sku"], line["title"], str(line["cases"]), *counts, top)
    table.add_row("all", "", str(view["classified"]), *map(str, view["by_cause"].values()), "")
    console.print(table)
    waiting = view["unclassified"]
    console.print(
        f"\n[bold]ended cases waiting for a classification[/bold] ({len(waiting)})",
        highlight=False,
    )
    if waiting:
        table = Table("case", "order", "status", "reason", "ended (Beijing)", "sku", "title")
        for u in waiting:
            ended = u["ended_at"]
            shown = local(datetime.fromisoformat(ended)).strftime("%Y-%m-%d %H:%M") if ended else ""
            table.add_row(
                u["case"], u["order"], u["status"], u["reason"], shown, u["sku"], u["title"]
            )
        console.print(table)
