"""contract: how it closed (when, by whom, why, the leader's reflection) and what renewed it

Revision ID: 0015_contract_closing
Revises: 0014_milestone_due_set
Create Date: 2026-12-03 18:10:00.000000

A closed contract keeps its record: `closed_at`, `closed_by`, `close_reason`, the leader's
`closing_reflection`, and `superseded_by` (the contract that replaced it). A renewal draft
names the contract it continues in `replaces_contract_id`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0015_contract_closing"
down_revision: str | None = "0014_milestone_due_set"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("closed_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("closed_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("close_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("closing_reflection", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("superseded_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("replaces_contract_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contract", schema=None) as batch_op:
        for name in (
            "replaces_contract_id",
            "superseded_by",
            "closing_reflection",
            "close_reason",
            "closed_by",
            "closed_at",
        ):
            batch_op.drop_column(name)
