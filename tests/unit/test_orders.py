"""The order aggregate: ship_by, lateness, auto_confirm and how cases affect it (SPEC §2–3)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from shouhou.domain import commands as c
from shouhou.domain import events as e
from shouhou.domain import orders
from shouhou.domain.model import (
    PLATFORM,
    SYSTEM,
    Actor,
    CaseKind,
    Order,
    OrderStatus,
    Promotion,
    Reason,
    Role,
    ShippingMethod,
)
from shouhou.domain.values import SHANGHAI
from shouhou.errors import Forbidden, Invalid, NotAllowed, NotEligible

OS = OrderStatus
T0 = datetime(2023, 3, 1, 10, 0, tzinfo=SHANGHAI)
SECOND, HOUR, DAY = timedelta(seconds=1), timedelta(hours=1), timedelta(days=1)


def _do(order: Order, cmd: c.Command, rules: Any, now: datetime) -> Order:
    return orders.fold(order, orders.decide(order, cmd, rules=rules, now=now))


def _ship(order: Order, rules: Any, now: datetime, **fields: Any) -> Order:
    return _do(order, c.Ship(actor=PLATFORM, order_id=order.id, **fields), rules, now)


def _timeout(order: Order, rules: Any, now: datetime) -> Order:
    return _do(order, c.OrderTimeout(actor=SYSTEM, order_id=order.id), rules, now)


# --- ship_by ---------------------------------------------------------------------------------


def test_a_normal_order_must_ship_within_72_hours_of_payment(make_order: Any) -> None:
    order = make_order("paid", at=T0)
    assert order.status == OS.PAID
    assert order.ship_by == T0 + timedelta(hours=72)
    assert order.deadline is not None
    assert (order.deadline.name, order.deadline.due_at, order.deadline.on_expiry) == (
        "ship_by",
        T0 + timedelta(hours=72),
        "mark_late",
    )
    assert order.deadline.rule_id == "tmall-standard/ship_by"


def test_a_juhuasuan_order_must_ship_within_7_days(make_order: Any) -> None:
    order = make_order("paid", at=T0, promotion=Promotion.JUHUASUAN)
    assert order.ship_by == T0 + 7 * DAY


def test_a_presale_order_must_ship_by_its_promised_date(make_order: Any) -> None:
    promised = datetime(2023, 3, 20, 0, 0, tzinfo=SHANGHAI)
    order = make_order("paid", at=T0, promotion=Promotion.PRESALE, promised_ship_by=promised)
    assert order.ship_by == promised
    assert order.deadline is not None and order.deadline.due_at == promised


def test_a_presale_order_without_a_promised_date_is_invalid(make_order: Any) -> None:
    with pytest.raises(Invalid, match="promised_ship_by"):
        make_order("paid", at=T0, promotion=Promotion.PRESALE)


def test_paying_an_order_starts_its_ship_by_deadline(make_order: Any, rules: Any) -> None:
    order = _do(make_order("awaiting_payment"), c.Pay(actor=PLATFORM, order_id="o1"), rules, T0)
    assert (order.status, order.paid_at, order.ship_by) == (OS.PAID, T0, T0 + 72 * HOUR)


def test_shipping_recorded_after_ship_by_marks_the_order_late(make_order: Any, rules: Any) -> None:
    order = make_order("paid", at=T0)
    assert order.ship_by is not None
    recorded = order.ship_by + SECOND
    shipped = _ship(order, rules, recorded + HOUR, carrier="SF", waybill="1", recorded_at=recorded)
    assert (shipped.status, shipped.late, shipped.shipped_at) == (OS.SHIPPED, True, recorded)


def test_shipping_recorded_in_time_is_not_late_even_when_reported_later(
    make_order: Any, rules: Any
) -> None:
    order = make_order("paid", at=T0)
    assert order.ship_by is not None
    recorded = order.ship_by - HOUR
    shipped = _ship(order, rules, order.ship_by - SECOND, recorded_at=recorded)
    assert (shipped.late, shipped.shipped_at) == (False, recorded)
    assert shipped.deadline is not None
    assert shipped.deadline.due_at == recorded + 10 * DAY


def test_a_shipment_recorded_exactly_at_ship_by_is_late(make_order: Any, rules: Any) -> None:
    order = make_order("paid", at=T0)
    assert order.ship_by is not None
    shipped = _ship(order, rules, order.ship_by, recorded_at=order.ship_by)
    assert shipped.late is True


def test_the_ship_by_timeout_marks_the_order_late(make_order: Any, rules: Any) -> None:
    order = make_order("paid", at=T0)
    assert order.ship_by is not None
    events = orders.decide(
        order, c.OrderTimeout(actor=SYSTEM, order_id="o1"), rules=rules, now=order.ship_by
    )
    late = orders.fold(order, events)
    assert (late.status, late.late, late.deadline) == (OS.PAID, True, None)
    marked = [ev for ev in events if isinstance(ev, e.MarkedLate)]
    assert [m.rule_id for m in marked] == ["tmall-standard/ship_by"]


def test_the_ship_by_timeout_before_its_due_time_is_refused(make_order: Any, rules: Any) -> None:
    order = make_order("paid", at=T0)
    with pytest.raises(NotEligible) as err:
        _timeout(order, rules, T0 + 72 * HOUR - SECOND)
    assert err.value.allowed_from == T0 + 72 * HOUR


def test_an_order_shipped_after_its_ship_by_timeout_stays_late(make_order: Any, rules: Any) -> None:
    order = _timeout(make_order("paid", at=T0), rules, T0 + 72 * HOUR)
    shipped = _ship(order, rules, T0 + 80 * HOUR)
    assert (shipped.status, shipped.late) == (OS.SHIPPED, True)


def test_a_courier_record_before_ship_by_is_not_late_even_after_the_timeout_fired(
    make_order: Any, rules: Any
) -> None:
    order = _timeout(make_order("paid", at=T0), rules, T0 + 72 * HOUR)
    shipped = _ship(order, rules, T0 + 73 * HOUR, recorded_at=T0 + 71 * HOUR)
    assert shipped.late is False


# --- auto_confirm ----------------------------------------------------------------------------


def test_express_shipments_auto_confirm_after_10_days(make_order: Any) -> None:
    order = make_order("shipped", at=T0)
    assert order.deadline is not None
    assert (order.deadline.name, order.deadline.due_at, order.deadline.on_expiry) == (
        "auto_confirm",
        T0 + 10 * DAY,
        "trade_success",
    )


def test_surface_post_shipments_auto_confirm_after_30_days(make_order: Any) -> None:
    order = make_order("shipped", at=T0, shipping_method=ShippingMethod.POST)
    assert order.deadline is not None and order.deadline.due_at == T0 + 30 * DAY


def test_the_shipping_method_given_when_shipping_sets_the_auto_confirm_time(
    make_order: Any, rules: Any
) -> None:
    shipped = _ship(make_order("paid", at=T0), rules, T0 + HOUR, method=ShippingMethod.POST)
    assert shipped.shipping_method == ShippingMethod.POST
    assert shipped.deadline is not None and shipped.deadline.due_at == T0 + HOUR + 30 * DAY


def test_auto_confirm_makes_the_trade_succeed_at_its_due_time(make_order: Any, rules: Any) -> None:
    order = _timeout(make_order("shipped", at=T0), rules, T0 + 10 * DAY)
    assert (order.status, order.trade_success_at, order.deadline) == (
        OS.TRADE_SUCCESS,
        T0 + 10 * DAY,
        None,
    )


def test_the_buyer_confirming_receipt_makes_the_trade_succeed(make_order: Any, rules: Any) -> None:
    order = make_order("delivered", at=T0)
    done = _do(order, c.ConfirmOrderReceipt(actor=PLATFORM, order_id="o1"), rules, T0 + HOUR)
    assert (done.status, done.trade_success_at) == (OS.TRADE_SUCCESS, T0 + HOUR)


def test_receipt_can_not_be_confirmed_while_a_case_is_open(desk_for: Any, rules: Any) -> None:
    desk = desk_for("shipped", at=T0)
    desk.apply(T0 + HOUR)
    with pytest.raises(NotEligible) as err:
        _do(desk.order, c.ConfirmOrderReceipt(actor=PLATFORM, order_id="o1"), rules, T0 + DAY)
    assert err.value.rule == "tmall-standard/one_open_case"


def test_opening_a_case_pauses_auto_confirm_with_the_time_left(desk_for: Any) -> None:
    desk = desk_for("shipped", at=T0)
    desk.apply(T0 + 4 * DAY)
    assert desk.order.deadline is None
    assert desk.order.auto_confirm_remaining == 6 * DAY


def test_ending_the_case_resumes_auto_confirm_with_the_time_that_was_left(desk_for: Any) -> None:
    desk = desk_for("shipped", at=T0)
    desk.apply(T0 + 4 * DAY)
    desk.act(c.Withdraw, T0 + 20 * DAY)
    assert desk.order.status == OS.SHIPPED
    assert desk.order.auto_confirm_remaining is None
    assert desk.order.deadline is not None
    assert (desk.order.deadline.name, desk.order.deadline.due_at) == (
        "auto_confirm",
        T0 + 26 * DAY,
    )


def test_shipping_while_a_case_is_open_starts_auto_confirm_paused(
    desk_for: Any, rules: Any
) -> None:
    desk = desk_for("paid", at=T0)
    desk.apply(T0 + HOUR)
    desk.order = _ship(desk.order, rules, T0 + DAY)
    assert (desk.order.deadline, desk.order.auto_confirm_remaining) == (None, 10 * DAY)
    desk.act(c.Withdraw, T0 + 3 * DAY)
    assert desk.order.deadline is not None
    assert desk.order.deadline.due_at == T0 + 13 * DAY


# --- refunds and the trade -------------------------------------------------------------------


def test_an_in_sale_full_refund_closes_the_order(desk_for: Any) -> None:
    desk = desk_for("shipped", at=T0)
    desk.apply(T0 + HOUR)
    desk.act(c.Agree, T0 + 2 * HOUR)
    order = desk.order
    assert (order.status, order.refunded, order.deadline, order.open_case) == (
        OS.CLOSED,
        order.total,
        None,
        None,
    )


def test_an_in_sale_full_refund_before_shipment_closes_the_order(desk_for: Any) -> None:
    desk = desk_for("paid", at=T0)
    desk.apply(T0 + HOUR, reason=Reason.OUT_OF_STOCK)
    desk.timeout()
    assert (desk.order.status, desk.order.deadline) == (OS.CLOSED, None)


def test_an_in_sale_partial_refund_leaves_the_order_open(desk_for: Any) -> None:
    desk = desk_for("shipped", at=T0)
    desk.apply(T0 + DAY, amount=5000)
    desk.act(c.Agree, T0 + 2 * DAY)
    order = desk.order
    assert (order.status, order.refunded) == (OS.SHIPPED, 5000)
    assert order.deadline is not None
    assert (order.deadline.name, order.deadline.due_at) == ("auto_confirm", T0 + 11 * DAY)


def test_a_second_case_may_ask_only_for_what_is_still_refundable(desk_for: Any) -> None:
    desk = desk_for("shipped", at=T0)
    desk.apply(T0 + DAY, amount=5000)
    desk.act(c.Agree, T0 + 2 * DAY)
    with pytest.raises(Invalid):
        desk.apply(T0 + 3 * DAY, case_id="c2", amount=desk.order.total - 4999)
    case = desk.apply(T0 + 3 * DAY, case_id="c2", amount=desk.order.total - 5000)
    assert case.requested_amount == 14900


def test_an_after_sale_full_refund_leaves_the_trade_successful(desk_for: Any) -> None:
    desk = desk_for("trade_success", at=T0)
    desk.apply(T0 + DAY, kind=CaseKind.RETURN_REFUND, reason=Reason.QUALITY)
    desk.act(c.Agree, T0 + 2 * DAY)
    desk.act(c.ShipReturn, T0 + 3 * DAY, carrier="SF", waybill="1")
    desk.act(c.ConfirmReceipt, T0 + 4 * DAY)
    assert (desk.order.status, desk.order.refunded) == (OS.TRADE_SUCCESS, desk.order.total)


# --- who may act and when --------------------------------------------------------------------


def test_only_the_platform_may_move_an_order(make_order: Any, rules: Any) -> None:
    with pytest.raises(Forbidden):
        _do(
            make_order("paid"),
            c.Ship(actor=Actor(role=Role.SELLER, id="s1"), order_id="o1"),
            rules,
            T0,
        )


def test_an_unpaid_order_can_not_be_shipped(make_order: Any, rules: Any) -> None:
    with pytest.raises(NotAllowed, match="awaiting_payment"):
        _ship(make_order("awaiting_payment"), rules, T0)


def test_order_times_that_go_backwards_are_invalid(rules: Any) -> None:
    order = Order(id="o1", shop="s1", buyer="b1", total=100, created_at=T0, paid_at=T0 - HOUR)
    with pytest.raises(Invalid, match="backwards"):
        orders.place(order, rules)
