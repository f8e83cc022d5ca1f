"""Every time that leaves the system has one format: to the second, with the offset of the
marketplace's zone ($SHOUHOU_TIMEZONE, Asia/Shanghai by default)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain.model import Actor, Order
from shouhou.domain.values import SHANGHAI, format_time
from shouhou.errors import NotEligible
from shouhou.services.ports import ApiUnitOfWork
from shouhou.settings import display_zone
from shouhou.testing import MemoryApiUnitOfWork, MemoryStore
from shouhou.times import show

#: An ordinary instant outside every holiday window, with microseconds that must not show.
T0 = datetime(2023, 3, 1, 10, 0, 0, 123456, tzinfo=SHANGHAI)
ONE_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def _engine() -> tuple[Engine[ApiUnitOfWork], VirtualClock]:
    store = MemoryStore()
    numbers = iter(range(1, 1000))
    clock = VirtualClock(T0)
    engine = Engine(
        lambda: MemoryApiUnitOfWork(store), clock=clock, new_id=lambda: f"c{next(numbers)}"
    )
    return engine, clock


def _act(engine: Engine[ApiUnitOfWork], action: str, actor: str, **params: Any) -> None:
    target = {"case_id": "c1"} if action != "apply" else {}
    engine.execute(engine.build(action, actor=actor, target=target, params=params))


def _rich_case() -> Engine[ApiUnitOfWork]:
    """A case in intervention with evidence, a running deadline and a long timeline, on an order
    with every date set."""
    engine, clock = _engine()
    engine.place_order(
        Order(
            id="o1",
            shop="s1",
            buyer="b1",
            total=25900,
            created_at=T0 - timedelta(days=4, microseconds=7),
            paid_at=T0 - timedelta(days=4),
            shipped_at=T0 - timedelta(days=3, microseconds=123457),  # 09:59:59.999999
            delivered_at=T0 - timedelta(days=1),
        )
    )
    _act(
        engine,
        "apply",
        "buyer:b1",
        order="o1",
        kind="return_refund",
        reason="quality",
        amount=25900,
    )
    clock.advance(timedelta(hours=2, microseconds=501))
    _act(engine, "refuse", "seller:s1", reason="no defect visible")
    clock.advance(timedelta(hours=1))
    _act(engine, "request_intervention", "buyer:b1")
    clock.advance(timedelta(minutes=30, microseconds=3))
    _act(engine, "submit_evidence", "buyer:b1", text="the lid is cracked")
    clock.advance(timedelta(hours=1))
    _act(engine, "submit_evidence", "seller:s1", text="packed intact")
    return engine


def _time_strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """Every (key, string) in ``value`` that reads as a time, however it is spelt."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _time_strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _time_strings(v, key)
    elif isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\d", value):
        yield key, value


def _views() -> tuple[dict[str, Any], dict[str, Any]]:
    engine = _rich_case()
    case = engine.view("c1", actor=Actor.parse("buyer:b1"))
    return case, engine.order_view("o1")


def test_every_time_in_a_rich_case_view_and_order_view_is_to_the_second_at_plus_eight() -> None:
    case, order = _views()
    times = [*_time_strings(case), *_time_strings(order)]
    keys = {key for key, _ in times}
    # the walk found the fields it must check: deadlines, events, evidence and order dates
    assert {"due_at", "at", "paid_at", "shipped_at", "delivered_at"} <= keys
    assert len(times) >= 15
    wrong = [(key, text) for key, text in times if not ONE_FORMAT.match(text)]
    assert wrong == []
    assert {text[-6:] for _, text in times} == {"+08:00"}
    assert order["paid_at"] == "2023-02-25T10:00:00+08:00"
    assert order["shipped_at"] == "2023-02-26T09:59:59+08:00"  # cut to the second, not rounded


def test_with_another_zone_set_the_views_show_that_zones_offset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOUHOU_TIMEZONE", "Asia/Kolkata")
    case, order = _views()
    times = [*_time_strings(case), *_time_strings(order)]
    assert len(times) >= 15
    assert [t for _, t in times if not ONE_FORMAT.match(t)] == []
    assert {text[-6:] for _, text in times} == {"+05:30"}
    assert order["paid_at"] == "2023-02-25T07:30:00+05:30"  # the same instant
    assert case["deadline"]["due_at"].endswith("+05:30")


def test_a_zone_with_summer_time_shows_each_instants_own_offset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOUHOU_TIMEZONE", "Europe/Berlin")
    assert show(datetime(2023, 1, 15, 12, tzinfo=SHANGHAI)) == "2023-01-15T05:00:00+01:00"
    assert show(datetime(2023, 7, 15, 12, tzinfo=SHANGHAI)) == "2023-07-15T06:00:00+02:00"


def test_an_unknown_zone_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOUHOU_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValueError, match="SHOUHOU_TIMEZONE='Mars/Olympus' is not a time zone"):
        display_zone()


def test_an_empty_zone_setting_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOUHOU_TIMEZONE", "")
    assert display_zone().key == "Asia/Shanghai"


def test_a_refusal_names_the_time_it_would_be_allowed_from_in_the_one_format() -> None:
    refusal = NotEligible(
        "too early", allowed_from=datetime(2023, 3, 8, 4, 0, 0, 5, tzinfo=SHANGHAI)
    )
    assert refusal.to_dict()["allowed_from"] == "2023-03-08T04:00:00+08:00"


def test_the_formatter_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone"):
        format_time(datetime(2023, 3, 8, 12))
