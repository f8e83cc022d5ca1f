"""The case actions (SPEC §2, §3): one handler per action of the transition table.

A handler checks what its action needs beyond the table (parameters, rules, the order) and
returns the :class:`~shouhou.domain.outcome.Outcome`: the events and the status it leads to.
:func:`shouhou.domain.cases.step` finds the row, checks the party, runs the handler and adds
the status change and the new deadline. When this module is imported, :func:`check_handlers`
checks that the handlers and the table's actions match one to one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from shouhou.domain import commands as c
from shouhou.domain import events as e
from shouhou.domain import intervention, lines, transitions
from shouhou.domain.applications import (
    check_after_sale_window,
    check_no_reason,
    check_request,
    requested,
)
from shouhou.domain.deadlines import fired as fired_event
from shouhou.domain.deadlines import is_due
from shouhou.domain.model import (
    Case,
    CaseKind,
    CaseStatus,
    ClosedReason,
    NoReasonReturn,
    Order,
    OrderStatus,
    Phase,
    Reason,
    ReceiptCondition,
    Remedy,
    RemedyType,
    RulingOutcome,
    Shipment,
    ShippingMethod,
    Stage,
)
from shouhou.domain.outcome import Outcome, refunded
from shouhou.domain.rules import Rules
from shouhou.errors import Invalid, NotEligible

S = CaseStatus

Handler = Callable[[Case, c.Command, Order, Rules, datetime], Outcome]


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
    wanted = lines.of_case(case, order)
    amount = (
        case.requested_amount if cmd.amount is None else requested(order, kind, cmd.amount, wanted)
    )
    check_request(order, kind, reason, amount, rules, wanted)
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
    event = e.Refused(
        at=now, actor=str(cmd.actor), reason=cmd.reason, note=cmd.note, evidence=cmd.evidence
    )
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


def check_handlers(
    handlers: Mapping[str, Handler], table: Iterable[transitions.Transition]
) -> list[str]:
    """Every action of ``table`` without a handler and every handler without a row in it, as
    sentences (empty when they match one to one)."""
    actions = {row.action for row in table}
    problems = [f"action {a} has no handler" for a in sorted(actions - handlers.keys())]
    problems += [
        f"handler {a} has no row in the transition table" for a in sorted(handlers.keys() - actions)
    ]
    return problems


_PROBLEMS = check_handlers(HANDLERS, transitions.TABLE)
if _PROBLEMS:  # pragma: no cover - guarded by tests/unit/test_actions.py
    raise RuntimeError("handlers and transition table disagree: " + "; ".join(_PROBLEMS))
