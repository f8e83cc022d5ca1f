"""``outbox.position``: the event feed's order, given in the order events became visible.

On PostgreSQL an event's id comes from a sequence when it is inserted, not when its
transaction commits, so a transaction holding lower ids can commit after a reader has paged
past higher ones: a feed paged by id would skip its events for good. Positions are given to
committed events only, by one transaction at a time, so a later position is never visible
before an earlier one (docs/deployment.md). Events already stored get positions in id order.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("position", sa.BigInteger(), nullable=True))
    op.execute("UPDATE outbox SET position = id")
    op.create_index("uq_outbox_position", "outbox", ["position"], unique=True)
    op.create_index(
        "ix_outbox_unpositioned",
        "outbox",
        ["id"],
        sqlite_where=sa.text("position IS NULL"),
        postgresql_where=sa.text("position IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_unpositioned", table_name="outbox")
    op.drop_index("uq_outbox_position", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("position")
