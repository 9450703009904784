"""chart_file: charts uploaded to Slack, by contract, subject and the hash of their data

Revision ID: 0022_chart_files
Revises: 0021_risk_life
Create Date: 2026-12-03 19:05:00.000000

An indicator's chart (or the confidence sparkline) is drawn and uploaded once per set of data
drawn; the Slack file id is kept so an unchanged chart is shown again without either.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0022_chart_files"
down_revision: str | None = "0021_risk_life"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chart_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("data_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("file_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "subject", "data_hash", name="uq_chart_file"),
    )


def downgrade() -> None:
    op.drop_table("chart_file")
