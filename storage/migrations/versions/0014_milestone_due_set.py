"""milestone: when an amendment last set its due date

Revision ID: 0014_milestone_due_set
Revises: 0013_delivery_faults
Create Date: 2026-12-03 16:45:00.000000

A milestone an amendment moves into the past is news from the day it was moved, not "old
news" because its due day is long over: `due_set_at` records when that happened.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0014_milestone_due_set"
down_revision: str | None = "0013_delivery_faults"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("milestone", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("due_set_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("milestone", schema=None) as batch_op:
        batch_op.drop_column("due_set_at")
