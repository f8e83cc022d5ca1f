"""The vocabulary of SPEC §1 as enums, and the frozen state of orders and cases."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from shouhou.errors import Invalid


class Role(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"
    AGENT = "agent"
    SYSTEM = "system"
    PLATFORM = "platform"


class OrderStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    TRADE_SUCCESS = "trade_success"
    CLOSED = "closed"


class Promotion(StrEnum):
    NORMAL = "normal"
    JUHUASUAN = "juhuasuan"
    PRESALE = "presale"


class ShippingMethod(StrEnum):
    EXPRESS = "express"
    EMS = "ems"
    POST = "post"
    VIRTUAL = "virtual"


class NoReasonReturn(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    ELIGIBLE_UNOPENED = "eligible_unopened"


class CaseKind(StrEnum):
    REFUND_ONLY = "refund_only"
    RETURN_REFUND = "return_refund"
    EXCHANGE = "exchange"
    REPAIR = "repair"


class Phase(StrEnum):
    IN_SALE = "in_sale"
    AFTER_SALE = "after_sale"


class Reason(StrEnum):
    NOT_RECEIVED = "not_received"
    NO_REASON = "no_reason"
    NOT_AS_DESCRIBED = "not_as_described"
    QUALITY = "quality"
    WRONG_ITEM = "wrong_item"
    MISSING_ITEM = "missing_item"
    DAMAGED = "damaged"
    OUT_OF_STOCK = "out_of_stock"
    LATE_SHIPMENT = "late_shipment"
    INVOICE = "invoice"
    REFUSED_DELIVERY = "refused_delivery"
    OTHER = "other"


class CaseStatus(StrEnum):
    AWAITING_SELLER = "awaiting_seller"
    SELLER_REFUSED = "seller_refused"
    AWAITING_BUYER_RETURN = "awaiting_buyer_return"
    AWAITING_SELLER_RECEIPT = "awaiting_seller_receipt"
    AWAITING_SELLER_RESHIP = "awaiting_seller_reship"
    AWAITING_BUYER_CONFIRMATION = "awaiting_buyer_confirmation"
    IN_INTERVENTION = "in_intervention"
    REFUNDED = "refunded"
    COMPLETED = "completed"
    CLOSED = "closed"


TERMINAL_STATUSES = frozenset({CaseStatus.REFUNDED, CaseStatus.COMPLETED, CaseStatus.CLOSED})


class Stage(StrEnum):
    """Where a case stands inside platform intervention (SPEC §4)."""

    EVIDENCE = "evidence"
    SELLER_HANDLING = "seller_handling"
    REVIEW = "review"


class RulingOutcome(StrEnum):
    REFUND = "refund"
    PARTIAL_REFUND = "partial_refund"
    REJECT = "reject"
    CONTINUE = "continue"


class Liable(StrEnum):
    SELLER = "seller"
    BUYER = "buyer"
    NONE = "none"


class ClosedReason(StrEnum):
    WITHDRAWN = "withdrawn"
    BUYER_TIMEOUT = "buyer_timeout"
    RULED_FOR_SELLER = "ruled_for_seller"
    REMEDY_ACCEPTED = "remedy_accepted"


class ReceiptCondition(StrEnum):
    """Why returned goods fail inspection: their second sale is affected (seed Ⅱ)."""

    TAGS_CUT = "tags_cut"
    WASHED = "washed"
    USED = "used"
    PARTS_MISSING = "parts_missing"
    GIFTS_MISSING = "gifts_missing"
    OPENED = "opened"
    NOT_ARRIVED = "not_arrived"


class RemedyType(StrEnum):
    PARTIAL_REFUND = "partial_refund"
    RESHIP = "reship"
    COUPON = "coupon"


E = TypeVar("E", bound=StrEnum)
D = TypeVar("D")

#: The field names of each dataclass :func:`evolve` has copied.
_FIELD_NAMES: dict[type, frozenset[str]] = {}


def evolve(obj: D, /, **changes: Any) -> D:
    """``obj`` with ``changes``: what ``dataclasses.replace`` returns for the frozen dataclasses
    of this module (none has ``__post_init__`` or ``InitVar``), at a sixth of the cost: the
    domain folds every event into a new state, and ``replace`` ran ``__init__`` over all the
    fields each time (docs/performance.md). Unknown field names are refused as by ``replace``.
    """
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(obj.__dataclass_fields__)  # type: ignore[attr-defined]
    if not changes.keys() <= names:
        unknown = ", ".join(sorted(changes.keys() - names))
        raise TypeError(f"{cls.__name__} has no field {unknown}")
    new = object.__new__(cls)
    state = new.__dict__
    state.update(obj.__dict__)
    state.update(changes)
    return new


def parse_enum(enum: type[E], value: object, what: str) -> E:
    """``value`` as a member of ``enum``, or an ``invalid`` refusal listing the choices."""
    try:
        return enum(str(value))
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise Invalid(f"unknown {what} {value!r}; expected one of: {choices}") from None


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who acts: a role and, for buyers, sellers and agents, whose id (``buyer:b1``)."""

    role: Role
    id: str = ""

    @classmethod
    def parse(cls, text: str) -> Actor:
        role, _, ident = text.partition(":")
        return cls(role=parse_enum(Role, role, "role"), id=ident)

    def __str__(self) -> str:
        return f"{self.role.value}:{self.id}" if self.id else self.role.value


def on_behalf_hint(actor: Actor, parties: Iterable[Role]) -> str:
    """What to add to the platform's refusal of a party's action: how to take it for the
    party (the platform is no party itself; it names the one it acts for)."""
    if actor.role != Role.PLATFORM:
        return ""
    wanted = set(parties)
    named = [f"{p.value}:ID" for p in (Role.BUYER, Role.SELLER) if p in wanted]
    if not named:
        return ""
    return (
        "; the platform takes a party's action on its behalf: send X-On-Behalf-Of: "
        + " or ".join(named)
    )


SYSTEM = Actor(role=Role.SYSTEM)
PLATFORM = Actor(role=Role.PLATFORM)


@dataclass(frozen=True, kw_only=True)
class Deadline:
    """The one current deadline of an order or case, and the rule that produced it."""

    name: str
    due_at: datetime
    on_expiry: str
    rule_id: str
    policy: str
    started_at: datetime
    duration: timedelta


@dataclass(frozen=True, kw_only=True)
class Item:
    """A listed item of an order: a line (子订单) with its own discount, in fen."""

    sku: str
    title: str = ""
    quantity: int = 1
    unit_price: int = 0
    #: The line id; empty means the item's position, counted from 1.
    line: str = ""
    #: The line's own discount (a shop's price cut on this line alone).
    discount: int = 0


@dataclass(frozen=True, kw_only=True)
class Discounts:
    """Order-level discounts, in fen, shared out to the lines (SPEC §1 "Lines and money")."""

    shop_coupon: int = 0
    cross_store: int = 0
    platform_subsidy: int = 0


@dataclass(frozen=True, kw_only=True)
class Line:
    """A line of an order with its share of the money and what it has had back, in fen.

    ``paid`` is what the buyer paid for the line; ``platform_subsidy`` what the platform paid
    of its price, which a refund reclaims from the seller's proceeds, never pays the buyer.
    """

    line: str
    sku: str = ""
    title: str = ""
    quantity: int = 1
    price: int
    own_discount: int = 0
    shop_coupon: int = 0
    cross_store: int = 0
    platform_subsidy: int = 0
    paid: int
    refunded: int = 0
    reclaimed: int = 0
    returned: int = 0
    open_case: str | None = None
    cases: int = 0
    no_reapply_rule: str | None = None


@dataclass(frozen=True, kw_only=True)
class CaseLine:
    """A line a case is about, and how many of its units."""

    line: str
    quantity: int


@dataclass(frozen=True, kw_only=True)
class LineRefund:
    """What a refund gives back for one line: the buyer's part, the platform's part
    (reclaimed from the seller for a platform subsidy) and the units it covers."""

    line: str
    buyer: int
    platform: int = 0
    quantity: int = 0


@dataclass(frozen=True, kw_only=True)
class Shipment:
    carrier: str
    waybill: str
    method: ShippingMethod
    fee: int = 0


@dataclass(frozen=True, kw_only=True)
class Remedy:
    type: RemedyType
    amount: int = 0


@dataclass(frozen=True, kw_only=True)
class Attachment:
    """A stored file, named by the SHA-256 of its content (never by a guessable path)."""

    sha256: str
    media_type: str
    size: int
    filename: str = ""


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """One party's evidence in an intervention; a new submission revises it."""

    party: Role
    text: str
    attachments: tuple[Attachment, ...] = ()
    at: datetime
    revision: int = 1


@dataclass(frozen=True, kw_only=True)
class Suspended:
    """The status and deadline a case left when intervention began, with the time left."""

    status: CaseStatus
    deadline: Deadline | None
    remaining: timedelta | None


@dataclass(frozen=True, kw_only=True)
class Freight:
    """Who bears the shipping (SPEC §5): amounts, the rule, who must prove it."""

    buyer: int
    seller: int
    rule_id: str
    proof_by: str | None = None
    insurance_claim: int = 0
    deducted: int = 0


class NoteStep(StrEnum):
    """The steps of a seller's service log (seed Ⅱ: 联系, 核实, 安抚道歉, 协调方案, 跟进)."""

    CONTACTED = "contacted"
    VERIFIED = "verified"
    APOLOGISED = "apologised"
    REMEDY = "remedy"
    FOLLOW_UP = "follow_up"


class Cause(StrEnum):
    """Why a case happened, for 登记备案 (seed Ⅱ 6)."""

    PRODUCT_QUALITY = "product_quality"
    DESCRIPTION = "description"
    LOGISTICS = "logistics"
    SERVICE = "service"
    BUYER_PREFERENCE = "buyer_preference"


@dataclass(frozen=True, kw_only=True)
class Note:
    step: NoteStep
    text: str
    author: str
    at: datetime


@dataclass(frozen=True, kw_only=True)
class Classification:
    category: str
    cause: Cause
    author: str
    at: datetime


@dataclass(frozen=True, kw_only=True)
class Compensation:
    """Compensation written to a buyer's ledger (SPEC §7): ``amount`` in fen, and as points."""

    amount: int
    points: int
    paid_as: str
    rule_id: str


class ComplaintStatus(StrEnum):
    FILED = "filed"
    WITHDRAWN = "withdrawn"
    UPHELD = "upheld"
    DISMISSED = "dismissed"


@dataclass(frozen=True, kw_only=True)
class Complaint:
    """A rule complaint (规则类投诉, SPEC §6): straight to an agent, one per order."""

    id: str
    order_id: str
    shop: str
    buyer: str
    type: str
    subtype: str
    case_id: str | None = None
    status: ComplaintStatus = ComplaintStatus.FILED
    points: int = 0
    rule_id: str
    filed_at: datetime
    ruled_at: datetime | None = None
    decision_reason: str | None = None
    compensation: Compensation | None = None
    version: int = 0


@dataclass(frozen=True, kw_only=True)
class Mark:
    """A dated fact about a case that holiday overrides can be triggered by."""

    event: str
    at: datetime


@dataclass(frozen=True, kw_only=True)
class Order:
    id: str
    shop: str
    buyer: str
    total: int
    shipping_fee: int = 0
    free_shipping: bool = False
    items: tuple[Item, ...] = ()
    discounts: Discounts = Discounts()
    #: The lines with their shares and refunds; empty until the order is placed.
    lines: tuple[Line, ...] = ()
    promotion: Promotion = Promotion.NORMAL
    promised_ship_by: datetime | None = None
    shipping_method: ShippingMethod = ShippingMethod.EXPRESS
    no_reason_return: NoReasonReturn = NoReasonReturn.ELIGIBLE
    sanbao: tuple[tuple[str, timedelta], ...] = ()
    freight_insurance: bool = False
    status: OrderStatus = OrderStatus.AWAITING_PAYMENT
    created_at: datetime
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    trade_success_at: datetime | None = None
    closed_at: datetime | None = None
    ship_by: datetime | None = None
    late: bool = False
    deadline: Deadline | None = None
    auto_confirm_remaining: timedelta | None = None
    #: The open cases, in the order they were opened (at most one per line).
    open_cases: tuple[str, ...] = ()
    case_count: int = 0
    refunded: int = 0
    withheld: int = 0
    compensated: bool = False
    no_reapply_rule: str | None = None
    reopened_until: datetime | None = None
    version: int = 0

    @property
    def open_case(self) -> str | None:
        """The first open case, or None: whether any case of the order is open."""
        return self.open_cases[0] if self.open_cases else None


@dataclass(frozen=True, kw_only=True)
class Case:
    id: str
    order_id: str
    shop: str
    buyer: str
    kind: CaseKind
    phase: Phase
    reason: Reason
    status: CaseStatus = CaseStatus.AWAITING_SELLER
    requested_amount: int
    refund_amount: int = 0
    #: The lines the case is about; empty on cases stored before lines existed (every line).
    lines: tuple[CaseLine, ...] = ()
    #: The refund line by line (buyer and platform parts); the rest of it was shipping.
    refund_lines: tuple[LineRefund, ...] = ()
    closed_reason: ClosedReason | None = None
    liable: str | None = None
    modifications: int = 0
    deadline: Deadline | None = None
    remedy: Remedy | None = None
    outcome: Remedy | None = None
    return_address: str | None = None
    return_shipment: Shipment | None = None
    reshipment: Shipment | None = None
    marks: tuple[Mark, ...] = ()
    stage: Stage | None = None
    suspended: Suspended | None = None
    evidence: tuple[Evidence, ...] = ()
    freight: Freight | None = None
    ruling_reason: str | None = None
    ruled_outcome: RulingOutcome | None = None
    compensation: Compensation | None = None
    notes: tuple[Note, ...] = ()
    classification: Classification | None = None
    opened_at: datetime
    resolved_at: datetime | None = None
    resolution_rule: str | None = None
    resolved_by: str | None = None
    version: int = 0

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES
