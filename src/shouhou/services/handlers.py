"""One function per use case. Each runs in one unit of work and commits once.

Before any action, deadlines of the case and its order that are already due fire first, in
due order and stamped with their due time (SPEC §2: actions stamped at or after ``due_at``
are handled after the deadline fired).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from shouhou.domain import cases, orders
from shouhou.domain import commands as c
from shouhou.domain import events as e
from shouhou.domain.deadlines import is_due
from shouhou.domain.model import SYSTEM, Case, CaseKind, CaseStatus, Deadline, Order, evolve
from shouhou.domain.rules import Rules
from shouhou.errors import UNREADABLE, Conflict, Invalid, NotFound, ShouhouError
from shouhou.services import outbox
from shouhou.services.ledger import ledger_entries
from shouhou.services.ports import AttachmentStore, DueDeadline, UnitOfWork

RulesAt = Callable[[datetime], Rules]
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


def _order(uow: UnitOfWork, order_id: str) -> Order:
    order = uow.orders.get(order_id)
    if order is None:
        raise NotFound(f"no order {order_id}")
    return order


def _case(uow: UnitOfWork, case_id: str) -> Case:
    case = uow.cases.get(case_id)
    if case is None:
        raise NotFound(f"no case {case_id}", case=case_id)
    return case


def save_order(uow: UnitOfWork, order: Order, events: Sequence[e.Event]) -> Order:
    if not events:
        return order
    after = orders.fold(order, list(events))
    uow.orders.save(after, events)
    uow.outbox.add(outbox.messages("order", after, events))
    uow.deadlines.sync("order", after.id, after.deadline)
    return evolve(after, version=after.version + 1)


def _save_case(uow: UnitOfWork, after: Case, events: Sequence[e.Event]) -> Case:
    """Save ``after``, the case after ``events``."""
    uow.cases.save(after, events)
    uow.ledger.add(ledger_entries("case", after.id, events))
    uow.outbox.add(outbox.messages("case", after, events))
    uow.deadlines.sync("case", after.id, after.deadline)
    return evolve(after, version=after.version + 1)


# --- orders ------------------------------------------------------------------------------


def place_order(uow: UnitOfWork, order: Order, rules: Rules, now: datetime) -> Order:
    """Record a new order in the status its given times describe; refuse a duplicate id."""
    with uow:
        if uow.orders.get(order.id) is not None:
            raise Conflict(f"order {order.id} already exists")
        for moment in (order.paid_at, order.shipped_at, order.delivered_at, order.trade_success_at):
            if moment is not None and moment > now:
                raise Invalid(f"order {order.id}: {moment.isoformat()} is in the future")
        if order.shipping_fee > order.total:
            raise Invalid(
                f"order {order.id}: the shipping fee ({order.shipping_fee} fen) is more than the"
                f" total ({order.total} fen), which includes it"
            )
        events = orders.place(order, rules)
        placed = orders.fold(order, events)
        uow.orders.add(placed, events)
        uow.outbox.add(outbox.messages("order", placed, events))
        uow.deadlines.sync("order", placed.id, placed.deadline)
        uow.commit()
        return placed


def order_action(uow: UnitOfWork, cmd: c.OrderCommand, rules_at: RulesAt, now: datetime) -> Order:
    """Carry out a platform action on an order (pay, ship, deliver, confirm_receipt, close)."""
    with uow:
        order, _ = caught_up_order(uow, cmd.order_id, rules_at, now)
        order = save_order(uow, order, orders.decide(order, cmd, rules=rules_at(now), now=now))
        uow.commit()
        return order


# --- cases -------------------------------------------------------------------------------


def case_action(
    uow: UnitOfWork,
    cmd: c.Command,
    rules_at: RulesAt,
    now: datetime,
    new_id: Callable[[], str],
    attachments: AttachmentStore | None = None,
) -> Case:
    """Carry out a case action; returns the case as stored. Refusals change nothing."""
    if isinstance(cmd, c.SubmitEvidence):
        cmd = with_files(cmd, attachments)
    with uow:
        if isinstance(cmd, c.Apply):
            case = _open(uow, cmd, rules_at, now, new_id)
        else:
            if not isinstance(cmd, c.CaseCommand):
                raise Invalid(f"{cmd.action} is not a case action")
            case = _case(uow, cmd.case_id)
            order = _order(uow, case.order_id)
            order, caught = catch_up(uow, order, case, rules_at, now)
            assert caught is not None
            case, _ = _act(uow, caught, order, cmd, rules_at(now), now)
        uow.commit()
        return case


def with_files(cmd: c.SubmitEvidence, store: AttachmentStore | None) -> c.SubmitEvidence:
    """The command with the stored files its attachment names refer to; ``invalid`` for a name
    that was never stored."""
    files = []
    for sha256 in cmd.attachments:
        found = store.get(sha256) if store is not None else None
        if found is None:
            raise Invalid(f"no stored attachment {sha256}; upload it first", case=cmd.case_id)
        files.append(found)
    return replace(cmd, files=tuple(files))


def intervention_queue(uow: UnitOfWork, limit: int = 500) -> list[Case]:
    """Cases in intervention for agents: those awaiting a ruling first (oldest first), then
    the rest by their stage deadline."""
    with uow:
        waiting = uow.cases.list(status=CaseStatus.IN_INTERVENTION, limit=limit)

    def urgency(case: Case) -> tuple[int, datetime]:
        if case.deadline is None:
            return (0, case.opened_at)
        return (1, case.deadline.due_at)

    return sorted(waiting, key=urgency)


def caught_up_order(
    uow: UnitOfWork, order_id: str, rules_at: RulesAt, now: datetime
) -> tuple[Order, Case | None]:
    """The order, and its open case if any, after the deadlines of both that are due at
    ``now`` fired: an action on the order is stamped after them (SPEC §2)."""
    order = _order(uow, order_id)
    case = _case(uow, order.open_case) if order.open_case is not None else None
    return catch_up(uow, order, case, rules_at, now)


def _open(
    uow: UnitOfWork, cmd: c.Apply, rules_at: RulesAt, now: datetime, new_id: Callable[[], str]
) -> Case:
    order, _ = caught_up_order(uow, cmd.order_id, rules_at, now)
    case_id = cmd.case_id or new_id()
    if uow.cases.get(case_id) is not None:
        raise Conflict(f"case {case_id} already exists", case=case_id)
    rules = rules_at(now)
    events = cases.decide(None, replace(cmd, case_id=case_id), order=order, rules=rules, now=now)
    first = events[0]
    assert isinstance(first, e.Applied)
    case = cases.fold(cases.open_case(first), events[1:])
    uow.cases.add(case, events)
    uow.outbox.add(outbox.messages("case", case, events))
    uow.deadlines.sync("case", case.id, case.deadline)
    save_order(uow, order, orders.on_case_opened(order, case.id, now))
    return evolve(case, version=1)


def _act(
    uow: UnitOfWork, case: Case, order: Order, cmd: c.Command, rules: Rules, now: datetime
) -> tuple[Case, Order]:
    """Decide and save ``cmd`` on ``case``; a case that ends releases its order."""
    events, after = cases.step(case, cmd, order=order, rules=rules, now=now)
    after = _save_case(uow, after, events)
    if after.terminal and not case.terminal:  # a note on an ended case ends nothing
        order = save_order(uow, order, orders.on_case_ended(order, after, rules, now))
    return after, order


def catch_up(
    uow: UnitOfWork, order: Order, case: Case | None, rules_at: RulesAt, now: datetime
) -> tuple[Order, Case | None]:
    """Fire the order's and the case's deadlines that are due at ``now``, earliest first."""
    while True:
        due = [
            (d.due_at, kind)
            for d, kind in ((order.deadline, "order"), (case.deadline if case else None, "case"))
            if d is not None and is_due(d, now)
        ]
        if not due:
            return order, case
        at, kind = min(due)
        if kind == "order":
            order = _fire_order(uow, order, rules_at, at)
        else:
            assert case is not None
            case, order = _fire_case(uow, case, order, rules_at, at)


def _fire_order(uow: UnitOfWork, order: Order, rules_at: RulesAt, at: datetime) -> Order:
    assert order.deadline is not None
    deadline = order.deadline
    events = orders.decide(
        order, c.OrderTimeout(actor=SYSTEM, order_id=order.id), rules=rules_at(at), now=at
    )
    uow.deadlines.fire("order", order.id, deadline.name, deadline.due_at, at)
    return save_order(uow, order, events)


def _fire_case(
    uow: UnitOfWork, case: Case, order: Order, rules_at: RulesAt, at: datetime
) -> tuple[Case, Order]:
    assert case.deadline is not None
    deadline = case.deadline
    uow.deadlines.fire("case", case.id, deadline.name, deadline.due_at, at)
    address = None
    if deadline.on_expiry == "agree" and case.kind != CaseKind.REFUND_ONLY:
        address = uow.shops.return_address(case.shop)  # where the buyer sends the goods
    timeout = c.Timeout(actor=SYSTEM, case_id=case.id, return_address=address)
    return _act(uow, case, order, timeout, rules_at(at), at)


# --- deadlines ---------------------------------------------------------------------------


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
        more = len(claimed) == limit or (started is not None and started <= now)
        if fired:
            uow.commit()
    return fired, more


def _fire(uow: UnitOfWork, due: DueDeadline, rules_at: RulesAt) -> Fired:
    if due.subject_type == "order":
        order = _order(uow, due.subject_id)
        deadline = order.deadline
        _check_in_step(due, deadline)
        assert deadline is not None
        order = _fire_order(uow, order, rules_at, due.due_at)
        status = order.status.value
    else:
        case = _case(uow, due.subject_id)
        deadline = case.deadline
        _check_in_step(due, deadline)
        assert deadline is not None
        order = _order(uow, case.order_id)
        order, caught = catch_up(uow, order, case, rules_at, due.due_at)
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


class OutOfStep(RuntimeError):
    """A pending deadline row disagrees with its subject: a bug, never retried."""


#: What a deadline's firing may fail with that is about the deadline's own data — its subject
#: missing, out of step with it, a snapshot that cannot be read, a rule refusing — and that
#: firing it again would meet again. Errors of the database or the machine are not among
#: them: those fail the pass, and the next pass tries again.
SET_ASIDE_ON = (ShouhouError, OutOfStep, *UNREADABLE)


class CannotFire(Exception):
    """Firing ``due`` failed with ``error``, one of :data:`SET_ASIDE_ON`."""

    def __init__(self, due: DueDeadline, error: Exception) -> None:
        super().__init__(f"{due.subject_type} {due.subject_id}: {due.name}: {error!r}")
        self.due = due
        self.error = error


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
