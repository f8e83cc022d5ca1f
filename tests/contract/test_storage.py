"""The storage contract: one test class, run on the in-memory fake, SQLite and PostgreSQL.

Every backend must keep the same promises: state and events come back exactly as stored,
versions refuse stale writes, leaving a unit of work without commit rolls everything back,
and a subject has at most one pending deadline, which fires at most once.

PostgreSQL runs at ``$SHOUHOU_TEST_POSTGRES_URL`` (default ``postgresql://127.0.0.1:5432/test``),
each test in a schema of its own; without the psycopg driver or the server it is skipped.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from pgscratch import scratch_schema
from shouhou.db import engine as db_engine
from shouhou.db.uow import SqlUnitOfWork
from shouhou.domain import cases, orders
from shouhou.domain import commands as c
from shouhou.domain.buckets import in_bucket
from shouhou.domain.events import Event
from shouhou.domain.model import (
    PLATFORM,
    Actor,
    Case,
    CaseKind,
    CaseStatus,
    Complaint,
    ComplaintStatus,
    Deadline,
    Item,
    Order,
    Reason,
    Role,
)
from shouhou.errors import CannotFire, Conflict, NotFound
from shouhou.policy.loader import Registry
from shouhou.policy.rulebook import Rulebook
from shouhou.services import deadlines
from shouhou.services.ports import UnitOfWork
from shouhou.sim.memory import LabStore, LabUnitOfWork
from shouhou.testing import MemoryStore, MemoryUnitOfWork

POSTGRES_URL = os.environ.get("SHOUHOU_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Times in Beijing with microseconds, so a backend that drops either is caught.
T0 = datetime(2024, 3, 1, 10, 0, 0, 123_456, tzinfo=SHANGHAI)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
REGISTRY = Registry.default()
RULES = Rulebook.select(REGISTRY, REGISTRY.default_selection(), T0)


def one_bucket(*names: str) -> dict[str, str]:
    """An id for each name, all in one bucket: due order is kept per bucket (0021), so the
    tests of due order put their subjects in one."""
    return {name: in_bucket(f"{name}-", 7) for name in names}


# --- backends ----------------------------------------------------------------------------


@dataclass
class Storage:
    """A backend under test: its name and a factory of fresh units of work over one store."""

    name: str
    new_uow: Callable[[], UnitOfWork]


def _memory() -> Iterator[Storage]:
    store = MemoryStore()
    yield Storage("memory", lambda: MemoryUnitOfWork(store))


def _lab() -> Iterator[Storage]:
    store = LabStore()
    yield Storage("lab", lambda: LabUnitOfWork(store))


def _sql(url: str, name: str, partitions: int = 0) -> Iterator[Storage]:
    sql = db_engine.create(url)
    try:
        db_engine.upgrade(sql, partitions=partitions)
        yield Storage(name, lambda: SqlUnitOfWork(sql))
    finally:
        sql.dispose()


def _unavailable(reason: str) -> None:
    """Skip with the reason on a developer's machine; in CI a missing server is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the PostgreSQL tests)")
    pytest.skip(reason)


#: The partitions of the partitioned PostgreSQL variant (0021): every bucketed table is
#: ``PARTITION BY HASH (bucket)``, so PostgreSQL refuses any key without the bucket.
PARTITIONS = 8


def _postgres(url: str, partitions: int = 0) -> Iterator[Storage]:
    """A fresh schema on the server for each test, dropped afterwards: runs never collide."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("PostgreSQL: the psycopg 3 driver is not installed (pip install psycopg)")
    with scratch_schema("contract", url) as fresh:
        yield from _sql(fresh, "partitioned" if partitions else "postgresql", partitions)


@pytest.fixture(params=["memory", "lab", "sqlite", "postgresql", "partitioned"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "memory":
        yield from _memory()
    elif request.param == "lab":
        yield from _lab()
    elif request.param == "sqlite":
        yield from _sql(f"sqlite:///{tmp_path / 'contract.db'}", "sqlite")
    elif request.param == "partitioned":
        yield from _postgres(POSTGRES_URL, PARTITIONS)
    else:
        yield from _postgres(POSTGRES_URL)


# --- domain objects, built through the domain --------------------------------------------


def buyer(order: Order) -> Actor:
    return Actor(role=Role.BUYER, id=order.buyer)


def placed_order(
    order_id: str = "o1", *, shop: str = "s1", who: str = "b1", at: datetime = T0
) -> tuple[Order, list[Event]]:
    """A shipped order with items, sanbao and a running ``auto_confirm``, and its events."""
    order = Order(
        id=order_id,
        shop=shop,
        buyer=who,
        total=12_900,
        shipping_fee=800,
        items=(Item(sku="cup-1", title="茶杯", quantity=2, unit_price=6_050),),
        sanbao=(("seven_day_return", timedelta(days=7)),),
        freight_insurance=True,
        created_at=at - timedelta(hours=3),
        paid_at=at - timedelta(hours=2),
        shipped_at=at - timedelta(hours=1),
    )
    events = orders.place(order, RULES)
    return orders.fold(order, events), events


def applied_case(order: Order, case_id: str = "c1", at: datetime = T0) -> tuple[Case, list[Event]]:
    """A refund-only case applied for on ``order``, and its events."""
    cmd = c.Apply(
        actor=buyer(order),
        order_id=order.id,
        kind=CaseKind.REFUND_ONLY,
        reason=Reason.NOT_RECEIVED,
        amount=order.total,
        case_id=case_id,
        note="没收到货",
    )
    events = cases.decide(None, cmd, order=order, rules=RULES, now=at)
    return cases.fold(cases.open_case(events[0]), events[1:]), events


def acted(case: Case, order: Order, cmd: c.Command, at: datetime) -> tuple[Case, list[Event]]:
    events = cases.decide(case, cmd, order=order, rules=RULES, now=at)
    return cases.fold(case, events), events


def deadline(due_at: datetime, name: str = "seller_respond") -> Deadline:
    return Deadline(
        name=name,
        due_at=due_at,
        on_expiry="refund",
        rule_id=f"tmall-standard/{name}",
        policy="tmall-standard@1",
        started_at=due_at - timedelta(days=5),
        duration=timedelta(days=5),
    )


def moments(value: Any, path: str = "") -> dict[str, Any]:
    """Every datetime (with its UTC offset) and timedelta inside ``value``, by field path."""
    found: dict[str, Any] = {}
    if isinstance(value, datetime):
        found[path] = (value, value.utcoffset())
    elif isinstance(value, timedelta):
        found[path] = value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            found |= moments(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            found |= moments(item, f"{path}[{i}]")
    return found


def seqs_and_events(timeline: Sequence[Any]) -> tuple[list[int], list[Event]]:
    return [s.seq for s in timeline], [s.event for s in timeline]


# --- the contract ------------------------------------------------------------------------


class TestStorageContract:
    def test_an_order_and_its_case_come_back_with_every_field(self, storage: Storage) -> None:
        order, order_events = placed_order()
        case, case_events = applied_case(order)
        opened = orders.on_case_opened(order, case.id, T0)
        with storage.new_uow() as uow:
            uow.orders.add(order, order_events)
            uow.cases.add(case, case_events)
            uow.commit()
        with storage.new_uow() as uow:
            stored = uow.orders.get(order.id)
            assert stored is not None
            uow.orders.save(orders.fold(stored, opened), opened)
            uow.commit()

        with storage.new_uow() as uow:
            got_order = uow.orders.get(order.id)
            got_case = uow.cases.get(case.id)
            order_timeline = uow.orders.timeline(order.id)
            case_timeline = uow.cases.timeline(case.id)

        expected_order = replace(orders.fold(order, opened), version=2)
        assert expected_order.auto_confirm_remaining == timedelta(days=9, hours=23)
        assert got_order == expected_order
        assert moments(got_order) == moments(expected_order)
        assert got_case == replace(case, version=1)
        assert moments(got_case) == moments(case)
        assert [s.event for s in order_timeline] == [*order_events, *opened]
        assert [s.event for s in case_timeline] == case_events
        assert moments([s.event for s in order_timeline]) == moments([*order_events, *opened])

    def test_a_missing_order_or_case_is_none_with_an_empty_timeline(self, storage: Storage) -> None:
        with storage.new_uow() as uow:
            assert uow.orders.get("nope") is None
            assert uow.cases.get("nope") is None
            assert uow.orders.timeline("nope") == []
            assert uow.cases.timeline("nope") == []

    def test_saving_an_order_with_a_stale_version_is_refused_and_changes_nothing(
        self, storage: Storage
    ) -> None:
        order, events = placed_order()
        with storage.new_uow() as uow:
            uow.orders.add(order, events)
            uow.commit()
        with storage.new_uow() as uow:
            loaded = uow.orders.get(order.id)
        assert loaded is not None and loaded.version == 1
        opened = orders.on_case_opened(loaded, "c1", T0)
        with storage.new_uow() as uow:  # someone else wins the race
            uow.orders.save(orders.fold(loaded, opened), opened)
            uow.commit()
        with storage.new_uow() as uow:
            before = uow.orders.get(order.id)
            before_timeline = uow.orders.timeline(order.id)

        late = orders.decide(
            loaded, c.Deliver(actor=PLATFORM, order_id=order.id), rules=RULES, now=T0
        )
        with storage.new_uow() as uow:
            with pytest.raises(Conflict):
                uow.orders.save(orders.fold(loaded, late), late)
            uow.commit()

        with storage.new_uow() as uow:
            assert uow.orders.get(order.id) == before
            assert uow.orders.timeline(order.id) == before_timeline
        assert before is not None and before.version == 2

    def test_an_order_read_again_after_its_save_is_the_saved_one(self, storage: Storage) -> None:
        """The SQL stores read a case's order with the case and keep it until asked for
        (issue 19): saving the order drops what was kept, so a later read sees the save."""
        order, placed = placed_order()
        case, applied = applied_case(order)
        with storage.new_uow() as uow:
            uow.orders.add(order, placed)
            uow.cases.add(case, applied)
            uow.commit()
        with storage.new_uow() as uow:
            loaded = uow.orders.get(order.id)
            assert loaded is not None and uow.cases.get(case.id) is not None  # order kept
            delivered = orders.decide(
                loaded, c.Deliver(actor=PLATFORM, order_id=order.id), rules=RULES, now=T0
            )
            uow.orders.save(orders.fold(loaded, delivered), delivered)
            again = uow.orders.get(order.id)
            assert again is not None and again.version == loaded.version + 1
            assert again.delivered_at is not None

    def test_the_event_log_sees_the_events_of_its_own_unit_of_work(self, storage: Storage) -> None:
        """Events are written at commit on SQL (issue 19); a read of the log before that, in
        the same unit of work, writes them first."""
        order, placed = placed_order()
        with storage.new_uow() as uow:
            uow.orders.add(order, placed)
            logged = uow.log.for_shop(order.shop, T0 - timedelta(days=1), T0 + timedelta(days=1))
        assert [e.event for e in logged] == list(placed)

    def test_a_case_id_taken_in_its_bucket_or_by_a_route_is_refused_naming_the_case(
        self, storage: Storage
    ) -> None:
        """The id is checked by the insert itself (issue 19): a case of that id in the same
        bucket, or one routed elsewhere from the bucket its id hashes to, refuses the new one
        with a Conflict that names the case, and nothing of the new one is kept."""
        taken, routed = in_bucket("taken-", 3), in_bucket("routed-", 3)  # both hash to 3
        first, _ = placed_order(in_bucket("first-", 3))  # its case lives where its id hashes
        second, _ = placed_order(in_bucket("second-", 3))
        elsewhere, _ = placed_order(in_bucket("elsewhere-", 4))  # a route in 3 names 4
        again, _ = placed_order(in_bucket("again-", 3))
        later, _ = placed_order(in_bucket("later-", 5))  # would route from 3 too
        with storage.new_uow() as uow:
            uow.cases.add(*applied_case(first, taken))
            uow.cases.add(*applied_case(elsewhere, routed))
            uow.commit()
        for order, case_id in ((second, taken), (again, routed), (later, routed)):
            with storage.new_uow() as uow:
                with pytest.raises(Conflict, match="already exists") as refused:
                    uow.cases.add(*applied_case(order, case_id))
                assert refused.value.case == case_id
            with storage.new_uow() as uow:
                kept = uow.cases.get(case_id)
                assert kept is not None and kept.order_id != order.id

    def test_saving_a_case_with_a_stale_version_is_refused_and_changes_nothing(
        self, storage: Storage
    ) -> None:
        order, _ = placed_order()
        case, events = applied_case(order)
        with storage.new_uow() as uow:
            uow.cases.add(case, events)
            uow.commit()
        with storage.new_uow() as uow:
            loaded = uow.cases.get(case.id)
        assert loaded is not None and loaded.version == 1
        later = T0 + timedelta(hours=1)
        withdrawn, withdraw_events = acted(
            loaded, order, c.Withdraw(actor=buyer(order), case_id=case.id), later
        )
        with storage.new_uow() as uow:  # someone else wins the race
            uow.cases.save(withdrawn, withdraw_events)
            uow.commit()
        with storage.new_uow() as uow:
            before = uow.cases.get(case.id)
            before_timeline = uow.cases.timeline(case.id)

        modified, modify_events = acted(
            loaded, order, c.Modify(actor=buyer(order), case_id=case.id, amount=5_000), later
        )
        with storage.new_uow() as uow:
            with pytest.raises(Conflict):
                uow.cases.save(modified, modify_events)
            uow.commit()

        with storage.new_uow() as uow:
            assert uow.cases.get(case.id) == before
            assert uow.cases.timeline(case.id) == before_timeline
        assert before == replace(withdrawn, version=2)
        assert before.status == CaseStatus.CLOSED

    def test_leaving_without_commit_rolls_back_what_was_added(self, storage: Storage) -> None:
        order, order_events = placed_order()
        case, case_events = applied_case(order)
        with storage.new_uow() as uow:
            uow.orders.add(order, order_events)
            uow.cases.add(case, case_events)
            uow.deadlines.sync("order", order.id, order.deadline)
            uow.deadlines.sync("case", case.id, case.deadline)
            assert uow.deadlines.pending_count() == 2

        with storage.new_uow() as uow:
            assert uow.orders.get(order.id) is None
            assert uow.cases.get(case.id) is None
            assert uow.orders.timeline(order.id) == []
            assert uow.cases.timeline(case.id) == []
            assert uow.deadlines.pending_count() == 0
            assert uow.deadlines.next_due(FAR_FUTURE) is None

    def test_leaving_without_commit_rolls_back_changes_and_fired_deadlines(
        self, storage: Storage
    ) -> None:
        order, order_events = placed_order()
        case, case_events = applied_case(order)
        assert case.deadline is not None
        with storage.new_uow() as uow:
            uow.orders.add(order, order_events)
            uow.cases.add(case, case_events)
            uow.deadlines.sync("case", case.id, case.deadline)
            uow.commit()
        with storage.new_uow() as uow:
            before = (uow.orders.get(order.id), uow.cases.get(case.id))
            timelines = (uow.orders.timeline(order.id), uow.cases.timeline(case.id))
            due = uow.deadlines.next_due(FAR_FUTURE)
        assert due is not None

        stored_order, stored_case = before
        assert stored_order is not None and stored_case is not None
        opened = orders.on_case_opened(stored_order, case.id, T0)
        later = T0 + timedelta(hours=1)
        withdrawn, withdraw_events = acted(
            stored_case, order, c.Withdraw(actor=buyer(order), case_id=case.id), later
        )
        with storage.new_uow() as uow:
            uow.orders.save(orders.fold(stored_order, opened), opened)
            uow.cases.save(withdrawn, withdraw_events)
            uow.deadlines.fire("case", case.id, due.name, due.due_at, later)
            uow.deadlines.sync("case", "c2", deadline(T0))

        with storage.new_uow() as uow:
            assert (uow.orders.get(order.id), uow.cases.get(case.id)) == before
            assert (uow.orders.timeline(order.id), uow.cases.timeline(case.id)) == timelines
            assert uow.deadlines.pending_count() == 1
            assert uow.deadlines.next_due(FAR_FUTURE) == due

    def test_an_error_inside_the_unit_of_work_rolls_back(self, storage: Storage) -> None:
        order, events = placed_order()
        with pytest.raises(RuntimeError, match="boom"), storage.new_uow() as uow:
            uow.orders.add(order, events)
            uow.deadlines.sync("order", order.id, order.deadline)
            raise RuntimeError("boom")
        with storage.new_uow() as uow:
            assert uow.orders.get(order.id) is None
            assert uow.orders.timeline(order.id) == []
            assert uow.deadlines.pending_count() == 0

    def test_an_order_timeline_is_in_order_numbered_from_one(self, storage: Storage) -> None:
        order, placed = placed_order()
        with storage.new_uow() as uow:
            uow.orders.add(order, placed)
            uow.commit()
        opened = orders.on_case_opened(replace(order, version=1), "c1", T0)
        with storage.new_uow() as uow:
            uow.orders.save(orders.fold(replace(order, version=1), opened), opened)
            uow.commit()
        with storage.new_uow() as uow:
            timeline = uow.orders.timeline(order.id)
        everything = [*placed, *opened]
        assert seqs_and_events(timeline) == (list(range(1, len(everything) + 1)), everything)

    def test_a_case_timeline_is_in_order_numbered_from_one(self, storage: Storage) -> None:
        order, _ = placed_order()
        case, applied = applied_case(order)
        with storage.new_uow() as uow:
            uow.cases.add(case, applied)
            uow.commit()
        later = T0 + timedelta(hours=1)
        stored = replace(case, version=1)
        modified, modify_events = acted(
            stored, order, c.Modify(actor=buyer(order), case_id=case.id, amount=5_000), later
        )
        withdrawn, withdraw_events = acted(
            replace(modified, version=2),
            order,
            c.Withdraw(actor=buyer(order), case_id=case.id),
            later + timedelta(minutes=5),
        )
        with storage.new_uow() as uow:
            uow.cases.save(modified, modify_events)
            uow.commit()
        with storage.new_uow() as uow:
            uow.cases.save(withdrawn, withdraw_events)
            uow.commit()
        with storage.new_uow() as uow:
            timeline = uow.cases.timeline(case.id)
        everything = [*applied, *modify_events, *withdraw_events]
        assert seqs_and_events(timeline) == (list(range(1, len(everything) + 1)), everything)

    def test_timelines_of_orders_and_cases_are_kept_apart(self, storage: Storage) -> None:
        order, placed = placed_order("x1")
        case, applied = applied_case(order, case_id="x1")
        with storage.new_uow() as uow:
            uow.orders.add(order, placed)
            uow.cases.add(case, applied)
            uow.commit()
        with storage.new_uow() as uow:
            assert [s.event for s in uow.orders.timeline("x1")] == placed
            assert [s.event for s in uow.cases.timeline("x1")] == applied

    def test_sync_replaces_the_pending_deadline_of_a_subject(self, storage: Storage) -> None:
        first, second = deadline(T0), deadline(T0 + timedelta(days=1), name="seller_reship")
        with storage.new_uow() as uow:
            uow.deadlines.sync("case", "c1", first)
            uow.commit()
        with storage.new_uow() as uow:
            old = uow.deadlines.next_due(FAR_FUTURE)
            uow.deadlines.sync("case", "c1", second)
            uow.commit()
        with storage.new_uow() as uow:
            assert uow.deadlines.pending_count() == 1
            assert uow.deadlines.next_due(first.due_at) is None
            new = uow.deadlines.next_due(FAR_FUTURE)
        assert old is not None and new is not None
        assert (new.subject_type, new.subject_id, new.name, new.due_at) == (
            "case",
            "c1",
            "seller_reship",
            second.due_at,
        )
        assert new.id != old.id

    def test_sync_with_none_cancels_the_pending_deadline(self, storage: Storage) -> None:
        with storage.new_uow() as uow:
            uow.deadlines.sync("case", "c1", deadline(T0))
            uow.commit()
        with storage.new_uow() as uow:
            uow.deadlines.sync("case", "c1", None)
            uow.deadlines.sync("case", "never-had-one", None)
            uow.commit()
        with storage.new_uow() as uow:
            assert uow.deadlines.pending_count() == 0
            assert uow.deadlines.next_due(FAR_FUTURE) is None

    def test_sync_with_the_same_deadline_changes_nothing(self, storage: Storage) -> None:
        with storage.new_uow() as uow:
            uow.deadlines.sync("case", "c1", deadline(T0))
            uow.commit()
        with storage.new_uow() as uow:
            before = uow.deadlines.next_due(FAR_FUTURE)
            uow.deadlines.sync("case", "c1", deadline(T0))
            uow.commit()
        with storage.new_uow() as uow:
            assert uow.deadlines.pending_count() == 1
            assert uow.deadlines.next_due(FAR_FUTURE) == before
        assert before is not None

    def test_sync_keeps_one_pending_deadline_per_subject(self, storage: Storage) -> None:
        x1, x2 = one_bucket("x1", "x2").values()
        with storage.new_uow() as uow:
            uow.deadlines.sync("case", x1, deadline(T0))
            uow.deadlines.sync("order", x1, deadline(T0 + timedelta(hours=1), name="ship_by"))
            uow.deadlines.sync("case", x2, deadline(T0 + timedelta(hours=2)))
            uow.deadlines.sync("case", x1, deadline(T0 + timedelta(hours=3)))
            uow.commit()
        with storage.new_uow() as uow:
            assert uow.deadlines.pending_count() == 3
            uow.deadlines.sync("order", x1, None)
            uow.commit()
        with storage.new_uow() as uow:
            assert uow.deadlines.pending_count() == 2
            due = uow.deadlines.next_due(FAR_FUTURE)
        assert due is not None and (due.subject_type, due.subject_id) == ("case", x2)

    def test_the_backlog_counts_the_due_deadlines_and_names_the_oldest(
        self, storage: Storage
    ) -> None:
        with storage.new_uow() as uow:
            for subject, hours in (("c3", 3), ("c1", 1), ("c2", 2), ("c4", 30)):
                uow.deadlines.sync("case", subject, deadline(T0 + timedelta(hours=hours)))
            uow.commit()
        with storage.new_uow() as uow:
            uow.deadlines.fire("case", "c1", "seller_respond", T0 + timedelta(hours=1), T0)
            uow.commit()
        with storage.new_uow() as uow:
            nothing = uow.deadlines.backlog(T0)
            exactly_due = uow.deadlines.backlog(T0 + timedelta(hours=2))
            later = uow.deadlines.backlog(T0 + timedelta(hours=10))
        assert (nothing.due, nothing.oldest_due_at) == (0, None)
        assert (exactly_due.due, exactly_due.oldest_due_at) == (1, T0 + timedelta(hours=2))
        assert (later.due, later.oldest_due_at) == (2, T0 + timedelta(hours=2))

    def test_next_due_is_the_earliest_deadline(self, storage: Storage) -> None:
        ids = one_bucket("c1", "c2", "c3")
        with storage.new_uow() as uow:
            for subject, hours in (("c3", 3), ("c1", 1), ("c2", 2)):
                uow.deadlines.sync("case", ids[subject], deadline(T0 + timedelta(hours=hours)))
            uow.commit()
        with storage.new_uow() as uow:
            due = uow.deadlines.next_due(FAR_FUTURE)
        assert due is not None
        assert (due.subject_type, due.subject_id, due.name) == (
            "case",
            ids["c1"],
            "seller_respond",
        )
        assert due.due_at == T0 + timedelta(hours=1)
        assert due.due_at.utcoffset() is not None

    def test_next_due_breaks_ties_by_insertion(self, storage: Storage) -> None:
        ids = one_bucket("z", "a", "m")
        with storage.new_uow() as uow:
            for subject in ("z", "a", "m"):
                uow.deadlines.sync("case", ids[subject], deadline(T0))
            uow.commit()
        fired = []
        for _ in range(3):
            with storage.new_uow() as uow:
                due = uow.deadlines.next_due(T0)
                assert due is not None
                uow.deadlines.fire(due.subject_type, due.subject_id, due.name, due.due_at, T0)
                uow.commit()
            fired.append(due.subject_id)
        assert fired == [ids["z"], ids["a"], ids["m"]]

    def test_claim_due_takes_a_batch_in_due_order_and_no_more(self, storage: Storage) -> None:
        ids = one_bucket("c1", "c2", "c3", "c4", "c9")
        with storage.new_uow() as uow:
            for subject, hours in (("c3", 3), ("c1", 1), ("c4", 4), ("c2", 2), ("c9", 9)):
                uow.deadlines.sync("case", ids[subject], deadline(T0 + timedelta(hours=hours)))
            uow.commit()
        with storage.new_uow() as uow:
            three = uow.deadlines.claim_due(T0 + timedelta(hours=5), 3)
            all_due = uow.deadlines.claim_due(T0 + timedelta(hours=5), 10)
            none = uow.deadlines.claim_due(T0, 10)
        assert [d.subject_id for d in three] == [ids[n] for n in ("c1", "c2", "c3")]
        assert [d.subject_id for d in all_due] == [ids[n] for n in ("c1", "c2", "c3", "c4")]
        assert none == []
        assert all(d.due_at.utcoffset() is not None for d in all_due)

    def test_a_claimed_deadline_fired_or_replaced_in_the_same_work_is_no_longer_due(
        self, storage: Storage
    ) -> None:
        ids = one_bucket("c1", "c2", "c3")
        with storage.new_uow() as uow:
            for subject in ("c1", "c2", "c3"):
                uow.deadlines.sync("case", ids[subject], deadline(T0))
            uow.commit()
        with storage.new_uow() as uow:
            c1, c2, c3 = uow.deadlines.claim_due(T0, 3)
            assert uow.deadlines.earliest_scheduled() is None
            uow.deadlines.fire("case", ids["c1"], c1.name, c1.due_at, T0)
            other = deadline(T0 - timedelta(minutes=5), name="other")
            uow.deadlines.sync("case", ids["c2"], other)
            assert not uow.deadlines.still_due(c1)
            assert not uow.deadlines.still_due(c2)
            assert uow.deadlines.still_due(c3)
            # the replacement is due before the batch's own deadlines: the batch must stop
            assert uow.deadlines.earliest_scheduled() == T0 - timedelta(minutes=5)
            uow.deadlines.fire("case", ids["c2"], "other", T0 - timedelta(minutes=5), T0)
            assert uow.deadlines.earliest_scheduled() is None

    def test_a_deadline_due_exactly_now_is_due_and_one_due_later_is_not(
        self, storage: Storage
    ) -> None:
        with storage.new_uow() as uow:
            uow.deadlines.sync("case", "c1", deadline(T0))
            uow.commit()
        with storage.new_uow() as uow:
            assert uow.deadlines.next_due(T0 - timedelta(microseconds=1)) is None
            exactly = uow.deadlines.next_due(T0)
            in_utc = uow.deadlines.next_due(T0.astimezone(UTC))
        assert exactly is not None and exactly.subject_id == "c1"
        assert in_utc == exactly

    def test_firing_a_deadline_twice_is_a_conflict(self, storage: Storage) -> None:
        with storage.new_uow() as uow:
            uow.deadlines.sync("case", "c1", deadline(T0))
            uow.commit()
        with storage.new_uow() as uow:
            uow.deadlines.fire("case", "c1", "seller_respond", T0, T0)
            with pytest.raises(Conflict):
                uow.deadlines.fire("case", "c1", "seller_respond", T0, T0)
            uow.commit()
        with storage.new_uow() as uow:
            with pytest.raises(Conflict):
                uow.deadlines.fire("case", "c1", "seller_respond", T0, T0 + timedelta(hours=1))
            assert uow.deadlines.pending_count() == 0
            assert uow.deadlines.next_due(FAR_FUTURE) is None

    def test_firing_a_deadline_that_was_replaced_is_a_conflict(self, storage: Storage) -> None:
        with storage.new_uow() as uow:
            uow.deadlines.sync("case", "c1", deadline(T0))
            uow.commit()
        with storage.new_uow() as uow:
            uow.deadlines.sync("case", "c1", deadline(T0 + timedelta(days=1)))
            uow.commit()
        with storage.new_uow() as uow:
            with pytest.raises(Conflict):
                uow.deadlines.fire("case", "c1", "seller_respond", T0, T0)
            assert uow.deadlines.pending_count() == 1

    def test_claimed_deadlines_fired_together_are_fired_once_at_commit_and_not_before(
        self, storage: Storage
    ) -> None:
        """A worker's batch: claimed, fired, and (on SQL) marked in one statement. Inside the
        unit of work they are gone at once; leaving without commit keeps them pending."""
        ids = one_bucket("c1", "c2", "c3", "c4")
        with storage.new_uow() as uow:
            for subject, minutes in (("c1", 1), ("c2", 2), ("c3", 3), ("c4", 4)):
                uow.deadlines.sync("case", ids[subject], deadline(T0 + timedelta(minutes=minutes)))
            uow.commit()
        later = T0 + timedelta(hours=1)
        with storage.new_uow() as uow:
            batch = uow.deadlines.claim_due(later, 3)
            for due in batch:
                uow.deadlines.fire(due.subject_type, due.subject_id, due.name, due.due_at, later)
            assert [d.subject_id for d in uow.deadlines.claim_due(later, 10)] == [ids["c4"]]
            assert uow.deadlines.pending_count() == 1
            # not committed: rolled back
        with storage.new_uow() as uow:
            assert uow.deadlines.pending_count() == 4
            batch = uow.deadlines.claim_due(later, 3)
            for due in batch:
                uow.deadlines.fire(due.subject_type, due.subject_id, due.name, due.due_at, later)
            with pytest.raises(Conflict):  # the same one again, in the same unit of work
                uow.deadlines.fire("case", ids["c2"], batch[1].name, batch[1].due_at, later)
            uow.commit()
        with storage.new_uow() as uow:
            assert [d.subject_id for d in uow.deadlines.claim_due(later, 10)] == [ids["c4"]]
            with pytest.raises(Conflict):  # and again in the next one
                uow.deadlines.fire("case", ids["c1"], batch[0].name, batch[0].due_at, later)

    def test_a_claimed_deadline_fired_and_followed_by_the_next_commits_both(
        self, storage: Storage
    ) -> None:
        """Firing a case's deadline starts its next one in the same unit of work: the fired
        row must be marked before the new one is written (one pending per subject)."""
        with storage.new_uow() as uow:
            uow.deadlines.sync("case", "c1", deadline(T0))
            uow.commit()
        with storage.new_uow() as uow:
            (due,) = uow.deadlines.claim_due(T0, 5)
            uow.deadlines.fire("case", "c1", due.name, due.due_at, T0)
            uow.deadlines.sync("case", "c1", deadline(T0 + timedelta(days=1), name="buyer_ship"))
            uow.commit()
        with storage.new_uow() as uow:
            assert uow.deadlines.pending_count() == 1
            nxt = uow.deadlines.next_due(FAR_FUTURE)
            assert nxt is not None and nxt.name == "buyer_ship"

    def test_a_claimed_deadline_replaced_before_it_fires_is_a_conflict(
        self, storage: Storage
    ) -> None:
        with storage.new_uow() as uow:
            uow.deadlines.sync("case", "c1", deadline(T0))
            uow.commit()
        with storage.new_uow() as uow:
            (due,) = uow.deadlines.claim_due(T0, 5)
            uow.deadlines.sync("case", "c1", deadline(T0 + timedelta(days=1)))
            with pytest.raises(Conflict):
                uow.deadlines.fire("case", "c1", due.name, due.due_at, T0)

    def test_cases_can_be_listed_by_shop_buyer_and_status(self, storage: Storage) -> None:
        parties = {"c1": ("s1", "b1"), "c2": ("s1", "b2"), "c3": ("s2", "b1"), "c4": ("s2", "b2")}
        with storage.new_uow() as uow:
            for i, (case_id, (shop, who)) in enumerate(parties.items()):
                order, _ = placed_order(f"o{case_id}", shop=shop, who=who)
                case, events = applied_case(order, case_id, at=T0 + timedelta(minutes=i))
                uow.cases.add(case, events)
            uow.commit()
        with storage.new_uow() as uow:
            c2 = uow.cases.get("c2")
            assert c2 is not None
            withdraw = c.Withdraw(actor=Actor(role=Role.BUYER, id="b2"), case_id="c2")
            order, _ = placed_order("oc2", shop="s1", who="b2")
            closed, events = acted(c2, order, withdraw, T0 + timedelta(hours=1))
            uow.cases.save(closed, events)
            uow.commit()

        def ids(**filters: Any) -> set[str]:
            with storage.new_uow() as uow:
                return {case.id for case in uow.cases.list(**filters)}

        assert ids() == {"c1", "c2", "c3", "c4"}
        assert ids(shop="s1") == {"c1", "c2"}
        assert ids(buyer="b1") == {"c1", "c3"}
        assert ids(status=CaseStatus.AWAITING_SELLER) == {"c1", "c3", "c4"}
        assert ids(status=CaseStatus.CLOSED) == {"c2"}
        assert ids(shop="s2", buyer="b2") == {"c4"}
        assert ids(shop="s1", status=CaseStatus.CLOSED) == {"c2"}
        assert ids(shop="s3") == set()
        with storage.new_uow() as uow:
            assert len(uow.cases.list(limit=2)) == 2
            assert uow.cases.list(status=CaseStatus.CLOSED) == [replace(closed, version=2)]

    def test_complaints_are_listed_by_buyer_in_filing_order_after_a_cursor(
        self, storage: Storage
    ) -> None:
        from shouhou.domain import complaints

        with storage.new_uow() as uow:
            for i in range(4):  # b1 files on o0 and o2, b2 on o1 and o3, a minute apart
                order, _ = placed_order(f"o{i}", who=f"b{1 + i % 2}")
                cmd = c.FileComplaint(
                    actor=buyer(order),
                    complaint_id=f"k{i}",
                    order_id=order.id,
                    type="breach_of_promise",
                    subtype="promise_unfulfilled",
                )
                at = T0 + timedelta(minutes=i)
                events = complaints.file(
                    cmd, order=order, cases=[], existing=None, rules=RULES, now=at
                )
                uow.complaints.add(complaints.fold(None, events), events)
            uow.commit()
        with storage.new_uow() as uow:
            everyone = uow.complaints.list()
            b1 = uow.complaints.list(buyer="b1")
            after = uow.complaints.list(after=(everyone[1].filed_at, everyone[1].id), limit=1)
        assert [k.id for k in everyone] == ["k0", "k1", "k2", "k3"]
        assert [k.id for k in b1] == ["k0", "k2"]
        assert [k.id for k in after] == ["k2"]

    def test_a_complaint_is_saved_on_its_version_with_its_timeline_one_per_order(
        self, storage: Storage
    ) -> None:
        from shouhou.domain import complaints

        order, _ = placed_order("o1")

        def filing(complaint_id: str) -> tuple[Complaint, list[Event]]:
            cmd = c.FileComplaint(
                actor=buyer(order),
                complaint_id=complaint_id,
                order_id=order.id,
                type="breach_of_promise",
                subtype="promise_unfulfilled",
            )
            events = complaints.file(cmd, order=order, cases=[], existing=None, rules=RULES, now=T0)
            return complaints.fold(None, events), events

        filed, filed_events = filing("k1")
        with storage.new_uow() as uow:
            uow.complaints.add(filed, filed_events)
            uow.commit()
        with storage.new_uow() as uow, pytest.raises(Conflict):
            uow.complaints.add(*filing("k2"))  # a second complaint on the order
        with storage.new_uow() as uow:
            loaded = uow.complaints.get("k1")
            assert loaded is not None and loaded == uow.complaints.for_order(order.id)
            withdraw = c.WithdrawComplaint(actor=buyer(order), complaint_id="k1")
            withdrawn = complaints.withdraw(loaded, withdraw, T0 + timedelta(hours=1))
            uow.complaints.save(complaints.fold(loaded, withdrawn), withdrawn)
            uow.commit()
        with storage.new_uow() as uow, pytest.raises(Conflict):  # on a stale version
            uow.complaints.save(complaints.fold(loaded, withdrawn), withdrawn)
        with storage.new_uow() as uow:
            stored = uow.complaints.get("k1")
            timeline = uow.complaints.timeline("k1")
            assert uow.complaints.get("k2") is None and uow.complaints.timeline("k2") == []
        assert stored == replace(complaints.fold(loaded, withdrawn), version=2)
        assert stored.status == ComplaintStatus.WITHDRAWN
        assert [s.seq for s in timeline] == list(range(1, len(timeline) + 1))
        assert [s.event for s in timeline] == [*filed_events, *withdrawn]


# --- firing batches in due order -----------------------------------------------------------


def order_of(case_id: str) -> str:
    """The order of a case of :func:`_engine_with_cases`: all in one bucket."""
    return one_bucket(f"o-{case_id}")[f"o-{case_id}"]


def _engine_with_cases(storage: Storage, applied: dict[str, tuple[str, timedelta]]) -> Any:
    """An engine over ``storage`` with one delivered order per case, each case applied for
    (kind, that long after T0)."""
    from shouhou.bootstrap import Engine
    from shouhou.clock import VirtualClock

    clock = VirtualClock(T0)
    engine = Engine(storage.new_uow, clock=clock)
    for case_id, (kind, after) in sorted(applied.items(), key=lambda item: item[1][1]):
        clock.set(T0 + after)
        engine.place_order(
            Order(
                id=order_of(case_id),
                shop="s1",
                buyer="b1",
                total=1000,
                created_at=T0 - timedelta(days=3),
                paid_at=T0 - timedelta(days=3),
                shipped_at=T0 - timedelta(days=2),
                delivered_at=T0 - timedelta(days=1),
            )
        )
        engine.execute(
            engine.build(
                "apply",
                actor="buyer:b1",
                target={"order_id": order_of(case_id), "case_id": case_id},
                params={"kind": kind, "reason": "other", "amount": 1000},
            )
        )
    return engine


class TestFiringInDueOrder:
    """A batch is claimed at once, but a deadline that firing starts and that is already due
    must still fire in its place (SPEC §2: in due order), and before ``run_due`` returns."""

    def test_a_deadline_started_by_the_batch_fires_before_a_later_claimed_one(
        self, storage: Storage
    ) -> None:
        # c1's seller_respond (day 5) agrees, starting buyer_ship_return (day 12); c2's
        # seller_respond is due on day 8 and c3's on day 15: all four are due on day 30.
        engine = _engine_with_cases(
            storage,
            {
                "c1": ("return_refund", timedelta(0)),
                "c2": ("refund_only", timedelta(days=3)),
                "c3": ("refund_only", timedelta(days=10)),
            },
        )
        fired = engine.run_due(T0 + timedelta(days=30))
        assert [f.due_at for f in fired] == sorted(f.due_at for f in fired)
        assert [
            (f.subject_id, f.name, f.due_at - T0) for f in fired if f.subject_type == "case"
        ] == [
            ("c1", "seller_respond", timedelta(days=5)),
            ("c2", "seller_respond", timedelta(days=8)),
            ("c1", "buyer_ship_return", timedelta(days=12)),
            ("c3", "seller_respond", timedelta(days=15)),
        ]
        assert [engine.case(cid).status.value for cid in ("c1", "c2", "c3")] == [
            "closed",
            "refunded",
            "refunded",
        ]

    def test_an_order_action_comes_after_its_open_cases_due_deadline(
        self, storage: Storage
    ) -> None:
        """The seller let the refund's 5 days pass and no worker has run yet: the refund is
        due first and closes the trade, so confirming receipt afterwards is refused."""
        from shouhou.errors import NotAllowed

        engine = _engine_with_cases(storage, {"c1": ("refund_only", timedelta(0))})
        engine.clock.set(T0 + timedelta(days=6))

        with pytest.raises(NotAllowed, match="closed"):
            engine.execute(
                engine.build(
                    "confirm_receipt", actor="platform", target={"order_id": order_of("c1")}
                )
            )

    def test_run_due_does_not_return_while_a_deadline_it_started_is_due(
        self, storage: Storage
    ) -> None:
        engine = _engine_with_cases(storage, {"c1": ("return_refund", timedelta(0))})
        fired = engine.run_due(T0 + timedelta(days=30))
        assert [f.name for f in fired if f.subject_type == "case"] == [
            "seller_respond",
            "buyer_ship_return",
        ]
        assert engine.run_due(T0 + timedelta(days=30)) == []


class TestADeadlineThatCannotFire:
    """One bad row must not stop the deadlines behind it (SPEC §2: every deadline fires)."""

    def test_it_is_set_aside_as_failed_and_the_others_fire(self, storage: Storage) -> None:
        engine = _engine_with_cases(
            storage,
            {"c1": ("refund_only", timedelta(0)), "c2": ("refund_only", timedelta(days=1))},
        )
        with storage.new_uow() as uow:  # a deadline whose case does not exist, due first
            uow.deadlines.sync("case", "ghost", deadline(T0 + timedelta(days=1)))
            uow.commit()
        heard: list[CannotFire] = []
        now = T0 + timedelta(days=30)

        fired = engine.run_due(now, on_set_aside=heard.append)
        # (PostgreSQL claims a deadline without its subject only when nothing else is due)
        fired += engine.run_due(now, on_set_aside=heard.append)

        assert sorted(f.subject_id for f in fired if f.subject_type == "case") == ["c1", "c2"]
        assert [(h.due.subject_id, type(h.error)) for h in heard] == [("ghost", NotFound)]
        assert engine.run_due(now, on_set_aside=heard.append) == []  # passed over from now on
        assert len(heard) == 1
        with storage.new_uow() as uow:
            assert uow.deadlines.claim_due(now, 10) == []
            assert not uow.deadlines.set_aside(heard[0].due, "again")  # no longer pending

    def test_an_error_of_the_machine_fails_the_pass_and_sets_nothing_aside(
        self, storage: Storage, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        engine = _engine_with_cases(storage, {"c1": ("refund_only", timedelta(0))})

        def lost(*args: object) -> None:
            raise OSError("the database went away")

        monkeypatch.setattr(deadlines, "_fire", lost)
        heard: list[CannotFire] = []
        with pytest.raises(OSError):
            engine.run_due(T0 + timedelta(days=30), on_set_aside=heard.append)
        monkeypatch.undo()

        assert heard == []
        assert [f.subject_id for f in engine.run_due(T0 + timedelta(days=30))] == ["c1"]


# --- outbox rows keep the stored event; readers get the event's view ----------------------


@pytest.fixture(params=["sqlite", "postgresql", "partitioned"])
def sql_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "sqlite":
        yield from _sql(f"sqlite:///{tmp_path / 'outbox.db'}", "sqlite")
    else:
        yield from _postgres(POSTGRES_URL, PARTITIONS if request.param == "partitioned" else 0)


def test_webhook_payloads_read_back_equal_the_views_of_the_events_written(
    sql_storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outbox row stores its event as the timeline does and is rendered when read; what a
    subscriber gets must be exactly the payload the change produced, for every kind of event
    a return, a refund and a timeout write."""
    from shouhou.db import outbox as sql_outbox
    from shouhou.db.webhooks import SqlWebhooks
    from shouhou.services import outbox as outbox_service

    written: list[dict[str, Any]] = []
    add = sql_outbox.SqlOutbox.add

    def record(self: Any, messages: Sequence[Any]) -> None:
        written.extend(outbox_service.payload(m) for m in messages)
        add(self, messages)

    monkeypatch.setattr(sql_outbox.SqlOutbox, "add", record)
    engine = _engine_with_cases(
        sql_storage,
        {"c1": ("return_refund", timedelta(0)), "c2": ("refund_only", timedelta(days=1))},
    )
    engine.execute(engine.build("agree", actor="seller:s1", target={"case_id": "c1"}))
    engine.execute(
        engine.build(
            "ship_return",
            actor="buyer:b1",
            target={"case_id": "c1"},
            params={"carrier": "SF", "waybill": "SF1", "method": "express"},
        )
    )
    engine.execute(engine.build("confirm_receipt", actor="seller:s1", target={"case_id": "c1"}))
    engine.run_due(T0 + timedelta(days=30))  # c2's seller never answers: refunded
    with sql_storage.new_uow() as uow:
        assert isinstance(uow, SqlUnitOfWork) and uow.conn is not None
        webhooks = SqlWebhooks(uow.conn, uow.write_through, uow.layout.buckets)
        webhooks.sequence(1000)
        read = [e.data for e in webhooks.events(after={}, limit=1000)]
    assert len(read) == len(written) > 20
    assert read == written
    kinds = {p["event"]["type"] for p in read if "event" in p}
    assert {"Applied", "Agreed", "ReturnShipped", "Refunded", "DeadlineSet"} <= kinds
    assert {"DeadlineFired", "StatusChanged", "OrderPlaced", "CaseEndedOnOrder"} <= kinds


# --- the batch of claimed deadlines is marked in one statement whose row count is checked --


def test_marking_a_claimed_batch_refuses_a_row_changed_behind_the_claim(
    sql_storage: Storage,
) -> None:
    """A claimed row is locked, so the check cannot lose a race in service; changed on the
    claim's own connection (what a bug would do), the commit must fail, not mark it."""
    ids = one_bucket("c1", "c2")  # one claim: one bucket's (0021)
    with sql_storage.new_uow() as uow:
        for subject in ("c1", "c2"):
            uow.deadlines.sync("case", ids[subject], deadline(T0))
        uow.commit()
    with sql_storage.new_uow() as uow:
        assert isinstance(uow, SqlUnitOfWork) and uow.conn is not None
        claimed = uow.deadlines.claim_due(T0, 5)
        assert len(claimed) == 2
        for due in claimed:
            uow.deadlines.fire(due.subject_type, due.subject_id, due.name, due.due_at, T0)
        uow.conn.execute(
            sa.text("UPDATE deadlines SET status = 'cancelled' WHERE subject_id = :id"),
            {"id": ids["c2"]},
        )
        with pytest.raises(Conflict, match="1 claimed deadlines"):
            uow.commit()
    with sql_storage.new_uow() as uow:
        assert uow.deadlines.pending_count() == 2


# --- retention: what nothing reads any more is forgotten, oldest first, in chunks ---------


def test_retention_forgets_old_handled_deadlines_and_delivered_events_only(
    sql_storage: Storage,
) -> None:
    from shouhou.db.api_uow import SqlApiUnitOfWork
    from shouhou.services.ports import Attempt, Endpoint, OutboxMessage

    probe = sql_storage.new_uow()
    assert isinstance(probe, SqlUnitOfWork)
    sql = probe.engine
    old, recent = T0, T0 + timedelta(days=40)
    cutoff = T0 + timedelta(days=30)

    # one bucket: a worker announces one bucket's approaching deadlines at a time (0021)
    d = one_bucket("fired_old", "fired_new", "cancelled_old", "pending_old")
    with SqlApiUnitOfWork(sql) as uow:
        for subject, due in (("fired_old", old), ("fired_new", recent), ("cancelled_old", old)):
            uow.deadlines.sync("case", d[subject], deadline(due))
        uow.deadlines.sync("case", d["pending_old"], deadline(old - timedelta(days=1)))
        uow.commit()
    with SqlApiUnitOfWork(sql) as uow:
        soon = uow.webhooks.approaching(old - timedelta(days=2), old, 10)
        (notice,) = [a for a in soon if a.subject_id == d["fired_old"]]
        uow.webhooks.announced(notice.deadline_id, old - timedelta(days=1))
        uow.deadlines.fire("case", d["fired_old"], "seller_respond", old, old)
        uow.deadlines.fire("case", d["fired_new"], "seller_respond", recent, recent)
        uow.deadlines.sync("case", d["cancelled_old"], None)
        uow.webhooks.add_endpoint(
            Endpoint(
                id="ep1",
                url="http://127.0.0.1:9/",
                secret="s",
                events=("order.placed",),
                description="",
                created_by="platform",
                created_at=old,
            )
        )
        names = one_bucket(*(f"o{i}" for i in range(10)))  # the newest event: its bucket's
        kinds = ["placed", "placed", "placed", "shipped", "placed", "placed", "shipped", "placed"]
        kinds += ["shipped"]
        messages = [
            OutboxMessage(
                type=f"order.{kind}",
                subject_type="order",
                subject_id=names[f"o{i}"],
                occurred_at=old,
                data={},
            )
            for i, kind in enumerate(kinds)
        ]
        uow.outbox.add(messages[:7])
        assert uow.webhooks.dispatch(old, 10) == 7  # the placed ones get a delivery each
        for delivery_id, status in zip(
            [d.id for d in uow.webhooks.deliveries(limit=10)],
            ["delivered", "failed", "pending", "failed", "delivered"],  # o0, o1, o2, o4, o5
            strict=True,
        ):
            attempt = Attempt(number=1, at=old, status_code=200, error=None, duration_ms=1)
            uow.webhooks.record(delivery_id, attempt, status=status, next_attempt_at=old)
        (o4,) = [e for e in uow.webhooks.events(after={}, limit=10) if e.subject_id == names["o4"]]
        (replayed,) = uow.webhooks.enqueue(o4.id, ["ep1"], old)  # o4 failed, then got there
        attempt = Attempt(number=1, at=old, status_code=200, error=None, duration_ms=1)
        uow.webhooks.record(replayed, attempt, status="delivered", next_attempt_at=old)
        uow.outbox.add(messages[7:])  # o7: the newest delivery; o8: the newest event
        assert uow.webhooks.dispatch(old, 10) == 2
        (newest,) = uow.webhooks.deliveries(status="pending", after=replayed, limit=10)
        uow.webhooks.record(newest.id, attempt, status="delivered", next_attempt_at=old)
        uow.commit()

    with SqlApiUnitOfWork(sql) as uow:  # in chunks of one: the oldest first
        assert uow.retention.forget_deadlines(cutoff, 1) == 1
        assert uow.retention.forget_events(cutoff, 1) == 1
        uow.commit()
    with SqlApiUnitOfWork(sql) as uow:
        assert uow.retention.forget_deadlines(cutoff, 10) == 1
        assert uow.retention.forget_events(cutoff, 10) == 4  # o3, o4, o5, o6
        assert uow.retention.forget_deadlines(cutoff, 10) == 0
        assert uow.retention.forget_events(cutoff, 10) == 0
        uow.commit()
    with SqlApiUnitOfWork(sql) as uow:
        assert uow.conn is not None
        rows = uow.conn.execute(
            sa.text("SELECT subject_id, status FROM deadlines ORDER BY subject_id")
        ).all()
        notices = uow.conn.execute(sa.text("SELECT count(*) FROM deadline_notices")).scalar()
        left = [(e.subject_id, e.type) for e in uow.webhooks.events(after={}, limit=10)]
        deliveries = sorted(d.status for d in uow.webhooks.deliveries(limit=10))
    assert [tuple(r) for r in rows] == [(d["fired_new"], "fired"), (d["pending_old"], "pending")]
    assert notices == 0  # the old fired deadline's notice went with it
    # gone: the delivered ones, those nobody subscribed to, the one a replay got through;
    # kept: a failed and a pending delivery's events, and the newest event (SQLite would
    # give its id to the next one)
    assert [subject for subject, _ in left] == [names[n] for n in ("o1", "o2", "o7", "o8")]
    assert deliveries == ["delivered", "failed", "pending"]
    with SqlApiUnitOfWork(sql) as uow:  # ids and feed positions are never handed out twice
        seen = uow.webhooks.events(after={}, limit=10)
        uow.outbox.add([replace(messages[0], subject_id=names["o9"])])
        uow.webhooks.sequence(10)
        uow.commit()
    with SqlApiUnitOfWork(sql) as uow:
        (new,) = uow.webhooks.events(after={e.bucket: e.position or 0 for e in seen}, limit=10)
        buckets = uow.layout.buckets
    assert new.subject_id == names["o9"]
    assert new.id > max(e.id for e in seen) and new.id % buckets == new.bucket


@pytest.fixture(params=["postgresql", "partitioned"])
def postgres_storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    yield from _postgres(POSTGRES_URL, PARTITIONS if request.param == "partitioned" else 0)


def test_the_event_feed_never_leaves_a_late_commit_behind_its_cursor(
    postgres_storage: Storage,
) -> None:
    """On PostgreSQL an event's id is taken at insert: a transaction holding a lower id can
    commit after a reader paged past a higher one. The feed pages by the position events get
    once committed, so the late one comes after the cursor."""
    from shouhou.db.api_uow import SqlApiUnitOfWork
    from shouhou.services.ports import OutboxMessage

    probe = postgres_storage.new_uow()
    assert isinstance(probe, SqlUnitOfWork)
    sql = probe.engine

    def placed(subject: str) -> list[OutboxMessage]:
        return [
            OutboxMessage(
                type="order.placed",
                subject_type="order",
                subject_id=subject,
                occurred_at=T0,
                data={},
            )
        ]

    def page(after: dict[int, int]) -> list[Any]:
        with SqlApiUnitOfWork(sql) as uow:
            uow.webhooks.sequence(100)
            uow.commit()
        with SqlApiUnitOfWork(sql, readonly=True) as uow:
            return uow.webhooks.events(after=after, limit=100)

    ids = one_bucket("slow", "fast")  # a bucket's feed: positions in the order seen
    slow = SqlApiUnitOfWork(sql).__enter__()  # an API request still running
    slow.outbox.add(placed(ids["slow"]))
    slow.write_through()  # written now (held rows go at commit otherwise): its id is taken
    with SqlApiUnitOfWork(sql) as fast:
        fast.outbox.add(placed(ids["fast"]))
        fast.commit()
    first = page({})
    slow.commit()
    slow.__exit__(None, None, None)
    second = page({first[-1].bucket: first[-1].position or 0})

    assert [e.subject_id for e in first] == [ids["fast"]]
    assert [e.subject_id for e in second] == [ids["slow"]]
    assert second[0].id < first[0].id  # the slow one took the lower id


def test_givers_of_feed_positions_take_turns(postgres_storage: Storage) -> None:
    """Two transactions giving positions in one bucket at once: the second passes over the
    bucket the first holds; after the first commits, the next giver's positions come after
    the first's and none is given twice."""
    import threading

    from shouhou.db.api_uow import SqlApiUnitOfWork
    from shouhou.services.ports import OutboxMessage

    probe = postgres_storage.new_uow()
    assert isinstance(probe, SqlUnitOfWork)
    sql = probe.engine

    def add(subject: str) -> None:
        with SqlApiUnitOfWork(sql) as uow:
            uow.outbox.add(
                [
                    OutboxMessage(
                        type="order.placed",
                        subject_type="order",
                        subject_id=subject,
                        occurred_at=T0,
                        data={},
                    )
                ]
            )
            uow.commit()

    ids = one_bucket("first", "second")  # one bucket's givers take turns
    add(ids["first"])
    first = SqlApiUnitOfWork(sql).__enter__()
    assert first.webhooks.sequence(10) == 1  # holds its bucket's feed row until it commits
    add(ids["second"])
    given: list[int] = []
    other = threading.Thread(target=lambda: given.append(_sequence_once(sql)), daemon=True)
    other.start()
    other.join(timeout=10)
    passed_over = not other.is_alive() and given == [0]
    first.commit()
    first.__exit__(None, None, None)
    given.append(_sequence_once(sql))
    with SqlApiUnitOfWork(sql, readonly=True) as uow:
        feed = [(e.subject_id, e.position) for e in uow.webhooks.events(after={}, limit=10)]

    assert passed_over, "the second giver did not pass over the bucket the first holds"
    assert given == [0, 1]
    assert feed == [(ids["first"], 1), (ids["second"], 2)]


def test_givers_of_positions_in_other_buckets_do_not_wait(postgres_storage: Storage) -> None:
    """Each bucket has its own feed: a giver holding one bucket's row holds no other."""
    import threading

    from shouhou.db.api_uow import SqlApiUnitOfWork
    from shouhou.services.ports import OutboxMessage

    probe = postgres_storage.new_uow()
    assert isinstance(probe, SqlUnitOfWork)
    sql = probe.engine
    here, there = in_bucket("here-", 3), in_bucket("there-", 4)

    def add(subject: str) -> None:
        with SqlApiUnitOfWork(sql) as uow:
            message = OutboxMessage(
                type="order.placed",
                subject_type="order",
                subject_id=subject,
                occurred_at=T0,
                data={},
            )
            uow.outbox.add([message])
            uow.commit()

    add(here)
    first = SqlApiUnitOfWork(sql).__enter__()
    assert first.webhooks.sequence(10) == 1
    add(there)
    given: list[int] = []
    other = threading.Thread(target=lambda: given.append(_sequence_once(sql)), daemon=True)
    other.start()
    other.join(timeout=10)
    done = not other.is_alive()
    first.commit()
    first.__exit__(None, None, None)
    with SqlApiUnitOfWork(sql, readonly=True) as uow:
        feed = {
            e.subject_id: (e.bucket, e.position) for e in uow.webhooks.events(after={}, limit=10)
        }

    assert done and given == [1]
    assert feed == {here: (3, 1), there: (4, 1)}


def _sequence_once(sql: Any) -> int:
    from shouhou.db.api_uow import SqlApiUnitOfWork

    with SqlApiUnitOfWork(sql) as uow:
        count = uow.webhooks.sequence(10)
        uow.commit()
    return count


def test_queries_in_the_unit_of_work_that_fired_a_claimed_deadline_see_it_fired(
    sql_storage: Storage,
) -> None:
    """The fired marks of a claimed batch wait for the commit; a query on the deadlines table
    in the same unit of work must not see the deadline pending meanwhile."""
    from shouhou.db.api_uow import SqlApiUnitOfWork
    from shouhou.services.ports import CaseFilter

    probe = sql_storage.new_uow()
    assert isinstance(probe, SqlUnitOfWork)
    sql = probe.engine
    with SqlApiUnitOfWork(sql) as uow:
        order, placed = placed_order("o1")
        uow.orders.add(order, placed)  # on PostgreSQL the claim locks the case's order too
        case, events = applied_case(order, "c1")
        uow.cases.add(case, events)
        uow.deadlines.sync("case", "c1", deadline(T0))
        uow.commit()

    def after_firing(query: Callable[[SqlApiUnitOfWork], Any]) -> Any:
        """``query`` run after claiming and firing c1's deadline; left without commit."""
        with SqlApiUnitOfWork(sql) as uow:
            (due,) = uow.deadlines.claim_due(T0, 5)
            uow.deadlines.fire("case", "c1", due.name, due.due_at, T0)
            return query(uow)

    assert after_firing(lambda uow: uow.queries.cases(CaseFilter(sort="due_at"), 10)) == []
    soon = (T0 - timedelta(days=1), T0, 10)
    assert after_firing(lambda uow: uow.webhooks.approaching(*soon)) == []
    assert after_firing(lambda uow: uow.retention.forget_deadlines(T0 + timedelta(days=1), 9)) == 1
