"""The policy lab's charts and HTML report, drawn from :func:`shouhou.sim.lab.results`.

Three charts, each with one line per policy: cases reaching agents per day, the CDF of
resolution times, refunds made by a timeout per day. Each is written as PNG and SVG with
matplotlib's Agg backend (no GUI, no pyplot state); the HTML report inlines the SVGs, so it is
one self-contained file.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from shouhou.i18n import FALLBACK, Translator, translator

FIGURE_INCHES = (9.0, 4.2)
DPI = 100
CHARTS = {
    "agent-load": "Cases reaching agents per day",
    "resolution-cdf": "Resolution time, all cases (CDF)",
    "timeout-refunds": "Refunds made by a timeout, per day",
}


def _every_day(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


#: At most this many dates are written under a chart's axis.
MAX_DAY_LABELS = 12


def _figure(name: str, figures: Sequence[dict[str, Any]]) -> Figure:
    fig = Figure(figsize=FIGURE_INCHES, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.set_title(CHARTS[name])
    key = "per_day" if name == "agent-load" else ""
    seen = sorted(
        {
            d
            for f in figures
            for d in (f["agents"]["per_day"] if key else f["refunds_by_timeout_per_day"])
        }
    )
    days = _every_day(seen[0], seen[-1]) if seen else []
    for one in figures:
        label = one["policy"]
        if name == "resolution-cdf":
            values = [v / 24 for v in one["resolution_hours_all"]]
            n = len(values)
            ax.step(values, [(i + 1) / n for i in range(n)], where="post", label=label)
            ax.set_xlabel("days from application to the end of the case")
            ax.set_ylabel("share of cases ended")
        else:
            series = (
                one["agents"]["per_day"]
                if name == "agent-load"
                else one["refunds_by_timeout_per_day"]
            )
            # every day of the run on the axis, a day without any as 0
            ax.plot(range(len(days)), [series.get(d, 0) for d in days], marker=".", label=label)
            ax.set_ylabel("cases" if name == "agent-load" else "refunds")
            step = max(1, len(days) // MAX_DAY_LABELS)
            ax.set_xticks(range(0, len(days), step), days[::step], rotation=30, fontsize="small")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def write(figures: Sequence[dict[str, Any]], out: Path, title: str) -> list[Path]:
    """Write the charts (PNG and SVG) and ``report.html`` to ``out``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    svgs: dict[str, str] = {}
    for name in CHARTS:
        fig = _figure(name, figures)
        for fmt in ("png", "svg"):
            path = out / f"{name}.{fmt}"
            # no creation date in the files: the same run draws the same bytes
            metadata = {"Date": None} if fmt == "svg" else {"Software": "shouhou"}
            fig.savefig(path, format=fmt, metadata=metadata)
            written.append(path)
        svgs[name] = (out / f"{name}.svg").read_text(encoding="utf-8")
    report = out / "report.html"
    report.write_text(_html(figures, svgs, title), encoding="utf-8")
    written.append(report)
    return written


def table_rows(
    figures: Sequence[dict[str, Any]], t: Translator | None = None
) -> list[tuple[str, list[str]]]:
    """The side-by-side comparison: one row per figure, one column per policy; the row names
    in ``t``'s language (English without one)."""
    t = t or translator(FALLBACK)
    _ = t.gettext

    def each(fn: Any) -> list[str]:
        return [str(fn(f)) for f in figures]

    def whom(f: dict[str, Any]) -> str:
        return ", ".join(f"{t.term(k, 'Role')} {v}" for k, v in f["refunds"]["by_whom"].items())

    rows: list[tuple[str, list[str]]] = [
        (_("orders"), each(lambda f: f["orders"])),
        (_("cases"), each(lambda f: f["cases"])),
        (_("applications refused"), each(lambda f: sum(f["applications_refused"].values()))),
        (_("refunds"), each(lambda f: f["refunds"]["count"])),
        (_("refunded (yuan)"), each(lambda f: f["refunds"]["money"])),
        (_("refunds by timeout"), each(lambda f: f["refunds"]["by_timeout"])),
        (_("refunds by whom"), each(whom)),
        (
            _("closed: buyer timeout"),
            each(lambda f: f["closed_reasons"].get("buyer_timeout", 0)),
        ),
    ]
    kinds = sorted({k for f in figures for k in f["resolution_hours"]})
    for kind in kinds:
        rows.append(
            (
                _("{kind} hours p50/p90/p99").format(kind=t.term(kind, "CaseKind")),
                each(
                    lambda f, k=kind: (
                        "/".join(str(v) for v in f["resolution_hours"].get(k, {}).values()) or "-"
                    )
                ),
            )
        )
    rows += [
        (_("cases reaching agents"), each(lambda f: f["agents"]["total"])),
        (_("agent cases, peak day"), each(lambda f: f["agents"]["peak_per_day"])),
        (
            _("dispute rate p50/p90/max"),
            each(lambda f: _spread(f["shops"]["dispute_rate"])),
        ),
        (
            _("self-completion p10/p50/p90"),
            each(lambda f: _spread(f["shops"]["self_completion_rate"], ("p10", "p50", "p90"))),
        ),
        (
            _("rule complaints filed / upheld"),
            each(
                lambda f: (
                    f"{f['complaints']['filed']} / {f['complaints']['by_status'].get('upheld', 0)}"
                )
            ),
        ),
        (_("penalty points"), each(lambda f: f["penalty_points"])),
        (_("compensation (yuan)"), each(lambda f: f["compensation"])),
        (
            _("engine actions / deadlines fired"),
            each(lambda f: f"{f['engine']['actions']} / {f['engine']['deadlines_fired']}"),
        ),
    ]
    return rows


def _spread(values: dict[str, float | None], keys: Sequence[str] = ("p50", "p90", "max")) -> str:
    return "/".join("-" if values.get(k) is None else f"{values[k]:.2%}" for k in keys)


def _html(figures: Sequence[dict[str, Any]], svgs: dict[str, str], title: str) -> str:
    head = "".join(f"<th>{html.escape(f['policy'])}</th>" for f in figures)
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f"<td>{html.escape(v)}</td>" for v in values)
        + "</tr>"
        for name, values in table_rows(figures)
    )
    charts = "".join(
        f"<h2>{html.escape(CHARTS[name])}</h2><div class='chart'>{svg[svg.find('<svg') :]}</div>"
        for name, svg in svgs.items()
    )
    plain = [{k: v for k, v in f.items() if k != "resolution_hours_all"} for f in figures]
    data = html.escape(json.dumps(plain, ensure_ascii=False, indent=1))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;"
        "text-align:right}th:first-child{text-align:left}.chart svg{max-width:100%;height:auto}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table><tr><th></th>{head}</tr>{body}</table>"
        f"{charts}<details><summary>all figures (JSON)</summary><pre>{data}</pre></details>"
        "</body></html>\n"
    )
