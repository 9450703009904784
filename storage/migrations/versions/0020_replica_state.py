"""replica_state: the leading replica and the shared Retry-After pause

Revision ID: 0020_replica_state
Revises: 0019_lessons
Create Date: 2026-12-03 18:00:00.000000

Replicas elect one leader (a PostgreSQL advisory lock) to run the jobs and send; the row
names it, so a new leader can take over the claims of the one that died, and holds the
pause a 429 asked for, so every sender waits it out.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0020_replica_state"
down_revision: str | None = "0019_lessons"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replica_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("leader", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("leader_since", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paused_until", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("replica_state")
