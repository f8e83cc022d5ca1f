"""Platform intervention (客服介入, SPEC §4): escalation, evidence, stages and rulings.

Escalation suspends the case's own deadline (kept with the time it had left) and opens the
``evidence`` stage; the buyer completing evidence gives the seller ``seller_handling``; then an
agent rules in ``review``. A ruling of ``continue`` resumes the suspended status and deadline.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shouhou.domain import commands as c
from shouhou.domain import events as e
from shouhou.domain import freight, lines, transitions
from shouhou.domain.model import (
    Case,
    CaseKind,
    CaseStatus,
    ClosedReason,
    Evidence,
    Liable,
    Order,
    Phase,
    Role,
    RulingOutcome,
    Stage,
    Suspended,
    evolve,
)
from shouhou.domain.outcome import Outcome, refunded
from shouhou.domain.rules import Rules
from shouhou.errors import Invalid, NotEligible

S = CaseStatus


def request(case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime) -> Outcome:
    """Escalate: after the seller refused, or from 72h after the application (seed Ⅲ)."""
    check_request(case, rules, now)
    deadline = case.deadline
    remaining = max(deadline.due_at - now, timedelta(0)) if deadline else None
    suspended = Suspended(status=case.status, deadline=deadline, remaining=remaining)
    return Outcome(
        events=[e.InterventionRequested(at=now, actor=str(cmd.actor), suspended=suspended)],
        target=S.IN_INTERVENTION,
    )


def check_request(case: Case, rules: Rules, now: datetime) -> None:
    """Refuse escalation before the seller refused and before 72h after the application."""
    limit = rules.limit("intervention_after")
    assert isinstance(limit.value, timedelta)
    allowed_from = case.opened_at + limit.value
    refused = any(mark.event == "seller_refused" for mark in case.marks)
    if not refused and now < allowed_from:
        raise NotEligible(
            "intervention may be requested after the seller refuses, or from 72h after the "
            f"application ({allowed_from.isoformat()})",
            rule=limit.rule_id,
            allowed_from=allowed_from,
            case=case.id,
        )


def submit(case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime) -> Outcome:
    """Submit or revise one party's evidence (sealed once its stage ends)."""
    assert isinstance(cmd, c.SubmitEvidence)
    attachments = cmd.files
    if {a.sha256 for a in attachments} != set(cmd.attachments):
        raise Invalid("every attachment must be stored before it is submitted", case=case.id)
    if not cmd.text.strip() and not attachments:
        raise Invalid("evidence needs a text or an attachment", case=case.id)
    party = Role.SELLER if cmd.actor.role == Role.SELLER else Role.BUYER
    previous = [ev for ev in case.evidence if ev.party == party]
    revision = previous[-1].revision + 1 if previous else 1
    evidence = Evidence(
        party=party, text=cmd.text, attachments=attachments, at=now, revision=revision
    )
    submitted = e.EvidenceSubmitted(at=now, actor=str(cmd.actor), evidence=evidence)
    return Outcome(events=[submitted], target=S.IN_INTERVENTION)


def complete(case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime) -> Outcome:
    """The buyer is done: buyer evidence is sealed and the seller's handling time starts."""
    who = str(cmd.actor)
    return Outcome(
        events=[
            e.EvidenceCompleted(at=now, actor=who),
            e.StageChanged(at=now, actor=who, stage=Stage.SELLER_HANDLING),
        ],
        target=S.IN_INTERVENTION,
    )


def rule(case: Case, cmd: c.Command, order: Order, rules: Rules, now: datetime) -> Outcome:
    """An agent's ruling: applied at once, with the liable party and the freight split."""
    assert isinstance(cmd, c.Rule)
    if not cmd.reason.strip():
        raise Invalid("a ruling needs a written reason", case=case.id)
    who = str(cmd.actor)
    split = freight.split(case, order, rules, cmd.liable)
    amount = _ruled_amount(case, order, cmd, split.deducted)
    dispute = cmd.liable == Liable.SELLER and cmd.outcome in (
        RulingOutcome.REFUND,
        RulingOutcome.PARTIAL_REFUND,
    )
    ruled = e.Ruled(
        at=now,
        actor=who,
        outcome=cmd.outcome,
        amount=amount,
        liable=cmd.liable,
        reason=cmd.reason,
        freight=split,
        dispute=dispute and (case.phase == Phase.IN_SALE or rules_count_after_sale(rules)),
    )
    rule_id = rules.limit("agent_ruling").rule_id
    match cmd.outcome:
        case RulingOutcome.REJECT:
            closed = e.Closed(
                at=now, actor=who, reason=ClosedReason.RULED_FOR_SELLER, rule_id=rule_id
            )
            return Outcome(events=[ruled, closed], target=S.CLOSED)
        case RulingOutcome.CONTINUE:
            return _resume(case, ruled, now)
    goods_out = case.kind != CaseKind.REFUND_ONLY and case.return_shipment is None
    if cmd.outcome == RulingOutcome.REFUND and goods_out:
        return Outcome(events=[ruled, e.Agreed(at=now, actor=who)], target=S.AWAITING_BUYER_RETURN)
    refund = refunded(
        case, order, rules, now, who, rule_id=rule_id, amount=amount, liable=cmd.liable
    )
    return Outcome(events=[ruled, refund], target=S.REFUNDED)


def rules_count_after_sale(rules: Rules) -> bool:
    """Whether after-sales disputes count in the dispute rate (seed Ⅲ: not by default)."""
    return bool(rules.limit("after_sale_disputes_count").value)


def _ruled_amount(case: Case, order: Order, cmd: c.Rule, deducted: int) -> int:
    if cmd.outcome == RulingOutcome.PARTIAL_REFUND:
        if not 0 < cmd.amount <= case.requested_amount:
            raise Invalid(
                "a partial refund must be more than 0 and at most the requested amount",
                case=case.id,
            )
        return cmd.amount
    if cmd.outcome == RulingOutcome.REFUND:
        left = lines.refundable(order, lines.of_case(case, order))
        return max(0, min(case.requested_amount, left - deducted))
    return 0


def _resume(case: Case, event: e.Event, now: datetime) -> Outcome:
    """Back to the status the case left, its deadline resumed with the time it had left."""
    suspended = case.suspended
    assert suspended is not None
    deadline = suspended.deadline
    if deadline is not None and suspended.remaining is not None:
        deadline = evolve(
            deadline, due_at=now + suspended.remaining, started_at=now, duration=suspended.remaining
        )
    return Outcome(events=[event], target=suspended.status, deadline=deadline)


def agreed_again(
    case: Case, order: Order, rules: Rules, actor: str, address: str | None, now: datetime
) -> Outcome | None:
    """The seller agrees in intervention to a case escalated after it had agreed already
    (None: escalated before, so this is the first agreement). The goods of a return that the
    buyer has sent back are refunded, as an agent's refund ruling would (SPEC §3: the goods
    back, the refund); anything else goes back to where it stood, its deadline resumed."""
    suspended = case.suspended
    if suspended is None or suspended.status not in transitions.AGREED:
        return None
    agreed = e.Agreed(at=now, actor=actor, return_address=address or case.return_address)
    if case.kind == CaseKind.RETURN_REFUND and case.return_shipment is not None:
        refund = refunded(case, order, rules, now, actor, rule_id=None)
        return Outcome(events=[agreed, refund], target=S.REFUNDED)
    return _resume(case, agreed, now)


HANDLERS = {
    "request_intervention": request,
    "submit_evidence": submit,
    "complete_evidence": complete,
    "rule": rule,
}
