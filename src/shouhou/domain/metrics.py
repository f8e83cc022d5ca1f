"""Seller metrics (SPEC §9) computed from the event log, never from counters that can drift.

Every figure is recounted from the events of a shop's orders, cases and complaints that fall
in the window; a rate with nothing to divide by is 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import reduce
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


@dataclass(frozen=True, kw_only=True)
class CaseRefund:
    """A refund of a case, and whether an agent had ruled the seller liable for it by then."""

    at: datetime
    actor: str
    dispute: bool


@dataclass(frozen=True, kw_only=True)
class CaseRecord:
    """What happened to one case, as far as the metrics care."""

    kind: str = ""
    order: str = ""
    applied_at: datetime | None = None
    handled_at: datetime | None = None  # the seller's first answer, or the case's end
    ruled: bool = False
    dispute: bool = False  # an agent ruled the seller liable for a refund
    timed_out: bool = False  # a deadline of the case expired: the system moved it on
    refunds: tuple[CaseRefund, ...] = ()


def _handles(ev: e.Event) -> bool:
    """Whether ``ev`` handles the request: a buyer agreeing to their own case does not."""
    if not isinstance(ev, HANDLING):
        return False
    by_party = isinstance(ev, e.Agreed | e.Refused | e.Intercepted | e.RemedyProposed)
    return not by_party or not ev.actor.startswith("buyer:")


def _on(record: CaseRecord, ev: e.Event) -> CaseRecord:
    """``record`` after ``ev``, one step of :func:`fold_case`."""
    if isinstance(ev, e.Applied):
        record = replace(record, kind=ev.kind.value, order=ev.order_id, applied_at=ev.at)
    if record.handled_at is None and _handles(ev):
        record = replace(record, handled_at=ev.at)
    if isinstance(ev, e.Ruled):
        record = replace(record, ruled=True, dispute=ev.dispute)
    if isinstance(ev, e.DeadlineFired):
        record = replace(record, timed_out=True)
    if isinstance(ev, e.Refunded):
        refund = CaseRefund(at=ev.at, actor=ev.actor, dispute=record.dispute)
        record = replace(record, refunds=(*record.refunds, refund))
    return record


def fold_case(events: Iterable[e.Event]) -> CaseRecord:
    """What happened to a case, from its events in time order."""
    return reduce(_on, events, CaseRecord())


def compute(log: Iterable[Logged], *, since: datetime, until: datetime) -> Metrics:
    """The metrics of the window ``[since, until]`` from a shop's events (any order): each
    case's events folded into a :class:`CaseRecord`, then the records and the window's own
    events tallied.

    After-sales disputes are left out by the ruling itself (``Ruled.dispute``, by the rulebook's
    ``after_sale_disputes_count``), so a rulebook change never rewrites history.
    """
    by_case: dict[str, list[e.Event]] = {}
    inside: list[e.Event] = []
    for item in sorted(log, key=lambda x: x.event.at):
        if item.stream == "case":
            by_case.setdefault(item.stream_id, []).append(item.event)
        if since <= item.event.at <= until:
            inside.append(item.event)
    records = [fold_case(events) for events in by_case.values()]
    return tally(records, inside, since=since, until=until)


def tally(
    records: Iterable[CaseRecord], inside: Iterable[e.Event], *, since: datetime, until: datetime
) -> Metrics:
    """The metrics of ``[since, until]`` from every case's record and the events inside it."""
    paid = points = compensation = 0
    for ev in inside:
        match ev:
            case e.OrderPaid():
                paid += 1
            case e.PenaltyRecorded():
                points += ev.points
            case e.CompensationAwarded():
                compensation += ev.compensation.amount
    cases = list(records)
    refunds = sorted(
        (
            (refund, case)
            for case in cases
            for refund in case.refunds
            if since <= refund.at <= until
        ),
        key=lambda pair: pair[0].at,
    )
    disputes = sum(1 for refund, _ in refunds if refund.dispute)
    # the refund rate counts orders, not refunds: the lines of one order may each have one
    refunded_orders = len({case.order or str(id(case)) for _, case in refunds})
    # the seller's own: no agent ruled in the case, and no deadline of it moved it on
    self_done = sum(
        1
        for refund, case in refunds
        if refund.actor != "system" and not case.ruled and not case.timed_out
    )
    hours: dict[str, list[float]] = {}
    for refund, case in refunds:
        if case.applied_at is not None:
            spent = (refund.at - case.applied_at).total_seconds() / 3600
            hours.setdefault(case.kind, []).append(spent)
    due = [
        c
        for c in cases
        if c.applied_at is not None
        and since <= c.applied_at <= until
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
        refund_rate=_rate(refunded_orders, paid),
        penalty_points=points,
        compensation_paid=compensation,
    )
