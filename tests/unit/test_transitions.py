"""The case transition table and its soundness checks (shouhou.domain.transitions)."""

from __future__ import annotations

import pytest

from shouhou.domain.model import TERMINAL_STATUSES, CaseStatus, Role
from shouhou.domain.transitions import (
    START,
    STATUS_DEADLINES,
    TABLE,
    Transition,
    check_table,
    find,
)
from shouhou.errors import NotAllowed, TransitionNotAllowed

S = CaseStatus


def _without(*pairs: tuple[CaseStatus, str]) -> list[Transition]:
    """The shipped table minus the rows named by (source, action)."""
    return [row for row in TABLE if (row.source, row.action) not in pairs]


def test_the_shipped_table_is_sound() -> None:
    assert check_table(TABLE, START, STATUS_DEADLINES) == []


def test_every_waiting_status_has_a_deadline_and_terminals_have_none() -> None:
    assert set(STATUS_DEADLINES) == set(CaseStatus) - TERMINAL_STATUSES


def test_a_status_with_no_way_to_a_terminal_is_reported_as_a_trap() -> None:
    table = [row for row in TABLE if row.source != S.SELLER_REFUSED]
    table.append(
        Transition(
            source=S.SELLER_REFUSED,
            action="timeout",
            targets=frozenset({S.SELLER_REFUSED}),
            actors=frozenset({Role.SYSTEM}),
        )
    )
    assert check_table(table, START, STATUS_DEADLINES) == [
        "status seller_refused is a trap: no terminal status is reachable"
    ]


def test_a_status_no_move_leads_to_is_reported_as_unreachable() -> None:
    table = _without(
        (S.AWAITING_SELLER, "refuse"),
        (S.AWAITING_SELLER_RECEIPT, "refuse_receipt"),
        (S.IN_INTERVENTION, "rule"),
    )
    assert check_table(table, START, STATUS_DEADLINES) == ["status seller_refused is unreachable"]


def test_a_terminal_status_with_an_outgoing_move_is_reported() -> None:
    reopen = Transition(
        source=S.REFUNDED,
        action="reopen",
        targets=frozenset({S.AWAITING_SELLER}),
        actors=frozenset({Role.AGENT}),
    )
    assert check_table([*TABLE, reopen], START, STATUS_DEADLINES) == [
        "terminal status refunded has an outgoing reopen"
    ]


def test_a_waiting_status_without_a_deadline_is_reported() -> None:
    deadlines = {k: v for k, v in STATUS_DEADLINES.items() if k != S.SELLER_REFUSED}
    assert check_table(TABLE, START, deadlines) == ["waiting status seller_refused has no deadline"]


def test_a_deadline_without_a_timeout_move_is_reported() -> None:
    table = _without((S.SELLER_REFUSED, "timeout"))
    assert check_table(table, START, STATUS_DEADLINES) == [
        "status seller_refused has a deadline but no timeout move"
    ]


def test_a_move_listed_twice_is_reported() -> None:
    problems = check_table([*TABLE, TABLE[0]], START, STATUS_DEADLINES)
    assert problems == [f"{TABLE[0].source.value}/{TABLE[0].action} appears twice"]


def test_a_move_without_targets_or_actors_is_reported() -> None:
    empty = Transition(
        source=S.AWAITING_SELLER, action="nudge", targets=frozenset(), actors=frozenset()
    )
    assert check_table([*TABLE, empty], START, STATUS_DEADLINES) == [
        "awaiting_seller/nudge has no targets or no actors"
    ]


def test_find_returns_the_row_for_a_move_in_the_table() -> None:
    row = find(S.AWAITING_SELLER_RECEIPT, "confirm_receipt")
    assert row.actors == frozenset({Role.SELLER})
    assert row.targets == frozenset({S.REFUNDED, S.AWAITING_SELLER_RESHIP})


def test_find_refuses_a_move_the_table_lacks_with_a_plain_sentence() -> None:
    with pytest.raises(TransitionNotAllowed, match=r"^can't confirm_receipt when refunded$") as err:
        find(S.REFUNDED, "confirm_receipt")
    assert isinstance(err.value, NotAllowed)
    assert err.value.code == "not_allowed"
    assert err.value.status == "refunded"


def test_only_modify_restarts_the_deadline_without_a_status_change() -> None:
    restarting = {(row.source, row.action) for row in TABLE if row.restarts_deadline}
    assert restarting == {(S.AWAITING_SELLER, "modify")}


def test_terminal_statuses_have_no_moves() -> None:
    assert not [row for row in TABLE if row.source in TERMINAL_STATUSES]


@pytest.mark.parametrize("status", sorted(set(CaseStatus) - TERMINAL_STATUSES))
def test_the_buyer_may_withdraw_in_every_waiting_status(status: CaseStatus) -> None:
    row = find(status, "withdraw")
    assert row.targets == frozenset({S.CLOSED})
    assert row.actors == frozenset({Role.BUYER})


@pytest.mark.parametrize("status", sorted(set(CaseStatus) - TERMINAL_STATUSES))
def test_only_the_system_fires_timeouts(status: CaseStatus) -> None:
    assert find(status, "timeout").actors == frozenset({Role.SYSTEM})
