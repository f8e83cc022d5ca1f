"""Suggested replies for a shop's customer service (SPEC §8), and the picker for a case.

The replies are data (``replies.yaml`` beside this module), validated as strictly as a pack:
each situation names the service-log step it serves, the cases it fits (by status, reason,
kind and the order's status) and its text in zh-Hans and en.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from shouhou.domain.model import Case, CaseKind, CaseStatus, NoteStep, OrderStatus, Reason
from shouhou.domain.values import format_yuan
from shouhou.errors import Invalid, PolicyError
from shouhou.policy.loader import read_yaml

Lang = Literal["zh-Hans", "en"]
LANGUAGES: tuple[Lang, ...] = ("zh-Hans", "en")
#: What a user may type for a language (``--lang zh``).
LANGUAGE_NAMES: dict[str, Lang] = {"zh": "zh-Hans", "zh-hans": "zh-Hans", "en": "en"}
#: The fields a reply may quote, filled from the case.
PLACEHOLDERS = frozenset({"case", "order", "requested", "refunded"})
#: The service-log steps in the order a conversation takes them (seed Ⅱ 一 1–5).
STEPS: tuple[NoteStep, ...] = tuple(NoteStep)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(_Strict):
    """The cases a situation fits; a condition left out fits every case."""

    statuses: tuple[CaseStatus, ...] | None = None
    reasons: tuple[Reason, ...] | None = None
    kinds: tuple[CaseKind, ...] | None = None
    order_statuses: tuple[OrderStatus, ...] | None = None


class Situation(_Strict):
    step: NoteStep
    when: When = When()
    source: str
    text: dict[Lang, str]

    @field_validator("text")
    @classmethod
    def _every_language(cls, text: dict[Lang, str]) -> dict[Lang, str]:
        for lang in LANGUAGES:
            if not text.get(lang, "").strip():
                raise ValueError(f"needs a {lang} text")
        for lang, body in text.items():
            try:
                names = {name for _, name, _, _ in string.Formatter().parse(body) if name}
            except ValueError as exc:
                raise ValueError(f"{lang}: {exc}") from None
            unknown = names - PLACEHOLDERS
            if unknown:
                known = ", ".join(sorted(PLACEHOLDERS))
                raise ValueError(f"{lang}: unknown placeholder {sorted(unknown)}; known: {known}")
        return text


class ReplyBook(_Strict):
    version: int
    situations: dict[str, Situation]


@dataclass(frozen=True, kw_only=True)
class Reply:
    """A reply suggested for a case, and whether its step is already in the service log."""

    situation: str
    step: NoteStep
    lang: Lang
    text: str
    source: str
    noted: bool


def parse_replies(text: str, origin: str = "<text>") -> ReplyBook:
    """Validate a reply book's YAML; PolicyError says what is wrong and where."""
    data = read_yaml(text, origin)
    try:
        return ReplyBook.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in err['loc']) or '(book)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise PolicyError(f"{origin}: invalid reply book:\n" + "\n".join(lines)) from None


@cache
def bundled_replies() -> ReplyBook:
    """The replies shipped with shouhou."""
    entry = resources.files("shouhou.policy") / "replies.yaml"
    return parse_replies(entry.read_text(encoding="utf-8"), "bundled:replies.yaml")


def language(name: str) -> Lang:
    """The reply language a user means by ``name`` (``zh``, ``zh-Hans``, ``en``)."""
    found = LANGUAGE_NAMES.get(name.strip().lower())
    if found is None:
        raise Invalid(f"unknown language {name!r}; expected one of: zh, zh-Hans, en")
    return found


def fits(when: When, case: Case, order_status: OrderStatus | None) -> bool:
    """Whether a case (whose order stands at ``order_status``, None: unknown) fits ``when``."""
    if when.statuses is not None and case.status not in when.statuses:
        return False
    if when.reasons is not None and case.reason not in when.reasons:
        return False
    if when.kinds is not None and case.kind not in when.kinds:
        return False
    return when.order_statuses is None or order_status in when.order_statuses


def pick(
    case: Case,
    *,
    order_status: OrderStatus | None = None,
    lang: Lang = "zh-Hans",
    book: ReplyBook | None = None,
) -> list[Reply]:
    """The replies that fit ``case`` now, by service-log step, in the book's order."""
    book = book or bundled_replies()
    noted = {note.step for note in case.notes}
    values = {
        "case": case.id,
        "order": case.order_id,
        "requested": format_yuan(case.requested_amount),
        "refunded": format_yuan(case.refund_amount),
    }
    found = [
        Reply(
            situation=name,
            step=situation.step,
            lang=lang,
            text=situation.text[lang].format_map(values),
            source=situation.source,
            noted=situation.step in noted,
        )
        for name, situation in book.situations.items()
        if fits(situation.when, case, order_status)
    ]
    return sorted(found, key=lambda reply: STEPS.index(reply.step))
