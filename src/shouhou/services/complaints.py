"""Use cases of complaints, the ledgers, and shop metrics; one transaction each."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from shouhou.domain import commands as c
from shouhou.domain import complaints
from shouhou.domain import events as e
from shouhou.domain.metrics import Logged, Metrics, compute
from shouhou.domain.model import Complaint, evolve
from shouhou.errors import Conflict, NotFound
from shouhou.services import handlers, outbox
from shouhou.services.handlers import RulesAt
from shouhou.services.ledger import ledger_entries
from shouhou.services.ports import LoggedEvent, UnitOfWork


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
    return evolve(after, version=after.version + 1)


def complaint_action(
    uow: UnitOfWork, cmd: c.ComplaintCommand, rules_at: RulesAt, now: datetime
) -> Complaint:
    """File, withdraw or rule on a complaint; the ledgers change in the same transaction."""
    with uow:
        if isinstance(cmd, c.FileComplaint):
            # due deadlines of the order and its open case first (a due ship_by, say)
            order, _ = handlers.caught_up_order(uow, cmd.order_id, rules_at, now)
            if uow.complaints.get(cmd.complaint_id) is not None:
                raise Conflict(f"complaint id {cmd.complaint_id} is taken")
            events = complaints.file(
                cmd,
                order=order,
                cases=uow.cases.list(order=order.id, limit=1000),
                existing=uow.complaints.for_order(order.id),
                rules=rules_at(now),
                now=now,
            )
            result = complaints.fold(None, events)
            uow.complaints.add(result, events)
            uow.outbox.add(outbox.messages("complaint", result, events))
            result = evolve(result, version=1)
        elif isinstance(cmd, c.WithdrawComplaint):
            complaint = _complaint(uow, cmd.complaint_id)
            result = _save(uow, complaint, complaints.withdraw(complaint, cmd, now))
        else:
            assert isinstance(cmd, c.RuleComplaint)
            complaint = _complaint(uow, cmd.complaint_id)
            stored = uow.orders.get(complaint.order_id)
            assert stored is not None
            order = stored
            compensated = any(
                k.compensation is not None for k in uow.cases.list(order=order.id, limit=1000)
            )
            events = complaints.rule_on(
                complaint,
                cmd,
                order=order,
                compensated=compensated,
                rules=rules_at(now),
                now=now,
            )
            result = _save(uow, complaint, events)
            if any(isinstance(ev, e.CompensationAwarded) for ev in events):
                paid = e.OrderCompensated(at=now, actor="system", source=f"complaint:{result.id}")
                handlers.save_order(uow, order, [paid])
        uow.commit()
        return result


def complaint_queue(uow: UnitOfWork, limit: int = 500) -> list[Complaint]:
    """Complaints waiting for an agent, oldest first (no negotiation period: seed Ⅲ)."""
    with uow:
        return uow.complaints.list(status="filed", limit=limit)


#: How far back events are read for a metrics window (cases applied before the window).
LOOKBACK = timedelta(days=120)


def shop_metrics(uow: UnitOfWork, shop: str, at: datetime, window: timedelta) -> Metrics:
    """The SPEC §9 metrics of ``shop`` over ``window`` ending at ``at``, from the event log.

    A case applied for before the look-back (a 三包 repair runs for a year) is read whole, so
    that its application, rulings and timeouts still count when it ends inside the window."""
    with uow:
        log: list[Logged] = list(uow.log.for_shop(shop, at - window - LOOKBACK, at))
        applied = {x.stream_id for x in log if isinstance(x.event, e.Applied)}
        older = sorted({x.stream_id for x in log if x.stream == "case"} - applied)
        for case_id in older:
            before = at - window - LOOKBACK
            log += [
                LoggedEvent(stream="case", stream_id=case_id, event=stored.event)
                for stored in uow.cases.timeline(case_id)
                if stored.event.at < before
            ]
    return compute(log, since=at - window, until=at)


def balance(uow: UnitOfWork, account: str, kind: str) -> int:
    with uow:
        return sum(entry.amount for entry in uow.ledger.entries(account, kind))
