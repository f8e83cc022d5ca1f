"""What a person's form may offer, worked out by the domain code that will judge it.

The web console shows a buyer only the applications the rulebook allows on an order, and an
agent the refund and freight split a ruling will produce before it is sent. Both are dry runs
of the code that carries the action out (``applications`` checks, :func:`cases.decide`), so a
form never promises what the action would refuse or compute differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shouhou.domain import applications, lines
from shouhou.domain import cases as case_rules
from shouhou.domain import commands as c
from shouhou.domain import events as e
from shouhou.domain.model import Case, CaseKind, Freight, Order, Reason
from shouhou.domain.rules import Rules
from shouhou.errors import ActionRefused


@dataclass(frozen=True)
class Choices:
    """The kinds and reasons an order's buyer may apply with now, and what is refundable."""

    refundable: int
    #: Each allowed kind with the reasons allowed for it, in the enums' order.
    kinds: dict[CaseKind, list[Reason]]
    #: Why nothing may be applied for, when ``kinds`` is empty.
    refusal: ActionRefused | None = None

    @property
    def reasons(self) -> list[Reason]:
        """Every reason allowed with at least one kind."""
        seen = {r for reasons in self.kinds.values() for r in reasons}
        return [r for r in Reason if r in seen]


def application_choices(order: Order, rules: Rules, now: datetime) -> Choices:
    """The (kind, reason) pairs an application on every open line of ``order`` passes the
    rulebook's checks with now: the phase and window, the lines, the kind a reason allows and
    the no-reason window; the amount tried is what is still refundable."""
    wanted = lines.requested(order, ())
    refundable = lines.refundable(order, wanted)
    kinds: dict[CaseKind, list[Reason]] = {}
    refusal: ActionRefused | None = None
    try:
        applications.check_lines(order, wanted, rules)
    except ActionRefused as exc:
        return Choices(refundable=refundable, kinds={}, refusal=exc)
    for kind in CaseKind:
        try:
            applications.application_phase(order, kind, rules, now)
        except ActionRefused as exc:
            refusal = refusal or exc
            continue
        for reason in Reason:
            try:
                amount = applications.requested(order, kind, refundable, wanted)
                applications.check_request(order, kind, reason, amount, rules, wanted)
                applications.check_no_reason(order, reason, rules, now)
            except ActionRefused as exc:
                refusal = refusal or exc
                continue
            kinds.setdefault(kind, []).append(reason)
    return Choices(refundable=refundable, kinds=kinds, refusal=None if kinds else refusal)


@dataclass(frozen=True)
class RulingPreview:
    """What a ruling would do: the refund, and who bears the shipping."""

    refund: int
    freight: Freight | None
    #: Whether the goods must come back before the refund (a full refund on a return).
    return_first: bool


def preview_ruling(
    case: Case, order: Order, cmd: c.Rule, rules: Rules, now: datetime
) -> RulingPreview:
    """The refund and freight split ``cmd`` would produce on ``case`` now, decided by the
    same code as the ruling itself (nothing is saved); refusals are raised as the ruling's."""
    events = case_rules.decide(case, cmd, order=order, rules=rules, now=now)
    ruled = next(ev for ev in events if isinstance(ev, e.Ruled))
    refund = next((ev for ev in events if isinstance(ev, e.Refunded)), None)
    return RulingPreview(
        refund=refund.amount if refund is not None else ruled.amount,
        freight=(refund.freight if refund is not None else None) or ruled.freight,
        return_first=any(isinstance(ev, e.Agreed) for ev in events),
    )
