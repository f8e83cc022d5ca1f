"""``deadlines.error``: why a deadline that could not fire was set aside.

A deadline whose firing fails for a reason other than a lost race (its subject is missing,
its row disagrees with the subject, the subject's snapshot cannot be read) is marked
``failed`` with the error, so that the worker passes over it instead of stopping on it
(docs/deployment.md, "A deadline that cannot fire").

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deadlines", sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deadlines") as batch:
        batch.drop_column("error")
