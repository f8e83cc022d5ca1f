"""A shop's 登记备案 summary (SPEC §8): classified cases by product and cause, and the ended
cases still waiting for a classification; the report's daily metrics, on the in-memory fakes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain.classifications import UNKNOWN, Product, product_of, summarise
from shouhou.domain.model import (
    Case,
    CaseKind,
    CaseStatus,
    Cause,
    Classification,
    Item,
    Order,
    Phase,
    Reason,
)
from shouhou.domain.values import SHANGHAI
from shouhou.testing import MemoryStore, MemoryUnitOfWork

T0 = datetime(2023, 3, 1, 10, tzinfo=SHANGHAI)
D = timedelta(days=1)
MUG = Item(sku="MUG-1", title="Blue mug", unit_price=4900)
POT = Item(sku="POT-2", title="Teapot")


def order(order_id: str, *items: Item) -> Order:
    return Order(id=order_id, shop="s1", buyer="b1", total=9900, items=items, created_at=T0)


def case(
    case_id: str,
    order_id: str,
    *,
    ended: datetime | None,
    cause: Cause | None = None,
    category: str = "cracked",
    status: CaseStatus = CaseStatus.REFUNDED,
    **extra: Any,
) -> Case:
    made = Case(
        id=case_id,
        order_id=order_id,
        shop="s1",
        buyer="b1",
        kind=CaseKind.REFUND_ONLY,
        phase=Phase.AFTER_SALE,
        reason=Reason.DAMAGED,
        status=status,
        requested_amount=9900,
        opened_at=T0,
        resolved_at=ended,
        **extra,
    )
    if cause is not None:
        at = (ended or T0) + timedelta(hours=1)
        made = replace(
            made,
            classification=Classification(
                category=category, cause=cause, author="seller:s1", at=at
            ),
        )
    return made


ORDERS = {"o1": order("o1", MUG, POT), "o2": order("o2", POT), "o3": order("o3")}


def test_a_case_is_about_its_orders_first_item_or_unknown() -> None:
    assert product_of(ORDERS["o1"]) == Product(sku="MUG-1", title="Blue mug")
    assert product_of(ORDERS["o3"]) == Product(sku=UNKNOWN, title=UNKNOWN)
    assert product_of(None) == Product(sku=UNKNOWN, title=UNKNOWN)
    assert product_of(order("o4", Item(sku="X"))) == Product(sku="X", title="X")


def test_classified_cases_are_counted_by_product_cause_and_category() -> None:
    cases = [
        case("c1", "o1", ended=T0 + D, cause=Cause.PRODUCT_QUALITY),
        case("c2", "o1", ended=T0 + 2 * D, cause=Cause.PRODUCT_QUALITY, category="leaks"),
        case("c3", "o1", ended=T0 + 3 * D, cause=Cause.LOGISTICS, category="crushed box"),
        case("c4", "o2", ended=T0 + D, cause=Cause.BUYER_PREFERENCE, category="colour"),
        case("c5", "o3", ended=T0 + D, cause=Cause.DESCRIPTION, category="size chart"),
    ]
    summary = summarise(cases, ORDERS, since=T0, until=T0 + 10 * D)
    assert summary.classified == 5
    assert summary.by_cause == {
        "product_quality": 2,
        "description": 1,
        "logistics": 1,
        "service": 0,
        "buyer_preference": 1,
    }
    mug, *others = summary.by_product
    assert mug.product.sku == "MUG-1" and mug.cases == 3
    assert mug.causes == {"product_quality": 2, "logistics": 1}
    assert mug.categories == {"cracked": 1, "crushed box": 1, "leaks": 1}
    assert [(line.product.sku, line.cases) for line in others] == [("POT-2", 1), (UNKNOWN, 1)]
    assert summary.unclassified == ()


def test_ended_cases_without_a_classification_are_listed_oldest_first() -> None:
    cases = [
        case("c1", "o1", ended=T0 + 3 * D),
        case("c2", "o3", ended=T0 + D, status=CaseStatus.CLOSED),
        case("c3", "o2", ended=T0 + 2 * D, cause=Cause.SERVICE),
    ]
    summary = summarise(cases, ORDERS, since=T0, until=T0 + 10 * D)
    assert [(u.case, u.status, u.product.sku) for u in summary.unclassified] == [
        ("c2", "closed", UNKNOWN),
        ("c1", "refunded", "MUG-1"),
    ]
    assert summary.classified == 1


def test_open_cases_are_neither_summarised_nor_waiting_for_a_classification() -> None:
    open_case = case("c1", "o1", ended=None, status=CaseStatus.AWAITING_SELLER)
    summary = summarise([open_case], ORDERS, since=T0, until=T0 + D)
    assert summary.classified == 0 and summary.unclassified == ()
    assert summary.by_product == ()


def test_the_summary_covers_its_period_while_every_unclassified_case_stays_listed() -> None:
    cases = [
        case("old", "o1", ended=T0 - 40 * D, cause=Cause.LOGISTICS),
        case("old-unclassified", "o1", ended=T0 - 40 * D),
        case("inside", "o2", ended=T0 + D, cause=Cause.SERVICE),
        case("later", "o2", ended=T0 + 20 * D, cause=Cause.SERVICE),
        case("later-unclassified", "o2", ended=T0 + 20 * D),
    ]
    summary = summarise(cases, ORDERS, since=T0, until=T0 + 10 * D)
    assert summary.classified == 1
    assert [line.product.sku for line in summary.by_product] == ["POT-2"]
    assert [u.case for u in summary.unclassified] == ["old-unclassified"]


def test_an_order_missing_from_the_store_counts_under_unknown() -> None:
    summary = summarise(
        [case("c1", "gone", ended=T0, cause=Cause.SERVICE)], {}, since=T0, until=T0 + D
    )
    assert summary.by_product[0].product == Product(sku=UNKNOWN, title=UNKNOWN)


# --- the report use case on the in-memory fakes ----------------------------------------------


def act(engine: Engine, action: str, actor: str, case_id: str, **params: Any) -> Any:
    return engine.execute(
        engine.build(action, actor=actor, target={"case_id": case_id}, params=params)
    )


def test_the_report_draws_a_point_a_day_and_ends_on_the_shops_metrics() -> None:
    clock = VirtualClock(T0)
    store = MemoryStore()
    engine = Engine(lambda: MemoryUnitOfWork(store), clock=clock)
    for n, item in enumerate((MUG, POT, MUG)):
        engine.place_order(
            Order(
                id=f"o{n}",
                shop="s1",
                buyer="b1",
                total=9900,
                # the item is the order's one line: its price is what was paid (SPEC §1)
                items=(replace(item, unit_price=9900),),
                created_at=clock.now(),
                paid_at=clock.now(),
            )
        )
        params = {"order": f"o{n}", "kind": "refund_only", "reason": "no_reason", "amount": 9900}
        act(engine, "apply", "buyer:b1", f"c{n}", **params)
        clock.advance(timedelta(hours=6))
        act(engine, "agree", "seller:s1", f"c{n}")
        clock.advance(2 * D)
    act(engine, "classify", "seller:s1", "c0", category="changed mind", cause="buyer_preference")
    act(engine, "classify", "seller:s1", "c1", category="changed mind", cause="buyer_preference")
    at = clock.advance(D)
    report = engine.shop_report("s1", days=10)
    assert len(report.series) == 10
    assert [p.until for p in report.series] == [at - n * D for n in range(9, -1, -1)]
    assert report.series[-1] == engine.shop_metrics("s1", at) == report.metrics
    assert report.series[0].paid_orders == 0
    assert report.metrics.paid_orders == 3 and report.metrics.refunds == 3
    assert report.metrics.avg_completion_hours == {"refund_only": 6.0}
    assert report.summary.by_cause["buyer_preference"] == 2
    assert [(line.product.sku, line.cases) for line in report.summary.by_product] == [
        ("MUG-1", 1),
        ("POT-2", 1),
    ]
    assert [u.case for u in report.summary.unclassified] == ["c2"]
