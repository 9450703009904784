"""feedback.relation and feedback.released_as: rater groups

Revision ID: 0026_rater_groups
Revises: 0025_feedback_ack
Create Date: 2026-12-04 16:30:00.000000

Each entry keeps its giver's relationship to the leader (peer, direct report, sponsor, other
stakeholder, self), and an anonymous entry the group it was released in, so the anonymity
threshold holds per group and a released group is never regrouped later.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0026_rater_groups"
down_revision: str | None = "0025_feedback_ack"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("relation", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.add_column(
            sa.Column("released_as", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_column("released_as")
        batch_op.drop_column("relation")
