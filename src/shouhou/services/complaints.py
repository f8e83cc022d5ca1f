"""Use cases of complaints, the ledgers, and shop metrics; one transaction each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from shouhou.domain import commands as c
from shouhou.domain import complaints
from shouhou.domain import events as e
from shouhou.domain.metrics import Metrics, compute
from shouhou.domain.model import Complaint
from shouhou.domain.rules import Rules
from shouhou.errors import Invalid, NotFound
from shouhou.services import outbox
from shouhou.services.ports import LedgerEntry, UnitOfWork


def ledger_entries(stream: str, key: str, events: Sequence[e.Event]) -> list[LedgerEntry]:
    """The ledger lines ``events`` write: compensation for buyers, penalty points for shops."""
    lines = []
    for ev in events:
        if isinstance(ev, e.CompensationAwarded):
            lines.append(
                LedgerEntry(
                    account=f"buyer:{ev.buyer}",
                    kind="compensation",
                    amount=ev.compensation.amount,
                    unit="fen",
                    order_id=ev.order_id,
                    source=f"{stream}:{key}",
                    rule_id=ev.compensation.rule_id,
                    at=ev.at,
                )
            )
        elif isinstance(ev, e.PenaltyRecorded):
            lines.append(
                LedgerEntry(
                    account=f"shop:{ev.shop}",
                    kind="penalty_points",
                    amount=ev.points,
                    unit="points",
                    order_id=ev.order_id,
                    source=f"complaint:{ev.complaint_id}",
                    rule_id=ev.rule_id,
                    at=ev.at,
                )
            )
    return lines


def _complaint(uow: UnitOfWork, complaint_id: str) -> Complaint:
    found = uow.complaints.get(complaint_id)
    if found is None:
        raise NotFound(f"no complaint {complaint_id}")
    return found


def _save(uow: UnitOfWork, complaint: Complaint, events: Sequence[e.Event]) -> Complaint:
    after = complaints.fold(complaint, events)
    uow.complaints.save(after, events)
    uow.ledger.add(ledger_entries("complaint", after.id, events))
    uow.outbox.add(outbox.messages("complaint", after, events))
    return replace(after, version=after.version + 1)


def complaint_action(
    uow: UnitOfWork, cmd: c.ComplaintCommand, rules: Rules, now: datetime
) -> Complaint:
    """File, withdraw or rule on a complaint; the ledgers change in the same transaction."""
    with uow:
        if isinstance(cmd, c.FileComplaint):
            order = uow.orders.get(cmd.order_id)
            if order is None:
                raise NotFound(f"no order {cmd.order_id}")
            if uow.complaints.get(cmd.complaint_id) is not None:
                raise Invalid(f"complaint id {cmd.complaint_id} is taken")
            events = complaints.file(
                cmd,
                order=order,
                cases=uow.cases.list(order=order.id, limit=1000),
                existing=uow.complaints.for_order(order.id),
                rules=rules,
                now=now,
            )
            result = complaints.fold(None, events)
            uow.complaints.add(result, events)
            uow.outbox.add(outbox.messages("complaint", result, events))
            result = replace(result, version=1)
        elif isinstance(cmd, c.WithdrawComplaint):
            complaint = _complaint(uow, cmd.complaint_id)
            result = _save(uow, complaint, complaints.withdraw(complaint, cmd, now))
        else:
            assert isinstance(cmd, c.RuleComplaint)
            complaint = _complaint(uow, cmd.complaint_id)
            order = uow.orders.get(complaint.order_id)
            assert order is not None
            compensated = any(
                k.compensation is not None for k in uow.cases.list(order=order.id, limit=1000)
            )
            events = complaints.rule_on(
                complaint, cmd, order=order, compensated=compensated, rules=rules, now=now
            )
            result = _save(uow, complaint, events)
        uow.commit()
        return result


def complaint_queue(uow: UnitOfWork, limit: int = 500) -> list[Complaint]:
    """Complaints waiting for an agent, oldest first (no negotiation period: seed Ⅲ)."""
    with uow:
        return uow.complaints.list(status="filed", limit=limit)


#: How far back events are read for a metrics window (cases applied before the window).
LOOKBACK = timedelta(days=120)


def shop_metrics(uow: UnitOfWork, shop: str, at: datetime, window: timedelta) -> Metrics:
    """The SPEC §9 metrics of ``shop`` over ``window`` ending at ``at``, from the event log."""
    with uow:
        log = uow.log.for_shop(shop, at - window - LOOKBACK, at)
    return compute(log, since=at - window, until=at)


def balance(uow: UnitOfWork, account: str, kind: str) -> int:
    with uow:
        return sum(entry.amount for entry in uow.ledger.entries(account, kind))
