"""The console's action forms, read off the command classes (domain/commands.py).

Each case action's form has one control per parameter of its command: a list for an enum, an
amount in yuan for money, file uploads for evidence, text otherwise. The command's own checks
judge what is sent, as for the API; the form only asks for what the command takes.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shouhou.domain import commands as c
from shouhou.i18n import N_

#: Parameters a form never asks for: the services fill them in, or the page knows them.
HIDDEN = frozenset({"actor", "case_id", "files", "order_id", "lines", "complaint_id"})
#: Parameters that name uploaded files (SHA-256 names) rather than hold text.
FILE_FIELDS = frozenset({"evidence", "attachments"})
#: Parameters written in more than a line.
LONG_TEXT = frozenset({"note", "text", "reason", "return_address"})

#: What each action's button says.
ACTION_LABELS: dict[str, str] = {
    "modify": N_("Change the request"),
    "withdraw": N_("Withdraw the request"),
    "agree": N_("Agree"),
    "refuse": N_("Refuse"),
    "intercept": N_("Intercept the parcel"),
    "ship_return": N_("Ship the return"),
    "confirm_receipt": N_("Confirm receipt of the return"),
    "refuse_receipt": N_("Refuse the returned goods"),
    "propose_remedy": N_("Propose another remedy"),
    "accept_remedy": N_("Accept the remedy"),
    "decline_remedy": N_("Decline the remedy"),
    "reship": N_("Reship"),
    "confirm_received": N_("Confirm the goods arrived"),
    "request_intervention": N_("Ask the platform to step in"),
    "submit_evidence": N_("Add evidence"),
    "complete_evidence": N_("My evidence is complete"),
    "rule": N_("Send the ruling"),
    "note": N_("Add to the service log"),
    "classify": N_("Classify the case"),
}
#: What each parameter's control is labelled.
FIELD_LABELS: dict[str, str] = {
    "kind": N_("What you ask for"),
    "reason": N_("Reason"),
    "amount": N_("Amount (yuan)"),
    "note": N_("Note"),
    "return_address": N_("Return address"),
    "carrier": N_("Carrier"),
    "waybill": N_("Waybill number"),
    "method": N_("Shipping method"),
    "fee": N_("Shipping paid (yuan)"),
    "condition": N_("Condition of the goods"),
    "evidence": N_("Photos or documents"),
    "attachments": N_("Photos or documents"),
    "type": N_("Remedy"),
    "text": N_("What happened"),
    "outcome": N_("Outcome"),
    "liable": N_("Liable party"),
    "step": N_("Step"),
    "category": N_("Category"),
    "cause": N_("Cause"),
}


@dataclass(frozen=True)
class Field:
    name: str
    control: str  # text, textarea, money, select, files
    required: bool
    #: For a list: the enum whose values it offers (its name is the catalog's context).
    choices: tuple[StrEnum, ...] = ()
    enum: str = ""

    @property
    def label(self) -> str:
        return FIELD_LABELS.get(self.name, self.name)


@dataclass(frozen=True)
class ActionForm:
    action: str
    fields: tuple[Field, ...]

    @property
    def label(self) -> str:
        return ACTION_LABELS.get(self.action, self.action)


def _base(hint: Any) -> tuple[Any, bool]:
    """The type behind ``X | None``, and whether None was allowed."""
    args = typing.get_args(hint)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else hint), True
    return hint, False


def action_form(action: str) -> ActionForm:
    """The form of a case action (or ``rule_complaint``)."""
    cls = c.CASE_COMMANDS.get(action) or c.COMPLAINT_COMMANDS[action]
    hints = typing.get_type_hints(cls)
    fields = []
    for f in dataclasses.fields(cls):
        if f.name in HIDDEN:
            continue
        base, optional = _base(hints[f.name])
        required = (
            f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
            and not optional
        )
        if f.name in FILE_FIELDS:
            fields.append(Field(f.name, "files", required))
        elif f.name in c.MONEY_FIELDS:
            fields.append(Field(f.name, "money", required))
        elif isinstance(base, type) and issubclass(base, StrEnum):
            fields.append(Field(f.name, "select", required, tuple(base), base.__name__))
        elif f.name in LONG_TEXT:
            fields.append(Field(f.name, "textarea", required))
        else:
            fields.append(Field(f.name, "text", required))
    return ActionForm(action, tuple(fields))


def params_from(form: ActionForm, sent: Mapping[str, list[str]]) -> dict[str, Any]:
    """A command's parameters from a posted form: empty optional controls are left out, files
    are the SHA-256 names the upload returned, amounts stay yuan text (built with parse_yuan)."""
    params: dict[str, Any] = {}
    for field in form.fields:
        values = [v.strip() for v in sent.get(field.name, []) if v.strip()]
        if field.control == "files":
            if values:
                params[field.name] = [name for v in values for name in v.split(",") if name.strip()]
            continue
        if not values:
            if field.required:
                params[field.name] = ""  # the command's own check names what is missing
            continue
        params[field.name] = values[0]
    return params
