"""feedback: request batches and the marks of anonymous answers to requests

Revision ID: 0003_feedback
Revises: 0002_checkins
Create Date: 2026-11-24 06:54:52.159456
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0003_feedback"
# Both 0002_checkins and this revision were written on 0001; this one is chained after the
# check-ins so the tree keeps a single head. Set "0001" if it lands before 0002_checkins.
down_revision: str | None = "0002_checkins"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback_answer_mark",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mark", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mark"),
    )
    with op.batch_alter_table("feedback_request", schema=None) as batch_op:
        # Existing requests get an empty batch; the model has no server default, so drop it.
        batch_op.add_column(
            sa.Column(
                "batch",
                sqlmodel.sql.sqltypes.AutoString(length=40),
                nullable=False,
                server_default="",
            )
        )
        batch_op.create_index(batch_op.f("ix_feedback_request_batch"), ["batch"], unique=False)
    with op.batch_alter_table("feedback_request", schema=None) as batch_op:
        batch_op.alter_column("batch", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("feedback_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_request_batch"))
        batch_op.drop_column("batch")
    op.drop_table("feedback_answer_mark")
