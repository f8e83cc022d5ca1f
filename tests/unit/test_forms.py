"""What the console's forms offer is what the actions accept: application choices, and the
preview of a ruling, worked out by the code that carries the action out."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest

from shouhou.console import forms as console_forms
from shouhou.domain import applications
from shouhou.domain import commands as c
from shouhou.domain import events as e
from shouhou.domain.model import (
    Actor,
    CaseKind,
    Liable,
    NoReasonReturn,
    Reason,
    Role,
    RulingOutcome,
    Stage,
)
from shouhou.domain.values import SHANGHAI
from shouhou.errors import ActionRefused, NotEligible
from shouhou.policy.rulebook import Rulebook
from shouhou.services import forms

T0 = datetime(2023, 3, 1, 10, 0, tzinfo=SHANGHAI)
AGENT = Actor(role=Role.AGENT, id="a1")
Desk = Any
MakeDesk = Any


def test_every_offered_choice_is_accepted_and_every_other_refused(
    desk_for: MakeDesk, rules: Rulebook
) -> None:
    desk = desk_for("delivered", no_reason_return=NoReasonReturn.INELIGIBLE)
    choices = forms.application_choices(desk.order, rules, T0)
    assert choices.refundable == 19900
    assert Reason.NO_REASON not in choices.reasons  # ineligible goods
    assert choices.kinds[CaseKind.REFUND_ONLY]
    offered = 0
    for kind in CaseKind:
        for reason in Reason:
            cmd = c.Apply(
                actor=Actor(role=Role.BUYER, id="b1"),
                order_id="o1",
                kind=kind,
                reason=reason,
                amount=choices.refundable,
                case_id="c1",
            )
            allowed = reason in choices.kinds.get(kind, [])
            try:
                applications.applied(cmd, order=desk.order, rules=rules, now=T0)
            except ActionRefused:
                assert not allowed, (kind, reason)
                continue
            assert allowed, (kind, reason)
            offered += 1
    assert offered == sum(len(r) for r in choices.kinds.values())


def test_an_order_with_an_open_case_offers_nothing_and_says_why(
    desk_for: MakeDesk, rules: Rulebook
) -> None:
    desk = desk_for("delivered")
    desk.apply(T0)
    choices = forms.application_choices(desk.order, rules, T0)
    assert choices.kinds == {}
    assert isinstance(choices.refusal, NotEligible)


def _in_review(desk: Desk) -> Any:
    desk.apply(T0, reason=Reason.NOT_AS_DESCRIBED)
    desk.act(c.Refuse, T0 + timedelta(hours=1), reason="as listed")
    desk.act(c.RequestIntervention, T0 + timedelta(hours=2))
    desk.act(c.CompleteEvidence, T0 + timedelta(hours=3))
    case = desk.timeout()
    assert case.stage == Stage.REVIEW
    return case


@pytest.mark.parametrize(
    ("outcome", "liable", "amount"),
    [
        (RulingOutcome.REFUND, Liable.SELLER, 0),
        (RulingOutcome.PARTIAL_REFUND, Liable.SELLER, 5000),
        (RulingOutcome.PARTIAL_REFUND, Liable.BUYER, 12345),
        (RulingOutcome.REJECT, Liable.BUYER, 0),
    ],
)
def test_the_ruling_preview_is_what_the_ruling_then_does(
    desk_for: MakeDesk, rules: Rulebook, outcome: RulingOutcome, liable: Liable, amount: int
) -> None:
    desk = desk_for("delivered")
    case = _in_review(desk)
    at = case.deadline.due_at if case.deadline else T0 + timedelta(days=10)
    cmd = c.Rule(
        actor=AGENT, case_id="c1", outcome=outcome, liable=liable, reason="photos", amount=amount
    )
    preview = forms.preview_ruling(case, desk.order, cmd, rules, at)
    after = desk.act(
        c.Rule, at, by=AGENT, outcome=outcome, liable=liable, reason="photos", amount=amount
    )
    ruled = next(ev for ev in desk.timelines["c1"] if isinstance(ev, e.Ruled))
    assert preview.refund == (after.refund_amount or ruled.amount)
    assert preview.freight == (after.freight or ruled.freight)


def test_a_ruling_the_domain_refuses_is_refused_by_its_preview(
    desk_for: MakeDesk, rules: Rulebook
) -> None:
    desk = desk_for("delivered")
    case = _in_review(desk)
    cmd = c.Rule(
        actor=AGENT,
        case_id="c1",
        outcome=RulingOutcome.PARTIAL_REFUND,
        liable=Liable.SELLER,
        reason="too much",
        amount=10**9,
    )
    with pytest.raises(ActionRefused):
        forms.preview_ruling(case, desk.order, cmd, rules, T0 + timedelta(days=10))


def test_each_case_action_has_a_form_whose_controls_are_its_parameters() -> None:
    for action in console_forms.ACTION_LABELS:
        form = console_forms.action_form(action)
        names = {f.name for f in form.fields}
        cls = c.CASE_COMMANDS[action]
        params = {f.name for f in dataclasses.fields(cls)} - console_forms.HIDDEN
        assert names == params, action
    refuse_receipt = console_forms.action_form("refuse_receipt")
    controls = {f.name: f.control for f in refuse_receipt.fields}
    assert controls == {
        "reason": "textarea",
        "note": "textarea",
        "condition": "select",
        "evidence": "files",
    }
    sent = {"reason": ["torn"], "note": [""], "condition": [""], "evidence": ["a,b", "c"]}
    assert console_forms.params_from(refuse_receipt, sent) == {
        "reason": "torn",
        "evidence": ["a", "b", "c"],
    }
