"""Deadlines indexed in the order workers claim them: status, due time, then id.

The claim reads ``WHERE status = 'pending' AND due_at <= now ORDER BY due_at, id LIMIT 1``.
With (status, due_at) alone PostgreSQL must sort every due row to find the first one, and
with thousands due it joins and sorts them all for each claim; with the id in the index the
first row in index order is the answer, whatever the number pending (docs/performance.md).
SQLite keeps the rowid in every index, so there the change is only of name.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deadlines_status_due_at_id", "deadlines", ["status", "due_at", "id"])
    op.drop_index("ix_deadlines_status_due_at", table_name="deadlines")


def downgrade() -> None:
    op.create_index("ix_deadlines_status_due_at", "deadlines", ["status", "due_at"])
    op.drop_index("ix_deadlines_status_due_at_id", table_name="deadlines")
