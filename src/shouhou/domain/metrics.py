"""Seller metrics (SPEC §9) computed from the event log, never from counters that can drift.

Every figure is recounted from the events of a shop's orders, cases and complaints that fall
in the window; a rate with nothing to divide by is 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from shouhou.domain import events as e

#: How soon a seller must handle a request to count in ``within_72h_rate`` (seed Ⅲ).
HANDLING_TARGET = timedelta(hours=72)
#: Events by which the seller (or the case's end) handled a request.
HANDLING = (e.Agreed, e.Refused, e.Intercepted, e.RemedyProposed, e.Refunded, e.Closed, e.Completed)


class Logged(Protocol):
    @property
    def stream(self) -> str: ...

    @property
    def stream_id(self) -> str: ...

    @property
    def event(self) -> e.Event: ...


@dataclass(frozen=True, kw_only=True)
class Metrics:
    since: datetime
    until: datetime
    paid_orders: int
    refunds: int
    disputes: int
    dispute_rate: float
    self_completion_rate: float
    avg_completion_hours: dict[str, float] = field(default_factory=dict)
    within_72h_rate: float
    refund_rate: float
    penalty_points: int
    compensation_paid: int


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


@dataclass
class _Case:
    kind: str = ""
    applied_at: datetime | None = None
    handled_at: datetime | None = None
    ruled: bool = False
    dispute: bool = False  # an agent ruled the seller liable for a refund
    timed_out: bool = False  # a deadline of the case expired: the system moved it on


def compute(log: Iterable[Logged], *, since: datetime, until: datetime) -> Metrics:
    """The metrics of the window ``[since, until]`` from a shop's events (any order).

    After-sales disputes are left out by the ruling itself (``Ruled.dispute``, by the rulebook's
    ``after_sale_disputes_count``), so a rulebook change never rewrites history.
    """

    def inside(at: datetime) -> bool:
        return since <= at <= until

    cases: dict[str, _Case] = {}
    paid = disputes = points = compensation = 0
    refunds: list[tuple[str, e.Refunded]] = []
    for item in sorted(log, key=lambda x: x.event.at):
        ev = item.event
        if item.stream == "case":
            case = cases.setdefault(item.stream_id, _Case())
            if isinstance(ev, e.Applied):
                case.kind, case.applied_at = ev.kind.value, ev.at
            if (
                isinstance(ev, HANDLING)
                and case.handled_at is None
                and (
                    not isinstance(ev, e.Agreed | e.Refused | e.Intercepted | e.RemedyProposed)
                    or not ev.actor.startswith("buyer:")
                )
            ):
                case.handled_at = ev.at
            if isinstance(ev, e.Ruled):
                case.ruled, case.dispute = True, ev.dispute
            if isinstance(ev, e.DeadlineFired):
                case.timed_out = True
        if not inside(ev.at):
            continue
        match ev:
            case e.OrderPaid():
                paid += 1
            case e.Refunded():
                refunds.append((item.stream_id, ev))
                if item.stream == "case" and cases[item.stream_id].dispute:
                    disputes += 1  # a refund the agent ruled the seller liable for
            case e.PenaltyRecorded():
                points += ev.points
            case e.CompensationAwarded():
                compensation += ev.compensation.amount
    # the seller's own: no agent ruled in the case, and no deadline of it moved it on
    self_done = sum(
        1
        for key, ev in refunds
        if ev.actor != "system" and not cases[key].ruled and not cases[key].timed_out
    )
    hours: dict[str, list[float]] = {}
    for key, ev in refunds:
        case = cases[key]
        if case.applied_at is not None:
            spent = (ev.at - case.applied_at).total_seconds() / 3600
            hours.setdefault(case.kind, []).append(spent)
    due = [
        c
        for c in cases.values()
        if c.applied_at is not None
        and inside(c.applied_at)
        and (c.handled_at is not None or until - c.applied_at >= HANDLING_TARGET)
    ]
    on_time = sum(
        1
        for c in due
        if c.handled_at is not None
        and c.applied_at is not None
        and c.handled_at - c.applied_at <= HANDLING_TARGET
    )
    return Metrics(
        since=since,
        until=until,
        paid_orders=paid,
        refunds=len(refunds),
        disputes=disputes,
        dispute_rate=_rate(disputes, paid),
        self_completion_rate=_rate(self_done, len(refunds)),
        avg_completion_hours={k: round(sum(v) / len(v), 2) for k, v in sorted(hours.items())},
        within_72h_rate=_rate(on_time, len(due)),
        refund_rate=_rate(len(refunds), paid),
        penalty_points=points,
        compensation_paid=compensation,
    )
