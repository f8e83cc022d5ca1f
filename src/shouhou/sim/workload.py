"""Workload files for the policy lab (SPEC §10): a synthetic marketplace the simulator runs.

A workload says when orders arrive, what is sold (categories with their no-reason and 三包
terms, free shipping and case mix), how the parties behave (as distributions), how many shops
share the orders and how they behave, and the random seed. The schema is strict (unknown keys
are refused) and every error names its line, as scenario files do. ``examples/workloads/``
holds an ordinary week, Double-11 for one large merchant, and Spring Festival 2022.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shouhou.domain.model import CaseKind, NoReasonReturn, Reason
from shouhou.domain.values import parse_duration, parse_yuan
from shouhou.errors import ScenarioError
from shouhou.sim.yamlines import Located, load

Share = Annotated[float, Field(ge=0, le=1)]
#: How close to 1 a set of shares must add up.
SHARES_TOLERANCE = 1e-6
#: Reasons a buyer gives before the goods were shipped (the rest come after delivery).
BEFORE_SHIPMENT = frozenset({Reason.OUT_OF_STOCK, Reason.LATE_SHIPMENT, Reason.NOT_RECEIVED})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hours(Strict):
    """A delay in hours: log-normal with the given median and 90th percentile, or uniform."""

    p50: float | None = Field(default=None, gt=0)
    p90: float | None = Field(default=None, gt=0)
    min: float | None = Field(default=None, ge=0)
    max: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_form(self) -> Hours:
        lognormal = self.p50 is not None and self.p90 is not None
        uniform = self.min is not None and self.max is not None
        given = sum(v is not None for v in (self.p50, self.p90, self.min, self.max))
        if lognormal == uniform or given != 2:
            raise ValueError("give either p50 and p90 (log-normal) or min and max (uniform)")
        if lognormal and self.p90 is not None and self.p50 is not None and self.p90 < self.p50:
            raise ValueError("p90 must not be below p50")
        if uniform and self.max is not None and self.min is not None and self.max < self.min:
            raise ValueError("max must not be below min")
        return self

    def draw(self, rng: random.Random) -> timedelta:
        """One delay, to the minute."""
        if self.p50 is not None and self.p90 is not None:
            sigma = math.log(self.p90 / self.p50) / 1.2815515655446004  # z of the 90th pct
            hours = rng.lognormvariate(math.log(self.p50), sigma)
        else:
            assert self.min is not None and self.max is not None
            hours = rng.uniform(self.min, self.max)
        return timedelta(minutes=max(1, round(hours * 60)))


def _sums_to_one(shares: dict[str, float], what: str) -> None:
    total = sum(shares.values())
    if abs(total - 1) > SHARES_TOLERANCE:
        raise ValueError(f"{what} shares add up to {total:g}, not 1")


class Arrivals(Strict):
    """``orders`` spread over the span, each hour of the day weighted by ``by_hour``
    (Asia/Shanghai; 24 relative weights; default flat)."""

    orders: Annotated[int, Field(ge=1)]
    by_hour: list[Annotated[float, Field(ge=0)]] = Field(default_factory=lambda: [1.0] * 24)

    @field_validator("by_hour")
    @classmethod
    def _day(cls, value: list[float]) -> list[float]:
        if len(value) != 24 or not any(value):
            raise ValueError("by_hour has 24 weights, not all zero")
        return value


class CaseMix(Strict):
    """Share of a category's orders that file this kind of case for this reason."""

    kind: CaseKind
    reason: Reason
    rate: Share
    #: Requested amount as a share of the order's total (refund kinds; 0 for exchange/repair).
    amount: Share = 1.0


class Category(Strict):
    name: str
    share: Share
    price: tuple[str, str]  # lowest and highest price, yuan
    no_reason: NoReasonReturn = NoReasonReturn.ELIGIBLE
    sanbao: dict[Literal["return", "exchange", "repair"], str] | None = None
    free_shipping: Share = 1.0
    shipping_fee: str = "0.00"
    post: Share = 0.0  # share of orders sent by surface post
    cases: list[CaseMix] = Field(min_length=1)

    @field_validator("price")
    @classmethod
    def _prices(cls, value: tuple[str, str]) -> tuple[str, str]:
        low, high = (parse_yuan(v) for v in value)
        if not 0 < low <= high:
            raise ValueError("price is [lowest, highest], both above 0")
        return value

    @field_validator("shipping_fee")
    @classmethod
    def _fee(cls, value: str) -> str:
        parse_yuan(value)
        return value

    @field_validator("sanbao")
    @classmethod
    def _periods(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for text in (value or {}).values():
            parse_duration(text)
        return value

    @model_validator(mode="after")
    def _rates(self) -> Category:
        total = sum(mix.rate for mix in self.cases)
        if total > 1:
            raise ValueError(f"case rates add up to {total:g}: more cases than orders")
        return self


class Seller(Strict):
    """How a seller answers: after ``respond`` hours, agree, refuse, propose a remedy, or
    stay silent (the deadline answers); then how they handle returned goods and reships."""

    respond: Hours
    agree: Share
    refuse: Share
    remedy: Share
    silence: Share
    confirm_receipt: Hours
    refuse_receipt: Share = 0.0
    receipt_silence: Share = 0.0
    reship: Hours = Hours(p50=24, p90=72)
    reship_silence: Share = 0.0

    @model_validator(mode="after")
    def _shares(self) -> Seller:
        _sums_to_one(
            {
                "agree": self.agree,
                "refuse": self.refuse,
                "remedy": self.remedy,
                "silence": self.silence,
            },
            "seller answer",
        )
        if self.refuse_receipt + self.receipt_silence > 1:
            raise ValueError("refuse_receipt and receipt_silence add up to more than 1")
        return self


class Buyer(Strict):
    """How a buyer goes on: ship the return after ``ship_return`` hours unless they drop out;
    after a refusal escalate, modify, withdraw or stay silent; complete their evidence."""

    ship_return: Hours
    dropout: Share
    after_refusal: dict[Literal["intervene", "modify", "withdraw", "silence"], Share]
    intervene_unanswered: Share = 0.0  # asks for an agent from 72h when the seller is silent
    evidence_completion: Share
    accept_remedy: Share
    answer: Hours = Hours(p50=12, p90=48)
    confirm_received: Hours = Hours(p50=48, p90=168)
    confirm_silence: Share = 0.3

    @field_validator("after_refusal")
    @classmethod
    def _refusal(cls, value: dict[str, float]) -> dict[str, float]:
        _sums_to_one(value, "after_refusal")
        return value


class Agents(Strict):
    """How platform agents rule a case in review, and how soon."""

    rule: Hours
    refund: Share
    partial_refund: Share
    reject: Share

    @model_validator(mode="after")
    def _shares(self) -> Agents:
        _sums_to_one(
            {"refund": self.refund, "partial_refund": self.partial_refund, "reject": self.reject},
            "ruling",
        )
        return self


#: The rule complaint (SPEC §6) a buyer may file over a case of each reason, and its default
#: subtype: the case is the complaint's condition in every pack (``when: case_reason``), or the
#: order's missed ship-by limit for a late shipment.
COMPLAINT_TYPES: dict[Reason, tuple[str, str]] = {
    Reason.NOT_AS_DESCRIBED: ("not_as_described", "minor"),
    Reason.INVOICE: ("breach_of_promise", "invoice"),
    Reason.LATE_SHIPMENT: ("late_shipment", "default"),
}


class Complaints(Strict):
    """Rule complaints: the share of cases of each reason whose buyer, once the case has ended,
    also files a rule complaint; the subtypes they choose (shares per complaint type, default
    the type's usual one); how soon an agent rules and the share upheld."""

    filed: dict[Reason, Share]
    subtypes: dict[str, dict[str, Share]] = Field(default_factory=dict)
    rule: Hours
    uphold: Share

    @field_validator("filed")
    @classmethod
    def _reasons(cls, value: dict[Reason, float]) -> dict[Reason, float]:
        unknown = sorted(str(r) for r in value if r not in COMPLAINT_TYPES)
        if unknown:
            known = ", ".join(sorted(str(r) for r in COMPLAINT_TYPES))
            raise ValueError(f"no rule complaint follows reason(s) {', '.join(unknown)}: {known}")
        return value

    @field_validator("subtypes")
    @classmethod
    def _subtypes(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        types = {kind for kind, _ in COMPLAINT_TYPES.values()}
        for kind, shares in value.items():
            if kind not in types:
                raise ValueError(f"{kind} is not a complaint type here: {', '.join(sorted(types))}")
            _sums_to_one(shares, f"{kind} subtype")
        return value

    def complaint_for(self, reason: Reason) -> tuple[str, dict[str, float]] | None:
        """The complaint type a case of ``reason`` may lead to, with its subtype shares."""
        if reason not in self.filed or reason not in COMPLAINT_TYPES:
            return None
        kind, usual = COMPLAINT_TYPES[reason]
        return kind, self.subtypes.get(kind, {usual: 1.0})


class Profile(Strict):
    seller: Seller
    buyer: Buyer


class Shops(Strict):
    """``count`` shops; shop i gets a share of the orders proportional to 1/i^zipf
    (0: all alike); each shop follows one behaviour profile, drawn by ``profiles`` shares."""

    count: Annotated[int, Field(ge=1)]
    zipf: Annotated[float, Field(ge=0)] = 0.0
    profiles: dict[str, Share]

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, value: dict[str, float]) -> dict[str, float]:
        _sums_to_one(value, "profile")
        return value


class Logistics(Strict):
    ship: Hours  # from payment to the courier's record time
    transit: Hours  # from shipment to delivery


class Workload(Strict):
    name: str
    description: str = ""
    seed: int
    start: datetime
    span: str
    arrivals: Arrivals
    logistics: Logistics
    categories: list[Category] = Field(min_length=1)
    profiles: dict[str, Profile] = Field(min_length=1)
    agents: Agents
    shops: Shops
    complaints: Complaints | None = None

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("start needs a UTC offset, e.g. +08:00")
        return value

    @field_validator("span")
    @classmethod
    def _span(cls, value: str) -> str:
        if parse_duration(value) <= timedelta(0):
            raise ValueError("span must be positive")
        return value

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: list[Category]) -> list[Category]:
        _sums_to_one({c.name: c.share for c in value}, "category")
        return value

    @model_validator(mode="after")
    def _whole(self) -> Workload:
        unknown = sorted(set(self.shops.profiles) - set(self.profiles))
        if unknown:
            raise ValueError(f"shops use unknown profile(s) {', '.join(unknown)}")
        return self

    @property
    def duration(self) -> timedelta:
        return parse_duration(self.span)


def _line(data: Any, loc: tuple[int | str, ...], default: int) -> int:
    """The line of the deepest mapping key or mapping that ``loc`` reaches in ``data``."""
    line, here = default, data
    for part in loc:
        if isinstance(here, Located):
            line = here.key_lines.get(str(part), here.line)
            here = here.get(str(part))
        elif isinstance(here, list) and isinstance(part, int) and part < len(here):
            here = here[part]
            if isinstance(here, Located):
                line = here.line
        else:
            break
    return line


def parse(text: str, file: str = "<workload>") -> Workload:
    """Check a workload file whole; ScenarioError names the first problem and its line."""
    try:
        data = load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ScenarioError(
            f"not valid YAML: {exc.problem}", file=file, line=mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"not valid YAML: {exc}", file=file) from None
    if not isinstance(data, Located):
        raise ScenarioError("a workload is a mapping with name, seed, start …", file=file, line=1)
    try:
        return Workload.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        where = ".".join(str(p) for p in loc) or "workload"
        raise ScenarioError(
            f"{where}: {first['msg']}", file=file, line=_line(data, loc, data.line)
        ) from None


def load_file(path: Path) -> Workload:
    """Read and check a workload file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"can't read: {exc.strerror}", file=str(path)) from None
    return parse(text, str(path))
