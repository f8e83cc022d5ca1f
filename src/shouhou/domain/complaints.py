"""Rule complaints (规则类投诉, SPEC §6, seed Ⅲ 三): filed straight to an agent, one per order.

A complaint may be filed only when its subtype's condition holds (a case with the matching
reason, before payment, after payment, or after an unshipped ``ship_by``); the buyer may
withdraw it until it is ruled and never file again on that order. An upheld complaint writes
its penalty points to the shop's ledger; an upheld late-shipment complaint compensates the
buyer instead (SPEC §7), once per order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from shouhou.domain import commands as c
from shouhou.domain import compensation
from shouhou.domain import events as e
from shouhou.domain.model import (
    Case,
    Complaint,
    ComplaintStatus,
    Order,
    OrderStatus,
    Role,
    evolve,
    on_behalf_hint,
)
from shouhou.domain.rules import ComplaintRule, Rules
from shouhou.errors import Forbidden, Invalid, NotAllowed, NotEligible

#: How long an order awaiting payment takes a refused-before-payment complaint (seed Ⅲ).
BEFORE_PAYMENT_WINDOW = timedelta(hours=72)


def apply(complaint: Complaint | None, event: e.Event) -> Complaint:
    match event:
        case e.ComplaintFiled():
            return Complaint(
                id=event.complaint_id,
                order_id=event.order_id,
                shop=event.shop,
                buyer=event.buyer,
                type=event.type,
                subtype=event.subtype,
                case_id=event.case_id,
                points=event.points,
                rule_id=event.rule_id,
                filed_at=event.at,
            )
    assert complaint is not None
    match event:
        case e.ComplaintWithdrawn():
            return evolve(complaint, status=ComplaintStatus.WITHDRAWN)
        case e.ComplaintRuled():
            return evolve(
                complaint,
                status=ComplaintStatus(event.decision),
                ruled_at=event.at,
                decision_reason=event.reason,
            )
        case e.CompensationAwarded():
            return evolve(complaint, compensation=event.compensation)
    return complaint


def fold(complaint: Complaint | None, events: Sequence[e.Event]) -> Complaint:
    state = complaint
    for event in events:
        state = apply(state, event)
    assert state is not None
    return state


def file(
    cmd: c.FileComplaint,
    *,
    order: Order,
    cases: Sequence[Case],
    existing: Complaint | None,
    rules: Rules,
    now: datetime,
) -> list[e.Event]:
    """File a complaint on ``order``; ``existing`` is the order's earlier complaint, if any."""
    if cmd.actor.role != Role.BUYER or cmd.actor.id != order.buyer:
        hint = on_behalf_hint(cmd.actor, [Role.BUYER])
        raise Forbidden(f"only the buyer of order {order.id} may complain about it{hint}")
    one = rules.limit("complaint_one_per_order")
    if existing is not None:
        why = (
            "was withdrawn and can't be filed again"
            if (existing.status == ComplaintStatus.WITHDRAWN)
            else "exists"
        )
        raise NotEligible(f"order {order.id}'s complaint {existing.id} {why}", rule=one.rule_id)
    rule = rules.complaint(cmd.type, cmd.subtype)
    if rule is None:
        raise Invalid(f"unknown complaint {cmd.type}/{cmd.subtype}")
    case = _check_condition(rule, cmd, order, cases, now)
    return [
        e.ComplaintFiled(
            at=now,
            actor=str(cmd.actor),
            complaint_id=cmd.complaint_id,
            order_id=order.id,
            shop=order.shop,
            buyer=order.buyer,
            type=cmd.type,
            subtype=cmd.subtype,
            case_id=case.id if case else None,
            rule_id=rule.rule_id,
            points=rule.points,
        )
    ]


def _check_condition(
    rule: ComplaintRule, cmd: c.FileComplaint, order: Order, cases: Sequence[Case], now: datetime
) -> Case | None:
    def refuse(why: str, allowed_from: datetime | None = None) -> NotEligible:
        return NotEligible(
            f"{rule.type}/{rule.subtype}: {why}", rule=rule.rule_id, allowed_from=allowed_from
        )

    match rule.when:
        case "case_reason":
            matching = [
                k
                for k in cases
                if k.reason == rule.case_reason and (cmd.case_id is None or k.id == cmd.case_id)
            ]
            if not matching:
                assert rule.case_reason is not None
                raise refuse(f"needs a case of reason {rule.case_reason.value} on the order")
            return matching[-1]
        case "before_payment":
            waiting = order.status == OrderStatus.AWAITING_PAYMENT and (
                now < order.created_at + BEFORE_PAYMENT_WINDOW
            )
            closed_unpaid = order.status == OrderStatus.CLOSED and order.paid_at is None
            # within 72h: like a deadline, the limit is passed at the 72nd hour itself
            if not (waiting or closed_unpaid):
                raise refuse("only while awaiting payment (72h) or after the order closed unpaid")
        case "after_payment":
            if order.paid_at is None:
                raise refuse("only after payment")
        case "ship_by_missed":
            if order.paid_at is None or not order.late:
                pending = order.shipped_at is None and order.ship_by and now < order.ship_by
                raise refuse(
                    "only once the ship-by deadline passed unshipped",
                    order.ship_by if pending else None,
                )
    return None


def withdraw(complaint: Complaint, cmd: c.WithdrawComplaint, now: datetime) -> list[e.Event]:
    if cmd.actor.role != Role.BUYER or cmd.actor.id != complaint.buyer:
        hint = on_behalf_hint(cmd.actor, [Role.BUYER])
        raise Forbidden(f"only the buyer may withdraw complaint {complaint.id}{hint}")
    if complaint.status != ComplaintStatus.FILED:
        raise NotAllowed(f"can't withdraw a complaint that is {complaint.status.value}")
    return [e.ComplaintWithdrawn(at=now, actor=str(cmd.actor))]


def rule_on(
    complaint: Complaint,
    cmd: c.RuleComplaint,
    *,
    order: Order,
    compensated: bool,
    rules: Rules,
    now: datetime,
) -> list[e.Event]:
    """An agent's decision; upheld: penalty points, or compensation for a late shipment."""
    if cmd.actor.role != Role.AGENT:
        raise Forbidden("only an agent may rule on a complaint")
    if complaint.status != ComplaintStatus.FILED:
        raise NotAllowed(f"can't rule on a complaint that is {complaint.status.value}")
    if not cmd.reason.strip():
        raise Invalid("a ruling needs a written reason")
    who = str(cmd.actor)
    events: list[e.Event] = [
        e.ComplaintRuled(at=now, actor=who, decision=cmd.decision.value, reason=cmd.reason)
    ]
    if cmd.decision != c.ComplaintDecision.UPHELD:
        return events
    rule = rules.complaint(complaint.type, complaint.subtype)
    assert rule is not None
    if rule.points:
        events.append(
            e.PenaltyRecorded(
                at=now,
                actor=who,
                shop=complaint.shop,
                points=rule.points,
                complaint_id=complaint.id,
                case_id=complaint.case_id,
                rule_id=rule.rule_id,
                order_id=complaint.order_id,
            )
        )
    if rule.compensates and not compensated and not order.compensated:
        goods = max(0, order.total - order.shipping_fee - order.refunded - order.withheld)
        owed = compensation.amount_for(goods, rules)
        awarded = compensation.award(complaint.buyer, complaint.shop, order.id, owed, now)
        if awarded is not None:
            events.append(awarded)
    return events
