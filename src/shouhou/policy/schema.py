"""The strict schema of rulebook packs. Unknown keys are refused; no code lives in a pack."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from shouhou.domain.model import CaseKind, Reason, ShippingMethod
from shouhou.domain.values import SHANGHAI, parse_duration

#: Deadlines of cases, with the expiry actions each may take.
CASE_DEADLINES: dict[str, frozenset[str]] = {
    "seller_respond": frozenset({"refund", "agree"}),
    "buyer_respond_after_refusal": frozenset({"close"}),
    "buyer_ship_return": frozenset({"close"}),
    "seller_confirm_receipt": frozenset({"refund"}),
    "seller_reship": frozenset({"refund"}),
    "buyer_confirm_received": frozenset({"complete"}),
    "evidence": frozenset({"review"}),
    "seller_handle_after_evidence": frozenset({"review"}),
}
ORDER_DEADLINES: dict[str, frozenset[str]] = {
    "ship_by": frozenset({"mark_late"}),
    "auto_confirm": frozenset({"trade_success"}),
}
DEADLINE_NAMES = frozenset(CASE_DEADLINES) | frozenset(ORDER_DEADLINES)

#: Eligibility rules and limits every base pack states, with the type of their value.
LIMITS: dict[str, type] = {
    "max_modifications": int,
    "max_cases_per_order": int,
    "one_open_case": bool,
    "no_reapply_after_timeout": bool,
    "returns_need_shipment": bool,
    "intercept_in_transit": bool,
    "remedy_needs_proposal": bool,
    "in_sale_full_refund_closes": bool,
    "after_sale_window": str,
    "intervention_after": str,
    "no_reason_window": str,
    "no_reason_ineligible_goods": bool,
    "no_reason_refusal_after_sale_only": bool,
    "no_reason_second_sale": bool,
    "sanbao_periods": bool,
    "reopen_window": str,
    "agent_ruling": bool,
    "after_sale_disputes_count": bool,
    "freight_seller_fault": bool,
    "freight_no_reason_free_shipping": bool,
    "freight_buyer_bears": bool,
    "freight_own_leg": bool,
    "freight_refused_without_reason": bool,
    "freight_refused_with_reason": bool,
    "freight_insurance": bool,
    "complaint_one_per_order": bool,
}

#: Case facts a holiday trigger may name.
MARK_NAMES = Literal[
    "applied",
    "modified",
    "seller_refused",
    "seller_agreed",
    "intercepted",
    "return_shipped",
    "receipt_confirmed",
    "remedy_accepted",
    "reshipped",
    "intervention_requested",
]
CALENDARS = Literal["natural", "business"]
VARIES_BY = Literal["promotion", "shipping_method", "return_method"]
PROMISED = "promised"


def _duration(text: str) -> str:
    parse_duration(text)
    return text


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provenance(Strict):
    source: Literal["seed", "law", "sec", "assumed"]
    ref: str = ""
    note: str = ""

    def label(self) -> str:
        return f"{self.source} {self.ref}".strip()


class Text(Strict):
    zh: str
    en: str


class DeadlineSpec(Strict):
    duration: str | dict[str, str]
    varies_by: VARIES_BY | None = None
    #: Natural time (the default) or Chinese working days; unset: the pack's calendar.
    calendar: CALENDARS | None = None
    on_expiry: str | dict[CaseKind, str]
    provenance: Provenance
    text: Text

    @field_validator("duration")
    @classmethod
    def _durations(cls, value: str | dict[str, str]) -> str | dict[str, str]:
        for text in [value] if isinstance(value, str) else value.values():
            if text != PROMISED:
                _duration(text)
        return value

    @model_validator(mode="after")
    def _variants(self) -> DeadlineSpec:
        if isinstance(self.duration, dict) and self.varies_by is None:
            raise ValueError("a duration per variant needs varies_by")
        if isinstance(self.duration, str) and self.varies_by is not None:
            raise ValueError("varies_by needs a duration per variant")
        return self


class LimitSpec(Strict):
    value: bool | int | str
    provenance: Provenance
    text: Text


class ReasonSpec(Strict):
    fault: Literal["seller", "buyer", "none"]
    compensation: bool
    kinds: list[CaseKind] = Field(min_length=1)
    evidence: list[str] = []
    provenance: Provenance
    text: Text


class CompensationSpec(Strict):
    """Automatic buyer compensation (SPEC §7, seed Ⅲ): rate of the refunded goods amount."""

    rate: Annotated[str, Field(pattern=r"^0(\.\d+)?$|^1(\.0+)?$")]
    minimum: Annotated[str, Field(pattern=r"^\d+(\.\d{1,2})?$")] = "0.00"
    maximum: Annotated[str, Field(pattern=r"^\d+(\.\d{1,2})?$")]
    paid_as: Literal["points", "cash"] = "points"
    points_per_yuan: Annotated[int, Field(ge=1)] = 100
    currency: Literal["CNY"] = "CNY"
    reasons: list[Reason] = Field(min_length=1)
    provenance: Provenance
    text: Text

    @model_validator(mode="after")
    def _bounds(self) -> CompensationSpec:
        if Decimal(self.minimum) > Decimal(self.maximum):
            raise ValueError("compensation minimum is above its maximum")
        return self


COMPLAINT_CONDITIONS = Literal["case_reason", "before_payment", "after_payment", "ship_by_missed"]


class ComplaintSpec(Strict):
    """A complaint subtype (SPEC §6): penalty points and when it may be filed."""

    points: Annotated[int, Field(ge=0)]
    compensates: bool = False
    when: COMPLAINT_CONDITIONS
    case_reason: Reason | None = None
    provenance: Provenance
    text: Text

    @model_validator(mode="after")
    def _reason(self) -> ComplaintSpec:
        if (self.when == "case_reason") != (self.case_reason is not None):
            raise ValueError("case_reason goes with when: case_reason, and only with it")
        return self


def shanghai_if_naive(moment: datetime) -> datetime:
    """A time written without an offset is Shanghai wall time, as in holiday windows."""
    return moment.replace(tzinfo=SHANGHAI) if moment.tzinfo is None else moment


#: When a pack version takes effect: with an offset, or in Shanghai time without one.
EffectiveFrom = Annotated[datetime, AfterValidator(shanghai_if_naive)]


class BasePack(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    version: Annotated[int, Field(ge=1)]
    kind: Literal["base"]
    title: Text
    timezone: Literal["Asia/Shanghai"] = "Asia/Shanghai"
    calendar: CALENDARS = "natural"
    effective_from: EffectiveFrom | None = None
    deadlines: dict[str, DeadlineSpec]
    limits: dict[str, LimitSpec]
    reasons: dict[Reason, ReasonSpec]
    compensation: CompensationSpec
    complaints: dict[str, dict[str, ComplaintSpec]] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> BasePack:
        problems = []
        for name in sorted(DEADLINE_NAMES - set(self.deadlines)):
            problems.append(f"deadline {name} is missing")
        for name, spec in self.deadlines.items():
            allowed = CASE_DEADLINES.get(name) or ORDER_DEADLINES.get(name)
            if allowed is None:
                problems.append(f"unknown deadline {name}")
                continue
            actions = (
                [spec.on_expiry] if isinstance(spec.on_expiry, str) else spec.on_expiry.values()
            )
            for action in actions:
                if action not in allowed:
                    problems.append(
                        f"deadline {name}: on_expiry {action!r} is not one of {sorted(allowed)}"
                    )
        for name, spec in self.deadlines.items():
            if (spec.calendar or self.calendar) == "business":
                texts = (
                    [spec.duration] if isinstance(spec.duration, str) else spec.duration.values()
                )
                for text in texts:
                    if text != PROMISED and parse_duration(text) % timedelta(days=1):
                        problems.append(f"deadline {name}: business days must be whole days")
        for name in sorted(set(LIMITS) - set(self.limits)):
            problems.append(f"limit {name} is missing")
        for name, limit in self.limits.items():
            want = LIMITS.get(name)
            if want is None:
                problems.append(f"unknown limit {name}")
            elif type(limit.value) is not want:
                problems.append(f"limit {name} must be a {want.__name__}")
            elif want is str:
                try:
                    parse_duration(str(limit.value))
                except ValueError as exc:
                    problems.append(f"limit {name}: {exc}")
        for reason in sorted(set(Reason) - set(self.reasons)):
            problems.append(f"reason {reason.value} is missing")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Trigger(Strict):
    level: Literal["case", "deadline"]
    events: list[MARK_NAMES] = Field(min_length=1)


class Filter(Strict):
    kind: list[CaseKind] | None = None
    shipping_method: list[ShippingMethod] | None = None
    return_method: list[ShippingMethod] | None = None


class OverrideRule(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    trigger: Trigger
    set: dict[str, str] = Field(min_length=1)
    only: Filter | None = None
    exclude: Filter | None = None
    provenance: Provenance
    text: Text

    @field_validator("set")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        for name, duration in value.items():
            if name not in CASE_DEADLINES:
                raise ValueError(f"unknown case deadline {name}")
            _duration(duration)
        return value


class Window(Strict):
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError("window end must come after its start")
        return self


class HolidayPack(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    version: Annotated[int, Field(ge=1)]
    kind: Literal["holiday"]
    title: Text
    window: Window
    effective_from: EffectiveFrom | None = None
    rules: list[OverrideRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> HolidayPack:
        ids = [rule.id for rule in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique within a pack")
        return self


Pack = BasePack | HolidayPack
