"""agreement: a draft is sent for agreement; its leader, sponsor and owner agree to a version

Revision ID: 0017_agreement
Revises: 0016_alignment_review
Create Date: 2026-12-03 18:10:00.000000

The contract row gains when and by whom it was sent for agreement, the version and
fingerprint of the terms asked for, whether it replaces the leader's active contract on
agreement, and which contract it replaced. `agreement` holds each party's agreement to one
version, once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0017_agreement"
down_revision: str | None = "0016_alignment_review"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("agreement_sent_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("agreement_sent_by", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("terms_version", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("terms_fingerprint", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("replaces_current", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.alter_column("terms_version", server_default=None)
        batch_op.alter_column("replaces_current", server_default=None)
    op.create_table(
        "agreement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("terms_version", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("agreed_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "terms_version", "user_id", name="uq_agreement_once"),
    )
    with op.batch_alter_table("agreement", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agreement_contract_id"), ["contract_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("agreement", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agreement_contract_id"))
    op.drop_table("agreement")
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.drop_column("replaces_current")
        batch_op.drop_column("terms_fingerprint")
        batch_op.drop_column("terms_version")
        batch_op.drop_column("agreement_sent_by")
        batch_op.drop_column("agreement_sent_at")
