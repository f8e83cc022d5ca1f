"""Events: what happened, in the past tense. Each is a frozen keyword-only dataclass.

Case and order timelines are lists of these; ``apply`` folds them into state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shouhou.domain.model import (
    CaseKind,
    CaseLine,
    Classification,
    ClosedReason,
    Compensation,
    Deadline,
    Evidence,
    Freight,
    Liable,
    LineRefund,
    Note,
    Order,
    Phase,
    Reason,
    ReceiptCondition,
    Remedy,
    RulingOutcome,
    Shipment,
    Stage,
    Suspended,
)


@dataclass(frozen=True, kw_only=True)
class Event:
    at: datetime
    actor: str


# --- case events -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Applied(Event):
    case_id: str
    order_id: str
    shop: str
    buyer: str
    kind: CaseKind
    phase: Phase
    reason: Reason
    amount: int
    note: str = ""
    #: The lines applied for; empty on events written before lines existed (every line).
    lines: tuple[CaseLine, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Modified(Event):
    kind: CaseKind
    reason: Reason
    amount: int
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Withdrawn(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class Agreed(Event):
    return_address: str | None = None


@dataclass(frozen=True, kw_only=True)
class Refused(Event):
    reason: str
    note: str = ""
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Intercepted(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class ReturnShipped(Event):
    shipment: Shipment


@dataclass(frozen=True, kw_only=True)
class ReceiptConfirmed(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class ReceiptRefused(Event):
    reason: str
    note: str = ""
    condition: ReceiptCondition | None = None
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RemedyProposed(Event):
    remedy: Remedy


@dataclass(frozen=True, kw_only=True)
class RemedyAccepted(Event):
    remedy: Remedy


@dataclass(frozen=True, kw_only=True)
class RemedyDeclined(Event):
    remedy: Remedy


@dataclass(frozen=True, kw_only=True)
class Reshipped(Event):
    shipment: Shipment


@dataclass(frozen=True, kw_only=True)
class ReceivedConfirmed(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class DeadlineFired(Event):
    name: str
    due_at: datetime
    on_expiry: str
    rule_id: str
    policy: str


@dataclass(frozen=True, kw_only=True)
class Refunded(Event):
    amount: int
    rule_id: str | None = None
    freight: Freight | None = None
    #: The refund line by line; ``amount`` less their buyer parts was shipping.
    lines: tuple[LineRefund, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CompensationAwarded(Event):
    """Compensation for the buyer, written once (a case's, or a late-shipment complaint's)."""

    compensation: Compensation
    buyer: str
    shop: str
    order_id: str


@dataclass(frozen=True, kw_only=True)
class CaseNoted(Event):
    note: Note


@dataclass(frozen=True, kw_only=True)
class CaseClassified(Event):
    classification: Classification


@dataclass(frozen=True, kw_only=True)
class ComplaintFiled(Event):
    complaint_id: str
    order_id: str
    shop: str
    buyer: str
    type: str
    subtype: str
    case_id: str | None
    rule_id: str
    points: int


@dataclass(frozen=True, kw_only=True)
class ComplaintWithdrawn(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class ComplaintRuled(Event):
    decision: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class PenaltyRecorded(Event):
    """Penalty points written to a shop's ledger for an upheld complaint (SPEC §6)."""

    shop: str
    points: int
    complaint_id: str
    case_id: str | None
    rule_id: str
    order_id: str = ""


@dataclass(frozen=True, kw_only=True)
class InterventionRequested(Event):
    suspended: Suspended


@dataclass(frozen=True, kw_only=True)
class EvidenceSubmitted(Event):
    evidence: Evidence


@dataclass(frozen=True, kw_only=True)
class EvidenceCompleted(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class StageChanged(Event):
    stage: Stage | None


@dataclass(frozen=True, kw_only=True)
class Ruled(Event):
    """An agent's ruling; ``dispute`` marks a ruling against the seller (SPEC §9)."""

    outcome: RulingOutcome
    amount: int
    liable: Liable
    reason: str
    freight: Freight | None
    dispute: bool


@dataclass(frozen=True, kw_only=True)
class Completed(Event):
    rule_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Closed(Event):
    reason: ClosedReason
    rule_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class StatusChanged(Event):
    action: str
    source: str
    target: str


@dataclass(frozen=True, kw_only=True)
class DeadlineSet(Event):
    """The subject's current deadline became ``deadline`` (None: it has none now)."""

    deadline: Deadline | None


# --- order events ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(Event):
    order: Order


@dataclass(frozen=True, kw_only=True)
class OrderPaid(Event):
    ship_by: datetime | None
    ship_by_rule: str


@dataclass(frozen=True, kw_only=True)
class OrderShipped(Event):
    shipment: Shipment
    recorded_at: datetime
    late: bool


@dataclass(frozen=True, kw_only=True)
class OrderDelivered(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class TradeSucceeded(Event):
    rule_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrderClosed(Event):
    reason: str
    rule_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class AfterSaleReopened(Event):
    """An agent checked the order and reopened its after-sales window (seed Ⅵ)."""

    until: datetime
    note: str
    rule_id: str


@dataclass(frozen=True, kw_only=True)
class MarkedLate(Event):
    rule_id: str


@dataclass(frozen=True, kw_only=True)
class CaseOpenedOnOrder(Event):
    case_id: str
    #: The lines the case holds open; empty on events written before lines existed (all).
    lines: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CaseEndedOnOrder(Event):
    case_id: str
    refunded: int
    #: Shipping kept out of the refund by the freight rule: no longer refundable either.
    withheld: int = 0
    compensated: bool = False
    blocks_reapply: str | None = None
    #: The refund line by line (what each line had back, and the subsidy reclaimed).
    lines: tuple[LineRefund, ...] = ()


@dataclass(frozen=True, kw_only=True)
class OrderCompensated(Event):
    """The buyer was compensated on this order (by a complaint): never again (SPEC §7)."""

    source: str


@dataclass(frozen=True, kw_only=True)
class AutoConfirmPaused(Event):
    remaining: timedelta
    case_id: str


@dataclass(frozen=True, kw_only=True)
class AutoConfirmResumed(Event):
    remaining: timedelta


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        Applied,
        Modified,
        Withdrawn,
        Agreed,
        Refused,
        Intercepted,
        ReturnShipped,
        ReceiptConfirmed,
        ReceiptRefused,
        RemedyProposed,
        RemedyAccepted,
        RemedyDeclined,
        Reshipped,
        ReceivedConfirmed,
        DeadlineFired,
        Refunded,
        CompensationAwarded,
        CaseNoted,
        CaseClassified,
        ComplaintFiled,
        ComplaintWithdrawn,
        ComplaintRuled,
        PenaltyRecorded,
        InterventionRequested,
        EvidenceSubmitted,
        EvidenceCompleted,
        StageChanged,
        Ruled,
        Completed,
        Closed,
        StatusChanged,
        DeadlineSet,
        OrderPlaced,
        OrderPaid,
        OrderShipped,
        OrderDelivered,
        TradeSucceeded,
        OrderClosed,
        AfterSaleReopened,
        MarkedLate,
        CaseOpenedOnOrder,
        CaseEndedOnOrder,
        AutoConfirmPaused,
        AutoConfirmResumed,
        OrderCompensated,
    )
}
