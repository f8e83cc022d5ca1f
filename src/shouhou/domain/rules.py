"""What the core asks of a rulebook. The policy package implements :class:`Rules`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from shouhou.domain.model import CaseKind, Mark, Promotion, Reason, ShippingMethod


@dataclass(frozen=True, kw_only=True)
class DeadlineContext:
    """The facts a deadline's duration may depend on."""

    name: str
    start_event: str
    start_at: datetime
    kind: CaseKind | None = None
    promotion: Promotion | None = None
    shipping_method: ShippingMethod | None = None
    return_method: ShippingMethod | None = None
    marks: tuple[Mark, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DeadlineRule:
    """A deadline resolved for one context: how long, what happens, and why."""

    name: str
    duration: timedelta | None
    on_expiry: str
    rule_id: str
    policy: str
    source: str
    text_zh: str
    text_en: str
    calendar: str = "natural"


@dataclass(frozen=True, kw_only=True)
class LimitRule:
    value: int | timedelta | bool
    rule_id: str
    source: str


@dataclass(frozen=True, kw_only=True)
class ReasonRule:
    reason: Reason
    fault: str
    compensation: bool
    kinds: frozenset[CaseKind]
    evidence: tuple[str, ...]
    rule_id: str


@dataclass(frozen=True, kw_only=True)
class CompensationRule:
    """SPEC §7: ``rate`` of the refunded goods amount, between ``minimum`` and ``maximum`` fen."""

    rate: Decimal
    minimum: int
    maximum: int
    paid_as: str
    points_per_yuan: int
    reasons: frozenset[Reason]
    rule_id: str


@dataclass(frozen=True, kw_only=True)
class ComplaintRule:
    """SPEC §6: a complaint subtype's penalty points and filing condition."""

    type: str
    subtype: str
    points: int
    compensates: bool
    when: str
    case_reason: Reason | None
    rule_id: str


@dataclass(frozen=True, kw_only=True)
class RuleInfo:
    """A rule as shown in explanations."""

    rule_id: str
    source: str
    text_zh: str
    text_en: str


class Rules(Protocol):
    """The rulebook in force: a base pack plus holiday overrides."""

    def deadline(self, ctx: DeadlineContext) -> DeadlineRule: ...

    def due_at(self, rule: DeadlineRule, start: datetime) -> datetime:
        """When ``rule``'s duration, counted on its calendar from ``start``, runs out."""

    def limit(self, name: str) -> LimitRule: ...

    def reason(self, reason: Reason) -> ReasonRule: ...

    def describe(self, rule_id: str) -> RuleInfo: ...

    def compensation(self) -> CompensationRule: ...

    def complaint(self, type: str, subtype: str) -> ComplaintRule | None: ...
