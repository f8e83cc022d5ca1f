"""Every refusal names a rule and carries a stable code (SPEC §1 error codes)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from shouhou import errors
from shouhou.domain import transitions
from shouhou.domain.model import CaseStatus
from shouhou.domain.values import SHANGHAI
from shouhou.errors import (
    ActionRefused,
    CannotFire,
    Conflict,
    Forbidden,
    Invalid,
    NotAllowed,
    NotEligible,
    NotFound,
    OutOfStep,
    ShouhouError,
    TransitionNotAllowed,
)
from shouhou.services.ports import DueDeadline

T = datetime(2023, 3, 1, 10, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("cls", "code", "rule"),
    [
        (NotAllowed, "not_allowed", "shouhou/transition-table"),
        (TransitionNotAllowed, "not_allowed", "shouhou/transition-table"),
        (Forbidden, "forbidden", "shouhou/parties"),
        (Invalid, "invalid", "shouhou/parameters"),
        (Conflict, "conflict", "shouhou/versions"),
    ],
)
def test_structural_refusals_name_the_engine_rule_behind_them(
    cls: type[ActionRefused], code: str, rule: str
) -> None:
    refusal = cls("no")
    assert refusal.to_dict() == {"code": code, "message": "no", "rule": rule}


def test_a_rulebook_rule_given_explicitly_wins_over_the_default() -> None:
    assert (
        Invalid("no", rule="tmall-standard/reason.quality").rule == "tmall-standard/reason.quality"
    )


def test_a_time_rule_refusal_says_from_when_the_action_is_allowed() -> None:
    when = datetime(2023, 3, 4, 10, tzinfo=SHANGHAI)
    refusal = NotEligible("too early", rule="tmall-standard/intervention_after", allowed_from=when)
    assert refusal.to_dict()["allowed_from"] == "2023-03-04T10:00:00+08:00"


def test_not_found_names_no_rule() -> None:
    assert "rule" not in NotFound("no case x").to_dict()


def test_the_transition_table_refusal_names_status_and_rule() -> None:
    with pytest.raises(TransitionNotAllowed) as err:
        transitions.find(CaseStatus.REFUNDED, "confirm_receipt")
    assert err.value.to_dict()["status"] == "refunded"
    assert err.value.rule == "shouhou/transition-table"


def _error_classes() -> list[type[Exception]]:
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    ]


def test_every_error_of_the_module_is_in_the_one_tree() -> None:
    assert [cls.__name__ for cls in _error_classes() if not issubclass(cls, ShouhouError)] == []


def test_every_error_of_the_module_is_drawn_in_its_docstring() -> None:
    drawn = {"ShouhouError", *re.findall(r"[└├]── (\w+)", errors.__doc__ or "")}
    assert {cls.__name__ for cls in _error_classes()} == drawn


def test_the_deadline_runner_errors_keep_their_fields() -> None:
    due = DueDeadline(id=7, subject_type="case", subject_id="c1", name="seller_respond", due_at=T)
    failed = CannotFire(due, OutOfStep("stale"))
    assert (failed.due, type(failed.error)) == (due, OutOfStep)
    assert str(failed) == "case c1: seller_respond: OutOfStep('stale')"
    assert isinstance(failed.error, RuntimeError)  # a bug, as before it joined the tree
