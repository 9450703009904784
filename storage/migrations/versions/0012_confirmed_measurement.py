"""measurement.confirmed: a value the leader confirmed unchanged, told apart from one typed in

Revision ID: 0012_confirmed_measurement
Revises: 0011_heartbeat
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_confirmed_measurement"
down_revision: str | None = "0011_heartbeat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        # Every earlier value was typed in (or pre-filled, which cannot be told apart now);
        # the model has no server default, so it is dropped again below.
        batch_op.add_column(
            sa.Column("confirmed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.alter_column("confirmed", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.drop_column("confirmed")
