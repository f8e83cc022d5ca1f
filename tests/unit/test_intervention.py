"""Platform intervention (SPEC §4): escalation, evidence stages, rulings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from shouhou.domain import commands as c
from shouhou.domain import events as e
from shouhou.domain.model import (
    Actor,
    Attachment,
    CaseKind,
    CaseStatus,
    ClosedReason,
    Liable,
    Reason,
    Role,
    RulingOutcome,
    Stage,
)
from shouhou.domain.values import SHANGHAI
from shouhou.errors import Forbidden, Invalid, NotAllowed, NotEligible

T0 = datetime(2023, 3, 1, 10, 0, tzinfo=SHANGHAI)
H, D = timedelta(hours=1), timedelta(days=1)
BUYER = Actor(role=Role.BUYER, id="b1")
SELLER = Actor(role=Role.SELLER, id="s1")
AGENT = Actor(role=Role.AGENT, id="a1")
Desk = Any


def escalated(desk_for: Any, *, kind: CaseKind = CaseKind.REFUND_ONLY, at: datetime = T0) -> Desk:
    desk = desk_for("delivered", at=at)
    desk.apply(at, kind=kind, reason=Reason.QUALITY)
    desk.act(c.Refuse, at + H, reason="photos show no defect")
    desk.act(c.RequestIntervention, at + 2 * H, by=BUYER)
    return desk


def in_review(desk_for: Any, **kwargs: Any) -> Desk:
    desk = escalated(desk_for, **kwargs)
    desk.timeout()  # the evidence stage ends
    return desk


def rule(desk: Desk, outcome: RulingOutcome, liable: Liable = Liable.SELLER, **kw: Any) -> Any:
    at = desk.cases["c1"].opened_at + 10 * D
    return desk.act(
        c.Rule,
        at,
        by=AGENT,
        outcome=outcome,
        liable=liable,
        reason=kw.pop("reason", "the photos show a crack"),
        **kw,
    )


def test_intervention_is_refused_before_72h_and_says_from_when(desk_for: Any) -> None:
    desk = desk_for("delivered")
    desk.apply(T0)
    with pytest.raises(NotEligible) as err:
        desk.act(c.RequestIntervention, T0 + 71 * H, by=BUYER)
    assert err.value.rule == "tmall-standard/intervention_after"
    assert err.value.allowed_from == T0 + 72 * H


def test_intervention_is_allowed_at_exactly_72h_after_the_application(desk_for: Any) -> None:
    desk = desk_for("delivered")
    desk.apply(T0)
    desk.act(c.Modify, T0 + 70 * H, by=BUYER)  # a modification does not move the 72h
    case = desk.act(c.RequestIntervention, T0 + 72 * H, by=BUYER)
    assert (case.status, case.stage) == (CaseStatus.IN_INTERVENTION, Stage.EVIDENCE)


def test_intervention_is_allowed_at_once_after_a_refusal(desk_for: Any) -> None:
    case = escalated(desk_for).cases["c1"]
    assert case.status == CaseStatus.IN_INTERVENTION
    assert case.deadline is not None and case.deadline.name == "evidence"
    assert case.deadline.due_at == T0 + 2 * H + 5 * D


def test_the_suspended_deadline_is_kept_with_its_remaining_time(desk_for: Any) -> None:
    case = escalated(desk_for).cases["c1"]
    assert case.suspended is not None
    assert case.suspended.status == CaseStatus.SELLER_REFUSED
    assert case.suspended.remaining == 7 * D - H


def test_the_evidence_stage_is_fifteen_days_in_the_spring_festival_of_2020(
    desk_for: Any,
) -> None:
    case = escalated(desk_for, at=datetime(2020, 1, 20, 10, tzinfo=SHANGHAI)).cases["c1"]
    assert case.deadline is not None
    assert case.deadline.rule_id == "cny-2020/evidence"
    assert case.deadline.duration == 15 * D + 0 * H


def test_evidence_is_revisable_until_the_buyer_completes_it_then_sealed(desk_for: Any) -> None:
    desk = escalated(desk_for)
    desk.act(c.SubmitEvidence, T0 + 3 * H, by=BUYER, text="first photos")
    desk.act(c.SubmitEvidence, T0 + 4 * H, by=BUYER, text="better photos")
    desk.act(c.SubmitEvidence, T0 + 4 * H, by=SELLER, text="inspection report")
    case = desk.cases["c1"]
    mine = [ev for ev in case.evidence if ev.party == Role.BUYER]
    assert [(ev.text, ev.revision) for ev in mine] == [("better photos", 2)]
    case = desk.act(c.CompleteEvidence, T0 + 5 * H, by=BUYER)
    assert case.stage == Stage.SELLER_HANDLING
    assert case.deadline is not None and case.deadline.name == "seller_handle_after_evidence"
    assert case.deadline.due_at == T0 + 5 * H + 3 * D
    with pytest.raises(NotAllowed):
        desk.act(c.SubmitEvidence, T0 + 6 * H, by=BUYER, text="one more")
    desk.act(c.SubmitEvidence, T0 + 6 * H, by=SELLER, text="rebuttal")


def test_attachments_must_be_the_stored_files_they_name(desk_for: Any) -> None:
    desk = escalated(desk_for)
    photo = Attachment(sha256="a" * 64, media_type="image/png", size=10, filename="p.png")
    with pytest.raises(Invalid):
        desk.act(
            c.SubmitEvidence,
            T0 + 3 * H,
            by=BUYER,
            text="x",
            attachments=("b" * 64,),
            files=(photo,),
        )
    case = desk.act(
        c.SubmitEvidence, T0 + 3 * H, by=BUYER, text="x", attachments=("a" * 64,), files=(photo,)
    )
    assert case.evidence[0].attachments == (photo,)


def test_the_seller_may_still_agree_while_handling(desk_for: Any) -> None:
    desk = escalated(desk_for)
    desk.act(c.CompleteEvidence, T0 + 3 * H, by=BUYER)
    case = desk.act(c.Agree, T0 + 4 * H, by=SELLER)
    assert case.status == CaseStatus.REFUNDED


def test_stage_deadlines_lead_to_review_without_a_deadline(desk_for: Any) -> None:
    desk = escalated(desk_for)
    desk.act(c.CompleteEvidence, T0 + 3 * H, by=BUYER)
    case = desk.timeout()
    assert (case.status, case.stage, case.deadline) == (
        CaseStatus.IN_INTERVENTION,
        Stage.REVIEW,
        None,
    )


def test_only_an_agent_rules_and_only_in_review(desk_for: Any) -> None:
    desk = escalated(desk_for)
    with pytest.raises(NotAllowed):
        rule(desk, RulingOutcome.REFUND)
    desk.timeout()
    with pytest.raises(Forbidden):
        desk.act(
            c.Rule,
            T0 + 8 * D,
            by=BUYER,
            outcome=RulingOutcome.REFUND,
            liable=Liable.SELLER,
            reason="I win",
        )
    with pytest.raises(Invalid):
        rule(desk, RulingOutcome.REFUND, reason=" ")


def test_a_refund_ruling_refunds_and_counts_as_a_dispute_against_the_seller(
    desk_for: Any,
) -> None:
    desk = in_review(desk_for)
    case = rule(desk, RulingOutcome.REFUND)
    assert (case.status, case.refund_amount, case.liable) == (
        CaseStatus.REFUNDED,
        desk.order.total,
        "seller",
    )
    ruled = next(ev for ev in desk.timelines["c1"] if isinstance(ev, e.Ruled))
    assert ruled.dispute and ruled.freight is not None
    assert case.freight is not None and case.freight.rule_id.endswith("freight_seller_fault")


def test_after_sale_rulings_do_not_count_as_disputes_by_default(desk_for: Any) -> None:
    desk = desk_for("trade_success", at=T0)
    desk.apply(T0 + D, kind=CaseKind.REFUND_ONLY, reason=Reason.QUALITY)
    desk.act(c.Refuse, T0 + D + H, reason="no")
    desk.act(c.RequestIntervention, T0 + D + 2 * H, by=BUYER)
    desk.timeout()
    rule(desk, RulingOutcome.REFUND)
    ruled = next(ev for ev in desk.timelines["c1"] if isinstance(ev, e.Ruled))
    assert not ruled.dispute


def test_a_partial_refund_ruling_pays_that_amount(desk_for: Any) -> None:
    desk = in_review(desk_for)
    assert rule(desk, RulingOutcome.PARTIAL_REFUND, amount=5000).refund_amount == 5000
    desk2 = in_review(desk_for)
    with pytest.raises(Invalid):
        rule(desk2, RulingOutcome.PARTIAL_REFUND, amount=desk2.order.total + 1)


def test_a_rejecting_ruling_closes_the_case_for_the_seller(desk_for: Any) -> None:
    case = rule(in_review(desk_for), RulingOutcome.REJECT, Liable.BUYER)
    assert (case.status, case.closed_reason) == (CaseStatus.CLOSED, ClosedReason.RULED_FOR_SELLER)


def test_continue_resumes_the_suspended_status_with_the_time_it_had_left(desk_for: Any) -> None:
    desk = in_review(desk_for)
    at = T0 + 10 * D
    case = rule(desk, RulingOutcome.CONTINUE, Liable.NONE)
    assert case.status == CaseStatus.SELLER_REFUSED
    assert case.deadline is not None
    assert case.deadline.name == "buyer_respond_after_refusal"
    assert case.deadline.due_at == at + 7 * D - H


def test_a_refund_ruling_on_a_return_not_yet_sent_back_starts_the_return(desk_for: Any) -> None:
    desk = in_review(desk_for, kind=CaseKind.RETURN_REFUND)
    case = rule(desk, RulingOutcome.REFUND)
    assert case.status == CaseStatus.AWAITING_BUYER_RETURN
    assert case.liable == "seller"


def test_the_suspended_deadline_never_fires_during_intervention(desk_for: Any) -> None:
    case = escalated(desk_for).cases["c1"]
    assert case.deadline is not None and case.deadline.name == "evidence"
    assert case.suspended is not None and case.suspended.deadline is not None
    assert case.suspended.deadline.name == "buyer_respond_after_refusal"
