"""feedback_ack, feedback_activity: the leader acknowledges an entry, or makes it an activity

Revision ID: 0025_feedback_ack
Revises: 0024_report_audience
Create Date: 2026-12-04 10:00:00.000000

One acknowledgement per entry (who, when), and the amendment proposed from an entry, if any;
both go with the entry when it is withdrawn or erased.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0025_feedback_ack"
down_revision: str | None = "0024_report_audience"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback_ack",
        sa.Column("feedback_id", sa.Integer(), nullable=False),
        sa.Column("acknowledged_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("acknowledged_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["feedback_id"], ["feedback.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("feedback_id"),
    )
    op.create_table(
        "feedback_activity",
        sa.Column("feedback_id", sa.Integer(), nullable=False),
        sa.Column("amendment_id", sa.Integer(), nullable=False),
        sa.Column("proposed_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["amendment_id"], ["amendment.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["feedback_id"], ["feedback.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("feedback_id"),
    )
    with op.batch_alter_table("feedback_activity", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feedback_activity_amendment_id"), ["amendment_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("feedback_activity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_activity_amendment_id"))
    op.drop_table("feedback_activity")
    op.drop_table("feedback_ack")
