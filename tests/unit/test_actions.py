"""The case action handlers match the transition table's actions one to one
(shouhou.domain.actions.check_handlers, run when the module is imported)."""

from __future__ import annotations

from shouhou.domain.actions import HANDLERS, check_handlers
from shouhou.domain.transitions import TABLE


def test_every_action_of_the_shipped_table_has_a_handler_and_no_handler_is_spare() -> None:
    assert check_handlers(HANDLERS, TABLE) == []


def test_an_action_of_the_table_without_a_handler_is_reported() -> None:
    handlers = {name: h for name, h in HANDLERS.items() if name != "reship"}
    assert check_handlers(handlers, TABLE) == ["action reship has no handler"]


def test_a_handler_for_an_action_the_table_does_not_have_is_reported() -> None:
    handlers = {**HANDLERS, "reopen": HANDLERS["agree"]}
    assert check_handlers(handlers, TABLE) == ["handler reopen has no row in the transition table"]


def test_both_mismatches_are_reported_together() -> None:
    handlers = {name: h for name, h in HANDLERS.items() if name != "timeout"}
    handlers["reopen"] = HANDLERS["agree"]
    assert check_handlers(handlers, TABLE) == [
        "action timeout has no handler",
        "handler reopen has no row in the transition table",
    ]
