"""Use cases of complaints (SPEC §6); one transaction each."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shouhou.domain import commands as c
from shouhou.domain import complaints
from shouhou.domain import events as e
from shouhou.domain.model import Complaint, evolve
from shouhou.errors import Conflict, NotFound
from shouhou.services import handlers, outbox
from shouhou.services.handlers import RulesAt
from shouhou.services.ledger import ledger_entries
from shouhou.services.ports import UnitOfWork


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
