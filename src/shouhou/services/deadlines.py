"""The deadline runner: fire every pending deadline that is due, in due order, in batches.

A deadline fires as the case or order it belongs to would have it fire before any action
(:func:`shouhou.services.handlers.catch_up`): stamped with its due time (SPEC §2). One that
cannot fire is set aside with its error, and the others go on firing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shouhou.domain.model import Deadline
from shouhou.errors import UNREADABLE, CannotFire, Conflict, OutOfStep, ShouhouError
from shouhou.services import handlers
from shouhou.services.handlers import RulesAt
from shouhou.services.ports import DueDeadline, UnitOfWork

#: How many lost races in a row a deadline run tolerates before it gives up.
MAX_CONFLICTS_IN_A_ROW = 100
#: Deadlines ``run_due`` claims for its first transaction: one commit for many (the commit is
#: most of a firing's cost on PostgreSQL). Later batches are sized by :class:`BatchSize`.
FIRE_BATCH = 20
#: The most deadlines one transaction claims, however cheap they are to fire.
FIRE_BATCH_MAX = 100
#: How long one firing transaction should take: the orders it fires on stay locked that long
#: (on SQLite, the whole database). The next batch is as big as the last one's time per
#: deadline allows, so cheap deadlines go a hundred to a commit and costly ones a dozen.
FIRE_BUDGET_S = 0.025


@dataclass
class BatchSize:
    """How many due deadlines the next transaction claims: FIRE_BATCH at first, then as many
    as fit in FIRE_BUDGET_S at the last batch's time per deadline (1 to FIRE_BATCH_MAX)."""

    size: int = FIRE_BATCH

    def took(self, fired: int, seconds: float) -> None:
        """Record that a transaction fired ``fired`` deadlines in ``seconds``."""
        if fired <= 0:
            return
        per_deadline = seconds / fired
        fits = int(FIRE_BUDGET_S / per_deadline) if per_deadline > 0 else FIRE_BATCH_MAX
        self.size = max(1, min(FIRE_BATCH_MAX, fits))


@dataclass(frozen=True, kw_only=True)
class Fired:
    """A deadline that fired: whose, which, when it was due, the rule, and the outcome."""

    subject_type: str
    subject_id: str
    name: str
    due_at: datetime
    rule_id: str
    status: str


def fire_due(
    uow: UnitOfWork, rules_at: RulesAt, now: datetime, limit: int
) -> tuple[list[Fired], bool]:
    """Fire up to ``limit`` deadlines due at or before ``now`` in one transaction (all of
    them, or none if one fails), each stamped with its due time; what fired, and whether more
    may be due.

    The batch is claimed at once, then fired in due order; it passes over the claimed ones
    that firing an earlier one fired or replaced, and stops before one due after a deadline
    the batch itself started (the next claim takes them in order)."""
    fired: list[Fired] = []
    with uow:
        claimed = uow.deadlines.claim_due(now, limit)
        for due in claimed:
            started = uow.deadlines.earliest_scheduled()
            if started is not None and started < due.due_at:
                break
            if uow.deadlines.still_due(due):
                try:
                    fired.append(_fire(uow, due, rules_at))
                except Conflict:
                    raise
                except SET_ASIDE_ON as exc:
                    raise CannotFire(due, exc) from exc
        started = uow.deadlines.earliest_scheduled()
        # A claim takes from one bucket only on PostgreSQL (0021): fewer than ``limit`` says
        # nothing of the other buckets, so only a claim that finds none ends the run.
        more = bool(claimed) or (started is not None and started <= now)
        if fired:
            uow.commit()
    return fired, more


def _fire(uow: UnitOfWork, due: DueDeadline, rules_at: RulesAt) -> Fired:
    if due.subject_type == "order":
        order = handlers.load_order(uow, due.subject_id)
        deadline = order.deadline
        _check_in_step(due, deadline)
        assert deadline is not None
        order = handlers.fire_order(uow, order, rules_at, due.due_at)
        status = order.status.value
    else:
        case = handlers.load_case(uow, due.subject_id)
        deadline = case.deadline
        _check_in_step(due, deadline)
        assert deadline is not None
        order = handlers.load_order(uow, case.order_id)
        order, caught = handlers.catch_up(uow, order, case, rules_at, due.due_at)
        assert caught is not None
        status = caught.status.value
    return Fired(
        subject_type=due.subject_type,
        subject_id=due.subject_id,
        name=due.name,
        due_at=due.due_at,
        rule_id=deadline.rule_id,
        status=status,
    )


#: What a deadline's firing may fail with that is about the deadline's own data — its subject
#: missing, out of step with it, a snapshot that cannot be read, a rule refusing — and that
#: firing it again would meet again. Errors of the database or the machine are not among
#: them: those fail the pass, and the next pass tries again.
SET_ASIDE_ON = (ShouhouError, OutOfStep, *UNREADABLE)


def _check_in_step(due: DueDeadline, deadline: Deadline | None) -> None:
    if deadline is None or deadline.due_at != due.due_at or deadline.name != due.name:
        raise OutOfStep(
            f"{due.subject_type} {due.subject_id}: pending deadline {due.name} at "
            f"{due.due_at.isoformat()} is not the subject's current deadline"
        )


def run_due(
    uow_factory: Callable[[], UnitOfWork],
    rules_at: RulesAt,
    now: datetime,
    *,
    limit: int | None = None,
    on_fired: Callable[[Fired], None] | None = None,
    on_set_aside: Callable[[CannotFire], None] | None = None,
) -> list[Fired]:
    """Fire every deadline due at or before ``now``, in due order, a batch sized by
    :class:`BatchSize` in each transaction; after a lost race, one at a time until one
    succeeds.

    A deadline that cannot fire (:class:`CannotFire`) rolls its batch back and is set aside
    as ``failed`` with the error, in a transaction of its own; the others go on firing, and
    ``on_set_aside`` hears of it. One bad row never stops the deadlines behind it."""
    fired: list[Fired] = []
    conflicts = 0
    set_aside: set[int] = set()
    sizing = BatchSize()
    while limit is None or len(fired) < limit:
        size = 1 if conflicts else sizing.size
        if limit is not None:
            size = min(size, limit - len(fired))
        try:
            started = time.perf_counter()
            batch, more = fire_due(uow_factory(), rules_at, now, size)
            sizing.took(len(batch), time.perf_counter() - started)
        except CannotFire as failed:
            if failed.due.id in set_aside:  # set aside, yet claimed again: never loop on it
                raise
            set_aside.add(failed.due.id)
            with uow_factory() as uow:
                uow.deadlines.set_aside(failed.due, repr(failed.error)[:2000])
                uow.commit()
            if on_set_aside is not None:
                on_set_aside(failed)
            continue
        except Conflict:
            conflicts += 1  # another worker fired or changed one first: look again
            if conflicts > MAX_CONFLICTS_IN_A_ROW:
                raise
            continue
        conflicts = 0
        for one in batch:
            fired.append(one)
            if on_fired is not None:
                on_fired(one)
        if not more:
            break
    return fired
