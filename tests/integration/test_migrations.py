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


def made_on(item: Any, dialect: str) -> bool:
    """Whether the tables module makes ``item`` on ``dialect`` (an index declared with
    ``ddl_if(dialect=…)`` is made on that database only; autogenerate does not look)."""
    condition = getattr(item, "_ddl_if", None)
    if condition is None or condition.dialect is None:
        return True
    wanted = condition.dialect
    return dialect == wanted if isinstance(wanted, str) else dialect in wanted


def schema_diff(engine: sa.Engine) -> list[Any]:
    """What autogenerate would change to make the database match the tables module."""
    dialect = engine.dialect.name

    def include(item: Any, name: Any, kind: str, reflected: bool, compare_to: Any) -> bool:
        return reflected or made_on(item, dialect)

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": include,
            },
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


def test_0011_puts_every_row_in_its_orders_bucket_and_numbers_each_buckets_feed(
    sql: sa.Engine,
) -> None:
    """Stored rows get their order's bucket; outbox and delivery ids become n × buckets +
    bucket; each bucket's feed is numbered from one in the old feed's order."""
    from shouhou.domain.buckets import bucket_of

    db_engine.upgrade(sql, "0010")
    at = "2024-03-01 10:00:00.000000"
    with sql.begin() as conn:
        for order_id in ("o1", "o2"):
            conn.execute(
                sa.text(
                    "INSERT INTO orders (id, shop, buyer, status, state, version, created_at,"
                    " updated_at) VALUES (:id, 's1', 'b1', 'paid', '{}', 1, :at, :at)"
                ),
                {"id": order_id, "at": at},
            )
        conn.execute(
            sa.text(
                "INSERT INTO cases (id, order_id, shop, buyer, kind, status, state, version,"
                " opened_at, updated_at) VALUES ('c1', 'o2', 's1', 'b1', 'refund_only',"
                " 'awaiting_seller', '{}', 1, :at, :at)"
            ),
            {"at": at},
        )
        conn.execute(
            sa.text(
                "INSERT INTO deadlines (subject_type, subject_id, name, due_at, on_expiry,"
                " rule_id, policy, status) VALUES ('case', 'c1', 'seller_respond', :at,"
                " 'refund', 'r', 'p', 'pending')"
            ),
            {"at": at},
        )
        for n, (stream, subject) in enumerate((("order", "o1"), ("case", "c1"), ("order", "o2"))):
            conn.execute(
                sa.text(
                    "INSERT INTO events (stream, stream_id, seq, type, at, actor, data)"
                    " VALUES (:stream, :subject, 1, 'X', :at, 'system', '{}')"
                ),
                {"stream": stream, "subject": subject, "at": at},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO outbox (type, subject_type, subject_id, occurred_at, data,"
                    " position) VALUES ('x', :stream, :subject, :at, '{}', :position)"
                ),
                {"stream": stream, "subject": subject, "at": at, "position": n + 1},
            )
        conn.execute(
            sa.text(
                "INSERT INTO webhook_endpoints (id, url, secret, events, description,"
                " created_by, created_at) VALUES ('ep', 'https://x', 's', '[]', '', 'p', :at)"
            ),
            {"at": at},
        )
        conn.execute(
            sa.text(
                "INSERT INTO webhook_deliveries (outbox_id, endpoint_id, status, attempts,"
                " next_attempt_at, created_at) VALUES (2, 'ep', 'pending', 0, :at, :at)"
            ),
            {"at": at},
        )

    db_engine.upgrade(sql)

    one, two = bucket_of("o1"), bucket_of("o2")
    with sql.connect() as conn:

        def rows(query: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(sa.text(query))]

        assert rows("SELECT id, bucket FROM orders ORDER BY id") == [("o1", one), ("o2", two)]
        assert rows("SELECT id, bucket FROM cases") == [("c1", two)]
        assert rows("SELECT subject_id, bucket FROM deadlines") == [("c1", two)]
        assert rows("SELECT stream_id, bucket FROM events ORDER BY id") == [
            ("o1", one),
            ("c1", two),
            ("o2", two),
        ]
        assert rows("SELECT id, bucket, position FROM outbox ORDER BY id") == [
            (1 * 256 + one, one, 1),
            (2 * 256 + two, two, 1),
            (3 * 256 + two, two, 2),
        ]
        assert rows("SELECT outbox_id, bucket FROM webhook_deliveries") == [(2 * 256 + two, two)]
        feeds = dict(rows("SELECT bucket, position FROM feeds"))
        assert len(feeds) == 256 and feeds[one] == 1 and feeds[two] == 2
        assert sum(feeds.values()) == 3
    assert db_engine.layout(sql) == db_engine.Layout(256, 0)


def test_the_number_of_buckets_is_chosen_once(sql: sa.Engine) -> None:
    from shouhou.errors import Invalid

    db_engine.upgrade(sql, buckets=16)
    db_engine.upgrade(sql, buckets=16)  # the same: nothing to refuse

    with pytest.raises(Invalid, match="has 16 buckets"):
        db_engine.upgrade(sql, buckets=32)
    with pytest.raises(Invalid, match="has 0 partitions"):
        db_engine.upgrade(sql, partitions=8)
    assert db_engine.layout(sql) == db_engine.Layout(16, 0)
