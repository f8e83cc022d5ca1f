"""Applications (SPEC §1): who may apply, when a window is open, and what may be asked for.

The checks here refuse an application, or a modification of one, that the order and the
rules in force do not allow: the after-sales window and 三包 periods, one open case per line
(and the other limits, counted per line), the reason's kinds, the amount its lines can still
refund, and the no-reason return window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta

from shouhou.domain import commands as c
from shouhou.domain import events as e
from shouhou.domain import lines
from shouhou.domain.model import (
    Actor,
    CaseKind,
    CaseLine,
    NoReasonReturn,
    Order,
    OrderStatus,
    Phase,
    Reason,
    Role,
    on_behalf_hint,
)
from shouhou.domain.rules import Rules
from shouhou.domain.values import SHANGHAI, local
from shouhou.errors import Forbidden, Invalid, NotAllowed, NotEligible

GOODS_SENT = frozenset({OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.TRADE_SUCCESS})
IN_SALE_ORDER = frozenset({OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED})


def applied(cmd: c.Apply, *, order: Order, rules: Rules, now: datetime) -> e.Applied:
    """The event opening the case ``cmd`` applies for; raises the refusal when it may not."""
    actor = cmd.actor
    check_applicant(actor)
    if actor.id != order.buyer:
        raise Forbidden(f"buyer {actor.id} did not place order {order.id}")
    if cmd.case_id is None:
        raise Invalid("apply needs a case id")
    phase = application_phase(order, cmd.kind, rules, now)
    wanted = lines.requested(order, cmd.lines)
    check_lines(order, wanted, rules)
    amount = requested(order, cmd.kind, cmd.amount, wanted)
    check_request(order, cmd.kind, cmd.reason, amount, rules, wanted)
    check_no_reason(order, cmd.reason, rules, now)
    return e.Applied(
        at=now,
        actor=str(actor),
        case_id=cmd.case_id,
        order_id=order.id,
        shop=order.shop,
        buyer=order.buyer,
        kind=cmd.kind,
        phase=phase,
        reason=cmd.reason,
        amount=amount,
        note=cmd.note,
        lines=wanted,
    )


def check_applicant(actor: Actor) -> None:
    """Refuse, before anything else, a role that never applies (SPEC §1 error order)."""
    if actor.role != Role.BUYER:
        raise Forbidden("only the buyer may apply" + on_behalf_hint(actor, [Role.BUYER]))


#: Which 三包 period (SPEC §1 ``sanbao``) covers each kind of after-sales request.
SANBAO_PERIODS: dict[CaseKind, str] = {
    CaseKind.RETURN_REFUND: "return",
    CaseKind.EXCHANGE: "exchange",
    CaseKind.REPAIR: "repair",
}


def application_phase(order: Order, kind: CaseKind, rules: Rules, now: datetime) -> Phase:
    """The phase an application made now falls in; refuse when no window is open for it."""
    if order.status in IN_SALE_ORDER:
        return Phase.IN_SALE
    if order.status != OrderStatus.TRADE_SUCCESS:
        raise NotAllowed(f"can't apply when the order is {order.status.value}")
    check_after_sale_window(order, kind, rules, now)
    return Phase.AFTER_SALE


def check_after_sale_window(order: Order, kind: CaseKind, rules: Rules, now: datetime) -> None:
    """After trade success: 15 days (seed Ⅲ, Ⅵ 「超出期限的, 维权通道关闭。除非, 该商品属于三包
    产品」); past them 三包 goods stay open for the kinds whose period, counted from delivery,
    still runs; an agent's reopening opens the window again for a while. Each closes at its
    end instant exactly: an application stamped then is refused, as a deadline is passed at
    ``due_at`` (SPEC §2)."""
    assert order.trade_success_at is not None
    window = rules.limit("after_sale_window")
    assert isinstance(window.value, timedelta)
    closes = order.trade_success_at + window.value
    if now < closes:
        return
    if order.reopened_until is not None and now < order.reopened_until:
        return
    if order.reopened_until is not None:
        closes = max(closes, order.reopened_until)
    if not order.sanbao:
        raise NotEligible(
            f"the after-sales window of order {order.id} closed at {local(closes).isoformat()}",
            rule=window.rule_id,
        )
    periods = dict(order.sanbao)
    name = SANBAO_PERIODS.get(kind)
    rule = rules.limit("sanbao_periods")
    if name is None or name not in periods:
        covered = ", ".join(sorted(periods)) or "none"
        raise NotEligible(
            f"三包 goods: after the 15-day window only {covered} stay open, not {kind.value}",
            rule=rule.rule_id,
        )
    start = order.delivered_at or order.trade_success_at
    ends = start + periods[name]
    if now >= ends:
        when = local(ends).isoformat()
        raise NotEligible(
            f"三包 goods: the {name} period of order {order.id} closed at {when}",
            rule=rule.rule_id,
        )


def check_lines(order: Order, wanted: Sequence[CaseLine], rules: Rules) -> None:
    """The application limits of SPEC §2, line by line: one open case per line, at most so
    many cases per line, none after a case of the line closed on the buyer's timeout."""
    limit = rules.limit("max_cases_per_order")
    for want in wanted:
        line = lines.find(order, want.line)
        if line.open_case is not None:
            rule = rules.limit("one_open_case")
            raise NotEligible(
                f"order {order.id} already has an open case {line.open_case} on line {line.line}",
                rule=rule.rule_id,
            )
        if line.no_reapply_rule is not None:
            raise NotEligible(
                f"line {line.line} of order {order.id} had a case closed on the buyer's timeout;"
                " no new application",
                rule=line.no_reapply_rule,
            )
        if line.cases >= int(limit.value):  # type: ignore[arg-type]
            raise NotEligible(
                f"line {line.line} of order {order.id} already had {line.cases} cases"
                f" (limit {limit.value})",
                rule=limit.rule_id,
            )


def requested(order: Order, kind: CaseKind, amount: int, wanted: Sequence[CaseLine]) -> int:
    """The amount a request is worth: for an exchange or repair, 0 means what its lines can
    still refund (what a failed exchange or repair refunds)."""
    if amount == 0 and kind in (CaseKind.EXCHANGE, CaseKind.REPAIR):
        return lines.refundable(order, wanted)
    return amount


def check_request(
    order: Order,
    kind: CaseKind,
    reason: Reason,
    amount: int,
    rules: Rules,
    wanted: Sequence[CaseLine],
) -> None:
    """Refuse a kind, reason or amount the order and the rulebook do not allow."""
    reason_rule = rules.reason(reason)
    if kind not in reason_rule.kinds:
        kinds = ", ".join(sorted(k.value for k in reason_rule.kinds))
        raise Invalid(f"reason {reason.value} allows only: {kinds}", rule=reason_rule.rule_id)
    if kind != CaseKind.REFUND_ONLY and order.status not in GOODS_SENT:
        rule = rules.limit("returns_need_shipment")
        raise NotEligible(f"{kind.value} needs goods that were shipped", rule=rule.rule_id)
    refundable = lines.refundable(order, wanted)
    if amount <= 0:
        raise Invalid("amount must be more than 0.00")
    if amount > refundable:
        named = ", ".join(want.line for want in wanted) or "none"
        raise Invalid(
            f"amount {amount} fen is more than the {refundable} fen still refundable on "
            f"order {order.id} (lines: {named}, with the shipping left)"
        )


def check_no_reason(order: Order, reason: Reason, rules: Rules, now: datetime) -> None:
    """No-reason returns: refused for ineligible goods, and after day 7 counted from the day
    after delivery (Asia/Shanghai), the window ending at the end of day 7 (SAIC Order 90)."""
    if reason != Reason.NO_REASON:
        return
    if order.no_reason_return == NoReasonReturn.INELIGIBLE:
        rule = rules.limit("no_reason_ineligible_goods")
        raise NotEligible(
            f"the goods of order {order.id} are not eligible for no-reason returns",
            rule=rule.rule_id,
        )
    received = order.delivered_at or order.trade_success_at  # 签收, or receipt confirmed
    if received is None:
        return
    window = rules.limit("no_reason_window")
    assert isinstance(window.value, timedelta)
    delivery_day = local(received).date()
    first_day = datetime.combine(delivery_day, time(0), tzinfo=SHANGHAI) + timedelta(days=1)
    closes = first_day + window.value
    if now >= closes:
        raise NotEligible(
            f"the no-reason window of order {order.id} closed at {local(closes).isoformat()}",
            rule=window.rule_id,
        )
