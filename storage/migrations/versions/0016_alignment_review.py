"""contract: the alignment review's cadence; alignment_review: each person's review

Revision ID: 0016_alignment_review
Revises: 0015_contract_closing
Create Date: 2026-12-03 18:10:00.000000

The leader and the sponsor review a contract's strategic alignment on its review cadence
(quarterly unless changed by a governance amendment); each review records, per expectation
and indicator, whether it is kept, amended or retired.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0016_alignment_review"
down_revision: str | None = "0015_contract_closing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "review_cadence",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="quarterly",
            )
        )
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.alter_column("review_cadence", server_default=None)
    op.create_table(
        "alignment_review",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("period_key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reviewer_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("submitted_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "period_key", "reviewer_id", name="uq_alignment_review"),
    )
    with op.batch_alter_table("alignment_review", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alignment_review_contract_id"), ["contract_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alignment_review", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alignment_review_contract_id"))
    op.drop_table("alignment_review")
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.drop_column("review_cadence")
