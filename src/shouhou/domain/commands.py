"""Commands: what an actor asks for, in the imperative. Frozen keyword-only dataclasses.

:data:`CASE_COMMANDS` and :data:`ORDER_COMMANDS` map the public action names of SPEC §1 to
their classes; :func:`build` turns an action name and plain parameters into a command.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from shouhou.domain.model import (
    Actor,
    Attachment,
    CaseKind,
    CaseLine,
    Cause,
    Liable,
    NoteStep,
    Reason,
    ReceiptCondition,
    RemedyType,
    RulingOutcome,
    ShippingMethod,
    parse_enum,
)
from shouhou.errors import Invalid


class ComplaintDecision(StrEnum):
    UPHELD = "upheld"
    DISMISSED = "dismissed"


@dataclass(frozen=True, kw_only=True)
class Command:
    action: ClassVar[str] = ""
    actor: Actor


@dataclass(frozen=True, kw_only=True)
class CaseCommand(Command):
    case_id: str


@dataclass(frozen=True, kw_only=True)
class Apply(Command):
    action: ClassVar[str] = "apply"
    order_id: str
    kind: CaseKind
    reason: Reason
    #: In fen; for an exchange or repair 0 (or omitted) means what is still refundable.
    amount: int = 0
    case_id: str | None = None
    note: str = ""
    #: The lines and units applied for; empty means every line (SPEC §1).
    lines: tuple[CaseLine, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Modify(CaseCommand):
    action: ClassVar[str] = "modify"
    kind: CaseKind | None = None
    reason: Reason | None = None
    amount: int | None = None
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Withdraw(CaseCommand):
    action: ClassVar[str] = "withdraw"


@dataclass(frozen=True, kw_only=True)
class Agree(CaseCommand):
    action: ClassVar[str] = "agree"
    return_address: str | None = None


@dataclass(frozen=True, kw_only=True)
class Refuse(CaseCommand):
    action: ClassVar[str] = "refuse"
    reason: str
    note: str = ""
    #: References to what shows the refusal is right (uploaded files' sha256, waybills…).
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Intercept(CaseCommand):
    action: ClassVar[str] = "intercept"


@dataclass(frozen=True, kw_only=True)
class ShipReturn(CaseCommand):
    action: ClassVar[str] = "ship_return"
    carrier: str
    waybill: str
    method: ShippingMethod = ShippingMethod.EXPRESS
    fee: int = 0


@dataclass(frozen=True, kw_only=True)
class ConfirmReceipt(CaseCommand):
    action: ClassVar[str] = "confirm_receipt"


@dataclass(frozen=True, kw_only=True)
class RefuseReceipt(CaseCommand):
    action: ClassVar[str] = "refuse_receipt"
    reason: str
    note: str = ""
    condition: ReceiptCondition | None = None
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ProposeRemedy(CaseCommand):
    action: ClassVar[str] = "propose_remedy"
    type: RemedyType
    amount: int = 0


@dataclass(frozen=True, kw_only=True)
class AcceptRemedy(CaseCommand):
    action: ClassVar[str] = "accept_remedy"


@dataclass(frozen=True, kw_only=True)
class DeclineRemedy(CaseCommand):
    action: ClassVar[str] = "decline_remedy"


@dataclass(frozen=True, kw_only=True)
class Reship(CaseCommand):
    action: ClassVar[str] = "reship"
    carrier: str
    waybill: str
    method: ShippingMethod = ShippingMethod.EXPRESS


@dataclass(frozen=True, kw_only=True)
class ConfirmReceived(CaseCommand):
    action: ClassVar[str] = "confirm_received"


@dataclass(frozen=True, kw_only=True)
class RequestIntervention(CaseCommand):
    action: ClassVar[str] = "request_intervention"
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class SubmitEvidence(CaseCommand):
    """Submit or revise one's evidence; ``attachments`` are SHA-256 names of stored files."""

    action: ClassVar[str] = "submit_evidence"
    text: str
    attachments: tuple[str, ...] = ()
    #: The stored files behind ``attachments``, filled in by the service that checked them.
    files: tuple[Attachment, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CompleteEvidence(CaseCommand):
    action: ClassVar[str] = "complete_evidence"


@dataclass(frozen=True, kw_only=True)
class Rule(CaseCommand):
    action: ClassVar[str] = "rule"
    outcome: RulingOutcome
    liable: Liable
    reason: str
    amount: int = 0


@dataclass(frozen=True, kw_only=True)
class AddNote(CaseCommand):
    """A service-log entry (SPEC §8): what was done at which step."""

    action: ClassVar[str] = "note"
    step: NoteStep
    text: str


@dataclass(frozen=True, kw_only=True)
class Classify(CaseCommand):
    """登记备案: the category and cause of an ended case."""

    action: ClassVar[str] = "classify"
    category: str
    cause: Cause


@dataclass(frozen=True, kw_only=True)
class Timeout(CaseCommand):
    """Fire the case's current deadline (actor ``system``); an expiry that agrees to a
    return agrees with ``return_address``, the shop's default (SPEC §2)."""

    action: ClassVar[str] = "timeout"
    return_address: str | None = None


# --- complaints ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ComplaintCommand(Command):
    complaint_id: str


@dataclass(frozen=True, kw_only=True)
class FileComplaint(ComplaintCommand):
    action: ClassVar[str] = "file_complaint"
    order_id: str
    type: str
    subtype: str = "default"
    case_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class WithdrawComplaint(ComplaintCommand):
    action: ClassVar[str] = "withdraw_complaint"


@dataclass(frozen=True, kw_only=True)
class RuleComplaint(ComplaintCommand):
    action: ClassVar[str] = "rule_complaint"
    decision: ComplaintDecision
    reason: str


COMPLAINT_COMMANDS: Mapping[str, type[Command]] = {
    cls.action: cls for cls in (FileComplaint, WithdrawComplaint, RuleComplaint)
}


# --- orders ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OrderCommand(Command):
    order_id: str


@dataclass(frozen=True, kw_only=True)
class Pay(OrderCommand):
    action: ClassVar[str] = "pay"


@dataclass(frozen=True, kw_only=True)
class Ship(OrderCommand):
    action: ClassVar[str] = "ship"
    carrier: str = ""
    waybill: str = ""
    method: ShippingMethod | None = None
    recorded_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Deliver(OrderCommand):
    action: ClassVar[str] = "deliver"


@dataclass(frozen=True, kw_only=True)
class ConfirmOrderReceipt(OrderCommand):
    action: ClassVar[str] = "confirm_receipt"


@dataclass(frozen=True, kw_only=True)
class CloseOrder(OrderCommand):
    action: ClassVar[str] = "close"
    reason: str = "closed"


@dataclass(frozen=True, kw_only=True)
class Reopen(OrderCommand):
    """An agent reopens the after-sales window of an order after checking it (seed Ⅵ)."""

    action: ClassVar[str] = "reopen"
    note: str


@dataclass(frozen=True, kw_only=True)
class OrderTimeout(OrderCommand):
    action: ClassVar[str] = "timeout"


CASE_COMMANDS: Mapping[str, type[Command]] = {
    cls.action: cls
    for cls in (
        Apply,
        Modify,
        Withdraw,
        Agree,
        Refuse,
        Intercept,
        ShipReturn,
        ConfirmReceipt,
        RefuseReceipt,
        ProposeRemedy,
        AcceptRemedy,
        DeclineRemedy,
        Reship,
        ConfirmReceived,
        RequestIntervention,
        SubmitEvidence,
        CompleteEvidence,
        Rule,
        AddNote,
        Classify,
        Timeout,
    )
}
ORDER_COMMANDS: Mapping[str, type[Command]] = {
    cls.action: cls
    for cls in (Pay, Ship, Deliver, ConfirmOrderReceipt, CloseOrder, Reopen, OrderTimeout)
}

MONEY_FIELDS = frozenset({"amount", "fee"})
#: Fields the services fill in; never taken from an edge's parameters.
SERVICE_FIELDS = frozenset({"files"})


def _base_type(hint: Any) -> Any:
    """``X | None`` to X; anything else unchanged."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


#: The resolved annotations of each command class: resolving them is costly (it compiles every
#: annotation string), and every command built through :func:`build` needs them.
_HINTS: dict[type[Command], dict[str, Any]] = {}


def _hints(cls: type[Command]) -> dict[str, Any]:
    found = _HINTS.get(cls)
    if found is None:
        found = _HINTS[cls] = typing.get_type_hints(cls)
    return found


def build(
    cls: type[Command],
    fixed: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    money: Callable[[Any], int],
    moment: Callable[[Any], datetime],
) -> Command:
    """A command of ``cls`` from plain parameters; ``invalid`` names any bad or unknown one.

    ``money`` converts amounts (yuan strings at the scenario edge, fen at the API edge) and
    ``moment`` converts times; enums are checked against the vocabulary.
    """
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    settable = set(fields) - set(fixed) - {"actor"} - SERVICE_FIELDS
    unknown = set(params) - settable
    if unknown:
        raise Invalid(
            f"{cls.action}: unknown parameter(s) {', '.join(sorted(unknown))}; "
            f"accepted: {', '.join(sorted(settable)) or 'none'}"
        )
    values: dict[str, Any] = dict(fixed)
    for name, raw in params.items():
        base = _base_type(hints[name])
        if name == "lines":  # [{line, quantity}]; none named (or null) means every line
            values[name] = case_lines(raw or [], cls.action)
        elif raw is None:
            values[name] = None
        elif name in MONEY_FIELDS:
            values[name] = _convert(money, raw, name, cls.action)
        elif isinstance(base, type) and issubclass(base, StrEnum):
            values[name] = parse_enum(base, raw, name)
        elif base is datetime:
            values[name] = _convert(moment, raw, name, cls.action)
        elif typing.get_origin(base) is tuple:
            items = raw if isinstance(raw, list | tuple) else [raw]
            values[name] = tuple(str(item) for item in items)
        else:
            values[name] = str(raw)
    missing = [
        f.name
        for f in fields.values()
        if f.name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise Invalid(f"{cls.action}: missing parameter(s) {', '.join(missing)}")
    return cls(**values)


def case_lines(raw: Any, action: str) -> tuple[CaseLine, ...]:
    """``[{line, quantity}, ...]`` as case lines (no quantity: all the line's units left);
    ``invalid`` naming what is wrong."""
    if not isinstance(raw, list | tuple):
        raise Invalid(f"{action}: lines must be a list of {{line, quantity}}")
    out = []
    for entry in raw:
        if (
            not isinstance(entry, Mapping)
            or "line" not in entry
            or not set(entry)
            <= {
                "line",
                "quantity",
            }
        ):
            raise Invalid(f"{action}: each line is {{line, quantity}}, not {entry!r}")
        quantity = entry.get("quantity") or 0  # 0: every unit of the line not yet refunded
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise Invalid(f"{action}: line {entry['line']}: quantity must be a whole number >= 1")
        out.append(CaseLine(line=str(entry["line"]), quantity=quantity))
    return tuple(out)


def _convert(fn: Callable[[Any], Any], raw: Any, name: str, action: str) -> Any:
    try:
        return fn(raw)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"{action}: bad {name}: {exc}") from None
