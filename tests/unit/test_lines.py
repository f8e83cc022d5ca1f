"""Order lines (SPEC §1 "Lines and money"): the allocation rule, cases per line, the caps."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain import commands as c
from shouhou.domain import lines, orders
from shouhou.domain.model import (
    PLATFORM,
    CaseKind,
    CaseLine,
    CaseStatus,
    Discounts,
    Item,
    LineRefund,
    Order,
    OrderStatus,
    Reason,
    RemedyType,
)
from shouhou.domain.values import SHANGHAI
from shouhou.errors import Conflict, Invalid, NotAllowed, NotEligible
from shouhou.testing import MemoryStore, MemoryUnitOfWork

T0 = datetime(2023, 3, 1, 10, 0, tzinfo=SHANGHAI)  # as make_order places orders
DAY = timedelta(days=1)
ON_A = (CaseLine(line="A", quantity=1),)
ON_B = (CaseLine(line="B", quantity=1),)

#: A Double-11 order: a kettle with its own 20.00 off, two mugs, a towel; a shop coupon, a
#: cross-store discount (跨店满减) and a platform subsidy (平台补贴) over all three.
DOUBLE_11 = {
    "items": (
        Item(line="A", sku="KETTLE", quantity=1, unit_price=29900, discount=2000),
        Item(line="B", sku="MUG", quantity=2, unit_price=8900),
        Item(line="C", sku="TOWEL", quantity=1, unit_price=5900),
    ),
    "discounts": Discounts(shop_coupon=2000, cross_store=5000, platform_subsidy=1500),
    "total": 43100,
}


def test_discounts_are_shared_in_proportion_leftover_fen_to_the_largest_line() -> None:
    assert lines.share_out([2000, 5000, 1500], [27900, 17800, 5900]) == [
        [1083, 689, 228],  # 1081.39, 689.92, 228.68: two fen left, to the kettle
        [2705, 1724, 571],
        [812, 517, 171],
    ]


def test_a_tie_for_the_largest_line_goes_to_the_first() -> None:
    assert lines.share_out([5], [3, 3, 1]) == [[3, 2, 0]]


def test_leftover_fen_spill_to_the_next_line_rather_than_take_one_below_zero() -> None:
    assert lines.share_out([2], [1, 1, 1]) == [[1, 1, 0]]
    assert lines.share_out([3], [1, 1, 1]) == [[1, 1, 1]]


def test_a_double_11_order_shows_each_lines_share_and_what_the_buyer_paid(
    make_order: Any,
) -> None:
    order = make_order("delivered", **DOUBLE_11)
    shares = [
        (ln.line, ln.price, ln.own_discount, ln.shop_coupon, ln.cross_store, ln.platform_subsidy)
        for ln in order.lines
    ]
    assert shares == [
        ("A", 29900, 2000, 1083, 2705, 812),
        ("B", 17800, 0, 689, 1724, 517),
        ("C", 5900, 0, 228, 571, 171),
    ]
    assert [ln.paid for ln in order.lines] == [23300, 14870, 4930]
    assert sum(ln.paid for ln in order.lines) == order.total


def test_an_order_without_items_has_one_implicit_line_of_its_goods(make_order: Any) -> None:
    order = make_order("shipped", total=11000, shipping_fee=1000)
    (line,) = order.lines
    assert (line.line, line.paid, line.quantity) == ("1", 10000, 1)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({**DOUBLE_11, "total": 43000}, r"the total \(43000 fen\)"),
        ({"items": (Item(sku="X", unit_price=100, discount=101),), "total": 0}, "discount"),
        ({"discounts": Discounts(shop_coupon=100)}, "need the items"),
        (
            {"items": (Item(sku="X", unit_price=100),), "discounts": Discounts(cross_store=101)},
            "order's discounts",
        ),
        ({"items": (Item(sku="X", line="1"), Item(sku="Y", line="1"))}, "must differ"),
    ],
)
def test_items_discounts_and_total_that_do_not_add_up_are_invalid(
    make_order: Any, fields: dict[str, Any], words: str
) -> None:
    with pytest.raises(Invalid, match=words):
        make_order("paid", **fields)


prices = st.integers(min_value=0, max_value=500_000)


@st.composite
def order_money(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """Lines' prices after their own discounts, and three discounts that fit in them."""
    weights = draw(st.lists(prices, min_size=1, max_size=8))
    room = sum(weights)
    amounts = []
    for _ in lines.DISCOUNT_KINDS:
        amount = draw(st.integers(min_value=0, max_value=room))
        amounts.append(amount)
        room -= amount
    return weights, amounts


@given(order_money())
@settings(max_examples=300, deadline=None)
def test_allocations_add_up_exactly_never_take_a_line_below_zero_and_repeat(
    money: tuple[list[int], list[int]],
) -> None:
    weights, amounts = money
    shares = lines.share_out(amounts, weights)
    assert [sum(share) for share in shares] == amounts
    for i, weight in enumerate(weights):
        assert all(share[i] >= 0 for share in shares)
        assert weight - sum(share[i] for share in shares) >= 0
    assert lines.share_out(amounts, weights) == shares


# --- cases per line ----------------------------------------------------------------------


def _line(order: Order, line_id: str) -> Any:
    return lines.find(order, line_id)


def test_two_lines_may_have_open_cases_at_once_but_one_line_only_one(desk_for: Any) -> None:
    desk = desk_for("delivered", **DOUBLE_11)
    a = desk.apply(T0 + DAY, case_id="c1", amount=23300, lines=(CaseLine(line="A", quantity=1),))
    b = desk.apply(T0 + DAY, case_id="c2", amount=7435, lines=(CaseLine(line="B", quantity=1),))
    assert (a.lines, b.lines) == (
        (CaseLine(line="A", quantity=1),),
        (CaseLine(line="B", quantity=1),),
    )
    assert desk.order.open_cases == ("c1", "c2")
    with pytest.raises(NotEligible, match="open case c1 on line A") as err:
        desk.apply(T0 + DAY, case_id="c3", amount=100, lines=(CaseLine(line="A", quantity=0),))
    assert err.value.rule == "tmall-standard/one_open_case"
    with pytest.raises(NotEligible):  # no lines named: every line, and two are held
        desk.apply(T0 + DAY, case_id="c3", amount=100)


def test_a_line_can_refund_no_more_than_its_paid_share(desk_for: Any) -> None:
    desk = desk_for("delivered", **DOUBLE_11)
    with pytest.raises(Invalid, match="23301 fen is more than the 23300 fen"):
        desk.apply(T0 + DAY, amount=23301, lines=(CaseLine(line="A", quantity=1),))
    with pytest.raises(Invalid, match="7435 fen"):  # one mug of two: half the line
        desk.apply(T0 + DAY, amount=7436, lines=(CaseLine(line="B", quantity=1),))
    with pytest.raises(Invalid, match="no line 'Z'"):
        desk.apply(T0 + DAY, amount=1, lines=(CaseLine(line="Z", quantity=1),))
    with pytest.raises(Invalid, match="2 unit"):
        desk.apply(T0 + DAY, amount=1, lines=(CaseLine(line="B", quantity=3),))


def test_the_case_limit_counts_per_line(desk_for: Any) -> None:
    desk = desk_for("delivered", **DOUBLE_11)
    on_a = (CaseLine(line="A", quantity=1),)
    for n in range(3):
        desk.apply(T0 + DAY, case_id=f"a{n}", amount=100, lines=on_a)
        desk.act(c.Withdraw, T0 + DAY, case_id=f"a{n}")
    with pytest.raises(NotEligible, match=r"line A .* 3 cases") as err:
        desk.apply(T0 + DAY, case_id="a3", amount=100, lines=on_a)
    assert err.value.rule == "tmall-standard/max_cases_per_order"
    case = desk.apply(T0 + DAY, case_id="b0", amount=100, lines=(CaseLine(line="B", quantity=1),))
    assert case.status == CaseStatus.AWAITING_SELLER


def test_a_refund_of_some_lines_leaves_the_trade_running_of_every_line_closes_it(
    desk_for: Any,
) -> None:
    desk = desk_for("paid", **DOUBLE_11)
    desk.apply(T0 + DAY, case_id="c1", amount=23300, lines=(CaseLine(line="A", quantity=1),))
    desk.act(c.Agree, T0 + DAY, case_id="c1")
    assert desk.order.status == OrderStatus.PAID
    desk.apply(T0 + DAY, case_id="c2", amount=19800, lines=())  # every line left: B and C
    assert desk.cases["c2"].lines == (
        CaseLine(line="B", quantity=2),
        CaseLine(line="C", quantity=1),
    )
    desk.act(c.Agree, T0 + DAY, case_id="c2")
    assert desk.order.status == OrderStatus.CLOSED
    assert desk.order.refunded == desk.order.total


def test_the_refund_shows_the_buyers_part_and_the_platform_subsidy_part(desk_for: Any) -> None:
    desk = desk_for("paid", **DOUBLE_11)
    desk.apply(T0 + DAY, amount=23300, lines=(CaseLine(line="A", quantity=1),))
    case = desk.act(c.Agree, T0 + DAY)
    assert case.refund_amount == 23300
    assert case.refund_lines == (LineRefund(line="A", buyer=23300, platform=812, quantity=1),)
    line = _line(desk.order, "A")
    assert (line.refunded, line.reclaimed, line.returned) == (23300, 812, 1)


def test_automatic_confirmation_waits_until_the_last_open_case_of_the_order_ends(
    desk_for: Any,
) -> None:
    desk = desk_for("shipped", **DOUBLE_11)
    desk.apply(T0 + DAY, case_id="c1", amount=100, lines=(CaseLine(line="A", quantity=1),))
    desk.apply(T0 + DAY, case_id="c2", amount=100, lines=(CaseLine(line="C", quantity=1),))
    assert desk.order.deadline is None
    desk.act(c.Withdraw, T0 + 2 * DAY, case_id="c1")
    assert desk.order.deadline is None  # c2 still open
    desk.act(c.Withdraw, T0 + 3 * DAY, case_id="c2")
    assert desk.order.deadline is not None and desk.order.deadline.name == "auto_confirm"


def test_confirming_receipt_is_refused_while_any_line_has_an_open_case(desk_for: Any) -> None:
    desk = desk_for("shipped", **DOUBLE_11)
    desk.apply(T0 + DAY, case_id="c1", amount=100, lines=(CaseLine(line="B", quantity=1),))
    with pytest.raises(NotEligible, match="open case c1"):
        orders.decide(
            desk.order,
            c.ConfirmOrderReceipt(actor=PLATFORM, order_id="o1"),
            rules=desk.rules,
            now=T0 + DAY,
        )


def test_compensation_is_30_percent_of_the_refunded_goods_of_that_case(desk_for: Any) -> None:
    items = DOUBLE_11["items"]
    desk = desk_for("paid", **{**DOUBLE_11, "shipping_fee": 1000, "total": 44100, "items": items})
    later = desk.order.ship_by + DAY  # the seller never shipped: out of stock
    desk.apply(
        later,
        amount=4930 + 1000,
        reason=Reason.OUT_OF_STOCK,
        lines=(CaseLine(line="C", quantity=1),),
    )
    case = desk.act(c.Agree, later)
    assert case.refund_amount == 5930  # the towel and the shipping fee
    assert case.compensation is not None
    assert case.compensation.amount == 1479  # 30% of 49.30, the towel alone


def test_a_partial_refund_leaves_the_rest_of_the_line_for_a_later_case(desk_for: Any) -> None:
    desk = desk_for("delivered", **DOUBLE_11)
    on_c = (CaseLine(line="C", quantity=1),)
    desk.apply(T0 + DAY, amount=4930, kind=CaseKind.REFUND_ONLY, reason=Reason.QUALITY, lines=on_c)
    desk.act(c.ProposeRemedy, T0 + DAY, type=RemedyType.PARTIAL_REFUND, amount=1000)
    desk.act(c.AcceptRemedy, T0 + DAY)
    with pytest.raises(Invalid, match="0 unit"):  # its one unit was counted by the remedy
        desk.apply(T0 + 2 * DAY, case_id="c2", amount=100, reason=Reason.QUALITY, lines=on_c)
    rest = (CaseLine(line="C", quantity=0),)  # no quantity named: what is left of the line
    with pytest.raises(Invalid, match="3930 fen"):
        desk.apply(T0 + 2 * DAY, case_id="c2", amount=3931, reason=Reason.QUALITY, lines=rest)
    case = desk.apply(T0 + 2 * DAY, case_id="c2", amount=3930, reason=Reason.QUALITY, lines=rest)
    assert case.lines == (CaseLine(line="C", quantity=0),)  # every unit counted; money left


def test_a_refund_booked_on_an_order_that_moved_on_is_a_conflict(make_order: Any) -> None:
    order = make_order("paid", total=10000, shipping_fee=1000)
    stale = (LineRefund(line="1", buyer=9000, quantity=1),)
    moved = replace(order, lines=(replace(order.lines[0], refunded=1),), refunded=1)
    with pytest.raises(Conflict, match="9001 fen of the 9000"):
        lines.book(moved, stale, 9000, 0)
    with pytest.raises(Conflict, match="more shipping"):
        lines.book(replace(order, refunded=1000), (), 1000, 0)


# --- money never exceeds what was paid ---------------------------------------------------


@st.composite
def priced_orders(draw: st.DrawFn) -> dict[str, Any]:
    """An order's items, discounts, shipping fee and the total they add up to."""
    count = draw(st.integers(min_value=1, max_value=4))
    items = []
    for n in range(count):
        quantity = draw(st.integers(min_value=1, max_value=3))
        unit = draw(st.integers(min_value=1, max_value=50_000))
        own = draw(st.integers(min_value=0, max_value=unit * quantity))
        items.append(
            Item(line=f"L{n}", sku=f"S{n}", quantity=quantity, unit_price=unit, discount=own)
        )
    room = sum(i.unit_price * i.quantity - i.discount for i in items)
    amounts = []
    for _ in lines.DISCOUNT_KINDS:
        amounts.append(draw(st.integers(min_value=0, max_value=room)))
        room -= amounts[-1]
    shipping = draw(st.sampled_from([0, 800, 1200]))
    after_own = sum(i.unit_price * i.quantity - i.discount for i in items)
    return {
        "items": tuple(items),
        "discounts": Discounts(**dict(zip(lines.DISCOUNT_KINDS, amounts, strict=True))),
        "shipping_fee": shipping,
        "total": after_own - sum(amounts) + shipping,  # what the buyer paid, shipping included
    }


#: One attempt at a refund: which lines (indexes; empty: every line), a share of what they may
#: still refund in per mille (above 1000: asking too much), and how the case ends.
attempts = st.tuples(
    st.lists(st.integers(min_value=0, max_value=3), max_size=3, unique=True),
    st.integers(min_value=1, max_value=1200),
    st.sampled_from(["agree", "remedy", "withdraw"]),
)


@given(priced_orders(), st.lists(attempts, min_size=1, max_size=7))
@settings(max_examples=150, deadline=None)
def test_no_sequence_of_partial_refunds_gives_back_more_than_was_paid(
    desk_for: Any, fields: dict[str, Any], steps: list[tuple[list[int], int, str]]
) -> None:
    desk = desk_for("delivered", **fields)
    for n, (picked, per_mille, end) in enumerate(steps):
        ids = [line.line for line in desk.order.lines]
        wanted = tuple(CaseLine(line=ids[i], quantity=0) for i in picked if i < len(ids))
        try:
            chosen = lines.requested(desk.order, wanted)
            amount = max(1, lines.refundable(desk.order, chosen) * per_mille // 1000)
            desk.apply(
                T0 + DAY, case_id=f"c{n}", amount=amount, reason=Reason.QUALITY, lines=wanted
            )
        except (Invalid, NotEligible, NotAllowed):
            continue  # refused (a closed order too): nothing was written
        case = desk.cases[f"c{n}"]
        if end == "remedy" and case.requested_amount > 1:
            desk.act(
                c.ProposeRemedy,
                T0 + DAY,
                case_id=case.id,
                type=RemedyType.PARTIAL_REFUND,
                amount=case.requested_amount // 2,
            )
            desk.act(c.AcceptRemedy, T0 + DAY, case_id=case.id)
        elif end == "withdraw":
            desk.act(c.Withdraw, T0 + DAY, case_id=case.id)
        else:
            desk.act(c.Agree, T0 + DAY, case_id=case.id)
        ended = desk.cases[case.id]
        goods = sum(part.buyer for part in ended.refund_lines)
        assert 0 <= ended.refund_amount - goods <= desk.order.shipping_fee
        _assert_within_what_was_paid(desk.order)


def _assert_within_what_was_paid(order: Order) -> None:
    for line in order.lines:
        assert 0 <= line.refunded <= line.paid
        assert 0 <= line.reclaimed <= line.platform_subsidy
        assert line.returned <= line.quantity
        if lines.done(line):
            assert line.reclaimed == line.platform_subsidy
    assert sum(line.refunded for line in order.lines) <= order.refunded
    assert order.refunded + order.withheld <= order.total
    assert order.refunded - sum(line.refunded for line in order.lines) <= order.shipping_fee


def test_acting_on_one_lines_case_first_fires_the_due_deadline_of_the_others() -> None:
    clock = VirtualClock(T0)
    store = MemoryStore()
    engine = Engine(lambda: MemoryUnitOfWork(store), clock=clock)
    engine.place_order(
        Order(
            id="o1",
            shop="s1",
            buyer="b1",
            total=5000,
            items=(
                Item(line="A", sku="A", unit_price=3000),
                Item(line="B", sku="B", unit_price=2000),
            ),
            created_at=T0,
            paid_at=T0,
        )
    )

    def act(action: str, actor: str, target: dict[str, str], **params: Any) -> Any:
        return engine.execute(engine.build(action, actor=actor, target=target, params=params))

    for case_id, line, amount in (("c1", "A", 3000), ("c2", "B", 2000)):
        target = {"order_id": "o1", "case_id": case_id}
        act(
            "apply",
            "buyer:b1",
            target,
            kind="refund_only",
            reason="out_of_stock",
            amount=amount,
            lines=[{"line": line}],
        )
        clock.advance(DAY)
    clock.advance(3 * DAY + timedelta(hours=1))  # c1's seller_respond (5d) has passed

    act("agree", "seller:s1", {"case_id": "c2"})

    first = engine.case("c1")
    assert first.status == CaseStatus.REFUNDED and first.resolved_by == "system"
    assert first.resolved_at == T0 + 5 * DAY  # stamped with its due time, before c2's agreement
    assert engine.order("o1").status == OrderStatus.CLOSED
