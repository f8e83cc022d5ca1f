"""Charts of a shop's metrics over time (SPEC §9), drawn with matplotlib's Agg backend.

An adapter like the CLI: it draws what the services computed and writes files, nothing else.
The figure is built without pyplot, so no GUI backend or global figure state is involved.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from shouhou.domain.metrics import Metrics
from shouhou.domain.values import SHANGHAI, format_duration, local

#: The rates of SPEC §9, drawn as percentages, with their labels.
RATES = {
    "dispute_rate": "dispute rate",
    "self_completion_rate": "self-completion rate",
    "within_72h_rate": "handled within 72h",
    "refund_rate": "refund rate",
}
#: What each rate is a share of: a point whose whole is 0 is left out (a gap, not 0%).
WHOLES = {
    "dispute_rate": "paid_orders",
    "self_completion_rate": "refunds",
    "refund_rate": "paid_orders",
}
FIGURE_INCHES = (10.0, 9.0)
DPI = 110
FORMATS = ("png", "svg")


def file_stem(shop: str, what: str) -> str:
    """A file-name-safe stem for ``shop``'s ``what`` (other characters become ``_``)."""
    return f"shop-{re.sub(r'[^A-Za-z0-9._-]', '_', shop).strip('.') or '_'}-{what}"


def _rate(points: Sequence[Metrics], name: str) -> list[float]:
    whole = WHOLES.get(name)
    return [
        math.nan if whole is not None and getattr(p, whole) == 0 else float(getattr(p, name))
        for p in points
    ]


def _hours(points: Sequence[Metrics]) -> dict[str, list[float]]:
    kinds = sorted({k for p in points for k in p.avg_completion_hours})
    return {k: [p.avg_completion_hours.get(k, math.nan) for p in points] for k in kinds}


def metrics_figure(shop: str, points: Sequence[Metrics], window: timedelta) -> Figure:
    """Three panels: the rates, the mean hours to complete a refund by kind, and penalty
    points with compensation paid; one point a day, each its rolling window's value."""
    if not points:
        raise ValueError("a chart needs at least one point")
    days = [local(p.until) for p in points]
    fig = Figure(figsize=FIGURE_INCHES, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    rates, hours, money = fig.subplots(3, 1, sharex=True)
    first, last = days[0].strftime("%Y-%m-%d"), days[-1].strftime("%Y-%m-%d")
    fig.suptitle(
        f"shop {shop}: metrics over rolling {format_duration(window)} windows, {first} to {last}"
        " (Asia/Shanghai)"
    )
    for name, label in RATES.items():
        rates.plot(days, _rate(points, name), label=label, linewidth=1.6)
    rates.set_ylim(-0.03, 1.03)
    rates.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    rates.set_ylabel("rate")
    rates.legend(loc="upper left", ncols=2, fontsize="small")
    by_kind = _hours(points)
    for kind, values in by_kind.items():
        hours.plot(days, values, marker=".", label=kind.replace("_", " "), linewidth=1.4)
    hours.set_ylabel("mean hours to complete")
    hours.set_ylim(bottom=0)
    if by_kind:
        hours.legend(loc="upper left", fontsize="small")
    else:
        hours.text(0.5, 0.5, "no refund completed", ha="center", transform=hours.transAxes)
    penalty = [p.penalty_points for p in points]
    paid = [p.compensation_paid / 100 for p in points]
    money.plot(days, penalty, color="tab:red", label="penalty points")
    money.set_ylabel("penalty points", color="tab:red")
    money.set_ylim(bottom=0, top=max(max(penalty), 1) * 1.15)
    money.yaxis.set_major_locator(MaxNLocator(integer=True))
    paid_axis = money.twinx()
    paid_axis.plot(days, paid, color="tab:purple", label="compensation paid (yuan)")
    paid_axis.set_ylabel("compensation paid (yuan)", color="tab:purple")
    paid_axis.set_ylim(bottom=0, top=max(max(paid), 1.0) * 1.15)
    money.legend(
        [*money.get_lines(), *paid_axis.get_lines()],
        ["penalty points", "compensation paid (yuan)"],
        loc="upper left",
        fontsize="small",
    )
    # matplotlib.dates is not annotated
    money.xaxis.set_major_locator(AutoDateLocator(tz=SHANGHAI))  # type: ignore[no-untyped-call]
    money.xaxis.set_major_formatter(DateFormatter("%m-%d", tz=SHANGHAI))  # type: ignore[no-untyped-call]
    for axis in (rates, hours, money):
        axis.grid(True, alpha=0.3)
    return fig


def render_metrics(
    shop: str, points: Sequence[Metrics], window: timedelta, out: Path
) -> list[Path]:
    """Write ``shop``'s metrics chart to ``out`` as PNG and SVG; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    fig = metrics_figure(shop, points, window)
    written = []
    for fmt in FORMATS:
        path = out / f"{file_stem(shop, 'metrics')}.{fmt}"
        # no creation date in the files: the same report draws the same bytes
        metadata = {"Date": None} if fmt == "svg" else {"Software": "shouhou"}
        fig.savefig(path, format=fmt, metadata=metadata)
        written.append(path)
    return written
