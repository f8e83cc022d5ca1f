"""The Alembic migrations build exactly the schema that ``shouhou.db.tables`` declares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shouhou.db import engine as db_engine
from shouhou.db.tables import metadata


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
