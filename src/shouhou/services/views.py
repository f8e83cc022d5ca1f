"""Case and order views (SPEC §1 "Case view"), and the complaint, shop and buyer views.

Each view's shape is declared once here as a TypedDict; the API's wire models are built from
these declarations (api/wire.py), so every field a view holds is declared to clients. The
explanation in the case view is built in :mod:`shouhou.services.explanation`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, TypedDict, cast

from shouhou.domain import cases, lines
from shouhou.domain import events as e
from shouhou.domain.metrics import Metrics
from shouhou.domain.model import (
    Actor,
    Attachment,
    Case,
    Complaint,
    Deadline,
    Evidence,
    Freight,
    Line,
    Order,
    Remedy,
)
from shouhou.domain.rules import Rules
from shouhou.domain.values import format_duration
from shouhou.services.explanation import Explanation, explain
from shouhou.services.ports import StoredEvent
from shouhou.times import show, show_optional

Money = Callable[[int], Any]


# --- the views' shapes: one definition, read by the API's wire models (api/wire.py) ----------
# Amounts are typed ``int`` (fen), as the API sends them; files render them as yuan text.


class DeadlineView(TypedDict):
    """A running deadline: when it falls due, what happens then, and the rule behind it."""

    name: str
    due_at: str
    on_expiry: str
    rule_id: str
    policy: str


class FreightView(TypedDict):
    """Who bears the shipping (SPEC §5)."""

    buyer: int
    seller: int
    rule: str
    proof_by: str | None
    insurance_claim: int
    deducted: int


class RemedyView(TypedDict):
    """The remedy a seller proposed instead of the refund asked for."""

    type: str
    amount: int


class AttachmentView(TypedDict):
    """A stored file, named by the SHA-256 of its content."""

    sha256: str
    media_type: str
    size: int
    filename: str


class EvidenceView(TypedDict):
    """One party's evidence in an intervention, at its latest revision."""

    party: str
    text: str
    attachments: list[AttachmentView]
    at: str
    revision: int


class CaseLineView(TypedDict):
    """A line a case is about, its units, and what the refund gave back for it: the buyer's
    part, and the platform subsidy part reclaimed from the seller (SPEC §1)."""

    line: str
    sku: str
    title: str
    quantity: int
    refund_amount: int
    platform_amount: int


class OrderLineView(TypedDict):
    """A line of an order: its price, its own discount, its shares of the order's discounts,
    what the buyer paid for it, and what it has had back."""

    line: str
    sku: str
    title: str
    quantity: int
    price: int
    own_discount: int
    shop_coupon: int
    cross_store: int
    platform_subsidy: int
    paid: int
    refunded: int
    reclaimed: int
    open_case: str | None


class DiscountsView(TypedDict):
    """The order-level discounts, shared out to the lines."""

    shop_coupon: int
    cross_store: int
    platform_subsidy: int


class CaseHead(TypedDict):
    """What the case view and a case in a list both begin with."""

    id: str
    order: str
    shop: str
    buyer: str
    kind: str
    phase: str
    reason: str
    status: str
    requested_amount: int
    refund_amount: int
    deadline: DeadlineView | None
    closed_reason: str | None


class CaseView(CaseHead):
    """The case view of SPEC §1, with the actions the caller may take now."""

    stage: str | None
    platform_amount: int
    lines: list[CaseLineView]
    liable: str | None
    freight: FreightView | None
    evidence: list[EvidenceView]
    modifications: int
    remedy: RemedyView | None
    return_address: str | None
    available_actions: list[str]
    timeline: list[dict[str, Any]]
    explanation: Explanation
    version: int


class CaseSummary(CaseHead):
    """A case in a list: the case view without timeline and explanation."""

    opened_at: str
    available_actions: list[str]
    version: int


class OrderView(TypedDict):
    """The order view: status, amounts, dates and the running deadline."""

    id: str
    shop: str
    buyer: str
    status: str
    total: int
    shipping_fee: int
    refunded: int
    free_shipping: bool
    promotion: str
    shipping_method: str
    late: bool
    ship_by: str | None
    deadline: DeadlineView | None
    auto_confirm_remaining: str | None
    open_case: str | None
    open_cases: list[str]
    discounts: DiscountsView
    lines: list[OrderLineView]
    paid_at: str | None
    shipped_at: str | None
    delivered_at: str | None
    trade_success_at: str | None
    reopened_until: str | None
    version: int


#: Keys whose integer values are money (fen) in events and nested values.
MONEY_KEYS = frozenset(
    {
        "amount",
        "refunded",
        "withheld",
        "buyer",
        "seller",
        "platform",
        "insurance_claim",
        "deducted",
        "fee",
    }
)


def deadline_view(deadline: Deadline | None) -> DeadlineView | None:
    """A running deadline as clients see it (``None`` when none runs)."""
    if deadline is None:
        return None
    return {
        "name": deadline.name,
        "due_at": show(deadline.due_at),
        "on_expiry": deadline.on_expiry,
        "rule_id": deadline.rule_id,
        "policy": deadline.policy,
    }


def event_view(stored: StoredEvent, money: Money) -> dict[str, Any]:
    return {"seq": stored.seq, **event_fields(stored.event, money)}


def event_fields(ev: e.Event, money: Money) -> dict[str, Any]:
    """What happened, by whom and when, and the event's own fields, as plain JSON."""
    out: dict[str, Any] = {"type": type(ev).__name__, "at": show(ev.at), "actor": ev.actor}
    for key, value in vars(ev).items():
        if key != "at" and key != "actor":
            out[key] = _plain(value, money, key)
    return out


#: Values that are already plain JSON, returned as they are (the common case, checked first).
_SCALARS = frozenset({str, float, bool, type(None)})


def _plain(value: Any, money: Money, key: str = "") -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is int:
        return money(value) if key in MONEY_KEYS else value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Deadline):
        return deadline_view(value)
    if isinstance(value, datetime):
        return show(value)
    if hasattr(value, "isoformat"):  # a date
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(v, money, k) for k, v in vars(value).items()}
    if isinstance(value, tuple | list):
        return [_plain(v, money) for v in value]
    if hasattr(value, "total_seconds"):
        return format_duration(value)
    return value.value if hasattr(value, "value") else value


#: The fields of the case view (SPEC §1), a public contract: scenario files check them by name.
CASE_VIEW_FIELDS = frozenset(CaseView.__required_keys__)
#: The fields of the order view.
ORDER_VIEW_FIELDS = frozenset(OrderView.__required_keys__)


def _freight_view(freight: Freight | None, money: Money) -> FreightView | None:
    if freight is None:
        return None
    return {
        "buyer": money(freight.buyer),
        "seller": money(freight.seller),
        "rule": freight.rule_id,
        "proof_by": freight.proof_by,
        "insurance_claim": money(freight.insurance_claim),
        "deducted": money(freight.deducted),
    }


def _remedy_view(remedy: Remedy | None, money: Money) -> RemedyView | None:
    if remedy is None:
        return None
    return {"type": remedy.type.value, "amount": money(remedy.amount)}


def attachment_view(attachment: Attachment) -> AttachmentView:
    """A stored file as clients see it: named by its SHA-256."""
    return {
        "sha256": attachment.sha256,
        "media_type": attachment.media_type,
        "size": attachment.size,
        "filename": attachment.filename,
    }


def _evidence_view(evidence: Evidence) -> EvidenceView:
    return {
        "party": evidence.party.value,
        "text": evidence.text,
        "attachments": [attachment_view(a) for a in evidence.attachments],
        "at": show(evidence.at),
        "revision": evidence.revision,
    }


def case_head(case: Case, money: Money = int) -> CaseHead:
    """The fields every view of a case begins with."""
    return {
        "id": case.id,
        "order": case.order_id,
        "shop": case.shop,
        "buyer": case.buyer,
        "kind": case.kind.value,
        "phase": case.phase.value,
        "reason": case.reason.value,
        "status": case.status.value,
        "requested_amount": money(case.requested_amount),
        "refund_amount": money(case.refund_amount),
        "deadline": deadline_view(case.deadline),
        "closed_reason": case.closed_reason.value if case.closed_reason else None,
    }


def case_summary(case: Case, actions: list[str]) -> CaseSummary:
    """A case in a list, with the ``actions`` its caller may take now."""
    return {
        **case_head(case),
        "opened_at": show(case.opened_at),
        "available_actions": actions,
        "version": case.version,
    }


def case_view(
    case: Case,
    order: Order,
    rules: Rules,
    *,
    timeline: Sequence[StoredEvent] = (),
    actor: Actor | None = None,
    money: Money = int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The case view of SPEC §1; ``money`` renders amounts (fen for the API, yuan in files)."""
    view: CaseView = {
        **case_head(case, money),
        "stage": case.stage.value if case.stage else None,
        "platform_amount": money(sum(part.platform for part in case.refund_lines)),
        "lines": _case_lines(case, order, money),
        "liable": case.liable,
        "freight": _freight_view(case.freight, money),
        "evidence": [_evidence_view(ev) for ev in case.evidence],
        "modifications": case.modifications,
        "remedy": _remedy_view(case.remedy, money),
        "return_address": case.return_address,
        "available_actions": (
            cases.available_actions(case, actor, order=order, rules=rules, now=now) if actor else []
        ),
        "timeline": [event_view(s, money) for s in timeline],
        "explanation": explain(case, rules, timeline),
        "version": case.version,
    }
    return cast("dict[str, Any]", view)


def order_view(order: Order, *, money: Money = int) -> dict[str, Any]:
    """The order view: its status, amounts, dates and running deadline."""
    view: OrderView = {
        "id": order.id,
        "shop": order.shop,
        "buyer": order.buyer,
        "status": order.status.value,
        "total": money(order.total),
        "shipping_fee": money(order.shipping_fee),
        "refunded": money(order.refunded),
        "free_shipping": order.free_shipping,
        "promotion": order.promotion.value,
        "shipping_method": order.shipping_method.value,
        "late": order.late,
        "ship_by": show_optional(order.ship_by),
        "deadline": deadline_view(order.deadline),
        "auto_confirm_remaining": (
            format_duration(order.auto_confirm_remaining) if order.auto_confirm_remaining else None
        ),
        "open_case": order.open_case,
        "open_cases": list(order.open_cases),
        "discounts": {
            "shop_coupon": money(order.discounts.shop_coupon),
            "cross_store": money(order.discounts.cross_store),
            "platform_subsidy": money(order.discounts.platform_subsidy),
        },
        "lines": [_order_line(line, money) for line in lines.of(order)],
        "paid_at": show_optional(order.paid_at),
        "shipped_at": show_optional(order.shipped_at),
        "delivered_at": show_optional(order.delivered_at),
        "trade_success_at": show_optional(order.trade_success_at),
        "reopened_until": show_optional(order.reopened_until),
        "version": order.version,
    }
    return cast("dict[str, Any]", view)


def _case_lines(case: Case, order: Order, money: Money) -> list[CaseLineView]:
    refunds = {part.line: part for part in case.refund_lines}
    out: list[CaseLineView] = []
    for want in lines.of_case(case, order):
        line = lines.find(order, want.line)
        part = refunds.get(want.line)
        out.append(
            {
                "line": want.line,
                "sku": line.sku,
                "title": line.title,
                "quantity": want.quantity,
                "refund_amount": money(part.buyer if part else 0),
                "platform_amount": money(part.platform if part else 0),
            }
        )
    return out


def _order_line(line: Line, money: Money) -> OrderLineView:
    return {
        "line": line.line,
        "sku": line.sku,
        "title": line.title,
        "quantity": line.quantity,
        "price": money(line.price),
        "own_discount": money(line.own_discount),
        "shop_coupon": money(line.shop_coupon),
        "cross_store": money(line.cross_store),
        "platform_subsidy": money(line.platform_subsidy),
        "paid": money(line.paid),
        "refunded": money(line.refunded),
        "reclaimed": money(line.reclaimed),
        "open_case": line.open_case,
    }


#: The fields of the complaint view.
COMPLAINT_VIEW_FIELDS = frozenset(
    {
        "id",
        "order",
        "shop",
        "buyer",
        "type",
        "subtype",
        "case",
        "status",
        "points",
        "rule_id",
        "filed_at",
        "ruled_at",
        "decision_reason",
        "compensation",
        "version",
    }
)
#: The metrics of the shop view (SPEC §9 names), in the order reports chart them.
SHOP_METRICS = (
    "dispute_rate",
    "self_completion_rate",
    "avg_completion_hours",
    "within_72h_rate",
    "refund_rate",
    "penalty_points",
    "compensation_paid",
)
#: The fields of the shop view: its metrics and the counts behind them.
SHOP_VIEW_FIELDS = frozenset(
    {"shop", "since", "until", "paid_orders", "refunds", "disputes", *SHOP_METRICS}
)
#: The fields of the buyer view.
BUYER_VIEW_FIELDS = frozenset({"buyer", "compensation", "compensation_points"})


def complaint_view(complaint: Complaint, *, money: Money = int) -> dict[str, Any]:
    comp = complaint.compensation
    return {
        "id": complaint.id,
        "order": complaint.order_id,
        "shop": complaint.shop,
        "buyer": complaint.buyer,
        "type": complaint.type,
        "subtype": complaint.subtype,
        "case": complaint.case_id,
        "status": complaint.status.value,
        "points": complaint.points,
        "rule_id": complaint.rule_id,
        "filed_at": show(complaint.filed_at),
        "ruled_at": show_optional(complaint.ruled_at),
        "decision_reason": complaint.decision_reason,
        "compensation": money(comp.amount) if comp else None,
        "version": complaint.version,
    }


def shop_view(shop: str, metrics: Metrics, *, money: Money = int) -> dict[str, Any]:
    return {
        "shop": shop,
        "since": show(metrics.since),
        "until": show(metrics.until),
        "paid_orders": metrics.paid_orders,
        "refunds": metrics.refunds,
        "disputes": metrics.disputes,
        "dispute_rate": metrics.dispute_rate,
        "self_completion_rate": metrics.self_completion_rate,
        "avg_completion_hours": metrics.avg_completion_hours,
        "within_72h_rate": metrics.within_72h_rate,
        "refund_rate": metrics.refund_rate,
        "penalty_points": metrics.penalty_points,
        "compensation_paid": money(metrics.compensation_paid),
    }
