"""checkin_reply.risk_id: a reply that answers one risk raised in the check-in

Revision ID: 0023_risk_reply
Revises: 0022_chart_files
Create Date: 2026-12-03 19:50:00.000000

A reply on a risk is kept with the check-in the risk was raised in, like any other reply to
it, and names the risk it answers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_risk_reply"
down_revision: str | None = "0022_chart_files"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("checkin_reply", schema=None) as batch_op:
        batch_op.add_column(sa.Column("risk_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_checkin_reply_risk_id_risk", "risk", ["risk_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("checkin_reply", schema=None) as batch_op:
        batch_op.drop_constraint("fk_checkin_reply_risk_id_risk", type_="foreignkey")
        batch_op.drop_column("risk_id")
