"""SPEC §1 error order: who may act, then the status, then the parameters and the rules.

Every case action is tried by every kind of caller in every status (and intervention stage)
with parameters that are all wrong; the answer must be ``forbidden`` for a role that never
takes the action or a caller who is not the case's party, else ``not_allowed`` where the
status (or stage) has no move for it, and only then anything about the parameters.
"""

from __future__ import annotations

import dataclasses
import typing
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import pytest

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain import cases, transitions
from shouhou.domain import commands as c
from shouhou.domain.model import (
    PLATFORM,
    SYSTEM,
    Actor,
    Case,
    CaseKind,
    CaseStatus,
    Order,
    Phase,
    Reason,
    Role,
    Stage,
)
from shouhou.domain.values import SHANGHAI
from shouhou.errors import ActionRefused, Forbidden, Invalid, NotAllowed
from shouhou.policy.rulebook import Rulebook
from shouhou.services.ports import ApiUnitOfWork
from shouhou.testing import MemoryApiUnitOfWork, MemoryStore

#: An ordinary instant outside every holiday window.
T0 = datetime(2023, 3, 1, 10, 0, tzinfo=SHANGHAI)

BUYER = Actor(role=Role.BUYER, id="b1")
OTHER_BUYER = Actor(role=Role.BUYER, id="b2")
SELLER = Actor(role=Role.SELLER, id="s1")
OTHER_SELLER = Actor(role=Role.SELLER, id="s2")
AGENT = Actor(role=Role.AGENT, id="a1")
CALLERS = (BUYER, OTHER_BUYER, SELLER, OTHER_SELLER, AGENT, SYSTEM, PLATFORM)
#: Every place a case can stand: each status, and intervention in each of its stages.
PLACES = [(s, None) for s in CaseStatus if s != CaseStatus.IN_INTERVENTION] + [
    (CaseStatus.IN_INTERVENTION, stage) for stage in Stage
]


def wrong(cls: type[c.Command], actor: Actor) -> c.Command:
    """A command of ``cls`` whose own parameters are all wrong: blank texts, negative amounts."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {"actor": actor, "case_id": "c1"}
    for f in dataclasses.fields(cls):
        if f.name in values or f.name == "files":
            continue
        base = [a for a in typing.get_args(hints[f.name]) if a is not type(None)] or [hints[f.name]]
        kind = base[0]
        if isinstance(kind, type) and issubclass(kind, StrEnum):
            values[f.name] = next(iter(kind))
        elif kind is int:
            values[f.name] = -1
        elif kind is str:
            values[f.name] = " "
        elif typing.get_origin(kind) is tuple:
            values[f.name] = ("not-a-stored-file",) if f.name == "attachments" else ()
    return cls(**values)


def expected(case: Case, actor: Actor, action: str) -> str:
    """What SPEC §1 says the refusal starts with, read off the transition table directly."""
    roles = {r for t in transitions.TABLE if t.action == action for r in t.actors}
    # a platform key acts for a party only by naming it (X-On-Behalf-Of): then it is that party
    if actor.role not in roles:
        return "forbidden"
    if (actor.role, actor.id) in ((Role.BUYER, "b2"), (Role.SELLER, "s2")):
        return "forbidden"
    here = [t for t in transitions.TABLE if t.source == case.status and t.action == action]
    if not here:
        return "not_allowed"
    stages = transitions.STAGE_ACTIONS.get(action)
    if (
        case.stage is not None
        and stages is not None
        and actor.role not in stages.get(case.stage, frozenset())
    ):
        return "not_allowed"
    return "admitted"


def a_case(status: CaseStatus, stage: Stage | None) -> Case:
    return Case(
        id="c1",
        order_id="o1",
        shop="s1",
        buyer="b1",
        kind=CaseKind.RETURN_REFUND,
        phase=Phase.IN_SALE,
        reason=Reason.QUALITY,
        status=status,
        stage=stage,
        requested_amount=19900,
        opened_at=T0,
    )


TABLE_ACTIONS = sorted({t.action for t in transitions.TABLE})


@pytest.mark.parametrize("action", TABLE_ACTIONS)
def test_who_may_act_is_refused_before_the_status_and_the_parameters(
    rules: Rulebook, make_order: Any, action: str
) -> None:
    order = make_order("shipped")
    cls = c.CASE_COMMANDS[action]
    tried: dict[str, int] = {}
    for status, stage in PLACES:
        case = a_case(status, stage)
        for actor in CALLERS:
            want = expected(case, actor, action)
            tried[want] = tried.get(want, 0) + 1
            cmd = wrong(cls, actor)
            where = f"{actor} {action} in {status.value}/{stage}"
            try:
                cases.decide(case, cmd, order=order, rules=rules, now=T0 + timedelta(days=1))
            except Forbidden:
                assert want == "forbidden", where
                continue
            except NotAllowed:
                assert want in ("not_allowed", "admitted"), where
                continue
            except (ActionRefused, AssertionError):
                assert want == "admitted", where  # the parameters or the rules came later
                continue
            assert want == "admitted", where
    # the matrix reaches every kind of answer for every action a party takes somewhere
    assert tried.get("forbidden", 0) > 0, action
    assert tried.get("admitted", 0) > 0, action


def test_the_wrong_parameters_are_refused_once_the_caller_is_admitted(
    rules: Rulebook, make_order: Any
) -> None:
    review = a_case(CaseStatus.IN_INTERVENTION, Stage.REVIEW)
    with pytest.raises(Invalid):
        cases.decide(review, wrong(c.Rule, AGENT), order=make_order("shipped"), rules=rules, now=T0)


@pytest.mark.parametrize("cls", [c.Rule, c.Agree, c.ProposeRemedy, c.Refuse])
@pytest.mark.parametrize("status", list(CaseStatus))
def test_a_buyer_is_forbidden_the_sellers_and_the_agents_actions_in_every_status(
    rules: Rulebook, make_order: Any, cls: type[c.Command], status: CaseStatus
) -> None:
    case = a_case(status, Stage.REVIEW if status == CaseStatus.IN_INTERVENTION else None)
    with pytest.raises(Forbidden):
        cases.decide(case, wrong(cls, BUYER), order=make_order("shipped"), rules=rules, now=T0)


# --- through the engine: building a command from plain parameters --------------------------


def engine_with_a_refunded_case() -> tuple[Engine[ApiUnitOfWork], str]:
    store = MemoryStore()
    engine: Engine[ApiUnitOfWork] = Engine(
        lambda: MemoryApiUnitOfWork(store), clock=VirtualClock(T0), new_id=lambda: "c1"
    )
    engine.place_order(
        Order(
            id="o1",
            shop="s1",
            buyer="b1",
            total=19900,
            created_at=T0 - timedelta(days=3),
            paid_at=T0 - timedelta(days=2),
            shipped_at=T0 - timedelta(days=1),
        )
    )
    params = {"order": "o1", "kind": "refund_only", "reason": "quality", "amount": 19900}
    case = engine.execute(engine.build("apply", actor="buyer:b1", target={}, params=params))
    engine.execute(engine.build("agree", actor="seller:s1", target={"case_id": case.id}))
    assert engine.case(case.id).status == CaseStatus.REFUNDED
    return engine, case.id


@pytest.mark.parametrize(
    ("actor", "action", "params", "code"),
    [
        ("buyer:b1", "rule", {}, "forbidden"),  # reason (and all else) missing
        ("buyer:b1", "rule", {"outcome": "refund", "liable": "none"}, "forbidden"),
        ("buyer:b1", "agree", {}, "forbidden"),
        ("buyer:b1", "propose_remedy", {"type": "partial_refund", "amount": 100}, "forbidden"),
        ("buyer:b1", "propose_remedy", {"type": "nonsense"}, "forbidden"),
        ("buyer:b2", "withdraw", {"bogus": 1}, "forbidden"),
        ("seller:s1", "refuse", {}, "not_allowed"),  # the status before the missing reason
        ("seller:s1", "propose_remedy", {"type": "nonsense"}, "not_allowed"),
        ("agent:a1", "rule", {"outcome": "sideways"}, "not_allowed"),
        ("seller:s1", "classify", {}, "invalid"),  # an ended case takes a classification
        ("seller:s2", "classify", {}, "forbidden"),
        ("buyer:b1", "withdraw", {"bogus": 1}, "not_allowed"),
    ],
)
def test_the_engine_refuses_who_and_when_before_what_on_a_refunded_case(
    actor: str, action: str, params: dict[str, Any], code: str
) -> None:
    engine, case_id = engine_with_a_refunded_case()
    with pytest.raises(ActionRefused) as err:
        cmd = engine.build(action, actor=actor, target={"case_id": case_id}, params=params)
        engine.execute(cmd)
    assert err.value.code == code, err.value


def test_the_engine_refuses_evidence_from_a_stranger_before_looking_at_its_files() -> None:
    engine, case_id = engine_with_a_refunded_case()
    cmd = c.SubmitEvidence(actor=OTHER_BUYER, case_id=case_id, text="x", attachments=("0" * 64,))
    with pytest.raises(Forbidden):
        engine.execute(cmd)


@pytest.mark.parametrize("actor", ["seller:s1", "agent:a1"])
def test_only_a_buyer_side_applies_whatever_the_parameters(actor: str) -> None:
    engine, _ = engine_with_a_refunded_case()
    with pytest.raises(Forbidden):
        engine.build("apply", actor=actor, target={}, params={"kind": "sideways"})


def test_admission_changes_nothing_even_when_a_deadline_was_due() -> None:
    """Finding the status fires due deadlines in a unit of work that is rolled back."""
    store = MemoryStore()
    clock = VirtualClock(T0)
    engine: Engine[ApiUnitOfWork] = Engine(
        lambda: MemoryApiUnitOfWork(store), clock=clock, new_id=lambda: "c1"
    )
    engine.place_order(
        Order(
            id="o1",
            shop="s1",
            buyer="b1",
            total=19900,
            created_at=T0 - timedelta(days=3),
            paid_at=T0 - timedelta(days=2),
            shipped_at=T0 - timedelta(days=1),
        )
    )
    params = {"order": "o1", "kind": "refund_only", "reason": "quality", "amount": 19900}
    engine.execute(engine.build("apply", actor="buyer:b1", target={}, params=params))
    clock.advance(timedelta(days=6))  # seller_respond (5d) is due: the refund is owed
    with pytest.raises(NotAllowed):  # the seller can't refuse a refunded case, reason or not
        engine.build("refuse", actor="seller:s1", target={"case_id": "c1"}, params={})
    assert engine.case("c1").status == CaseStatus.AWAITING_SELLER  # nothing saved
