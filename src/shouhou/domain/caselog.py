"""The seller's service log (SPEC §8, seed Ⅱ): notes by step, and a classification at the end.

Notes (联系, 核实, 安抚道歉, 协调方案, 跟进) may be added at any time, also after the case ended,
by the shop's staff or an agent. The classification (登记备案: category and cause) is made once
the case has ended; a shop's report lists the ended cases still waiting for one.
"""

from __future__ import annotations

from datetime import datetime

from shouhou.domain import commands as c
from shouhou.domain import events as e
from shouhou.domain.model import Actor, Case, Classification, Note, Role, on_behalf_hint
from shouhou.errors import Forbidden, Invalid, NotAllowed

ACTIONS = frozenset({"note", "classify"})


def authorize(case: Case, actor: Actor, action: str) -> None:
    """``forbidden`` to anyone but the shop's staff and agents (a platform key names the shop's
    seller in ``X-On-Behalf-Of``)."""
    if actor.role == Role.AGENT:
        return
    if actor.role != Role.SELLER or actor.id != case.shop:
        hint = on_behalf_hint(actor, [Role.SELLER])
        raise Forbidden(
            f"only shop {case.shop}'s staff or an agent may {action}{hint}", case=case.id
        )


def admit(case: Case, actor: Actor, action: str) -> None:
    """Refuse a log entry before its parameters: :func:`authorize`, then ``not_allowed`` for
    a classification of a case still open."""
    authorize(case, actor, action)
    if action == "classify" and not case.terminal:
        raise NotAllowed(
            "a case is classified once it has ended", case=case.id, status=case.status.value
        )


def decide(case: Case, cmd: c.Command, now: datetime) -> list[e.Event]:
    """The events of a service-log entry on ``case``."""
    admit(case, cmd.actor, cmd.action)
    if isinstance(cmd, c.AddNote):
        if not cmd.text.strip():
            raise Invalid("a note needs a text", case=case.id)
        note = Note(step=cmd.step, text=cmd.text, author=str(cmd.actor), at=now)
        return [e.CaseNoted(at=now, actor=str(cmd.actor), note=note)]
    assert isinstance(cmd, c.Classify)
    if not cmd.category.strip():
        raise Invalid("a classification needs a category", case=case.id)
    classification = Classification(
        category=cmd.category.strip(), cause=cmd.cause, author=str(cmd.actor), at=now
    )
    return [e.CaseClassified(at=now, actor=str(cmd.actor), classification=classification)]
