"""The outbox is written in the transaction of the change: on the fake and on SQLite alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from shouhou.db import engine as db_engine
from shouhou.db import tables
from shouhou.db.uow import SqlUnitOfWork
from shouhou.domain import commands as c
from shouhou.domain.model import Actor, CaseKind, Order, Reason, Role
from shouhou.domain.values import SHANGHAI
from shouhou.errors import Forbidden
from shouhou.policy.loader import Registry
from shouhou.policy.rulebook import Rulebook
from shouhou.services import handlers
from shouhou.services.ports import UnitOfWork
from shouhou.testing import MemoryStore, MemoryUnitOfWork

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=SHANGHAI)
REGISTRY = Registry.default()
RULES = Rulebook.select(REGISTRY, REGISTRY.default_selection(), T0)


@dataclass
class Backend:
    new_uow: Callable[[], UnitOfWork]
    types: Callable[[], list[str]]


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        store = MemoryStore()
        yield Backend(lambda: MemoryUnitOfWork(store), lambda: [m.type for m in store.outbox])
        return
    sql = db_engine.create(f"sqlite:///{tmp_path / 'outbox.db'}")
    db_engine.upgrade(sql)

    def types() -> list[str]:
        with sql.connect() as conn:
            query = sa.select(tables.outbox.c.type).order_by(tables.outbox.c.id)
            return list(conn.execute(query).scalars())

    try:
        yield Backend(lambda: SqlUnitOfWork(sql), types)
    finally:
        sql.dispose()


def _place(backend: Backend) -> None:
    order = Order(
        id="o1",
        shop="s1",
        buyer="b1",
        total=19900,
        created_at=T0 - timedelta(days=2),
        paid_at=T0 - timedelta(days=2),
        shipped_at=T0 - timedelta(days=1),
    )
    handlers.place_order(backend.new_uow(), order, RULES, T0)


def _apply(backend: Backend, actor: Actor) -> None:
    cmd = c.Apply(
        actor=actor,
        order_id="o1",
        kind=CaseKind.REFUND_ONLY,
        reason=Reason.QUALITY,
        amount=100,
        case_id="c1",
    )
    handlers.case_action(backend.new_uow(), cmd, lambda _: RULES, T0, lambda: "c1")


def test_placing_an_order_queues_its_events(backend: Backend) -> None:
    _place(backend)

    assert backend.types() == [
        "order.placed",
        "order.paid",
        "deadline.scheduled",
        "order.shipped",
        "deadline.scheduled",
    ]


def test_an_action_queues_the_case_and_order_events_it_caused(backend: Backend) -> None:
    _place(backend)

    _apply(backend, Actor(role=Role.BUYER, id="b1"))

    queued = backend.types()[5:]
    assert queued[:2] == ["case.applied", "deadline.scheduled"]
    assert "order.case_opened" in queued
    assert "order.auto_confirm_paused" in queued


def test_a_refused_action_queues_nothing(backend: Backend) -> None:
    _place(backend)
    before = backend.types()

    with pytest.raises(Forbidden):
        _apply(backend, Actor(role=Role.BUYER, id="b2"))

    assert backend.types() == before
