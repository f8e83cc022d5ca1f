"""``relay_cursors``: how far ``shouhou relay`` has published each bucket's event feed to each
stream.

The relay publishes the outbox to NATS JetStream, each bucket's events in feed-position order,
and, once the stream has acknowledged them, moves the cursor of that stream and bucket to the
last position published. The outbox itself is not changed (decision 0022). The table is
bucketed (decision 0021): its key starts with ``bucket``, and on a partitioned PostgreSQL
database (``shouhou_meta`` says how many partitions) it is ``PARTITION BY HASH (bucket)`` like
the outbox, so that moving a bucket's cursor writes that bucket's partition only.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from shouhou.db.tables import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _partitions() -> int:
    """The partitions migration 0011 made the bucketed tables with (0: none)."""
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return 0
    found = conn.execute(
        sa.text("SELECT value FROM shouhou_meta WHERE name = 'partitions'")
    ).scalar_one_or_none()
    return int(found or 0)


def upgrade() -> None:
    partitions = _partitions()
    shape: dict[str, Any] = {"postgresql_partition_by": "HASH (bucket)"} if partitions else {}
    op.create_table(
        "relay_cursors",
        sa.Column("bucket", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "stream", name="pk_relay_cursors"),
        **shape,
    )
    for i in range(partitions):
        op.execute(
            f"CREATE TABLE relay_cursors_p{i} PARTITION OF relay_cursors"
            f" FOR VALUES WITH (MODULUS {partitions}, REMAINDER {i})"
        )


def downgrade() -> None:
    op.drop_table("relay_cursors")
