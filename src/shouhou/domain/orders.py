"""The order aggregate: payment, shipment, the ``ship_by`` and ``auto_confirm`` deadlines.

``auto_confirm`` pauses while any case of the order is open and resumes with the time that was
left when the last one ends; a refund of every line in the in-sale phase closes the trade
(SPEC §2–3). The order books each refund on its lines (:mod:`shouhou.domain.lines`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import reduce

from shouhou.domain import commands as c
from shouhou.domain import events as e
from shouhou.domain import lines
from shouhou.domain.deadlines import fired as fired_event
from shouhou.domain.deadlines import is_due, schedule
from shouhou.domain.model import (
    Case,
    CaseStatus,
    ClosedReason,
    Deadline,
    Order,
    OrderStatus,
    Phase,
    Promotion,
    Role,
    Shipment,
    evolve,
)
from shouhou.domain.rules import DeadlineContext, Rules
from shouhou.errors import Forbidden, Invalid, NotAllowed, NotEligible

OS = OrderStatus
#: The order action → the statuses it may be taken in.
ORDER_MOVES: dict[str, frozenset[OrderStatus]] = {
    "pay": frozenset({OS.AWAITING_PAYMENT}),
    "ship": frozenset({OS.PAID}),
    "deliver": frozenset({OS.SHIPPED}),
    "confirm_receipt": frozenset({OS.SHIPPED, OS.DELIVERED}),
    "close": frozenset({OS.AWAITING_PAYMENT}),
    "reopen": frozenset({OS.TRADE_SUCCESS}),
}
#: Who may take each order action; the rest are the platform's (or an agent's).
ORDER_ACTORS: dict[str, frozenset[Role]] = {"reopen": frozenset({Role.AGENT})}


def apply(order: Order, event: e.Event) -> Order:
    """``order`` after ``event``; pure."""
    match event:  # the commonest first: each arm is an isinstance check
        case e.DeadlineSet():
            return evolve(order, deadline=event.deadline)
        case e.OrderPlaced():
            return event.order
        case e.OrderPaid():
            return evolve(order, status=OS.PAID, paid_at=event.at, ship_by=event.ship_by)
        case e.OrderShipped():
            return evolve(
                order,
                status=OS.SHIPPED,
                shipped_at=event.recorded_at,
                shipping_method=event.shipment.method,
                late=event.late,
            )
        case e.OrderDelivered():
            return evolve(order, status=OS.DELIVERED, delivered_at=event.at)
        case e.TradeSucceeded():
            return evolve(order, status=OS.TRADE_SUCCESS, trade_success_at=event.at)
        case e.OrderClosed():
            return evolve(order, status=OS.CLOSED, closed_at=event.at)
        case e.MarkedLate():
            return evolve(order, late=True)
        case e.AfterSaleReopened():
            return evolve(order, reopened_until=event.until)
        case e.CaseOpenedOnOrder():
            held = lines.of(order)
            ids = event.lines or tuple(line.line for line in held)
            return evolve(
                order,
                open_cases=(*order.open_cases, event.case_id),
                case_count=order.case_count + 1,
                lines=lines.opened(held, event.case_id, ids),
            )
        case e.CaseEndedOnOrder():
            held = lines.booked(lines.of(order), event.case_id, event.lines)
            if event.blocks_reapply is not None:
                held = tuple(
                    evolve(line, no_reapply_rule=event.blocks_reapply)
                    if line.line in _case_lines(order, event.case_id)
                    else line
                    for line in held
                )
            return evolve(
                order,
                open_cases=tuple(c for c in order.open_cases if c != event.case_id),
                lines=held,
                refunded=order.refunded + event.refunded,
                withheld=order.withheld + event.withheld,
                compensated=order.compensated or event.compensated,
                no_reapply_rule=order.no_reapply_rule or event.blocks_reapply,
            )
        case e.OrderCompensated():
            return evolve(order, compensated=True)
        case e.AutoConfirmPaused():
            return evolve(order, auto_confirm_remaining=event.remaining)
        case e.AutoConfirmResumed():
            return evolve(order, auto_confirm_remaining=None)
    return order


def _case_lines(order: Order, case_id: str) -> frozenset[str]:
    """The lines case ``case_id`` holds open (every line for a case opened before lines)."""
    held = frozenset(line.line for line in lines.of(order) if line.open_case == case_id)
    return held or frozenset(line.line for line in lines.of(order))


def fold(order: Order, events: list[e.Event]) -> Order:
    return reduce(apply, events, order)


def _set(at: datetime, deadline: Deadline | None) -> e.DeadlineSet:
    return e.DeadlineSet(at=at, actor="system", deadline=deadline)


def ship_by(order: Order, rules: Rules, paid_at: datetime) -> Deadline:
    """The ``ship_by`` deadline from payment: by promotion, or the presale's promised date."""
    ctx = DeadlineContext(
        name="ship_by", start_event="paid", start_at=paid_at, promotion=order.promotion
    )
    if order.promotion == Promotion.PRESALE:
        if order.promised_ship_by is None:
            raise Invalid("a presale order needs promised_ship_by")
        return schedule(rules, ctx, due_at=order.promised_ship_by)
    return schedule(rules, ctx)


def auto_confirm(order: Order, rules: Rules, start: datetime) -> Deadline:
    ctx = DeadlineContext(
        name="auto_confirm",
        start_event="shipped",
        start_at=start,
        shipping_method=order.shipping_method,
    )
    return schedule(rules, ctx)


def pay(order: Order, rules: Rules, at: datetime) -> list[e.Event]:
    deadline = ship_by(order, rules, at)
    return [
        e.OrderPaid(
            at=at, actor="platform", ship_by=deadline.due_at, ship_by_rule=deadline.rule_id
        ),
        _set(at, deadline),
    ]


def ship(order: Order, rules: Rules, at: datetime, cmd: c.Ship | None = None) -> list[e.Event]:
    recorded = (cmd.recorded_at if cmd else None) or at
    method = (cmd.method if cmd else None) or order.shipping_method
    shipment = Shipment(
        carrier=cmd.carrier if cmd else "", waybill=cmd.waybill if cmd else "", method=method
    )
    # late by the courier's record time; a deadline is passed at its due time (SPEC §2)
    late = order.ship_by is not None and recorded >= order.ship_by
    shipped = e.OrderShipped(
        at=at, actor="platform", shipment=shipment, recorded_at=recorded, late=late
    )
    after = apply(order, shipped)
    deadline = auto_confirm(after, rules, recorded)
    events: list[e.Event] = [shipped]
    if order.open_case is not None:
        events.append(
            e.AutoConfirmPaused(
                at=at,
                actor="system",
                remaining=deadline.due_at - at,
                case_id=order.open_case,
            )
        )
        events.append(_set(at, None))
    else:
        events.append(_set(at, deadline))
    return events


def succeed(at: datetime, actor: str, rule_id: str | None) -> list[e.Event]:
    return [e.TradeSucceeded(at=at, actor=actor, rule_id=rule_id), _set(at, None)]


def decide(order: Order, cmd: c.Command, *, rules: Rules, now: datetime) -> list[e.Event]:
    """The events of an order action (actor ``platform``, or ``system`` for timeouts)."""
    if isinstance(cmd, c.OrderTimeout):
        return _timeout(order, now)
    actors = ORDER_ACTORS.get(cmd.action, frozenset({Role.PLATFORM, Role.AGENT}))
    if cmd.actor.role not in actors:
        who = " or ".join(sorted(a.value for a in actors))
        raise Forbidden(f"only the {who} may {cmd.action} an order")
    allowed = ORDER_MOVES.get(cmd.action, frozenset())
    if order.status not in allowed:
        raise NotAllowed(f"can't {cmd.action} an order that is {order.status.value}")
    match cmd:
        case c.Pay():
            return pay(order, rules, now)
        case c.Ship():
            return ship(order, rules, now, cmd)
        case c.Deliver():
            return [e.OrderDelivered(at=now, actor=str(cmd.actor))]
        case c.ConfirmOrderReceipt():
            if order.open_case is not None:
                raise NotEligible(
                    f"order {order.id} has an open case {order.open_case}",
                    rule=rules.limit("one_open_case").rule_id,
                )
            return succeed(now, str(cmd.actor), None)
        case c.Reopen():
            return [_reopen(order, cmd, rules, now)]
        case c.CloseOrder():
            return [e.OrderClosed(at=now, actor=str(cmd.actor), reason=cmd.reason), _set(now, None)]
    raise Invalid(f"unknown order action {cmd.action}")


def _reopen(order: Order, cmd: c.Reopen, rules: Rules, now: datetime) -> e.AfterSaleReopened:
    """An agent verified the order: its after-sales window opens again for a while."""
    if not cmd.note.strip():
        raise Invalid("reopen needs a note saying what the agent verified")
    window = rules.limit("reopen_window")
    assert isinstance(window.value, timedelta)
    return e.AfterSaleReopened(
        at=now,
        actor=str(cmd.actor),
        until=now + window.value,
        note=cmd.note,
        rule_id=window.rule_id,
    )


def _timeout(order: Order, now: datetime) -> list[e.Event]:
    deadline = order.deadline
    if deadline is None or not is_due(deadline, now):
        raise NotEligible(
            f"order {order.id} has no deadline due at {now.isoformat()}",
            allowed_from=deadline.due_at if deadline else None,
        )
    fired = fired_event(deadline, now)
    if deadline.on_expiry == "mark_late":
        return [
            fired,
            e.MarkedLate(at=now, actor="system", rule_id=deadline.rule_id),
            _set(now, None),
        ]
    if deadline.on_expiry == "trade_success":
        return [fired, *succeed(now, "system", deadline.rule_id)]
    raise ValueError(f"unknown order on_expiry {deadline.on_expiry!r}")


def on_case_opened(
    order: Order, case_id: str, now: datetime, held: tuple[str, ...] = ()
) -> list[e.Event]:
    """Opening a case holds its lines (``held``; empty: every line) and pauses
    ``auto_confirm`` with the time that was left."""
    events: list[e.Event] = [
        e.CaseOpenedOnOrder(at=now, actor="system", case_id=case_id, lines=held)
    ]
    deadline = order.deadline
    if deadline is not None and deadline.name == "auto_confirm":
        events.append(
            e.AutoConfirmPaused(
                at=now,
                actor="system",
                remaining=max(deadline.due_at - now, timedelta(0)),
                case_id=case_id,
            )
        )
        events.append(_set(now, None))
    return events


def on_case_ended(order: Order, case: Case, rules: Rules, now: datetime) -> list[e.Event]:
    """A case ended: book the refund on its lines (refused when it would take a line or the
    order past what was paid), then close the trade once every line is refunded in sale, or
    resume ``auto_confirm`` once no case of the order is open."""
    refunded = case.refund_amount if case.status == CaseStatus.REFUNDED else 0
    parts = case.refund_lines if refunded else ()
    if refunded and not parts:  # a refund written before lines existed: all goods first
        parts = lines.split(order, lines.of_case(case, order), refunded)
    goods = sum(part.buyer for part in parts)
    withheld = case.freight.deducted if refunded and case.freight else 0
    # the outbound fee kept is shipping no longer refundable: never more than is left of it
    withheld = min(withheld, max(0, lines.shipping_left(order) - (refunded - goods)))
    lines.book(order, parts, refunded, withheld)
    blocks = None
    if case.closed_reason == ClosedReason.BUYER_TIMEOUT:
        blocks = rules.limit("no_reapply_after_timeout").rule_id
    events: list[e.Event] = [
        e.CaseEndedOnOrder(
            at=now,
            actor="system",
            case_id=case.id,
            refunded=refunded,
            withheld=withheld,
            compensated=case.compensation is not None,
            blocks_reapply=blocks,
            lines=parts,
        )
    ]
    after = apply(order, events[0])
    whole = all(lines.done(line) for line in lines.of(after))
    if case.phase == Phase.IN_SALE and whole and after.status != OS.TRADE_SUCCESS:
        closes = rules.limit("in_sale_full_refund_closes").rule_id
        events += [
            e.OrderClosed(at=now, actor="system", reason="refunded", rule_id=closes),
            _set(now, None),
        ]
    elif (
        after.auto_confirm_remaining is not None
        and after.status in (OS.SHIPPED, OS.DELIVERED)
        and not after.open_cases
    ):
        remaining = after.auto_confirm_remaining
        rule = auto_confirm(after, rules, now)
        resumed = evolve(rule, due_at=now + remaining, duration=remaining)
        events += [
            e.AutoConfirmResumed(at=now, actor="system", remaining=remaining),
            _set(now, resumed),
        ]
    return events


def place(order: Order, rules: Rules) -> list[e.Event]:
    """Events that bring a new order to the state its given times describe.

    An order listed with ``paid_at``/``shipped_at``/… starts in the matching status, with its
    deadlines running from those times (SPEC §11).
    """
    start = evolve(
        order,
        lines=lines.build(order),
        status=OS.AWAITING_PAYMENT,
        paid_at=None,
        shipped_at=None,
        delivered_at=None,
        trade_success_at=None,
        closed_at=None,
        ship_by=None,
        late=False,
        deadline=None,
    )
    events: list[e.Event] = [e.OrderPlaced(at=order.created_at, actor="platform", order=start)]
    state = start
    steps: tuple[tuple[datetime | None, Callable[[Order, datetime], list[e.Event]]], ...] = (
        (order.paid_at, lambda s, at: pay(s, rules, at)),
        (order.shipped_at, lambda s, at: ship(s, rules, at)),
        (order.delivered_at, lambda s, at: [e.OrderDelivered(at=at, actor="platform")]),
        (order.trade_success_at, lambda s, at: succeed(at, "platform", None)),
        (
            order.closed_at,
            lambda s, at: [e.OrderClosed(at=at, actor="platform", reason="closed"), _set(at, None)],
        ),
    )
    previous = order.created_at
    for at, step in steps:
        if at is None:
            continue
        if at < previous:
            raise Invalid(f"order {order.id}: its times go backwards at {at.isoformat()}")
        new = step(state, at)
        state = fold(state, new)
        events += new
        previous = at
    return events
