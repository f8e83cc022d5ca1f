"""The case aggregate: ``decide(case, command, ...) -> events`` and ``apply(case, event)``.

Decisions are pure: they take the order, the rules in force and ``now``, and return the
events that record what happened, ending with the status change and the new deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, time, timedelta
from functools import reduce

from shouhou.domain import commands as c
from shouhou.domain import compensation, intervention, servicelog, transitions
from shouhou.domain import events as e
from shouhou.domain.deadlines import fired as fired_event
from shouhou.domain.deadlines import is_due, schedule
from shouhou.domain.model import (
    Actor,
    Case,
    CaseKind,
    CaseStatus,
    ClosedReason,
    Deadline,
    Liable,
    Mark,
    NoReasonReturn,
    Order,
    OrderStatus,
    Phase,
    Reason,
    ReceiptCondition,
    Remedy,
    RemedyType,
    Role,
    RulingOutcome,
    Shipment,
    ShippingMethod,
    Stage,
    evolve,
)
from shouhou.domain.outcome import Fresh, Outcome, refunded
from shouhou.domain.rules import DeadlineContext, Rules
from shouhou.domain.values import SHANGHAI, local
from shouhou.errors import Forbidden, Invalid, NotAllowed, NotEligible, TransitionNotAllowed

S = CaseStatus
GOODS_SENT = frozenset({OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.TRADE_SUCCESS})
IN_SALE_ORDER = frozenset({OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED})

#: Which case fact each event records, for holiday triggers and deadline starts.
MARKS: dict[type[e.Event], str] = {
    e.Applied: "applied",
    e.Modified: "modified",
    e.Refused: "seller_refused",
    e.ReceiptRefused: "seller_refused",
    e.Agreed: "seller_agreed",
    e.Intercepted: "intercepted",
    e.ReturnShipped: "return_shipped",
    e.ReceiptConfirmed: "receipt_confirmed",
    e.RemedyAccepted: "remedy_accepted",
    e.Reshipped: "reshipped",
    e.InterventionRequested: "intervention_requested",
    e.EvidenceCompleted: "evidence_completed",
}


Handler = Callable[[Case, c.Command, Order, Rules, datetime], Outcome]


# --- apply -------------------------------------------------------------------------------


def open_case(event: e.Applied) -> Case:
    return Case(
        id=event.case_id,
        order_id=event.order_id,
        shop=event.shop,
        buyer=event.buyer,
        kind=event.kind,
        phase=event.phase,
        reason=event.reason,
        requested_amount=event.amount,
        opened_at=event.at,
        marks=(Mark(event="applied", at=event.at),),
    )


def apply(case: Case, event: e.Event) -> Case:
    """``case`` after ``event``; pure."""
    mark = MARKS.get(type(event))
    if mark is not None and not isinstance(event, e.Applied):
        case = evolve(case, marks=(*case.marks, Mark(event=mark, at=event.at)))
    match event:  # the commonest first: each arm is an isinstance check
        case e.DeadlineSet():
            return evolve(case, deadline=event.deadline)
        case e.StatusChanged():
            status = CaseStatus(event.target)
            if status == S.IN_INTERVENTION:
                return evolve(case, status=status)
            return evolve(case, status=status, stage=None, suspended=None)
        case e.Modified():
            return evolve(
                case,
                kind=event.kind,
                reason=event.reason,
                requested_amount=event.amount,
                modifications=case.modifications + 1,
                remedy=None,
            )
        case e.Agreed():
            return evolve(case, return_address=event.return_address)
        case e.ReturnShipped():
            return evolve(case, return_shipment=event.shipment)
        case e.RemedyProposed():
            return evolve(case, remedy=event.remedy)
        case e.RemedyAccepted():
            return evolve(case, remedy=None, outcome=event.remedy)
        case e.RemedyDeclined():
            return evolve(case, remedy=None)
        case e.Reshipped():
            return evolve(case, reshipment=event.shipment)
        case e.Refunded():
            resolved = _resolved(case, event, event.rule_id, refund_amount=event.amount)
            return evolve(resolved, freight=event.freight or case.freight)
        case e.InterventionRequested():
            return evolve(case, suspended=event.suspended, stage=Stage.EVIDENCE)
        case e.EvidenceSubmitted():
            others = tuple(ev for ev in case.evidence if ev.party != event.evidence.party)
            return evolve(case, evidence=(*others, event.evidence))
        case e.StageChanged():
            return evolve(case, stage=event.stage)
        case e.CompensationAwarded():
            return evolve(case, compensation=event.compensation)
        case e.CaseNoted():
            return evolve(case, notes=(*case.notes, event.note))
        case e.CaseClassified():
            return evolve(case, classification=event.classification)
        case e.Ruled():
            return evolve(
                case,
                liable=event.liable.value,
                freight=event.freight,
                ruling_reason=event.reason,
                ruled_outcome=event.outcome,
            )
        case e.Completed():
            return _resolved(case, event, event.rule_id)
        case e.Closed():
            return _resolved(case, event, event.rule_id, closed_reason=event.reason)
    return case


def _resolved(
    case: Case,
    event: e.Event,
    rule_id: str | None,
    *,
    refund_amount: int = 0,
    closed_reason: ClosedReason | None = None,
) -> Case:
    return evolve(
        case,
        refund_amount=refund_amount,
        closed_reason=closed_reason,
        resolved_at=event.at,
        resolution_rule=rule_id,
        resolved_by=event.actor,
        remedy=None,
    )


def replay(events: Iterable[e.Event]) -> Case:
    """Rebuild a case from its whole timeline (the first event must be ``Applied``)."""
    stream = iter(events)
    first = next(stream)
    if not isinstance(first, e.Applied):
        raise ValueError("a case timeline starts with Applied")
    return reduce(apply, stream, open_case(first))


def fold(case: Case, events: Iterable[e.Event]) -> Case:
    return reduce(apply, events, case)


# --- decide ------------------------------------------------------------------------------


def decide(
    case: Case | None, cmd: c.Command, *, order: Order, rules: Rules, now: datetime
) -> list[e.Event]:
    """The events that carrying out ``cmd`` at ``now`` produces; raises a refusal otherwise."""
    if isinstance(cmd, c.Apply):
        if case is not None:
            raise NotAllowed(f"case {case.id} already exists", case=case.id)
        return decide_apply(cmd, order=order, rules=rules, now=now)
    if case is None:
        raise Invalid(f"{cmd.action} needs an existing case")
    return step(case, cmd, order=order, rules=rules, now=now)[0]


def step(
    case: Case, cmd: c.Command, *, order: Order, rules: Rules, now: datetime
) -> tuple[list[e.Event], Case]:
    """:func:`decide` on an existing case, with the case after the events: deciding folds
    them anyway (the next deadline depends on the new state), so saving need not again."""
    if cmd.action in servicelog.ACTIONS:
        events = servicelog.decide(case, cmd, now)
        return events, fold(case, events)
    row = transitions.find(case.status, cmd.action, case=case.id)
    authorize(case, row.actors, cmd.actor, cmd.action)
    if case.status == S.IN_INTERVENTION:
        transitions.check_stage(case.stage, cmd.action, cmd.actor.role, case=case.id)
    outcome = HANDLERS[cmd.action](case, cmd, order, rules, now)
    return finish(case, row, outcome, order=order, rules=rules, now=now)


def authorize(case: Case, actors: frozenset[Role], actor: Actor, action: str) -> None:
    """Refuse with ``forbidden`` unless ``actor`` is a party allowed to take ``action``."""
    role = actor.role
    if role == Role.PLATFORM and actors & {Role.BUYER, Role.SELLER}:
        return
    if role not in actors:
        allowed = " or ".join(sorted(a.value for a in actors))
        raise Forbidden(f"only the {allowed} may {action}", case=case.id)
    if role == Role.BUYER and actor.id != case.buyer:
        raise Forbidden(f"buyer {actor.id} is not the buyer of case {case.id}", case=case.id)
    if role == Role.SELLER and actor.id != case.shop:
        raise Forbidden(f"seller {actor.id} does not own shop {case.shop}", case=case.id)


def finish(
    case: Case,
    row: transitions.Transition,
    outcome: Outcome,
    *,
    order: Order,
    rules: Rules,
    now: datetime,
) -> tuple[list[e.Event], Case]:
    """Check the move against the table, then add the status change and the new deadline;
    the events, and the case after them."""
    if outcome.target not in row.targets:
        raise TransitionNotAllowed(
            f"{row.action} can't lead from {case.status.value} to {outcome.target.value}",
            case=case.id,
            status=case.status,
        )
    events = list(outcome.events)
    for refund in [ev for ev in events if isinstance(ev, e.Refunded)]:
        ruled = next((ev.liable.value for ev in events if isinstance(ev, e.Ruled)), None)
        awarded = compensation.on_refund(case, order, rules, refund, row.action, ruled)
        if awarded is not None:
            events.append(awarded)
    moved = outcome.target != case.status
    if moved:
        events.append(
            e.StatusChanged(
                at=now,
                actor=events[-1].actor if events else "system",
                action=row.action,
                source=case.status.value,
                target=outcome.target.value,
            )
        )
    after = fold(case, events)
    deadline_set: e.DeadlineSet | None = None
    if not isinstance(outcome.deadline, Fresh):
        deadline_set = e.DeadlineSet(at=now, actor="system", deadline=outcome.deadline)
    elif moved or row.restarts_deadline or after.stage != case.stage:
        deadline_set = e.DeadlineSet(
            at=now, actor="system", deadline=next_deadline(after, order, rules)
        )
    if deadline_set is not None:
        events.append(deadline_set)
        after = apply(after, deadline_set)
    return events, after


def next_deadline(case: Case, order: Order, rules: Rules) -> Deadline | None:
    """The deadline ``case`` gets on entering its status, started by its latest mark."""
    if case.status == S.IN_INTERVENTION and case.stage is not None:
        name = transitions.STAGE_DEADLINES[case.stage]
    else:
        name = transitions.STATUS_DEADLINES.get(case.status)
    if name is None:
        return None
    latest = case.marks[-1]
    ctx = DeadlineContext(
        name=name,
        start_event=latest.event,
        start_at=latest.at,
        kind=case.kind,
        shipping_method=order.shipping_method,
        return_method=case.return_shipment.method if case.return_shipment else None,
        marks=case.marks,
    )
    return schedule(rules, ctx)


def decide_apply(cmd: c.Apply, *, order: Order, rules: Rules, now: datetime) -> list[e.Event]:
    actor = cmd.actor
    if actor.role not in (Role.BUYER, Role.PLATFORM):
        raise Forbidden("only the buyer may apply")
    if actor.role == Role.BUYER and actor.id != order.buyer:
        raise Forbidden(f"buyer {actor.id} did not place order {order.id}")
    if cmd.case_id is None:
        raise Invalid("apply needs a case id")
    phase = application_phase(order, cmd.kind, rules, now)
    if order.open_case is not None:
        rule = rules.limit("one_open_case")
        raise NotEligible(
            f"order {order.id} already has an open case {order.open_case}", rule=rule.rule_id
        )
    if order.no_reapply_rule is not None:
        raise NotEligible(
            f"order {order.id} had a case closed on the buyer's timeout; no new application",
            rule=order.no_reapply_rule,
        )
    limit = rules.limit("max_cases_per_order")
    if order.case_count >= int(limit.value):  # type: ignore[arg-type]
        raise NotEligible(
            f"order {order.id} already had {order.case_count} cases (limit {limit.value})",
            rule=limit.rule_id,
        )
    amount = requested(order, cmd.kind, cmd.amount)
    check_request(order, cmd.kind, cmd.reason, amount, rules)
    check_no_reason(order, cmd.reason, rules, now)
    case_id = cmd.case_id
    opened = e.Applied(
        at=now,
        actor=str(actor),
        case_id=case_id,
        order_id=order.id,
        shop=order.shop,
        buyer=order.buyer,
        kind=cmd.kind,
        phase=phase,
        reason=cmd.reason,
        amount=amount,
        note=cmd.note,
    )
    case = open_case(opened)
    return [
        opened,
        e.DeadlineSet(at=now, actor="system", deadline=next_deadline(case, order, rules)),
    ]


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
    still runs; an agent's reopening opens the window again for a while."""
    assert order.trade_success_at is not None
    window = rules.limit("after_sale_window")
    assert isinstance(window.value, timedelta)
    closes = order.trade_success_at + window.value
    if now <= closes:
        return
    if order.reopened_until is not None and now <= order.reopened_until:
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
    if now > ends:
        when = local(ends).isoformat()
        raise NotEligible(
            f"三包 goods: the {name} period of order {order.id} closed at {when}",
            rule=rule.rule_id,
        )


def requested(order: Order, kind: CaseKind, amount: int) -> int:
    """The amount a request is worth: for an exchange or repair, 0 means what is still
    refundable (what a failed exchange or repair refunds)."""
    if amount == 0 and kind in (CaseKind.EXCHANGE, CaseKind.REPAIR):
        return order.total - order.refunded - order.withheld
    return amount


def check_request(order: Order, kind: CaseKind, reason: Reason, amount: int, rules: Rules) -> None:
    """Refuse a kind, reason or amount the order and the rulebook do not allow."""
    reason_rule = rules.reason(reason)
    if kind not in reason_rule.kinds:
        kinds = ", ".join(sorted(k.value for k in reason_rule.kinds))
        raise Invalid(f"reason {reason.value} allows only: {kinds}", rule=reason_rule.rule_id)
    if kind != CaseKind.REFUND_ONLY and order.status not in GOODS_SENT:
        rule = rules.limit("returns_need_shipment")
        raise NotEligible(f"{kind.value} needs goods that were shipped", rule=rule.rule_id)
    refundable = order.total - order.refunded - order.withheld
    if amount <= 0:
        raise Invalid("amount must be more than 0.00")
    if amount > refundable:
        raise Invalid(
            f"amount {amount} fen is more than the {refundable} fen still refundable on "
            f"order {order.id}"
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


# --- handlers ----------------------------------------------------------------------------


def _modify(case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime) -> Outcome:
    assert isinstance(cmd, c.Modify)
    limit = rules.limit("max_modifications")
    if case.modifications >= int(limit.value):  # type: ignore[arg-type]
        raise NotEligible(
            f"case {case.id} was already modified {case.modifications} times (limit {limit.value})",
            rule=limit.rule_id,
            case=case.id,
        )
    kind = cmd.kind or case.kind
    reason = cmd.reason or case.reason
    amount = case.requested_amount if cmd.amount is None else requested(order, kind, cmd.amount)
    check_request(order, kind, reason, amount, rules)
    check_no_reason(order, reason, rules, now)
    if case.phase == Phase.AFTER_SALE and kind != case.kind:
        check_after_sale_window(order, kind, rules, now)
    event = e.Modified(
        at=now, actor=str(cmd.actor), kind=kind, reason=reason, amount=amount, note=cmd.note
    )
    return Outcome(events=[event], target=S.AWAITING_SELLER)


def _withdraw(case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime) -> Outcome:
    who = str(cmd.actor)
    return Outcome(
        events=[
            e.Withdrawn(at=now, actor=who),
            e.Closed(at=now, actor=who, reason=ClosedReason.WITHDRAWN),
        ],
        target=S.CLOSED,
    )


def _agree(case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime) -> Outcome:
    address = cmd.return_address if isinstance(cmd, c.Agree) else None
    if case.status == S.IN_INTERVENTION:
        again = intervention.agreed_again(case, order, rules, str(cmd.actor), address, now)
        if again is not None:
            return again
    return agreement(case, order, rules, str(cmd.actor), address, now, rule_id=None)


def agreement(
    case: Case,
    order: Order,
    rules: Rules,
    actor: str,
    address: str | None,
    now: datetime,
    *,
    rule_id: str | None,
) -> Outcome:
    """The seller agrees: a refund-only case is refunded, others wait for the return."""
    agreed = e.Agreed(at=now, actor=actor, return_address=address)
    if case.kind == CaseKind.REFUND_ONLY:
        refund = refunded(case, order, rules, now, actor, rule_id=rule_id)
        return Outcome(events=[agreed, refund], target=S.REFUNDED)
    return Outcome(events=[agreed], target=S.AWAITING_BUYER_RETURN)


def _refuse(case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime) -> Outcome:
    assert isinstance(cmd, c.Refuse)
    if not cmd.reason.strip():
        raise Invalid(f"{cmd.action} needs a reason", case=case.id)
    if case.reason == Reason.NO_REASON and case.phase == Phase.IN_SALE:
        rule = rules.limit("no_reason_refusal_after_sale_only")
        raise NotEligible(
            "a no-reason return before trade success has no refuse button; agree, or refuse "
            "the goods at receipt if their second sale is affected",
            rule=rule.rule_id,
            case=case.id,
        )
    event = e.Refused(at=now, actor=str(cmd.actor), reason=cmd.reason, note=cmd.note)
    return Outcome(events=[event], target=S.SELLER_REFUSED)


def _refuse_receipt(
    case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime
) -> Outcome:
    assert isinstance(cmd, c.RefuseReceipt)
    if not cmd.reason.strip():
        raise Invalid(f"{cmd.action} needs a reason", case=case.id)
    if case.reason == Reason.NO_REASON:
        _check_second_sale(case, cmd, order, rules)
    event = e.ReceiptRefused(
        at=now,
        actor=str(cmd.actor),
        reason=cmd.reason,
        note=cmd.note,
        condition=cmd.condition,
        evidence=cmd.evidence,
    )
    return Outcome(events=[event], target=S.SELLER_REFUSED)


def _check_second_sale(case: Case, cmd: c.RefuseReceipt, order: Order, rules: Rules) -> None:
    """A no-reason return is refused at receipt only when its second sale is affected (seed Ⅱ:
    tags cut, washed, used, parts or gifts missing), shown with evidence; opened packaging
    counts only for goods sold as returnable while unopened."""
    rule = rules.limit("no_reason_second_sale").rule_id
    if cmd.condition is None or not any(ref.strip() for ref in cmd.evidence):
        conditions = ", ".join(c.value for c in ReceiptCondition)
        raise Invalid(
            f"refusing a no-reason return needs a condition ({conditions}) and evidence",
            rule=rule,
            case=case.id,
        )
    if (
        cmd.condition == ReceiptCondition.OPENED
        and order.no_reason_return != NoReasonReturn.ELIGIBLE_UNOPENED
    ):
        raise NotEligible(
            "opened packaging affects the second sale only of goods returnable while unopened",
            rule=rule,
            case=case.id,
        )


def _intercept(case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime) -> Outcome:
    if case.kind != CaseKind.REFUND_ONLY or order.status != OrderStatus.SHIPPED:
        raise NotEligible(
            "only a refund-only case on a parcel still in transit can be intercepted",
            rule=rules.limit("intercept_in_transit").rule_id,
            case=case.id,
        )
    return Outcome(
        events=[e.Intercepted(at=now, actor=str(cmd.actor))], target=S.AWAITING_SELLER_RECEIPT
    )


def _shipment(cmd: c.ShipReturn | c.Reship, case: Case) -> Shipment:
    if not cmd.carrier.strip() or not cmd.waybill.strip():
        raise Invalid(f"{cmd.action} needs a carrier and a waybill", case=case.id)
    if cmd.method == ShippingMethod.VIRTUAL:
        raise Invalid(f"{cmd.action}: goods can't be sent back virtually", case=case.id)
    fee = cmd.fee if isinstance(cmd, c.ShipReturn) else 0
    if fee < 0:
        raise Invalid(f"{cmd.action}: the fee can't be negative", case=case.id)
    return Shipment(carrier=cmd.carrier, waybill=cmd.waybill, method=cmd.method, fee=fee)


def _ship_return(case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime) -> Outcome:
    assert isinstance(cmd, c.ShipReturn)
    shipped = e.ReturnShipped(at=now, actor=str(cmd.actor), shipment=_shipment(cmd, case))
    return Outcome(events=[shipped], target=S.AWAITING_SELLER_RECEIPT)


def _confirm_receipt(
    case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime
) -> Outcome:
    who = str(cmd.actor)
    confirmed = e.ReceiptConfirmed(at=now, actor=who)
    ruled_refund = case.ruled_outcome == RulingOutcome.REFUND
    if case.kind in (CaseKind.EXCHANGE, CaseKind.REPAIR) and not ruled_refund:
        return Outcome(events=[confirmed], target=S.AWAITING_SELLER_RESHIP)
    refund = refunded(case, order, rules, now, who)
    return Outcome(events=[confirmed, refund], target=S.REFUNDED)


def _propose_remedy(
    case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime
) -> Outcome:
    assert isinstance(cmd, c.ProposeRemedy)
    if cmd.type == RemedyType.PARTIAL_REFUND and not 0 < cmd.amount < case.requested_amount:
        raise Invalid(
            "a partial refund must be more than 0 and less than the requested amount",
            case=case.id,
        )
    if cmd.type == RemedyType.COUPON and cmd.amount <= 0:
        raise Invalid("a coupon needs a value above 0", case=case.id)
    amount = 0 if cmd.type == RemedyType.RESHIP else cmd.amount
    remedy = Remedy(type=cmd.type, amount=amount)
    return Outcome(
        events=[e.RemedyProposed(at=now, actor=str(cmd.actor), remedy=remedy)], target=case.status
    )


def _pending_remedy(case: Case, rules: Rules) -> Remedy:
    if case.remedy is None:
        raise NotEligible(
            f"case {case.id} has no remedy proposal to answer",
            rule=rules.limit("remedy_needs_proposal").rule_id,
            case=case.id,
        )
    return case.remedy


def _accept_remedy(
    case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime
) -> Outcome:
    remedy = _pending_remedy(case, rules)
    who = str(cmd.actor)
    accepted = e.RemedyAccepted(at=now, actor=who, remedy=remedy)
    if remedy.type == RemedyType.PARTIAL_REFUND:
        return Outcome(
            events=[accepted, refunded(case, order, rules, now, who, amount=remedy.amount)],
            target=S.REFUNDED,
        )
    if remedy.type == RemedyType.COUPON:
        closed = e.Closed(at=now, actor=who, reason=ClosedReason.REMEDY_ACCEPTED)
        return Outcome(events=[accepted, closed], target=S.CLOSED)
    return Outcome(events=[accepted], target=S.AWAITING_SELLER_RESHIP)


def _decline_remedy(
    case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime
) -> Outcome:
    remedy = _pending_remedy(case, rules)
    declined = e.RemedyDeclined(at=now, actor=str(cmd.actor), remedy=remedy)
    return Outcome(events=[declined], target=case.status)


def _reship(case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime) -> Outcome:
    assert isinstance(cmd, c.Reship)
    shipped = e.Reshipped(at=now, actor=str(cmd.actor), shipment=_shipment(cmd, case))
    return Outcome(events=[shipped], target=S.AWAITING_BUYER_CONFIRMATION)


def _confirm_received(
    case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime
) -> Outcome:
    who = str(cmd.actor)
    return Outcome(
        events=[e.ReceivedConfirmed(at=now, actor=who), e.Completed(at=now, actor=who)],
        target=S.COMPLETED,
    )


def _timeout(case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime) -> Outcome:
    deadline = case.deadline
    if deadline is None or not is_due(deadline, now):
        due = deadline.due_at if deadline else None
        raise NotEligible(
            f"case {case.id} has no deadline due at {now.isoformat()}",
            rule=deadline.rule_id if deadline else None,
            allowed_from=due,
            case=case.id,
        )
    fired = fired_event(deadline, now)
    rule = deadline.rule_id
    match deadline.on_expiry:
        case "refund":
            refund = refunded(case, order, rules, now, "system", rule_id=rule)
            outcome = Outcome(events=[refund], target=S.REFUNDED)
        case "agree":
            address = cmd.return_address if isinstance(cmd, c.Timeout) else None
            outcome = agreement(case, order, rules, "system", address, now, rule_id=rule)
        case "close":
            closed = e.Closed(
                at=now, actor="system", reason=ClosedReason.BUYER_TIMEOUT, rule_id=rule
            )
            outcome = Outcome(events=[closed], target=S.CLOSED)
        case "review":
            outcome = Outcome(
                events=[e.StageChanged(at=now, actor="system", stage=Stage.REVIEW)],
                target=S.IN_INTERVENTION,
            )
        case "complete":
            outcome = Outcome(
                events=[e.Completed(at=now, actor="system", rule_id=rule)], target=S.COMPLETED
            )
        case other:
            raise ValueError(f"unknown on_expiry {other!r} in rule {rule}")
    return Outcome(events=[fired, *outcome.events], target=outcome.target)


HANDLERS: dict[str, Handler] = {
    "modify": _modify,
    "withdraw": _withdraw,
    "agree": _agree,
    "refuse": _refuse,
    "refuse_receipt": _refuse_receipt,
    "intercept": _intercept,
    "ship_return": _ship_return,
    "confirm_receipt": _confirm_receipt,
    "propose_remedy": _propose_remedy,
    "accept_remedy": _accept_remedy,
    "decline_remedy": _decline_remedy,
    "reship": _reship,
    "confirm_received": _confirm_received,
    "timeout": _timeout,
    **intervention.HANDLERS,
}

ON_EXPIRY = frozenset({"refund", "agree", "close", "complete"})


#: Stand-in parameters that let :func:`available_actions` try an action without its inputs.
PROBES: dict[str, dict[str, object]] = {
    "refuse": {"reason": "?"},
    "refuse_receipt": {"reason": "?", "condition": ReceiptCondition.TAGS_CUT, "evidence": ("?",)},
    "ship_return": {"carrier": "?", "waybill": "?"},
    "reship": {"carrier": "?", "waybill": "?"},
    "propose_remedy": {"type": RemedyType.RESHIP},
    "submit_evidence": {"text": "?"},
    "rule": {"outcome": RulingOutcome.REJECT, "liable": Liable.NONE, "reason": "?"},
}


def available_actions(
    case: Case,
    actor: Actor,
    *,
    order: Order | None = None,
    rules: Rules | None = None,
    now: datetime | None = None,
) -> list[str]:
    """The actions ``actor`` may take on ``case``: by the table, the party and the stage; given
    the order, the rules and ``now``, each is also tried (a dry run of :func:`decide`) so that
    rules like the 72h before intervention or a no-reason request's missing refuse button count.
    Only the action's own parameters are left for the caller to get right."""
    if case.terminal:
        return []
    names = []
    for row in transitions.actions_in(case.status):
        if row.action == "timeout":
            continue
        try:
            authorize(case, row.actors, actor, row.action)
            if case.status == S.IN_INTERVENTION:
                transitions.check_stage(case.stage, row.action, actor.role, case=case.id)
            if row.action in ("accept_remedy", "decline_remedy") and case.remedy is None:
                continue
            if order is not None and rules is not None and now is not None:
                probe = c.CASE_COMMANDS[row.action]
                cmd = probe(actor=actor, case_id=case.id, **PROBES.get(row.action, {}))  # type: ignore[call-arg]
                decide(case, cmd, order=order, rules=rules, now=now)
        except Invalid:
            pass  # the stand-in parameters, not the action, were refused
        except (Forbidden, NotAllowed, NotEligible):
            continue
        names.append(row.action)
    return names
