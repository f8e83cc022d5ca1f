"""One function per use case. Each runs in one unit of work and commits once.

Before any action, deadlines of the case and its order that are already due fire first, in
due order and stamped with their due time (SPEC §2: actions stamped at or after ``due_at``
are handled after the deadline fired): :func:`catch_up`. The worker's deadline runner, which
fires them without an action, is :mod:`shouhou.services.deadlines`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from shouhou.domain import cases, orders
from shouhou.domain import commands as c
from shouhou.domain import events as e
from shouhou.domain.deadlines import is_due
from shouhou.domain.model import SYSTEM, Actor, Case, CaseKind, CaseStatus, Order, evolve
from shouhou.domain.rules import Rules
from shouhou.errors import Conflict, Invalid, NotFound
from shouhou.services import outbox
from shouhou.services.ledger import ledger_entries
from shouhou.services.ports import AttachmentStore, UnitOfWork

RulesAt = Callable[[datetime], Rules]


def load_order(uow: UnitOfWork, order_id: str) -> Order:
    """The stored order; ``not_found`` when there is none."""
    order = uow.orders.get(order_id)
    if order is None:
        raise NotFound(f"no order {order_id}")
    return order


def load_case(uow: UnitOfWork, case_id: str) -> Case:
    """The stored case; ``not_found`` when there is none."""
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
    with uow:
        if isinstance(cmd, c.Apply):
            case = _open(uow, cmd, rules_at, now, new_id)
        else:
            if not isinstance(cmd, c.CaseCommand):
                raise Invalid(f"{cmd.action} is not a case action")
            case = load_case(uow, cmd.case_id)
            order = load_order(uow, case.order_id)
            others = [load_case(uow, i) for i in order.open_cases if i != case.id]
            order, everyone = catch_up_all(uow, order, [case, *others], rules_at, now)
            caught = everyone[0]
            if isinstance(cmd, c.SubmitEvidence):
                cases.admit(caught, cmd.actor, cmd.action)  # who and when before which files
                cmd = with_files(cmd, attachments)
            case, _ = _act(uow, caught, order, cmd, rules_at(now), now)
        uow.commit()
        return case


def admit(
    uow: UnitOfWork,
    action: str,
    actor: Actor,
    case_id: str,
    rules_at: RulesAt,
    now: datetime,
    visible: Callable[[Case], bool] | None = None,
) -> None:
    """Refuse ``action`` as the case action would before reading any parameter (SPEC §1):
    ``not_found`` for a case ``visible`` hides, ``forbidden``, then ``not_allowed`` in the
    status the case has once its due deadlines fired. Commits nothing: what firing them
    changed is rolled back with ``uow`` (or left to the outer unit of work it is joined to)."""
    with uow:
        case = load_case(uow, case_id)
        if visible is not None and not visible(case):
            raise NotFound(f"no case {case_id}", case=case_id)
        cases.authorize_action(case, actor, action)  # static: before firing anything
        _, caught = catch_up(uow, load_order(uow, case.order_id), case, rules_at, now)
        assert caught is not None
        cases.admit(caught, actor, action)


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
    """The order, and its first open case if any, after the deadlines of the order and of
    every open case that are due at ``now`` fired: an action on the order is stamped after
    them (SPEC §2)."""
    order = load_order(uow, order_id)
    open_cases = [load_case(uow, case_id) for case_id in order.open_cases]
    order, caught = catch_up_all(uow, order, open_cases, rules_at, now)
    return order, (caught[0] if caught else None)


def _open(
    uow: UnitOfWork, cmd: c.Apply, rules_at: RulesAt, now: datetime, new_id: Callable[[], str]
) -> Case:
    order, _ = caught_up_order(uow, cmd.order_id, rules_at, now)
    case_id = cmd.case_id or new_id()  # a taken one is refused by uow.cases.add
    rules = rules_at(now)
    events = cases.decide(None, replace(cmd, case_id=case_id), order=order, rules=rules, now=now)
    first = events[0]
    assert isinstance(first, e.Applied)
    case = cases.fold(cases.open_case(first), events[1:])
    uow.cases.add(case, events)
    uow.outbox.add(outbox.messages("case", case, events))
    uow.deadlines.sync("case", case.id, case.deadline)
    held = tuple(line.line for line in case.lines)
    save_order(uow, order, orders.on_case_opened(order, case.id, now, held))
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
    order, caught = catch_up_all(uow, order, [case] if case else [], rules_at, now)
    return order, (caught[0] if caught else None)


def catch_up_all(
    uow: UnitOfWork, order: Order, open_cases: list[Case], rules_at: RulesAt, now: datetime
) -> tuple[Order, list[Case]]:
    """Fire the deadlines of the order and of ``open_cases`` (several lines may have a case
    open at once) that are due at ``now``, earliest first; the cases after them, in order."""
    held = list(open_cases)
    while True:
        # on a tie a case's deadline fires before the order's (its refund may close the trade)
        last = len(held)
        due = (
            [(order.deadline.due_at, last)]
            if order.deadline and is_due(order.deadline, now)
            else []
        )
        due += [
            (case.deadline.due_at, n)
            for n, case in enumerate(held)
            if case.deadline is not None and is_due(case.deadline, now)
        ]
        if not due:
            return order, held
        at, which = min(due)
        if which == last:
            order = fire_order(uow, order, rules_at, at)
        else:
            held[which], order = _fire_case(uow, held[which], order, rules_at, at)


def fire_order(uow: UnitOfWork, order: Order, rules_at: RulesAt, at: datetime) -> Order:
    """Fire the order's current deadline at ``at`` (its due time) and save the order."""
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
