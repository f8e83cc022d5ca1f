"""The explanation in the case view: why a case stands where it does, in Chinese and English.

Each sentence has a function of its own, which says it (or nothing) and names the rules it rests
on; :func:`explain` joins them in a fixed order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypedDict

from shouhou.domain import events as e
from shouhou.domain.model import Case, CaseStatus, Stage
from shouhou.domain.rules import Rules
from shouhou.domain.values import format_duration, format_duration_zh, format_yuan
from shouhou.services.ports import StoredEvent
from shouhou.times import show

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
#: What happens when a deadline passes, by its ``on_expiry``.
EXPIRY: dict[str, tuple[str, str]] = {
    "refund": ("系统自动全额退款", "the buyer is refunded in full automatically"),
    "agree": ("系统自动同意", "the request is agreed automatically"),
    "close": ("售后自动关闭", "the case closes"),
    "complete": ("售后自动完成", "the case completes"),
    "review": ("进入平台审核", "the case goes to platform review"),
    "mark_late": ("订单标记为延迟发货", "the order is marked late"),
    "trade_success": ("自动确认收货, 交易成功", "the trade succeeds automatically"),
}
#: The parties who may have to prove who bears the shipping, in Chinese and English.
PARTIES: dict[str, tuple[str, str]] = {
    "buyer": ("买家", "the buyer"),
    "seller": ("卖家", "the seller"),
}
#: The liable party of a ruling, in Chinese.
LIABLE_ZH: dict[str, str] = {"seller": "卖家", "buyer": "买家", "none": "无"}


class RuleView(TypedDict):
    """A rule the explanation rests on: its id, its source, and its text in both languages."""

    id: str
    source: str
    zh: str
    en: str


class Explanation(TypedDict):
    """The explanation of the case view (SPEC §1)."""

    zh: str
    en: str
    rules: list[RuleView]


@dataclass(frozen=True)
class Sentence:
    """One sentence of the explanation, in both languages, with the rules it names."""

    zh: str
    en: str
    rules: tuple[RuleView, ...] = ()


#: A sentence of the explanation, or ``None`` when it has nothing to say about the case.
Say = Callable[[Case, Rules, Sequence[StoredEvent]], Sentence | None]


def yuan(fen: int) -> str:
    """An amount as the explanation writes it: ``¥199.00``."""
    return f"¥{format_yuan(fen)}"


def rule_view(rules: Rules, rule_id: str, duration: timedelta | None = None) -> RuleView:
    """The rule ``rule_id`` as the explanation names it, with ``duration`` filled in."""
    info = rules.describe(rule_id)
    zh = format_duration_zh(duration) if duration is not None else ""
    en = format_duration(duration) if duration is not None else ""
    return {
        "id": rule_id,
        "source": info.source,
        "zh": info.text_zh.replace("{duration}", zh),
        "en": info.text_en.replace("{duration}", en),
    }


def deadline_sentence(case: Case, rules: Rules, _: Sequence[StoredEvent]) -> Sentence | None:
    """Who must act by when under which rule, and what happens otherwise."""
    d = case.deadline
    if d is None:
        return None
    span, span_zh = format_duration(d.duration), format_duration_zh(d.duration)
    who_zh, who_en = (
        STAGE_WHO[case.stage] if case.stage else WHO_ACTS.get(case.status, ("", "someone"))
    )
    due = show(d.due_at)  # with its offset: the marketplace's zone need not be Beijing's
    then_zh, then_en = EXPIRY.get(d.on_expiry, (d.on_expiry, d.on_expiry))
    return Sentence(
        f"{who_zh}需在 {due} 前处理 ({span_zh}, 规则 {d.rule_id}); 超时{then_zh}。",
        f"{who_en.capitalize()} must act by {due} ({span}, rule {d.rule_id}); otherwise {then_en}.",
        (rule_view(rules, d.rule_id, d.duration),),
    )


def review_sentence(case: Case, rules: Rules, _: Sequence[StoredEvent]) -> Sentence | None:
    """That the case awaits an agent's ruling, once evidence is closed."""
    if case.stage != Stage.REVIEW:
        return None
    return Sentence(
        "双方举证已结束, 等待平台客服判定。",
        "Evidence is closed; the case awaits an agent's ruling.",
    )


def ruling_sentence(case: Case, rules: Rules, _: Sequence[StoredEvent]) -> Sentence | None:
    """An agent's ruling: who is liable, and why."""
    if case.ruling_reason is None:
        return None
    liable_zh = LIABLE_ZH.get(case.liable or "", "")
    return Sentence(
        f"平台判定 (责任方: {liable_zh}): {case.ruling_reason}。",
        f"An agent ruled (liable: {case.liable}): {case.ruling_reason}.",
        (rule_view(rules, rules.limit("agent_ruling").rule_id),),
    )


def freight_sentence(case: Case, rules: Rules, _: Sequence[StoredEvent]) -> Sentence | None:
    """Who bears the shipping, who must prove it, and what freight insurance pays."""
    f = case.freight
    if f is None:
        return None
    proof_zh, proof_en = PARTIES.get(f.proof_by or "", ("", ""))
    zh = f"运费: 买家承担 {yuan(f.buyer)}, 卖家承担 {yuan(f.seller)}"
    en = f"Freight: the buyer bears {yuan(f.buyer)}, the seller {yuan(f.seller)}"
    if f.proof_by:
        zh += f", 由{proof_zh}举证"
        en += f"; {proof_en} must prove it"
    used = [rule_view(rules, f.rule_id)]
    if f.insurance_claim:
        zh += f"; 运费险另行理赔 {yuan(f.insurance_claim)}"
        en += f"; freight insurance pays {yuan(f.insurance_claim)}"
        used.append(rule_view(rules, rules.limit("freight_insurance").rule_id))
    return Sentence(zh + "。", en + ".", tuple(used))


def outcome_sentence(case: Case, rules: Rules, timeline: Sequence[StoredEvent]) -> Sentence | None:
    """How a finished case ended, and the rule that ended it."""
    if not case.terminal:
        return None
    zh, en = _outcome(case)
    used: tuple[RuleView, ...] = ()
    if case.resolution_rule:
        fired = _fired_duration(timeline, case.resolution_rule)
        used = (rule_view(rules, case.resolution_rule, fired),)
    return Sentence(zh, en, used)


def phase_sentence(case: Case, rules: Rules, _: Sequence[StoredEvent]) -> Sentence:
    """The phase of the sale and the reason given."""
    phase_zh = "售中(交易成功前)" if case.phase.value == "in_sale" else "售后(交易成功后)"
    reason_zh = rules.describe(rules.reason(case.reason).rule_id).text_zh
    return Sentence(
        f"阶段: {phase_zh}; 原因: {reason_zh}。",
        f"Phase: {case.phase.value.replace('_', '-')}; reason: {case.reason.value}.",
    )


#: The sentences of the explanation, in the order it says them.
SENTENCES: tuple[Say, ...] = (
    deadline_sentence,
    review_sentence,
    ruling_sentence,
    freight_sentence,
    outcome_sentence,
    phase_sentence,
)


def explain(case: Case, rules: Rules, timeline: Sequence[StoredEvent] = ()) -> Explanation:
    """Why the case stands where it does, in Chinese and English, naming each rule once."""
    said = [s for say in SENTENCES if (s := say(case, rules, timeline)) is not None]
    unique = {rule["id"]: rule for s in said for rule in s.rules}
    return {
        "zh": " ".join(s.zh for s in said),
        "en": " ".join(s.en for s in said),
        "rules": list(unique.values()),
    }


def _fired_duration(timeline: Sequence[StoredEvent], rule_id: str) -> timedelta | None:
    for stored in reversed(timeline):
        ev = stored.event
        if isinstance(ev, e.DeadlineSet) and ev.deadline and ev.deadline.rule_id == rule_id:
            return ev.deadline.duration
    return None


def _outcome(case: Case) -> tuple[str, str]:
    amount = yuan(case.refund_amount)
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
