"""What PostgreSQL adds to the storage contract: the migrations build the declared schema
there too, the order row is the lock of its deadlines, and lost races become ``conflict``.

PostgreSQL runs at ``$SHOUHOU_TEST_POSTGRES_URL`` (default ``postgresql://127.0.0.1:5432/test``),
each test in a schema of its own; skipped where no server runs, a failure in CI.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pgscratch import scratch_schema
from shouhou.db import engine as db_engine
from shouhou.db import tables
from shouhou.db.tables import metadata
from shouhou.db.uow import SqlUnitOfWork
from shouhou.domain.buckets import DEFAULT_BUCKETS
from shouhou.domain.model import Deadline, Order
from shouhou.errors import Conflict

T0 = datetime(2024, 3, 1, 10, tzinfo=UTC)


#: The partitions of the partitioned variant (0021): every bucketed table is ``PARTITION BY
#: HASH (bucket)``.
PARTITIONS = 8


def upgrade(sql: sa.Engine) -> None:
    """Migrate ``sql`` as its fixture says: plain or partitioned."""
    db_engine.upgrade(sql, partitions=sql.__dict__["test_partitions"])


@pytest.fixture(params=["postgresql", "partitioned"])
def sql(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """An engine whose connections work in a fresh schema, dropped afterwards; on the
    ``partitioned`` variant, :func:`upgrade` makes partitioned tables."""
    with scratch_schema("contract_pg") as url:
        engine = db_engine.create(url)
        engine.__dict__["test_partitions"] = PARTITIONS if request.param == "partitioned" else 0
        try:
            yield engine
        finally:
            engine.dispose()


PARTITION = re.compile(r"^(?P<table>\w+)_p\d+$")


def _not_a_partition(obj: Any, name: str | None, kind: str, reflected: bool, _: Any) -> bool:
    """The partitions of a partitioned table are its storage, not tables of the schema."""
    match = PARTITION.match(name or "") if kind == "table" else None
    return not (reflected and match is not None and match["table"] in tables.BUCKETED)


def schema_diff(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": _not_a_partition}
        )
        return list(compare_metadata(context, metadata))


def partitioning(engine: sa.Engine) -> dict[str, tuple[str, int]]:
    """Each partitioned table: its partition key and how many partitions it has."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.relname, pg_get_partkeydef(c.oid),"
                " (SELECT count(*) FROM pg_inherits AS i WHERE i.inhparent = c.oid)"
                " FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
                " WHERE c.relkind = 'p' AND n.nspname = current_schema()"
            )
        )
        return {name: (key, int(count)) for name, key, count in rows}


def partial_indexes(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT indexname, indexdef FROM pg_indexes"
                " WHERE schemaname = current_schema() AND indexdef LIKE '% WHERE %'"
            )
        )
        return {name: definition.split(" WHERE ", 1)[1] for name, definition in rows}


def test_the_migrations_build_the_declared_schema_on_postgresql(sql: sa.Engine) -> None:
    upgrade(sql)
    partitions = sql.__dict__["test_partitions"]
    assert schema_diff(sql) == []
    declared = {"uq_deadlines_one_pending", "ix_outbox_unpositioned"}
    assert {k: v for k, v in partial_indexes(sql).items() if k in declared} == {
        "uq_deadlines_one_pending": "((status)::text = 'pending'::text)",
        "ix_outbox_unpositioned": '("position" IS NULL)',
    }
    wanted = {name: ("HASH (bucket)", partitions) for name in tables.BUCKETED}
    assert partitioning(sql) == (wanted if partitions else {})
    assert db_engine.layout(sql) == db_engine.Layout(DEFAULT_BUCKETS, partitions)

    command.downgrade(db_engine.alembic_config(sql), "base")
    upgrade(sql)
    assert schema_diff(sql) == []
    assert partitioning(sql) == (wanted if partitions else {})


def test_a_partitioned_table_refuses_a_key_without_the_bucket(sql: sa.Engine) -> None:
    """What the partitioned variant proves: PostgreSQL itself refuses a primary or unique
    key that leaves the bucket out, as Citus does for the distribution column."""
    upgrade(sql)
    if not sql.__dict__["test_partitions"]:
        pytest.skip("plain tables take any unique key")
    for table, column in (("events", "id"), ("outbox", "position"), ("cases", "id")):
        with sql.begin() as conn, pytest.raises(sa.exc.DBAPIError, match="partition"):
            conn.execute(sa.text(f"CREATE UNIQUE INDEX no_bucket ON {table} ({column})"))


def _order(order_id: str) -> Order:
    return Order(id=order_id, shop="s1", buyer="b1", total=100, created_at=T0)


def _deadline(due_at: datetime) -> Deadline:
    return Deadline(
        name="ship_by",
        due_at=due_at,
        on_expiry="mark_late",
        rule_id="tmall-standard/ship_by",
        policy="tmall-standard@1",
        started_at=due_at - timedelta(hours=72),
        duration=timedelta(hours=72),
    )


def test_a_claim_passes_over_a_deadline_whose_order_a_writer_holds(sql: sa.Engine) -> None:
    upgrade(sql)
    with SqlUnitOfWork(sql) as uow:
        for n, order_id in enumerate(("o1", "o2")):
            uow.orders.add(_order(order_id), [])
            uow.deadlines.sync("order", order_id, _deadline(T0 + timedelta(minutes=n)))
        uow.commit()

    with SqlUnitOfWork(sql) as writer:
        assert writer.orders.get("o1") is not None  # locks o1 until the writer ends
        with SqlUnitOfWork(sql) as worker:
            due = worker.deadlines.next_due(T0 + timedelta(hours=1))
        assert due is not None and due.subject_id == "o2"
    with SqlUnitOfWork(sql) as worker:
        due = worker.deadlines.next_due(T0 + timedelta(hours=1))
    assert due is not None and due.subject_id == "o1"


def test_a_read_only_unit_of_work_takes_no_lock(sql: sa.Engine) -> None:
    upgrade(sql)
    with SqlUnitOfWork(sql) as uow:
        uow.orders.add(_order("o1"), [])
        uow.deadlines.sync("order", "o1", _deadline(T0))
        uow.commit()
    with SqlUnitOfWork(sql, readonly=True) as reader:
        assert reader.orders.get("o1") is not None
        with SqlUnitOfWork(sql) as worker:
            assert worker.deadlines.next_due(T0) is not None


def test_adding_the_same_order_twice_at_once_is_a_conflict(sql: sa.Engine) -> None:
    upgrade(sql)
    first, second = SqlUnitOfWork(sql), SqlUnitOfWork(sql)
    with first, second:
        first.orders.add(_order("o1"), [])
        first.commit()
        with pytest.raises(Conflict):
            second.orders.add(_order("o1"), [])


def test_waiting_too_long_for_a_lock_is_a_conflict(sql: sa.Engine) -> None:
    upgrade(sql)
    with SqlUnitOfWork(sql) as uow:
        uow.orders.add(_order("o1"), [])
        uow.commit()
    with SqlUnitOfWork(sql) as holder, sql.connect() as other:
        assert holder.orders.get("o1") is not None
        other.execute(sa.text("SET lock_timeout = '50ms'"))
        with pytest.raises(Conflict):
            other.execute(sa.text("SELECT 1 FROM orders WHERE id = 'o1' FOR UPDATE"))


def test_processes_migrating_at_once_take_turns(sql: sa.Engine) -> None:
    """Without the migration lock, four concurrent upgrades block one another."""
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            upgrade(sql)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert schema_diff(sql) == []
