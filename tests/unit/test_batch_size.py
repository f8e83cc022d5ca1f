"""The worker's batch: as many due deadlines as fit in the time budget of one transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain.model import Order
from shouhou.services import deadlines, handlers
from shouhou.services.deadlines import FIRE_BATCH, FIRE_BATCH_MAX, FIRE_BUDGET_S, BatchSize
from shouhou.services.ports import UnitOfWork
from shouhou.testing import MemoryStore, MemoryUnitOfWork


def test_the_first_batch_is_the_default_size() -> None:
    assert BatchSize().size == FIRE_BATCH


def test_costly_deadlines_make_smaller_batches_and_cheap_ones_bigger_up_to_the_cap() -> None:
    sizing = BatchSize()
    sizing.took(20, 20 * 2 * FIRE_BUDGET_S / 10)  # each took a fifth of the budget
    assert sizing.size == 5
    sizing.took(5, 5 * 2 * FIRE_BUDGET_S)  # each took twice the budget: one at a time
    assert sizing.size == 1
    sizing.took(1, FIRE_BUDGET_S / 40)
    assert sizing.size == 40
    sizing.took(40, 40 * FIRE_BUDGET_S / 10_000)
    assert sizing.size == FIRE_BATCH_MAX
    sizing.took(7, 0.0)  # a clock too coarse to see it: as big as allowed
    assert sizing.size == FIRE_BATCH_MAX


def test_a_transaction_that_fired_nothing_leaves_the_size_alone() -> None:
    sizing = BatchSize()
    sizing.took(0, 1.0)
    assert sizing.size == FIRE_BATCH


def test_run_due_claims_what_the_sizing_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every deadline fires, in due order, whatever the batch sizes the budget gives."""
    claims: list[int] = []
    fire_due = deadlines.fire_due

    def counting(
        uow: UnitOfWork, rules_at: handlers.RulesAt, now: datetime, limit: int
    ) -> tuple[list[deadlines.Fired], bool]:
        claims.append(limit)
        return fire_due(uow, rules_at, now, limit)

    monkeypatch.setattr(deadlines, "fire_due", counting)
    monkeypatch.setattr(deadlines, "FIRE_BUDGET_S", 0.0)  # nothing fits: one at a time
    paid = datetime(2024, 3, 1, tzinfo=UTC)
    store = MemoryStore()
    engine = Engine(lambda: MemoryUnitOfWork(store), clock=VirtualClock(paid + timedelta(hours=1)))
    for i in range(FIRE_BATCH + 5):
        engine.place_order(
            Order(
                id=f"o{i}",
                shop="s1",
                buyer="b1",
                total=100,
                created_at=paid,
                paid_at=paid + timedelta(minutes=i),  # ship_by due in this order
            )
        )

    fired = engine.run_due(paid + timedelta(days=10))

    assert [f.subject_id for f in fired] == [f"o{i}" for i in range(FIRE_BATCH + 5)]
    assert claims[0] == FIRE_BATCH and set(claims[1:]) == {1}
