"""What a case handler decides: the events of the action and the status it leads to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shouhou.domain import events as e
from shouhou.domain import freight, lines
from shouhou.domain.model import Case, CaseStatus, Deadline, Liable, Order
from shouhou.domain.rules import Rules


class Fresh:
    """Marker: the case gets the deadline of the status (or stage) it enters."""


FRESH = Fresh()


@dataclass(frozen=True, kw_only=True)
class Outcome:
    events: list[e.Event]
    target: CaseStatus
    #: A deadline chosen by the handler (a resumed one), or FRESH for the status's own.
    deadline: Deadline | Fresh | None = FRESH


def refunded(
    case: Case,
    order: Order,
    rules: Rules,
    now: datetime,
    actor: str,
    *,
    rule_id: str | None = None,
    amount: int | None = None,
    liable: Liable | None = None,
) -> e.Refunded:
    """The refund event, with its freight split and its lines; ``amount`` None means a refund
    in full. Never more than the case's lines and the shipping left can give back now: another
    line's case may have refunded the shipping since this one was applied for."""
    ruled = Liable(case.liable) if liable is None and case.liable else liable
    split = freight.split(case, order, rules, ruled)
    wanted = lines.of_case(case, order)
    if amount is None:
        paid = freight.full_refund(case, order, split)
    else:
        paid = min(amount, lines.refundable(order, wanted))
    parts = lines.split(order, wanted, paid)
    return e.Refunded(at=now, actor=actor, amount=paid, rule_id=rule_id, freight=split, lines=parts)
