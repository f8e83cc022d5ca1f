"""Fixed buckets: every row of an order's data carries ``bucket`` in each of its keys.

An order's bucket is ``crc32(order id) mod buckets`` (``shouhou.domain.buckets``); its cases,
complaints, events, deadlines, outbox events, deliveries, ledger lines and idempotency keys
live in the same bucket. The number of buckets is chosen here, once (``shouhou db upgrade
--buckets N`` on a new database, 256 by default), and stored in ``shouhou_meta`` with the
number of partitions (``--partitions 8``: on PostgreSQL every bucketed table is ``PARTITION
BY HASH (bucket)``, so PostgreSQL itself refuses a key without the bucket). The event feed is
kept per bucket (``feeds`` and ``(bucket, position)``), outbox event ids and delivery ids are
``n * buckets + bucket`` so that an id alone names its bucket, and case or complaint ids a
caller chose get a ``routes`` row (docs/decisions/0021-fixed-buckets.md).

Each bucketed table is rebuilt: renamed aside, made again as ``shouhou.db.tables`` declares
it, filled from the old one with each row's bucket, and the old one dropped. On SQLite a table
with an integer ``id`` keeps it as its rowid (its primary key), so that SQLite still numbers
new rows; PostgreSQL's keys are ``(bucket, id)``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from shouhou.db import tables
from shouhou.db.engine import MIGRATION_LOCK
from shouhou.domain.buckets import DEFAULT_BUCKETS, bucket_of

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

#: Rebuilt children first: a table is renamed aside only once nothing refers to it.
ORDER = (
    "webhook_attempts",
    "webhook_deliveries",
    "deadline_notices",
    "outbox",
    "deadlines",
    "events",
    "ledger",
    "complaints",
    "cases",
    "orders",
    "idempotency_keys",
)
#: Tables whose ids become ``n * buckets + bucket`` (an id that travels alone names its bucket).
SPREAD_IDS = {"outbox": "id", "webhook_deliveries": "id"}


def settings() -> tuple[int, int]:
    """The buckets and partitions asked for (``engine.upgrade(buckets=, partitions=)``)."""
    attributes: dict[str, Any] = op.get_context().config.attributes  # type: ignore[union-attr]
    buckets = int(attributes.get("buckets") or DEFAULT_BUCKETS)
    partitions = int(attributes.get("partitions") or 0)
    return buckets, partitions


def shaped(table: sa.Table, md: sa.MetaData, *, sqlite: bool, partitions: int) -> sa.Table:
    """``table`` as this database gets it: on SQLite an integer ``id`` stays the rowid (the
    primary key alone), on PostgreSQL partitioned by hash of the bucket if asked."""
    rowid = sqlite and "id" in table.c and table.c.id.autoincrement is True
    columns = []
    for column in table.columns:
        copy = column._copy()
        copy.index = copy.unique = None  # table.indexes has them, by name
        if rowid and column.name == "bucket":
            copy.primary_key = False
        columns.append(copy)
    extra: list[Any] = []
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            extra.append(sa.UniqueConstraint(*constraint.columns.keys(), name=constraint.name))
        elif isinstance(constraint, sa.ForeignKeyConstraint):
            extra.append(
                sa.ForeignKeyConstraint(
                    constraint.column_keys,
                    [element.target_fullname for element in constraint.elements],
                    name=constraint.name,
                )
            )
    for index in table.indexes:
        extra.append(
            sa.Index(
                index.name,
                *(c.name for c in index.columns),
                unique=index.unique,
                **index.dialect_kwargs,
            )
        )
    kwargs: dict[str, Any] = {}
    if partitions and "bucket" in table.c:
        kwargs["postgresql_partition_by"] = "HASH (bucket)"
    return sa.Table(table.name, md, *columns, *extra, **kwargs)


def _create(table: sa.Table, partitions: int) -> None:
    conn = op.get_bind()
    table.create(conn)
    if partitions and "bucket" in table.c:
        for i in range(partitions):
            op.execute(
                f"CREATE TABLE {table.name}_p{i} PARTITION OF {table.name}"
                f" FOR VALUES WITH (MODULUS {partitions}, REMAINDER {i})"
            )


def _set_aside(name: str) -> str:
    """Rename table ``name`` aside, freeing the names of its indexes, constraints and
    sequence; the new name."""
    conn = op.get_bind()
    old = f"_old_{name}"
    inspector = sa.inspect(conn)
    if conn.dialect.name == "postgresql":
        for fk in inspector.get_foreign_keys(name):
            op.execute(f'ALTER TABLE {name} DROP CONSTRAINT "{fk["name"]}"')
        for unique in inspector.get_unique_constraints(name):
            op.execute(f'ALTER TABLE {name} DROP CONSTRAINT "{unique["name"]}"')
        pk = inspector.get_pk_constraint(name).get("name")
        if pk:
            op.execute(f'ALTER TABLE {name} DROP CONSTRAINT "{pk}"')
        if "id" in {c["name"] for c in inspector.get_columns(name)}:
            seq = conn.execute(sa.text(f"SELECT pg_get_serial_sequence('{name}', 'id')")).scalar()
            if seq:
                op.execute(f"ALTER SEQUENCE {seq} RENAME TO _old_{name}_id_seq")
        inspector = sa.inspect(conn)  # afresh: the constraints' indexes went with them
    for index in inspector.get_indexes(name):
        op.drop_index(str(index["name"]), table_name=name)
    op.rename_table(name, old)
    return old


def _fill(new: sa.Table, old: str, values: dict[str, str], joins: str = "") -> None:
    """Copy the rows of ``old`` into ``new``: each column from its expression in ``values``,
    or else from the old column of its name."""
    names = [c.name for c in new.columns]
    exprs = [values.get(n, f"o.{n}") for n in names]
    op.execute(
        f"INSERT INTO {new.name} ({', '.join(names)}) SELECT {', '.join(exprs)}"
        f" FROM {old} AS o {joins}"
    )


def _sync_sequence(table: sa.Table, buckets: int) -> None:
    """PostgreSQL: start the new table's id sequence after the ids it was filled with."""
    if op.get_bind().dialect.name != "postgresql" or "id" not in table.c:
        return
    if table.c.id.autoincrement is not True:
        return
    top = "coalesce(max(id), 0)"
    if table.name in SPREAD_IDS:
        top = f"{top} / {buckets}"
    op.execute(
        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), {top} + 1, false)"
        f" FROM {table.name}"
    )


#: The bucket of an old row, from the subjects' homes (``_homes``), per table.
HOME = "coalesce(h.bucket, 0)"
JOINS = {
    "orders": "LEFT JOIN _homes AS h ON h.kind = 'order' AND h.id = o.id",
    "cases": "LEFT JOIN _homes AS h ON h.kind = 'order' AND h.id = o.order_id",
    "complaints": "LEFT JOIN _homes AS h ON h.kind = 'order' AND h.id = o.order_id",
    "ledger": "LEFT JOIN _homes AS h ON h.kind = 'order' AND h.id = o.order_id",
    "events": "LEFT JOIN _homes AS h ON h.kind = o.stream AND h.id = o.stream_id",
    "deadlines": "LEFT JOIN _homes AS h ON h.kind = o.subject_type AND h.id = o.subject_id",
    "outbox": "LEFT JOIN _homes AS h ON h.kind = o.subject_type AND h.id = o.subject_id",
    # rebuilt before the tables they join, which are still the old ones then
    "deadline_notices": (
        "LEFT JOIN deadlines AS d ON d.id = o.deadline_id"
        " LEFT JOIN _homes AS h ON h.kind = d.subject_type AND h.id = d.subject_id"
    ),
    "webhook_deliveries": (
        "LEFT JOIN outbox AS x ON x.id = o.outbox_id"
        " LEFT JOIN _homes AS h ON h.kind = x.subject_type AND h.id = x.subject_id"
    ),
    "webhook_attempts": (
        "LEFT JOIN webhook_deliveries AS w ON w.id = o.delivery_id"
        " LEFT JOIN outbox AS x ON x.id = w.outbox_id"
        " LEFT JOIN _homes AS h ON h.kind = x.subject_type AND h.id = x.subject_id"
    ),
    "idempotency_keys": "LEFT JOIN _homes AS h ON 1 = 0",  # claims of a day: bucket 0
}


def _homes(buckets: int) -> None:
    """``_homes (kind, id, bucket)``: the bucket of every order, case and complaint stored."""
    conn = op.get_bind()
    op.create_table(
        "_homes",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("bucket", sa.Integer, nullable=False),
    )
    ids = conn.execute(
        sa.text(
            "SELECT id FROM orders UNION SELECT order_id FROM cases"
            " UNION SELECT order_id FROM complaints UNION SELECT order_id FROM ledger"
        )
    ).scalars()
    homes = sa.table("_homes", sa.column("kind"), sa.column("id"), sa.column("bucket"))
    rows = [{"kind": "order", "id": i, "bucket": bucket_of(i, buckets)} for i in ids]
    for start in range(0, len(rows), 1000):
        conn.execute(homes.insert(), rows[start : start + 1000])
    for kind, table in (("case", "cases"), ("complaint", "complaints")):
        op.execute(
            f"INSERT INTO _homes (kind, id, bucket) SELECT '{kind}', t.id, h.bucket"
            f" FROM {table} AS t JOIN _homes AS h ON h.kind = 'order' AND h.id = t.order_id"
        )


def upgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    buckets, partitions = settings()
    if partitions and sqlite:
        raise ValueError("SQLite has no partitions: --partitions is for PostgreSQL")
    _homes(buckets)
    md = sa.MetaData(naming_convention=tables.metadata.naming_convention)
    tables.webhook_endpoints.to_metadata(md)  # referred to by deliveries, not rebuilt
    for name in ORDER:
        old = _set_aside(name)
        new = shaped(tables.metadata.tables[name], md, sqlite=sqlite, partitions=partitions)
        _create(new, partitions)
        values = {"bucket": HOME}
        if name in SPREAD_IDS:
            values["id"] = f"o.id * {buckets} + {HOME}"
        if name == "webhook_deliveries":
            values["outbox_id"] = f"o.outbox_id * {buckets} + {HOME}"
        if name == "outbox":  # each bucket's feed numbered from 1, in the old feed's order
            values["position"] = (
                f"CASE WHEN o.position IS NULL THEN NULL ELSE row_number() OVER"
                f" (PARTITION BY {HOME}, o.position IS NULL ORDER BY o.position) END"
            )
        _fill(new, old, values, JOINS[name])
        _sync_sequence(new, buckets)
    for name in ORDER:
        op.drop_table(f"_old_{name}")
    for name in ("routes", "feeds", "shouhou_meta"):
        declared = tables.metadata.tables[name]
        _create(shaped(declared, md, sqlite=sqlite, partitions=partitions), partitions)
    op.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATION_LOCK} (id INTEGER)")
    op.drop_table("_homes")
    op.execute(
        f"INSERT INTO feeds (bucket, position) SELECT b.n, coalesce(max(o.position), 0)"
        f" FROM ({_numbers(buckets)}) AS b LEFT JOIN outbox AS o ON o.bucket = b.n GROUP BY b.n"
    )
    meta = sa.table("shouhou_meta", sa.column("name"), sa.column("value"))
    conn.execute(
        meta.insert(),
        [
            {"name": "buckets", "value": str(buckets)},
            {"name": "partitions", "value": str(partitions)},
        ],
    )


def _numbers(count: int) -> str:
    """A query of the numbers 0 to ``count - 1`` as ``n`` (on SQLite and PostgreSQL)."""
    return (
        f"WITH RECURSIVE r(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM r WHERE n + 1 < {count})"
        " SELECT n FROM r"
    )


# --- downgrade: the tables as 0010 left them (positions numbered again across buckets) ------


def old_indexes() -> dict[str, list[Any]]:
    """The 0010 indexes and unique constraints that 0011 replaced, per table (new objects:
    an index belongs to one table object)."""
    return {
        "cases": [sa.Index("ix_cases_order_id", "order_id")],
        "events": [
            sa.UniqueConstraint("stream", "stream_id", "seq", name="uq_events_stream_stream_id_seq")
        ],
        "deadlines": [
            sa.Index(
                "uq_deadlines_one_pending",
                "subject_type",
                "subject_id",
                unique=True,
                sqlite_where=sa.text("status = 'pending'"),
                postgresql_where=sa.text("status = 'pending'"),
            )
        ],
        "outbox": [
            sa.Index("uq_outbox_position", "position", unique=True),
            sa.Index(
                "ix_outbox_unpositioned",
                "id",
                sqlite_where=sa.text("position IS NULL"),
                postgresql_where=sa.text("position IS NULL"),
            ),
        ],
        "webhook_deliveries": [sa.Index("ix_webhook_deliveries_outbox_id", "outbox_id")],
        "webhook_attempts": [sa.Index("ix_webhook_attempts_delivery_id", "delivery_id")],
        "complaints": [sa.UniqueConstraint("order_id", name="uq_complaints_order_id")],
        "ledger": [sa.UniqueConstraint("kind", "source", name="uq_ledger_kind_source")],
    }


def unbucketed(table: sa.Table, md: sa.MetaData) -> sa.Table:
    """``table`` without its bucket: its keys and indexes as 0010 had them."""
    columns = []
    for column in table.columns:
        if column.name == "bucket":
            continue
        copy = column._copy()
        copy.index = copy.unique = None  # table.indexes has them, by name
        columns.append(copy)
    extra: list[Any] = [
        sa.Index(index.name, *(c.name for c in index.columns), unique=index.unique)
        for index in table.indexes
        if "bucket" not in index.columns
    ]
    extra += [
        sa.ForeignKeyConstraint(c.column_keys, [e.target_fullname for e in c.elements], name=c.name)
        for c in table.constraints
        if isinstance(c, sa.ForeignKeyConstraint)
    ]
    extra += old_indexes().get(table.name, [])
    return sa.Table(table.name, md, *columns, *extra)


def downgrade() -> None:
    conn = op.get_bind()
    md = sa.MetaData(naming_convention=tables.metadata.naming_convention)
    tables.webhook_endpoints.to_metadata(md)
    for name in ("routes", "feeds", "shouhou_meta", MIGRATION_LOCK):
        op.drop_table(name)
    for name in ORDER:
        old = _set_aside(name)
        new = unbucketed(tables.metadata.tables[name], md)
        new.create(conn)
        values = {}
        if name == "outbox":
            values["position"] = (
                "CASE WHEN o.position IS NULL THEN NULL ELSE row_number() OVER"
                " (PARTITION BY o.position IS NULL ORDER BY o.position, o.bucket) END"
            )
        _fill(new, old, values)
        postgresql = conn.dialect.name == "postgresql"
        if postgresql and "id" in new.c and new.c.id.autoincrement is True:
            op.execute(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                f" coalesce(max(id), 0) + 1, false) FROM {name}"
            )
    for name in ORDER:
        op.drop_table(f"_old_{name}")
