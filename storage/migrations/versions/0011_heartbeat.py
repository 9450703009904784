"""heartbeat: the row the health check writes, to prove the database takes writes

Revision ID: 0011_heartbeat
Revises: 0006_evidence_source
Create Date: 2026-12-03 14:43:01.744275
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0011_heartbeat"
down_revision: str | None = "0006_evidence_source"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "heartbeat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("beat_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("heartbeat")
