"""Wire schemas: what the API reads and writes, separate from the domain types.

Request models refuse unknown fields (``extra="forbid"``). The case, order and attachment
views' models are built from the views' one definition (TypedDicts in services/views.py) and
declare exactly their fields; other response models declare the fields the API promises and let
new ones through (``extra="allow"``). Money is integer fen; times are ISO 8601 with an offset.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import re
import types
import typing
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    create_model,
)

from shouhou.domain import commands as c
from shouhou.domain.model import (
    CaseKind,
    NoReasonReturn,
    Promotion,
    Reason,
    ShippingMethod,
)
from shouhou.services import explanation, views

#: The largest amount the API accepts, in fen (¥100 billion).
MAX_FEN = 10**13
#: The longest free text the API accepts in one field, in characters.
MAX_TEXT = 2000
MAX_LIST = 50


def _plain_text(value: str) -> str:
    """Refuse control characters (NUL breaks PostgreSQL) and lone surrogates (not UTF-8)."""
    for ch in value:
        if ch in "\t\n\r":
            continue
        if ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF or ord(ch) == 0x7F:
            raise ValueError(f"character U+{ord(ch):04X} is not allowed")
    return value


#: What ``_plain_text`` lets through, for the schema (the validator words the refusal better).
PLAIN_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Text = Annotated[
    str,
    Field(max_length=MAX_TEXT, json_schema_extra={"pattern": PLAIN_TEXT}),
    AfterValidator(_plain_text),
]

#: The years a time the API accepts may fall in (as written): room on both sides for the
#: longest deadline, so that no date arithmetic of the engine leaves what Python can represent.
FIRST_YEAR, LAST_YEAR = 1970, 2999


def in_range(value: datetime) -> datetime:
    """Refuse an instant outside :data:`FIRST_YEAR` … :data:`LAST_YEAR` (the year as written,
    which the schema's pattern can say, rather than the year in UTC)."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"times must fall in the years {FIRST_YEAR} to {LAST_YEAR}")
    return value


#: A time as the API takes it: RFC 3339 text (JSON Schema's ``date-time``) with its offset.
#: Its years are those :func:`in_range` takes.
TIME_TEXT = (
    r"^(19[7-9][0-9]|2[0-9]{3})-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _time_text(value: Any) -> Any:
    """Refuse a time that is not ISO 8601 text with an offset: pydantic alone would read a
    number (or a string of digits) as seconds since 1970, which the schema does not promise."""
    if isinstance(value, datetime):
        return value  # built in Python, not read from the wire
    if not isinstance(value, str) or not re.match(TIME_TEXT, value):
        raise ValueError("times are ISO 8601 text with an offset, like 2026-03-02T10:00:00+08:00")
    return value


def _whole_number(value: Any) -> Any:
    """Take an integral float (``953.0``) as the integer it is, as JSON Schema counts it one."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: A timezone-aware instant in the years the engine handles.
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_time_text),
    AfterValidator(in_range),
    Field(json_schema_extra={"pattern": TIME_TEXT}),
]

#: Put last in an integer's ``Annotated``: takes ``953.0`` as ``953`` (never ``"953"``,
#: ``true`` or ``953.5``). Last, so that the bounds before it stay in the JSON schema.
WHOLE = BeforeValidator(_whole_number)
Ident = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="an id: letters, digits, _ . - (at most 64)",
    ),
]
Fen = Annotated[
    StrictInt, Field(ge=0, le=MAX_FEN, description="an amount in fen (1 yuan = 100)"), WHOLE
]
Duration = Annotated[
    str,
    Field(pattern=r"^(\d{1,4}d)?(\d{1,5}h)?(\d{1,6}m)?(\d{1,7}s)?$", min_length=2, max_length=24),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- errors ------------------------------------------------------------------------------


class ErrorDetail(Open):
    code: str = Field(description="not_allowed, not_eligible, forbidden, invalid, not_found, …")
    message: str
    rule: str | None = Field(default=None, description="the rule behind a refusal")
    allowed_from: str | None = Field(
        default=None, description="when a time rule blocks: from when it would be allowed"
    )


class ErrorBody(Open):
    error: ErrorDetail


# --- views: built from their one definition in services/views.py ---------------------------


class Declared(BaseModel):
    """A view's wire model: exactly the fields the view declares, nothing else."""

    model_config = ConfigDict(extra="forbid")


#: The wire model built for each view, so that a view nested in others is one schema.
VIEW_MODELS: dict[type, type[BaseModel]] = {}


def view_model(view: type, *, name: str = "", **described: str) -> type[BaseModel]:
    """The response model of the TypedDict ``view``: its fields, with nested views as models."""
    hints = typing.get_type_hints(view)
    unknown = set(described) - set(hints)
    if unknown:
        raise TypeError(f"{view.__name__} has no fields {sorted(unknown)} to describe")
    fields: dict[str, Any] = {
        key: (_wire_hint(hint), Field(description=described.get(key)))
        for key, hint in hints.items()
    }
    model: type[BaseModel] = create_model(
        name or view.__name__, __base__=Declared, __doc__=view.__doc__, **fields
    )
    VIEW_MODELS[view] = model
    return model


def _wire_hint(hint: Any) -> Any:
    if typing.is_typeddict(hint):
        return VIEW_MODELS.get(hint) or view_model(hint)
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin is list:
        return list[_wire_hint(args[0])]  # type: ignore[misc]
    if origin is typing.Union or origin is types.UnionType:
        return functools.reduce(operator.or_, map(_wire_hint, args))
    return hint


Deadline = view_model(views.DeadlineView, name="Deadline", due_at="ISO 8601 with offset")
AttachmentView = view_model(views.AttachmentView)
Explanation = view_model(explanation.Explanation)
CaseView = view_model(
    views.CaseView, return_address="where the buyer sends the goods back, once agreed"
)
CaseSummary = view_model(views.CaseSummary)
OrderView = view_model(views.OrderView)


# --- orders ------------------------------------------------------------------------------


class ItemIn(Strict):
    """A line of the order (子订单)."""

    sku: Ident
    title: Text = ""
    quantity: Annotated[StrictInt, Field(ge=1, le=100000), WHOLE] = 1
    unit_price: Fen = 0
    line: Ident | None = Field(default=None, description="the line id; default: its position")
    discount: Fen = Field(default=0, description="the line's own discount, in fen")


class DiscountsIn(Strict):
    """Order-level discounts, shared out to the lines in proportion to their prices."""

    shop_coupon: Fen = 0
    cross_store: Fen = Field(default=0, description="跨店满减")
    platform_subsidy: Fen = Field(default=0, description="平台补贴: never refunded to the buyer")


class LineIn(Strict):
    """A line an application is about; no quantity means every unit not yet refunded."""

    line: Ident
    quantity: Annotated[StrictInt, Field(ge=1, le=100000)] | None = None


class OrderIn(Strict):
    """A new order, as the marketplace records it; times say which status it starts in."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "o1001",
                    "shop": "s1",
                    "buyer": "b1",
                    "total": 19900,
                    "shipping_fee": 0,
                    "free_shipping": True,
                    "items": [{"sku": "tee-white-m", "title": "T恤", "unit_price": 19900}],
                    "paid_at": "2026-11-20T10:00:00+08:00",
                    "shipped_at": "2026-11-21T09:00:00+08:00",
                }
            ]
        },
    )

    id: Ident
    shop: Ident
    buyer: Ident
    total: Fen = Field(description="what the buyer paid, shipping included, in fen")
    shipping_fee: Fen = 0
    free_shipping: StrictBool = False
    items: Annotated[list[ItemIn], Field(max_length=MAX_LIST)] = []
    discounts: DiscountsIn = DiscountsIn()
    promotion: Promotion = Promotion.NORMAL
    promised_ship_by: Instant | None = None
    shipping_method: ShippingMethod = ShippingMethod.EXPRESS
    no_reason_return: NoReasonReturn = NoReasonReturn.ELIGIBLE
    sanbao: dict[str, Duration] | None = Field(
        default=None, description='三包 periods from delivery, e.g. {"return": "7d"}'
    )
    freight_insurance: StrictBool = False
    created_at: Instant | None = Field(default=None, description="default: now")
    paid_at: Instant | None = None
    shipped_at: Instant | None = None
    delivered_at: Instant | None = None
    trade_success_at: Instant | None = None


class ApplyIn(Strict):
    """Open an after-sales case on an order (the buyer's ``apply``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"order": "o1001", "kind": "return_refund", "reason": "quality", "amount": 19900}
            ]
        },
    )

    order: Ident
    kind: CaseKind
    reason: Reason
    amount: Fen = Field(description="the amount asked back, in fen")
    note: Text = ""
    lines: Annotated[list[LineIn], Field(max_length=MAX_LIST)] | None = Field(
        default=None, description="the lines asked about; none: every line"
    )


# --- cases -------------------------------------------------------------------------------


class CasePage(Open):
    items: list[CaseSummary]  # type: ignore[valid-type]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class OrderPage(Open):
    items: list[OrderView]  # type: ignore[valid-type]
    next_cursor: str | None


class Event(Open):
    seq: int
    type: str
    at: str
    actor: str


# --- complaints, ledgers, metrics --------------------------------------------------------


class ComplaintView(Open):
    id: str
    order: str
    shop: str
    buyer: str
    type: str
    subtype: str
    status: str
    points: int
    rule_id: str
    filed_at: str
    version: int


class ComplaintPage(Open):
    items: list[ComplaintView]
    next_cursor: str | None


class LedgerEntryView(Open):
    kind: str
    amount: int
    unit: str
    order: str
    source: str
    rule_id: str
    at: str


class LedgerView(Open):
    account: str
    balances: dict[str, int] = Field(description="sum per kind (points, or fen)")
    entries: list[LedgerEntryView]


class MetricsView(Open):
    shop: str
    since: str
    until: str
    dispute_rate: float
    self_completion_rate: float
    avg_completion_hours: dict[str, float]
    within_72h_rate: float
    refund_rate: float
    penalty_points: int
    compensation_paid: int = Field(description="fen")


# --- who am I, health, policies ----------------------------------------------------------


class Me(Open):
    key: str = Field(description="the API key id")
    role: str
    subject: str
    acting_as: str = Field(description="the actor this request runs as")


class Health(Open):
    status: str
    database: str
    version: str


class PolicyVersion(Open):
    version: int
    kind: str
    title: dict[str, str]


class PolicySummary(Open):
    name: str
    selected: bool
    versions: list[PolicyVersion]


# --- webhooks ----------------------------------------------------------------------------


def _endpoint_url(value: str) -> str:
    """Refuse what looks like a URL but names no host, or a bad port or IPv6 address: the
    worker could never send to it."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises on a port that is not a number in range)
    except ValueError as exc:
        raise ValueError(f"not a URL the worker can send to: {exc}") from None
    if not parts.hostname:
        raise ValueError("not a URL the worker can send to: it names no host")
    return value


class EndpointIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://example.com/hooks/shouhou",
                    "events": ["case.*", "deadline.approaching"],
                    "description": "order service",
                }
            ]
        },
    )

    url: Annotated[
        str,
        # no white space, in the sense of both the schema's regexes (ECMA: U+FEFF, not U+0085)
        # and the validator's (Unicode: U+0085, not U+FEFF)
        Field(min_length=8, max_length=2048, pattern=r"^[hH][tT][tT][pP][sS]?://[^\s\x85\uFEFF]+$"),
        AfterValidator(_endpoint_url),
    ]
    events: Annotated[
        list[Annotated[str, Field(pattern=r"^(\*|[a-z_]+\.(\*|[a-z_]+))$", max_length=64)]],
        Field(min_length=1, max_length=MAX_LIST),
    ] = ["*"]
    description: Annotated[Text, Field(max_length=200)] = ""


class EndpointView(Open):
    id: str
    url: str
    events: list[str]
    description: str
    created_at: str
    disabled_at: str | None


class EndpointCreated(EndpointView):
    secret: str = Field(description="the signing secret (whsec_…); shown only here")


class AttemptView(Open):
    number: int
    at: str
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryView(Open):
    id: int
    event: str
    endpoint: str
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    next_attempt_at: str
    last_status_code: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None


class DeliveryDetail(DeliveryView):
    attempt_log: list[AttemptView]


class DeliveryPage(Open):
    items: list[DeliveryView]
    next_cursor: str | None


class OutboxEventView(Open):
    id: str
    type: str
    occurred_at: str
    subject: dict[str, str]
    data: dict[str, Any]


class EventPage(Open):
    items: list[OutboxEventView]
    next_cursor: str | None


class ReplayIn(Strict):
    endpoint: Ident | None = Field(
        default=None, description="send to this endpoint only (default: every subscribed one)"
    )


class Replayed(Open):
    deliveries: list[int]


# --- action parameters, generated from the command dataclasses ----------------------------

#: Example bodies for the known actions (others get an example from their defaults).
EXAMPLES: dict[str, dict[str, Any]] = {
    "modify": {"kind": "refund_only", "reason": "quality", "amount": 9900},
    "agree": {"return_address": "上海市浦东新区 … 收货人 张三 13800000000"},
    "refuse": {
        "reason": "the goods were used",
        "note": "photos attached",
        "evidence": ["<sha256 of an uploaded photo>"],
    },
    "ship_return": {"carrier": "SF", "waybill": "SF1234567890", "method": "express"},
    "refuse_receipt": {"reason": "tags cut", "condition": "tags_cut"},
    "propose_remedy": {"type": "partial_refund", "amount": 3000},
    "reship": {"carrier": "SF", "waybill": "SF0987654321", "method": "express"},
    "ship": {"carrier": "SF", "waybill": "SF1111111111", "method": "express"},
    "close": {"reason": "buyer cancelled"},
    "reopen": {"note": "order checked: the goods were never delivered"},
}
#: Public parameter names that differ from the command field names.
PUBLIC_NAMES = {"order_id": "order", "case_id": "case"}


def _wire_type(name: str, hint: Any) -> Any:
    """The pydantic type the API accepts for one command field."""
    args = typing.get_args(hint)
    if type(None) in args:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _wire_type(name, inner[0]) | None
        return hint
    if name in c.MONEY_FIELDS and hint is int:
        return Fen
    if hint is datetime:
        return Instant
    if hint is str:
        return Text
    if hint is int:
        return Annotated[StrictInt, Field(ge=0, le=MAX_FEN), WHOLE]
    if hint is bool:
        return StrictBool
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return hint
    if typing.get_origin(hint) is tuple and args and args[-1] is Ellipsis:
        return Annotated[list[_wire_type(name, args[0])], Field(max_length=MAX_LIST)]  # type: ignore[misc]
    return hint


def _camel(action: str) -> str:
    return "".join(part.capitalize() for part in action.split("_"))


def params_model(cls: type[c.Command], fixed: frozenset[str]) -> type[BaseModel]:
    """A request model for ``cls``'s parameters (fields not fixed by the path), extra forbidden."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in fixed or field.name == "actor" or field.name in c.SERVICE_FIELDS:
            continue  # the services fill these in: the API neither takes nor advertises them
        wire = _wire_type(field.name, hints[field.name])
        public = PUBLIC_NAMES.get(field.name, field.name)
        if field.default is not dataclasses.MISSING:
            default = field.default
            if isinstance(default, tuple):
                default = list(default)
            fields[public] = (wire, Field(default=default))
        elif field.default_factory is not dataclasses.MISSING:
            fields[public] = (wire, Field(default_factory=field.default_factory))
        else:
            fields[public] = (wire, Field())
    examples: list[Any] = [EXAMPLES.get(cls.action, {})]
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": examples})
    model: type[BaseModel] = create_model(
        f"{_camel(cls.action)}Params", __config__=config, **fields
    )
    return model


def has_required(model: type[BaseModel]) -> bool:
    return any(f.is_required() for f in model.model_fields.values())
