"""A shop's 登记备案 summary (SPEC §8, seed Ⅱ 一 6): classified cases by product and cause.

Grouping the ended cases by the product they were about and the cause they were classified
with shows a shop where its after-sales come from, so it can fix the source. A case is about
its order's first item; an order without items counts under ``unknown``. The ended cases not
yet classified are listed apart: each of them still needs one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from shouhou.domain.model import Case, Cause, Order

#: The product key of an order without items.
UNKNOWN = "unknown"


@dataclass(frozen=True, kw_only=True)
class Product:
    sku: str
    title: str


@dataclass(frozen=True, kw_only=True)
class ProductLine:
    """The classified cases of one product: how many, by cause and by category."""

    product: Product
    cases: int
    causes: dict[str, int]
    categories: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class Unclassified:
    """An ended case still waiting for its classification."""

    case: str
    order: str
    status: str
    reason: str
    ended_at: datetime | None
    product: Product


@dataclass(frozen=True, kw_only=True)
class ServiceSummary:
    since: datetime
    until: datetime
    classified: int
    by_cause: dict[str, int]
    by_product: tuple[ProductLine, ...]
    unclassified: tuple[Unclassified, ...]


def product_of(order: Order | None) -> Product:
    """What a case on ``order`` is about: the first item, or ``unknown``."""
    if order is None or not order.items:
        return Product(sku=UNKNOWN, title=UNKNOWN)
    first = order.items[0]
    return Product(sku=first.sku or UNKNOWN, title=first.title or first.sku or UNKNOWN)


def _ended_at(case: Case) -> datetime | None:
    if case.resolved_at is not None:
        return case.resolved_at
    return case.classification.at if case.classification is not None else None


def summarise(
    cases: Iterable[Case], orders: Mapping[str, Order], *, since: datetime, until: datetime
) -> ServiceSummary:
    """Cases that ended in ``[since, until]`` and were classified, by product and cause; and
    every case ended by ``until`` that has no classification yet, the oldest first."""
    lines: dict[Product, list[Case]] = {}
    waiting: list[Unclassified] = []
    for case in cases:
        ended = _ended_at(case)
        if not case.terminal or (ended is not None and ended > until):
            continue
        product = product_of(orders.get(case.order_id))
        if case.classification is None:
            waiting.append(
                Unclassified(
                    case=case.id,
                    order=case.order_id,
                    status=case.status.value,
                    reason=case.reason.value,
                    ended_at=ended,
                    product=product,
                )
            )
        elif ended is None or ended >= since:
            lines.setdefault(product, []).append(case)
    by_product = [_line(product, found) for product, found in lines.items()]
    by_product.sort(key=lambda line: (-line.cases, line.product.sku, line.product.title))
    waiting.sort(key=lambda u: (u.ended_at is None, u.ended_at or until, u.case))
    return ServiceSummary(
        since=since,
        until=until,
        classified=sum(line.cases for line in by_product),
        by_cause=_by_cause(c for found in lines.values() for c in found),
        by_product=tuple(by_product),
        unclassified=tuple(waiting),
    )


def _by_cause(cases: Iterable[Case]) -> dict[str, int]:
    """Counts for every cause, in the vocabulary's order (zeros included)."""
    counts = Counter(c.classification.cause for c in cases if c.classification is not None)
    return {cause.value: counts[cause] for cause in Cause}


def _line(product: Product, cases: list[Case]) -> ProductLine:
    causes = _by_cause(cases)
    categories = Counter(c.classification.category for c in cases if c.classification is not None)
    return ProductLine(
        product=product,
        cases=len(cases),
        causes={cause: n for cause, n in causes.items() if n},
        categories=dict(sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))),
    )
