"""A shop's report (SPEC §8–9): its 登记备案 summary, its metrics, and their daily history."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shouhou.domain.classifications import Product, ServiceSummary, summarise
from shouhou.domain.metrics import Metrics, compute
from shouhou.domain.model import TERMINAL_STATUSES, Order
from shouhou.services.metrics import LOOKBACK
from shouhou.services.ports import LoggedEvent, UnitOfWork
from shouhou.services.views import SHOP_METRICS, Money, shop_view
from shouhou.times import show, show_optional

#: Days of history a report covers by default: its summary and its chart.
REPORT_DAYS = 90
#: The most ended cases of one status a report reads (far beyond any shop's real backlog).
MAX_CASES = 100_000
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class ShopReport:
    shop: str
    at: datetime
    window: timedelta
    summary: ServiceSummary
    metrics: Metrics
    #: One point a day for ``days`` days, each the metrics of the window ending then.
    series: tuple[Metrics, ...]


def metrics_series(
    log: Sequence[LoggedEvent], *, at: datetime, window: timedelta, days: int
) -> list[Metrics]:
    """The metrics of the ``window`` ending at each of ``days`` daily instants up to ``at``.

    Each point sees only the events up to its own end, read back as far as ``shop_metrics``
    reads them, so the last point is exactly the shop's metrics at ``at``.
    """
    ordered = sorted(log, key=lambda item: item.event.at)
    times = [item.event.at for item in ordered]
    points = []
    for back in range(days - 1, -1, -1):
        until = at - back * ONE_DAY
        first = bisect_left(times, until - window - LOOKBACK)
        last = bisect_right(times, until)
        points.append(compute(ordered[first:last], since=until - window, until=until))
    return points


def shop_report(
    uow: UnitOfWork, shop: str, *, at: datetime, window: timedelta, days: int = REPORT_DAYS
) -> ShopReport:
    """``shop``'s cases ended in the ``days`` before ``at``, by product and cause; the ended
    cases waiting for a classification; its metrics at ``at`` and on each of those days."""
    if days < 1:
        raise ValueError("a report covers at least one day")
    start = at - days * ONE_DAY
    with uow:
        ended = [
            case
            for status in sorted(TERMINAL_STATUSES)
            for case in uow.cases.list(shop=shop, status=status, limit=MAX_CASES)
        ]
        orders: dict[str, Order] = {}
        for order_id in sorted({case.order_id for case in ended}):
            order = uow.orders.get(order_id)
            if order is not None:
                orders[order_id] = order
        log = uow.log.for_shop(shop, start - window - LOOKBACK, at)
    series = metrics_series(log, at=at, window=window, days=days)
    return ShopReport(
        shop=shop,
        at=at,
        window=window,
        summary=summarise(ended, orders, since=start, until=at),
        metrics=series[-1],
        series=tuple(series),
    )


def _product(product: Product) -> dict[str, str]:
    return {"sku": product.sku, "title": product.title}


def report_view(report: ShopReport, *, money: Money = int) -> dict[str, Any]:
    """The report as JSON-ready data (metrics by their SPEC §9 names, rates as fractions)."""
    summary = report.summary
    return {
        "shop": report.shop,
        "at": show(report.at),
        "since": show(summary.since),
        "window_days": report.window / ONE_DAY,
        "metrics": shop_view(report.shop, report.metrics, money=money),
        "classified": summary.classified,
        "by_cause": summary.by_cause,
        "by_product": [
            {
                **_product(line.product),
                "cases": line.cases,
                "causes": line.causes,
                "categories": line.categories,
            }
            for line in summary.by_product
        ],
        "unclassified": [
            {
                "case": u.case,
                "order": u.order,
                "status": u.status,
                "reason": u.reason,
                "ended_at": show_optional(u.ended_at),
                **_product(u.product),
            }
            for u in summary.unclassified
        ],
        "series": [_point(report.shop, point, money) for point in report.series],
    }


def _point(shop: str, metrics: Metrics, money: Money) -> dict[str, Any]:
    view = shop_view(shop, metrics, money=money)
    return {"until": view["until"], **{name: view[name] for name in SHOP_METRICS}}
