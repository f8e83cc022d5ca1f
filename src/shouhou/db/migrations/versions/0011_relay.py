"""``relay_cursors``: how far ``shouhou relay`` has published the event feed to each stream.

The relay publishes the outbox to NATS JetStream in feed order and, once the stream has
acknowledged a batch, moves its stream's cursor to the batch's last feed position. The
outbox itself is not changed (decision 0022).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shouhou.db.tables import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relay_cursors",
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("stream", name="pk_relay_cursors"),
    )


def downgrade() -> None:
    op.drop_table("relay_cursors")
