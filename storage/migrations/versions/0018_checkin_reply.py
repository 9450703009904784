"""checkin_reply: answers to a check-in; checkin_nudge: the one reminder about a missed week

Revision ID: 0018_checkin_reply
Revises: 0017_agreement
Create Date: 2026-12-03 18:45:00.000000

A sponsor, owner or approver answers a leader's check-in from the digest (kept with the
check-in, shown in `/checkin history`); a missed week gets at most one nudge.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0018_checkin_reply"
down_revision: str | None = "0017_agreement"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkin_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["checkin_id"], ["checkin.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key", name="uq_checkin_reply_request"),
    )
    with op.batch_alter_table("checkin_reply", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_checkin_reply_checkin_id"), ["checkin_id"], unique=False
        )
    op.create_table(
        "checkin_nudge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("period_key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("nudged_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "period_key", name="uq_checkin_nudge"),
    )


def downgrade() -> None:
    op.drop_table("checkin_nudge")
    with op.batch_alter_table("checkin_reply", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_reply_checkin_id"))
    op.drop_table("checkin_reply")
