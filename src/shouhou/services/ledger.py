"""The ledgers: the lines events write (compensation for buyers, penalty points for shops)
and an account's balance."""

from __future__ import annotations

from collections.abc import Sequence

from shouhou.domain import events as e
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


def balance(uow: UnitOfWork, account: str, kind: str) -> int:
    """The sum of ``account``'s ledger lines of ``kind``, in one read."""
    with uow:
        return sum(entry.amount for entry in uow.ledger.entries(account, kind))
