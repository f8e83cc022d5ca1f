"""The case aggregate: ``decide(case, command, ...) -> events`` and ``apply(case, event)``.

Decisions are pure: they take the order, the rules in force and ``now``, and return the
events that record what happened, ending with the status change and the new deadline. What
an application must meet is in :mod:`shouhou.domain.applications`; what each action does, in
:mod:`shouhou.domain.actions`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import reduce

from shouhou.domain import actions, applications, caselog, compensation, transitions
from shouhou.domain import commands as c
from shouhou.domain import events as e
from shouhou.domain.deadlines import schedule
from shouhou.domain.model import (
    Actor,
    Case,
    CaseStatus,
    ClosedReason,
    Deadline,
    Liable,
    Mark,
    Order,
    ReceiptCondition,
    RemedyType,
    Role,
    RulingOutcome,
    Stage,
    evolve,
    on_behalf_hint,
)
from shouhou.domain.outcome import Fresh, Outcome
from shouhou.domain.rules import DeadlineContext, Rules
from shouhou.errors import Forbidden, Invalid, NotAllowed, NotEligible, TransitionNotAllowed

S = CaseStatus

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
        lines=event.lines,
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
            return evolve(resolved, freight=event.freight or case.freight, refund_lines=event.lines)
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
        opened = applications.applied(cmd, order=order, rules=rules, now=now)
        deadline = next_deadline(open_case(opened), order, rules)
        return [opened, e.DeadlineSet(at=now, actor="system", deadline=deadline)]
    if case is None:
        raise Invalid(f"{cmd.action} needs an existing case")
    return step(case, cmd, order=order, rules=rules, now=now)[0]


def step(
    case: Case, cmd: c.Command, *, order: Order, rules: Rules, now: datetime
) -> tuple[list[e.Event], Case]:
    """:func:`decide` on an existing case, with the case after the events: deciding folds
    them anyway (the next deadline depends on the new state), so saving need not again."""
    if cmd.action in caselog.ACTIONS:
        events = caselog.decide(case, cmd, now)
        return events, fold(case, events)
    row = admit(case, cmd.actor, cmd.action)
    assert row is not None
    outcome = actions.HANDLERS[cmd.action](case, cmd, order, rules, now)
    return finish(case, row, outcome, order=order, rules=rules, now=now)


def admit(case: Case, actor: Actor, action: str) -> transitions.Transition | None:
    """The table row ``actor`` may take ``action`` by, checked in the order of SPEC §1 before
    any parameter is looked at: ``forbidden`` for a role that never takes the action or an
    actor who is not the case's party, then ``not_allowed`` for the status and stage. A
    service-log entry (no row) is checked by :func:`caselog.admit`."""
    if action in caselog.ACTIONS:
        caselog.admit(case, actor, action)
        return None
    authorize_action(case, actor, action)
    row = transitions.find(case.status, action, case=case.id)
    if actor.role not in row.actors:  # the role takes it elsewhere, not in this status
        raise NotAllowed(
            f"can't {action} as {actor.role.value} when {case.status.value}",
            case=case.id,
            status=case.status.value,
        )
    if case.status == S.IN_INTERVENTION:
        transitions.check_stage(case.stage, action, actor.role, case=case.id)
    return row


def authorize_action(case: Case, actor: Actor, action: str) -> None:
    """``forbidden`` unless ``actor``'s role takes ``action`` in some status and ``actor`` is
    the case's party: true of the case whatever its status."""
    if action in caselog.ACTIONS:
        caselog.authorize(case, actor, action)
    elif action in transitions.ROLES:  # an unknown action is not_allowed by the table
        authorize(case, transitions.ROLES[action], actor, action)


def authorize(case: Case, actors: frozenset[Role], actor: Actor, action: str) -> None:
    """Refuse with ``forbidden`` unless ``actor`` is a party allowed to take ``action``."""
    role = actor.role
    if role not in actors:
        allowed = " or ".join(sorted(a.value for a in actors))
        hint = on_behalf_hint(actor, actors)
        raise Forbidden(f"only the {allowed} may {action}{hint}", case=case.id)
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
            admit(case, actor, row.action)
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
