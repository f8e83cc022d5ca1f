"""``upload_quota``: evidence files and bytes each actor uploaded on each marketplace day.

An actor's uploads are counted against a daily quota (``SHOUHOU_UPLOAD_FILES_PER_DAY``,
``SHOUHOU_UPLOAD_BYTES_PER_DAY``); over it the API answers 429 until the next midnight in
Asia/Shanghai. The count is taken with a conditional update in the upload's transaction.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upload_quota",
        sa.Column("actor", sa.String(96), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("actor", "day", name="pk_upload_quota"),
    )


def downgrade() -> None:
    op.drop_table("upload_quota")
