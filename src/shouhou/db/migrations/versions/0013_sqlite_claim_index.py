"""SQLite: no bucket-leading claim index on ``deadlines``.

PostgreSQL claims due deadlines one bucket per statement, by
``ix_deadlines_bucket_status_due_at_id`` (0011). SQLite has one writer at a time and claims
the earliest due deadlines of every bucket in one statement, by
``ix_deadlines_status_due_at_id``; it never read the bucket-leading index, yet every deadline
scheduled, fired or cancelled wrote it, in a page of its bucket's: a batch of timeouts on
scattered orders dirtied a page per bucket (docs/performance.md, issue 19). The table module
declares the index for PostgreSQL only (``ddl_if``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

INDEX = "ix_deadlines_bucket_status_due_at_id"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index(INDEX, "deadlines", ["bucket", "status", "due_at", "id"])
