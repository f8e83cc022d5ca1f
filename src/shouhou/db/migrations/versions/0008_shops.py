"""``shops``: a shop's settings; for now its default return address.

When a seller lets ``seller_respond`` pass on a return, exchange or repair, the system agrees
for it "with the shop's default return address" (SPEC §2): the buyer needs to know where to
send the goods.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shouhou.db.tables import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shops",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("return_address", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("shops")
