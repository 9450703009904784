"""evidence_source: the message a shortcut was used on, kept on the server for its modal

Revision ID: 0006_evidence_source
Revises: 0004_one_active_contract
Create Date: 2026-12-03 07:50:31.025329
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0006_evidence_source"
down_revision: str | None = "0004_one_active_contract"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evidence_source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("message_ts", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("permalink", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("used_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    with op.batch_alter_table("evidence_source", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evidence_source_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("evidence_source", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_source_created_at"))
    op.drop_table("evidence_source")
