"""slack_user: the UTC offset of people without a zone, and whether they are deactivated or bots

Revision ID: 0009_fidelity
Revises: 0005_anonymous_feedback
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_fidelity"
down_revision: str | None = "0005_anonymous_feedback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("slack_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tz_offset", sa.Integer(), nullable=True))
        # Cached rows read as active people until their next refresh; the model has no
        # server default, so it is dropped again below.
        batch_op.add_column(
            sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("is_bot", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("slack_user", schema=None) as batch_op:
        batch_op.alter_column("deleted", server_default=None)
        batch_op.alter_column("is_bot", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("slack_user", schema=None) as batch_op:
        batch_op.drop_column("is_bot")
        batch_op.drop_column("deleted")
        batch_op.drop_column("tz_offset")
