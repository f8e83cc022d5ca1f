"""Drop ``ix_deadlines_subject``: the partial unique index serves every lookup by subject.

Every statement that finds a subject's deadline (``pending``, ``cancel``, ``fire``) asks for
its pending one, and ``uq_deadlines_one_pending (subject_type, subject_id) WHERE status =
'pending'`` answers it on SQLite and PostgreSQL alike. The full index was read by nothing,
yet every deadline scheduled, fired or cancelled wrote an entry to it (decision 0008).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_deadlines_subject", table_name="deadlines")


def downgrade() -> None:
    op.create_index("ix_deadlines_subject", "deadlines", ["subject_type", "subject_id"])
