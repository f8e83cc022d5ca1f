"""Issue 4 rules: 三包 periods, agent reopening, no-reason refusals, business-day calendars."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shouhou.domain import commands as c
from shouhou.domain import orders
from shouhou.domain.deadlines import schedule
from shouhou.domain.model import (
    PLATFORM,
    Actor,
    CaseKind,
    CaseStatus,
    NoReasonReturn,
    Phase,
    Reason,
    ReceiptCondition,
    Role,
)
from shouhou.domain.rules import DeadlineContext
from shouhou.domain.values import SHANGHAI
from shouhou.errors import Forbidden, Invalid, NotAllowed, NotEligible, PolicyError
from shouhou.policy.calendar import add_business_days
from shouhou.policy.loader import parse_pack
from shouhou.policy.rulebook import Rulebook

T0 = datetime(2023, 3, 1, 10, 0, tzinfo=SHANGHAI)
D = timedelta(days=1)
AGENT = Actor(role=Role.AGENT, id="a1")
SANBAO = (("return", 7 * D), ("exchange", 15 * D), ("repair", 365 * D))
PACK = Path(__file__).parents[2] / "src" / "shouhou" / "policy" / "packs" / "tmall-standard.yaml"
Desk = Any


def sanbao_desk(desk_for: Any) -> Desk:
    """三包 goods delivered at T0 - 1d whose trade succeeded at T0."""
    return desk_for("trade_success", sanbao=SANBAO)


# --- 三包 ----------------------------------------------------------------------------------


def test_sanbao_goods_take_a_repair_long_after_the_fifteen_day_window(desk_for: Any) -> None:
    desk = sanbao_desk(desk_for)
    case = desk.apply(T0 + 100 * D, kind=CaseKind.REPAIR, reason=Reason.QUALITY)
    assert (case.phase, case.status) == (Phase.AFTER_SALE, CaseStatus.AWAITING_SELLER)


@pytest.mark.parametrize("kind", list(CaseKind))
def test_sanbao_goods_keep_the_fifteen_day_window_for_every_kind(
    desk_for: Any, kind: CaseKind
) -> None:
    desk = sanbao_desk(desk_for)  # the 三包 return period ended at T0 + 6d
    last_second = T0 + 15 * D - timedelta(seconds=1)
    assert desk.apply(last_second, kind=kind, reason=Reason.QUALITY).kind == kind


@pytest.mark.parametrize(
    ("kind", "days_after_delivery", "allowed"),
    [
        (CaseKind.RETURN_REFUND, 17, False),
        (CaseKind.EXCHANGE, 17, False),
        (CaseKind.REPAIR, 364, True),
        (CaseKind.REPAIR, 366, False),
    ],
)
def test_past_the_window_sanbao_periods_count_from_delivery_per_kind(
    desk_for: Any, kind: CaseKind, days_after_delivery: int, allowed: bool
) -> None:
    desk = sanbao_desk(desk_for)
    at = desk.order.delivered_at + days_after_delivery * D
    if allowed:
        assert desk.apply(at, kind=kind, reason=Reason.QUALITY).kind == kind
    else:
        with pytest.raises(NotEligible) as err:
            desk.apply(at, kind=kind, reason=Reason.QUALITY)
        assert err.value.rule == "tmall-standard/sanbao_periods"


def test_a_sanbao_period_ends_at_delivery_plus_the_period_exactly(desk_for: Any) -> None:
    desk = sanbao_desk(desk_for)
    ends = desk.order.delivered_at + 365 * D
    assert desk.apply(ends - timedelta(seconds=1), kind=CaseKind.REPAIR, reason=Reason.QUALITY)
    desk.act(c.Withdraw, ends - timedelta(seconds=1))
    with pytest.raises(NotEligible) as err:
        desk.apply(ends, kind=CaseKind.REPAIR, reason=Reason.QUALITY, case_id="c2")
    assert err.value.rule == "tmall-standard/sanbao_periods"


def test_sanbao_goods_take_no_refund_only_past_the_window(desk_for: Any) -> None:
    desk = sanbao_desk(desk_for)
    with pytest.raises(NotEligible) as err:
        desk.apply(T0 + 16 * D, kind=CaseKind.REFUND_ONLY, reason=Reason.QUALITY)
    assert err.value.rule == "tmall-standard/sanbao_periods"


def test_modifying_to_a_kind_whose_sanbao_period_closed_is_refused(desk_for: Any) -> None:
    desk = sanbao_desk(desk_for)
    desk.apply(T0 + 30 * D, kind=CaseKind.REPAIR, reason=Reason.QUALITY)
    with pytest.raises(NotEligible):
        desk.act(c.Modify, T0 + 31 * D, kind=CaseKind.RETURN_REFUND)


# --- reopen ----------------------------------------------------------------------------


def reopen(desk: Desk, at: datetime, by: Actor = AGENT, note: str = "checked the invoice") -> None:
    cmd = c.Reopen(actor=by, order_id=desk.order.id, note=note)
    desk.order = orders.fold(desk.order, orders.decide(desk.order, cmd, rules=desk.rules, now=at))


def test_an_agent_reopens_a_closed_after_sales_window_for_fifteen_days(desk_for: Any) -> None:
    desk = desk_for("trade_success")
    late = T0 + 40 * D
    with pytest.raises(NotEligible):
        desk.apply(late, kind=CaseKind.RETURN_REFUND, reason=Reason.QUALITY)
    reopen(desk, late)
    assert desk.order.reopened_until == late + 15 * D
    assert desk.apply(late + D, kind=CaseKind.RETURN_REFUND, reason=Reason.QUALITY).phase == (
        Phase.AFTER_SALE
    )


def test_a_reopened_window_closes_at_its_end_instant(desk_for: Any) -> None:
    desk = desk_for("trade_success")
    reopen(desk, T0 + 40 * D)
    with pytest.raises(NotEligible):
        desk.apply(T0 + 55 * D, kind=CaseKind.RETURN_REFUND, reason=Reason.QUALITY)


def test_a_reopened_window_closes_again(desk_for: Any) -> None:
    desk = desk_for("trade_success")
    reopen(desk, T0 + 40 * D)
    with pytest.raises(NotEligible):
        desk.apply(T0 + 56 * D, kind=CaseKind.RETURN_REFUND, reason=Reason.QUALITY)


@pytest.mark.parametrize("who", [Actor(role=Role.BUYER, id="b1"), PLATFORM])
def test_only_an_agent_may_reopen(desk_for: Any, who: Actor) -> None:
    with pytest.raises(Forbidden):
        reopen(desk_for("trade_success"), T0 + 40 * D, by=who)


def test_reopening_needs_a_note_of_what_was_checked(desk_for: Any) -> None:
    with pytest.raises(Invalid):
        reopen(desk_for("trade_success"), T0 + 40 * D, note="  ")


def test_reopening_an_order_before_trade_success_is_not_allowed(desk_for: Any) -> None:
    with pytest.raises(NotAllowed):
        reopen(desk_for("delivered"), T0)


# --- no-reason returns -----------------------------------------------------------------


def test_a_no_reason_request_before_trade_success_cannot_be_refused(desk_for: Any) -> None:
    desk = desk_for("delivered")
    desk.apply(T0, kind=CaseKind.RETURN_REFUND, reason=Reason.NO_REASON)
    with pytest.raises(NotEligible) as err:
        desk.act(c.Refuse, T0 + D, reason="changed mind is no reason")
    assert err.value.rule == "tmall-standard/no_reason_refusal_after_sale_only"


def test_a_no_reason_request_after_trade_success_may_be_refused(desk_for: Any) -> None:
    desk = desk_for("trade_success", at=T0)
    desk.apply(T0 + D, kind=CaseKind.RETURN_REFUND, reason=Reason.NO_REASON)
    assert desk.act(c.Refuse, T0 + 2 * D, reason="opened and used").status == (
        CaseStatus.SELLER_REFUSED
    )


def returned_no_reason(desk_for: Any, goods: NoReasonReturn) -> Desk:
    desk = desk_for("delivered", no_reason_return=goods)
    desk.apply(T0, kind=CaseKind.RETURN_REFUND, reason=Reason.NO_REASON)
    desk.act(c.Agree, T0 + D)
    desk.act(c.ShipReturn, T0 + 2 * D, carrier="SF", waybill="SF1")
    return desk


@pytest.mark.parametrize(
    "params",
    [{}, {"condition": ReceiptCondition.WASHED}, {"evidence": ("photo.jpg",)}],
    ids=["nothing", "no evidence", "no condition"],
)
def test_refusing_a_no_reason_return_at_receipt_needs_condition_and_evidence(
    desk_for: Any, params: dict[str, Any]
) -> None:
    desk = returned_no_reason(desk_for, NoReasonReturn.ELIGIBLE)
    with pytest.raises(Invalid):
        desk.act(c.RefuseReceipt, T0 + 3 * D, reason="washed", **params)


def test_a_second_sale_affected_with_evidence_sends_the_case_back_to_the_buyer(
    desk_for: Any,
) -> None:
    desk = returned_no_reason(desk_for, NoReasonReturn.ELIGIBLE)
    case = desk.act(
        c.RefuseReceipt,
        T0 + 3 * D,
        reason="tags cut",
        condition=ReceiptCondition.TAGS_CUT,
        evidence=("tag.jpg",),
    )
    assert case.status == CaseStatus.SELLER_REFUSED
    assert case.deadline is not None and case.deadline.name == "buyer_respond_after_refusal"
    refused = desk.timelines["c1"][-3]
    assert (refused.condition, refused.evidence) == (ReceiptCondition.TAGS_CUT, ("tag.jpg",))


@pytest.mark.parametrize(
    ("goods", "allowed"),
    [(NoReasonReturn.ELIGIBLE_UNOPENED, True), (NoReasonReturn.ELIGIBLE, False)],
)
def test_opened_packaging_counts_only_for_goods_returnable_unopened(
    desk_for: Any, goods: NoReasonReturn, allowed: bool
) -> None:
    desk = returned_no_reason(desk_for, goods)
    refuse = {
        "reason": "seal broken",
        "condition": ReceiptCondition.OPENED,
        "evidence": ("seal.jpg",),
    }
    if allowed:
        assert desk.act(c.RefuseReceipt, T0 + 3 * D, **refuse).status == CaseStatus.SELLER_REFUSED
    else:
        with pytest.raises(NotEligible) as err:
            desk.act(c.RefuseReceipt, T0 + 3 * D, **refuse)
        assert err.value.rule == "tmall-standard/no_reason_second_sale"


def test_a_quality_return_is_refused_at_receipt_without_a_second_sale_condition(
    desk_for: Any,
) -> None:
    desk = desk_for("delivered")
    desk.apply(T0, kind=CaseKind.RETURN_REFUND, reason=Reason.QUALITY)
    desk.act(c.Agree, T0 + D)
    desk.act(c.ShipReturn, T0 + 2 * D, carrier="SF", waybill="SF1")
    assert desk.act(c.RefuseReceipt, T0 + 3 * D, reason="no defect found").status == (
        CaseStatus.SELLER_REFUSED
    )


# --- exchange amounts ------------------------------------------------------------------


def test_an_exchange_without_an_amount_is_worth_what_is_still_refundable(desk_for: Any) -> None:
    desk = desk_for("delivered")
    case = desk.apply(T0, kind=CaseKind.EXCHANGE, reason=Reason.QUALITY, amount=0)
    assert case.requested_amount == desk.order.total
    desk.act(c.Agree, T0 + D)
    desk.act(c.ShipReturn, T0 + 2 * D, carrier="SF", waybill="SF1")
    desk.act(c.ConfirmReceipt, T0 + 3 * D)
    refunded = desk.timeout()
    assert (refunded.status, refunded.refund_amount) == (CaseStatus.REFUNDED, desk.order.total)


# --- business-day calendars ------------------------------------------------------------


def test_business_days_skip_national_day_and_count_its_make_up_saturday() -> None:
    # 2025: 1–8 October off; Saturday 11 October is a make-up working day (调休).
    start = datetime(2025, 9, 30, 10, 0, tzinfo=SHANGHAI)
    assert add_business_days(start, 3) == datetime(2025, 10, 11, 10, 0, tzinfo=SHANGHAI)


def test_a_make_up_sunday_is_a_working_day() -> None:
    friday = datetime(2025, 9, 26, 18, 0, tzinfo=SHANGHAI)
    assert add_business_days(friday, 1) == datetime(2025, 9, 28, 18, 0, tzinfo=SHANGHAI)


def test_a_year_without_calendar_data_is_a_clear_policy_error() -> None:
    with pytest.raises(PolicyError, match="no data for"):
        add_business_days(datetime(2099, 1, 1, tzinfo=SHANGHAI), 1)


def business_pack(seller_respond: str = "3d") -> Rulebook:
    text = PACK.read_text(encoding="utf-8").replace("calendar: natural", "calendar: business")
    text = text.replace("name: tmall-standard", "name: tmall-business")
    text = text.replace("    duration: 5d\n", f"    duration: {seller_respond}\n", 1)
    text = text.replace("{normal: 72h,", "{normal: 3d,")
    return Rulebook(parse_pack(text, "business"))


def test_a_rulebook_may_count_its_deadlines_in_working_days() -> None:
    rules = business_pack()
    start = datetime(2025, 9, 30, 10, 0, tzinfo=SHANGHAI)
    ctx = DeadlineContext(
        name="seller_respond", start_event="applied", start_at=start, kind=CaseKind.REFUND_ONLY
    )
    rule = rules.deadline(ctx)
    assert rule.calendar == "business"
    assert rules.due_at(rule, start) == datetime(2025, 10, 11, 10, 0, tzinfo=SHANGHAI)
    # and a deadline scheduled under it falls there, not three natural days on
    scheduled = schedule(rules, ctx)
    assert scheduled.due_at == datetime(2025, 10, 11, 10, 0, tzinfo=SHANGHAI)
    assert scheduled.duration == scheduled.due_at - start


def test_natural_days_stay_the_default(rules: Rulebook) -> None:
    start = datetime(2025, 9, 30, 10, 0, tzinfo=SHANGHAI)
    ctx = DeadlineContext(
        name="seller_respond", start_event="applied", start_at=start, kind=CaseKind.REFUND_ONLY
    )
    rule = rules.deadline(ctx)
    assert rule.calendar == "natural"
    assert rules.due_at(rule, start) == start + 5 * D


def test_working_day_deadlines_must_be_whole_days() -> None:
    with pytest.raises(PolicyError, match="whole days"):
        business_pack(seller_respond="36h")
