"""Case and order views (SPEC §1 "Case view"), with the explanation of the rules behind them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from shouhou.domain import cases
from shouhou.domain import events as e
from shouhou.domain.metrics import Metrics
from shouhou.domain.model import (
    Actor,
    Case,
    CaseStatus,
    Complaint,
    Deadline,
    Freight,
    Order,
    Stage,
)
from shouhou.domain.rules import Rules
from shouhou.domain.values import format_duration, format_duration_zh, local
from shouhou.services.ports import StoredEvent

Money = Callable[[int], Any]

#: Who must act in each waiting status (SPEC §1).
WHO_ACTS: dict[CaseStatus, tuple[str, str]] = {
    CaseStatus.AWAITING_SELLER: ("卖家", "the seller"),
    CaseStatus.SELLER_REFUSED: ("买家", "the buyer"),
    CaseStatus.AWAITING_BUYER_RETURN: ("买家", "the buyer"),
    CaseStatus.AWAITING_SELLER_RECEIPT: ("卖家", "the seller"),
    CaseStatus.AWAITING_SELLER_RESHIP: ("卖家", "the seller"),
    CaseStatus.AWAITING_BUYER_CONFIRMATION: ("买家", "the buyer"),
}
#: Who must act in each intervention stage (SPEC §4).
STAGE_WHO: dict[Stage, tuple[str, str]] = {
    Stage.EVIDENCE: ("买卖双方", "both parties"),
    Stage.SELLER_HANDLING: ("卖家", "the seller"),
    Stage.REVIEW: ("平台客服", "an agent"),
}
EXPIRY: dict[str, tuple[str, str]] = {
    "refund": ("系统自动全额退款", "the buyer is refunded in full automatically"),
    "agree": ("系统自动同意", "the request is agreed automatically"),
    "close": ("售后自动关闭", "the case closes"),
    "complete": ("售后自动完成", "the case completes"),
    "review": ("进入平台审核", "the case goes to platform review"),
    "mark_late": ("订单标记为延迟发货", "the order is marked late"),
    "trade_success": ("自动确认收货, 交易成功", "the trade succeeds automatically"),
}


#: Keys whose integer values are money (fen) in events and nested values.
MONEY_KEYS = frozenset(
    {"amount", "refunded", "withheld", "buyer", "seller", "insurance_claim", "deducted", "fee"}
)


def deadline_view(deadline: Deadline | None) -> dict[str, Any] | None:
    if deadline is None:
        return None
    return {
        "name": deadline.name,
        "due_at": deadline.due_at.isoformat(),
        "on_expiry": deadline.on_expiry,
        "rule_id": deadline.rule_id,
        "policy": deadline.policy,
    }


def _rule_entry(rules: Rules, rule_id: str, duration: timedelta | None = None) -> dict[str, str]:
    info = rules.describe(rule_id)
    zh = format_duration_zh(duration) if duration is not None else ""
    en = format_duration(duration) if duration is not None else ""
    return {
        "id": rule_id,
        "source": info.source,
        "zh": info.text_zh.replace("{duration}", zh),
        "en": info.text_en.replace("{duration}", en),
    }


def explain(case: Case, rules: Rules, timeline: Sequence[StoredEvent] = ()) -> dict[str, Any]:
    """Why the case stands where it does, in Chinese and English, naming each rule."""
    zh: list[str] = []
    en: list[str] = []
    used: list[dict[str, str]] = []
    if case.deadline is not None:
        d = case.deadline
        span, span_zh = format_duration(d.duration), format_duration_zh(d.duration)
        who_zh, who_en = (
            STAGE_WHO[case.stage] if case.stage else WHO_ACTS.get(case.status, ("", "someone"))
        )
        due = local(d.due_at).strftime("%Y-%m-%d %H:%M:%S")
        then_zh, then_en = EXPIRY.get(d.on_expiry, (d.on_expiry, d.on_expiry))
        zh.append(
            f"{who_zh}需在 {due} (北京时间) 前处理 ({span_zh}, 规则 {d.rule_id}); 超时{then_zh}。"
        )
        en.append(
            f"{who_en.capitalize()} must act by {due} Beijing time ({span}, rule {d.rule_id}); "
            f"otherwise {then_en}."
        )
        used.append(_rule_entry(rules, d.rule_id, d.duration))
    if case.stage == Stage.REVIEW:
        zh.append("双方举证已结束, 等待平台客服判定。")
        en.append("Evidence is closed; the case awaits an agent's ruling.")
    if case.ruling_reason is not None:
        liable_zh = {"seller": "卖家", "buyer": "买家", "none": "无"}.get(case.liable or "", "")
        zh.append(f"平台判定 (责任方: {liable_zh}): {case.ruling_reason}。")
        en.append(f"An agent ruled (liable: {case.liable}): {case.ruling_reason}.")
        used.append(_rule_entry(rules, rules.limit("agent_ruling").rule_id))
    if case.freight is not None:
        f = case.freight
        proof = {"buyer": ("买家", "the buyer"), "seller": ("卖家", "the seller")}.get(
            f.proof_by or "", ("", "")
        )
        zh.append(
            f"运费: 买家承担 ¥{f.buyer / 100:.2f}, 卖家承担 ¥{f.seller / 100:.2f}"
            + (f", 由{proof[0]}举证" if f.proof_by else "")
            + (f"; 运费险另行理赔 ¥{f.insurance_claim / 100:.2f}" if f.insurance_claim else "")
            + "。"
        )
        en.append(
            f"Freight: the buyer bears ¥{f.buyer / 100:.2f}, the seller ¥{f.seller / 100:.2f}"
            + (f"; {proof[1]} must prove it" if f.proof_by else "")
            + (
                f"; freight insurance pays ¥{f.insurance_claim / 100:.2f}"
                if f.insurance_claim
                else ""
            )
            + "."
        )
        used.append(_rule_entry(rules, f.rule_id))
        if f.insurance_claim:
            used.append(_rule_entry(rules, rules.limit("freight_insurance").rule_id))
    if case.terminal:
        outcome_zh, outcome_en = _outcome(case)
        zh.append(outcome_zh)
        en.append(outcome_en)
        if case.resolution_rule:
            fired = _fired_duration(timeline, case.resolution_rule)
            used.append(_rule_entry(rules, case.resolution_rule, fired))
    phase_zh = "售中(交易成功前)" if case.phase.value == "in_sale" else "售后(交易成功后)"
    zh.append(
        f"阶段: {phase_zh}; 原因: {rules.describe(rules.reason(case.reason).rule_id).text_zh}。"
    )
    en.append(f"Phase: {case.phase.value.replace('_', '-')}; reason: {case.reason.value}.")
    unique = list({rule["id"]: rule for rule in used}.values())
    return {"zh": " ".join(zh), "en": " ".join(en), "rules": unique}


def _fired_duration(timeline: Sequence[StoredEvent], rule_id: str) -> timedelta | None:
    for stored in reversed(timeline):
        ev = stored.event
        if isinstance(ev, e.DeadlineSet) and ev.deadline and ev.deadline.rule_id == rule_id:
            return ev.deadline.duration
    return None


def _outcome(case: Case) -> tuple[str, str]:
    amount = f"¥{case.refund_amount / 100:.2f}"
    by_system = case.resolved_by == "system"
    rule = f" (规则 {case.resolution_rule})" if case.resolution_rule else ""
    rule_en = f" (rule {case.resolution_rule})" if case.resolution_rule else ""
    if case.status == CaseStatus.REFUNDED:
        if by_system:
            return (
                f"已退款 {amount}: 对方超时未处理{rule}。",
                f"Refunded {amount} because the deadline passed{rule_en}.",
            )
        return (
            f"已退款 {amount}, 由 {case.resolved_by} 完成。",
            f"Refunded {amount}, completed by {case.resolved_by}.",
        )
    if case.status == CaseStatus.COMPLETED:
        if by_system:
            return (
                f"售后完成: 买家超时未确认{rule}。",
                f"Completed because the buyer did not confirm in time{rule_en}.",
            )
        return ("售后完成: 买家已确认。", "Completed: the buyer confirmed.")
    reason = case.closed_reason.value if case.closed_reason else "closed"
    return (f"售后关闭 ({reason}){rule}。", f"Closed ({reason}){rule_en}.")


def event_view(stored: StoredEvent, money: Money) -> dict[str, Any]:
    return {"seq": stored.seq, **event_fields(stored.event, money)}


def event_fields(ev: e.Event, money: Money) -> dict[str, Any]:
    """What happened, by whom and when, and the event's own fields, as plain JSON."""
    out: dict[str, Any] = {"type": type(ev).__name__, "at": ev.at.isoformat(), "actor": ev.actor}
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
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(v, money, k) for k, v in vars(value).items()}
    if isinstance(value, tuple | list):
        return [_plain(v, money) for v in value]
    if hasattr(value, "total_seconds"):
        return format_duration(value)
    return value.value if hasattr(value, "value") else value


#: The fields of the case view (SPEC §1), a public contract: scenario files check them by name.
CASE_VIEW_FIELDS = frozenset(
    {
        "id",
        "order",
        "shop",
        "buyer",
        "kind",
        "phase",
        "reason",
        "status",
        "stage",
        "requested_amount",
        "refund_amount",
        "deadline",
        "closed_reason",
        "liable",
        "freight",
        "modifications",
        "remedy",
        "return_address",
        "available_actions",
        "timeline",
        "explanation",
        "version",
        "evidence",
    }
)
#: The fields of the order view.
ORDER_VIEW_FIELDS = frozenset(
    {
        "id",
        "shop",
        "buyer",
        "status",
        "total",
        "shipping_fee",
        "refunded",
        "free_shipping",
        "promotion",
        "shipping_method",
        "late",
        "ship_by",
        "deadline",
        "auto_confirm_remaining",
        "open_case",
        "paid_at",
        "shipped_at",
        "delivered_at",
        "trade_success_at",
        "reopened_until",
        "version",
    }
)


def _freight_view(freight: Freight | None, money: Money) -> dict[str, Any] | None:
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
    return {
        "id": case.id,
        "order": case.order_id,
        "shop": case.shop,
        "buyer": case.buyer,
        "kind": case.kind.value,
        "phase": case.phase.value,
        "reason": case.reason.value,
        "status": case.status.value,
        "stage": case.stage.value if case.stage else None,
        "requested_amount": money(case.requested_amount),
        "refund_amount": money(case.refund_amount),
        "deadline": deadline_view(case.deadline),
        "closed_reason": case.closed_reason.value if case.closed_reason else None,
        "liable": case.liable,
        "freight": _freight_view(case.freight, money),
        "evidence": [_plain(ev, money) for ev in case.evidence],
        "modifications": case.modifications,
        "remedy": _plain(case.remedy, money) if case.remedy else None,
        "return_address": case.return_address,  # where the buyer sends the goods back
        "available_actions": (
            cases.available_actions(case, actor, order=order, rules=rules, now=now) if actor else []
        ),
        "timeline": [event_view(s, money) for s in timeline],
        "explanation": explain(case, rules, timeline),
        "version": case.version,
    }


def order_view(order: Order, *, money: Money = int) -> dict[str, Any]:
    return {
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
        "ship_by": order.ship_by.isoformat() if order.ship_by else None,
        "deadline": deadline_view(order.deadline),
        "auto_confirm_remaining": (
            format_duration(order.auto_confirm_remaining) if order.auto_confirm_remaining else None
        ),
        "open_case": order.open_case,
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
        "shipped_at": order.shipped_at.isoformat() if order.shipped_at else None,
        "delivered_at": order.delivered_at.isoformat() if order.delivered_at else None,
        "trade_success_at": order.trade_success_at.isoformat() if order.trade_success_at else None,
        "reopened_until": order.reopened_until.isoformat() if order.reopened_until else None,
        "version": order.version,
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
        "filed_at": complaint.filed_at.isoformat(),
        "ruled_at": complaint.ruled_at.isoformat() if complaint.ruled_at else None,
        "decision_reason": complaint.decision_reason,
        "compensation": money(comp.amount) if comp else None,
        "version": complaint.version,
    }


def shop_view(shop: str, metrics: Metrics, *, money: Money = int) -> dict[str, Any]:
    return {
        "shop": shop,
        "since": metrics.since.isoformat(),
        "until": metrics.until.isoformat(),
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
