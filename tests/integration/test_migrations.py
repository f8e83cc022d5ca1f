"""The Alembic migrations build exactly the schema that ``shouhou.db.tables`` declares."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db import engine as db_engine
from shouhou.db import serial
from shouhou.db.tables import metadata, orders
from shouhou.domain import lines
from shouhou.domain.model import Item, Order, OrderStatus


@pytest.fixture
def sql(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = db_engine.create(f"sqlite:///{tmp_path / 'migrations.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


def schema_diff(engine: sa.Engine) -> list[Any]:
    """What autogenerate would change to make the database match the tables module."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def partial_indexes(engine: sa.Engine) -> dict[str, str]:
    """The WHERE clause of each partial index, which ``compare_metadata`` does not look at."""
    found = {}
    with engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for index in sa.inspect(conn).get_indexes(table):
                where = index.get("dialect_options", {}).get("sqlite_where")
                if where is not None:
                    found[index["name"]] = str(where)
    return found


def declared_partial_indexes() -> dict[str, str]:
    return {
        str(index.name): str(index.dialect_options["sqlite"]["where"])
        for table in metadata.tables.values()
        for index in table.indexes
        if index.dialect_options["sqlite"]["where"] is not None
    }


def tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def test_upgrading_a_fresh_database_to_head_gives_exactly_the_declared_schema(
    sql: sa.Engine,
) -> None:
    db_engine.upgrade(sql)

    assert schema_diff(sql) == []
    assert tables(sql) == {*metadata.tables, "alembic_version"}
    assert partial_indexes(sql) == declared_partial_indexes()
    assert declared_partial_indexes() == {
        "uq_deadlines_one_pending": "status = 'pending'",
        "ix_outbox_unpositioned": "position IS NULL",
    }


def test_downgrading_to_base_then_upgrading_again_gives_the_same_schema(
    sql: sa.Engine,
) -> None:
    config = db_engine.alembic_config(sql)
    db_engine.upgrade(sql)

    command.downgrade(config, "base")
    assert tables(sql) == {"alembic_version"}
    with sql.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 0

    db_engine.upgrade(sql)
    assert schema_diff(sql) == []
    assert partial_indexes(sql) == declared_partial_indexes()


def _migration(name: str) -> Any:
    """A migration module (their file names start with a digit)."""
    path = Path(db_engine.__file__).parent / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_0009_gives_every_stored_order_one_line_that_keeps_its_refunds_and_open_case(
    sql: sa.Engine,
) -> None:
    config = db_engine.alembic_config(sql)
    command.upgrade(config, "0008")
    now = datetime(2023, 3, 1, 2, 0, tzinfo=UTC)
    placed = Order(
        id="o1",
        shop="s1",
        buyer="b1",
        total=20900,
        shipping_fee=1000,
        items=(Item(sku="TEA", unit_price=99),),  # listed, never checked against the total
        status=OrderStatus.PAID,
        created_at=now,
        paid_at=now,
        case_count=2,
        refunded=5000,
        open_cases=("c2",),
    )
    old = _migration("0009_order_lines").without_lines(serial.dump(placed))
    assert old["open_case"] == "c2" and "lines" not in old
    # the orders table as 0008 had it (no bucket yet)
    before_buckets = sa.table(
        "orders", *(sa.column(c.name, c.type) for c in orders.columns if c.name != "bucket")
    )
    with sql.begin() as conn:
        conn.execute(
            before_buckets.insert().values(
                id="o1",
                shop="s1",
                buyer="b1",
                status="paid",
                state=old,
                version=3,
                created_at=now,
                updated_at=now,
            )
        )

    db_engine.upgrade(sql)

    engine = Engine.open(
        sql.url.render_as_string(hide_password=False),
        clock=VirtualClock(now + timedelta(hours=1)),
        migrate=False,
    )
    try:
        order = engine.order("o1")
        assert order.open_cases == ("c2",) and order.version == 3
        (line,) = order.lines
        assert (line.line, line.paid, line.refunded, line.open_case, line.cases) == (
            "1",
            19900,
            5000,
            "c2",
            2,
        )
        assert lines.refundable(order, lines.requested(order, ())) == 20900 - 5000
    finally:
        engine.close()
