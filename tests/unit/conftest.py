"""Shared fixtures for the unit tests: the bundled rulebook, placed orders, and a case desk.

Everything here is pure: the only I/O is reading the bundled policy packs, once per session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from shouhou.domain import cases, orders, transitions
from shouhou.domain import commands as c
from shouhou.domain import events as e
from shouhou.domain.model import (
    SYSTEM,
    Actor,
    Case,
    CaseKind,
    CaseLine,
    Order,
    Reason,
    Role,
)
from shouhou.domain.values import SHANGHAI
from shouhou.errors import TransitionNotAllowed
from shouhou.policy.loader import Registry
from shouhou.policy.rulebook import Rulebook

#: The packs a default engine runs with (SPEC §2).
DEFAULT_PACKS = ("tmall-standard", "cny-2020", "cny-2022")
#: An ordinary instant outside every holiday window.
T0 = datetime(2023, 3, 1, 10, 0, tzinfo=SHANGHAI)
BUYER = Actor(role=Role.BUYER, id="b1")
SELLER = Actor(role=Role.SELLER, id="s1")

#: The order times for each status an order can be placed in, relative to ``created_at``.
_STATUS_TIMES: dict[str, tuple[str, ...]] = {
    "awaiting_payment": (),
    "paid": ("paid_at",),
    "shipped": ("paid_at", "shipped_at"),
    "delivered": ("paid_at", "shipped_at", "delivered_at"),
    "trade_success": ("paid_at", "shipped_at", "delivered_at", "trade_success_at"),
}


@pytest.fixture(scope="session")
def rules() -> Rulebook:
    """tmall-standard with the cny-2020 and cny-2022 holiday packs."""
    return Rulebook.select(Registry.default(), list(DEFAULT_PACKS))


MakeOrder = Callable[..., Order]


@pytest.fixture(scope="session")
def make_order(rules: Rulebook) -> MakeOrder:
    """A factory: an order placed in ``status`` with the times leading up to ``at``.

    Each step (payment, shipment, delivery, trade success) happened one day after the one
    before, ending at ``at``; any Order field may be overridden.
    """

    def make(status: str = "shipped", *, at: datetime = T0, **overrides: Any) -> Order:
        steps = _STATUS_TIMES[status]
        times = {name: at - timedelta(days=len(steps) - i - 1) for i, name in enumerate(steps)}
        created = (min(times.values()) if times else at) - timedelta(hours=1)
        fields: dict[str, Any] = {
            "id": "o1",
            "shop": "s1",
            "buyer": "b1",
            "total": 19900,
            "created_at": created,
            **times,
            **overrides,
        }
        order = Order(**fields)
        return orders.fold(order, orders.place(order, rules))

    return make


@dataclass
class Desk:
    """Runs case commands against one order the way the service layer does, without storage.

    It keeps each case's state and timeline, and tells the order when a case opens and ends.
    """

    rules: Rulebook
    order: Order
    cases: dict[str, Case] = field(default_factory=dict)
    timelines: dict[str, list[e.Event]] = field(default_factory=dict)

    def apply(
        self,
        at: datetime = T0,
        *,
        case_id: str = "c1",
        kind: CaseKind = CaseKind.REFUND_ONLY,
        reason: Reason = Reason.NOT_RECEIVED,
        amount: int | None = None,
        by: Actor | None = None,
        lines: tuple[CaseLine, ...] = (),
    ) -> Case:
        cmd = c.Apply(
            actor=by or Actor(role=Role.BUYER, id=self.order.buyer),
            order_id=self.order.id,
            kind=kind,
            reason=reason,
            amount=self.order.total - self.order.refunded if amount is None else amount,
            case_id=case_id,
            lines=lines,
        )
        events = cases.decide(None, cmd, order=self.order, rules=self.rules, now=at)
        case = cases.replay(events)
        self.cases[case_id] = case
        self.timelines[case_id] = list(events)
        held = tuple(line.line for line in case.lines)
        opened = orders.on_case_opened(self.order, case_id, at, held)
        self.order = orders.fold(self.order, opened)
        return case

    def act(
        self,
        command: type[c.CaseCommand],
        at: datetime,
        *,
        by: Actor | None = None,
        case_id: str = "c1",
        **params: Any,
    ) -> Case:
        """Carry out ``command`` on a case; the actor defaults to the party the table names."""
        case = self.cases[case_id]
        cmd = command(actor=by or self.party(case, command.action), case_id=case_id, **params)
        events = cases.decide(case, cmd, order=self.order, rules=self.rules, now=at)
        after = cases.fold(case, events)
        self.cases[case_id] = after
        self.timelines[case_id] += events
        if after.terminal:
            ended = orders.on_case_ended(self.order, after, self.rules, at)
            self.order = orders.fold(self.order, ended)
        return after

    def timeout(self, case_id: str = "c1") -> Case:
        """Fire the case's current deadline exactly when it is due."""
        deadline = self.cases[case_id].deadline
        assert deadline is not None, "the case has no deadline to fire"
        return self.act(c.Timeout, deadline.due_at, case_id=case_id)

    def party(self, case: Case, action: str) -> Actor:
        """The rightful actor for ``action`` in the case's status (the buyer when none is)."""
        try:
            actors = transitions.find(case.status, action).actors
        except TransitionNotAllowed:
            return Actor(role=Role.BUYER, id=case.buyer)
        if Role.SYSTEM in actors:
            return SYSTEM
        if Role.SELLER in actors:
            return Actor(role=Role.SELLER, id=case.shop)
        return Actor(role=Role.BUYER, id=case.buyer)


MakeDesk = Callable[..., Desk]


@pytest.fixture(scope="session")
def desk_for(rules: Rulebook, make_order: MakeOrder) -> MakeDesk:
    """A factory: a desk over a freshly placed order (arguments go to ``make_order``)."""

    def make(status: str = "shipped", **order_fields: Any) -> Desk:
        return Desk(rules=rules, order=make_order(status, **order_fields))

    return make
