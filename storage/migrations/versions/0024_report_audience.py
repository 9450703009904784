"""contract.report_cadence, contract.report_channel: the period report's cadence and channel

Revision ID: 0024_report_audience
Revises: 0023_risk_reply
Create Date: 2026-12-10 09:00:00.000000

The governance names how often the period report is posted and where: a channel, or the
report readers (contract_person rows with the role `report_reader`, which needs no change
to the schema).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_report_audience"
down_revision: str | None = "0023_risk_reply"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report_cadence", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("report_channel", sa.String(length=32), nullable=True))


def downgrade() -> None:
    # The readers' rows would name a role the older code does not know.
    op.execute("DELETE FROM contract_person WHERE role = 'report_reader'")
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.drop_column("report_channel")
        batch_op.drop_column("report_cadence")
