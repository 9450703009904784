"""risk: noticed-on date, owner, resolution; contract: escalation days; computed values

Revision ID: 0021_risk_life
Revises: 0020_replica_state
Create Date: 2026-12-03 19:00:00.000000

A risk or blocker records when the leader first saw it (`noticed_on`), who looks after it
(`owner_id`), and how it was resolved (`resolution_note`, `resolved_by`; `resolved_at` was
there). A contract says after how many days an open risk that needs help escalates
(`escalation_days`, 14 unless set). A measurement the bot computed for an indicator whose
source is `north-star:…` names the period it stands for (`computed_period`), once per
indicator and period.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0021_risk_life"
down_revision: str | None = "0020_replica_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("risk", schema=None) as batch_op:
        batch_op.add_column(sa.Column("noticed_on", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("owner_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch_op.add_column(sa.Column("resolution_note", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("resolved_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("escalation_days", sa.Integer(), nullable=False, server_default="14")
        )
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.alter_column("escalation_days", server_default=None)
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("computed_period", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.create_unique_constraint(
            "uq_measurement_computed", ["indicator_id", "computed_period"]
        )


def downgrade() -> None:
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.drop_constraint("uq_measurement_computed", type_="unique")
        batch_op.drop_column("computed_period")
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.drop_column("escalation_days")
    with op.batch_alter_table("risk", schema=None) as batch_op:
        for name in ("resolved_by", "resolution_note", "owner_id", "noticed_on"):
            batch_op.drop_column(name)
