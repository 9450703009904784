"""delivery: until when a message is useful, when to retry it, when it was first posted

Revision ID: 0013_delivery_faults
Revises: 0012_confirmed_measurement
Create Date: 2026-12-03 09:00:00.000000

A delivery is no longer given up after five claims: it is retried until `expires_at`, then
marked `expired`. The rows an earlier version had given up for good (`failed` after its
five claims) are marked `expired` here, so `northstar jobs status` lists them; a downgrade
turns every `expired` row back into `failed`, which the earlier version never retries.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0013_delivery_faults"
down_revision: str | None = "0012_confirmed_measurement"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_MAX_CLAIMS = 5


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("retry_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("attempted_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
    delivery = sa.table("delivery", sa.column("status", sa.String), sa.column("attempts"))
    op.execute(
        delivery.update()
        .where(delivery.c.status == "failed", delivery.c.attempts >= OLD_MAX_CLAIMS)
        .values(status="expired")
    )


def downgrade() -> None:
    delivery = sa.table("delivery", sa.column("status", sa.String))
    op.execute(delivery.update().where(delivery.c.status == "expired").values(status="failed"))
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("attempted_at")
        batch_op.drop_column("retry_at")
        batch_op.drop_column("expires_at")
