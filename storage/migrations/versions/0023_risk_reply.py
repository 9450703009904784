"""checkin_reply_risk: the risk a reply to a check-in answers

Revision ID: 0023_risk_reply
Revises: 0022_chart_files
Create Date: 2026-12-03 19:50:00.000000

A reply on a risk is kept with the check-in the risk was raised in, like any other reply to
it; this table names the risk it answers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_risk_reply"
down_revision: str | None = "0022_chart_files"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkin_reply_risk",
        sa.Column("reply_id", sa.Integer(), nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["reply_id"], ["checkin_reply.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["risk_id"], ["risk.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("reply_id"),
    )
    with op.batch_alter_table("checkin_reply_risk", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_checkin_reply_risk_risk_id"), ["risk_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("checkin_reply_risk", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_reply_risk_risk_id"))
    op.drop_table("checkin_reply_risk")
