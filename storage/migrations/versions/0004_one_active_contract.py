"""one active contract per leader: a partial unique index on contract(leader_id)

Before the index is made, a leader with several active contracts keeps the one every lookup
already used (the most recently updated; the newest id on a tie), so nobody sees a different
contract after the upgrade. The others go back to draft, nothing in them is deleted, and each
gets a `contract.returned_to_draft` audit event naming the contract that stayed active.

Revision ID: 0004_one_active_contract
Revises: 0009_fidelity
Create Date: 2026-12-03 07:45:57.317102
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0004_one_active_contract"
down_revision: str | None = "0009_fidelity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ONE_ACTIVE = sa.text("status = 'active'")

contract = sa.table(
    "contract",
    sa.column("id", sa.Integer()),
    sa.column("leader_id", sa.String()),
    sa.column("status", sa.String()),
    sa.column("updated_at", storage.types.UTCDateTime(timezone=True)),
)
audit_event = sa.table(
    "audit_event",
    sa.column("contract_id", sa.Integer()),
    sa.column("actor_id", sa.String()),
    sa.column("action", sa.String()),
    sa.column("detail", sa.JSON()),
    sa.column("created_at", storage.types.UTCDateTime(timezone=True)),
)


def _return_extra_actives_to_draft() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(contract.c.id, contract.c.leader_id)
        .where(contract.c.status == "active")
        .order_by(contract.c.leader_id, contract.c.updated_at.desc(), contract.c.id.desc())
    ).all()
    kept: dict[str, int] = {}
    now = datetime.now(UTC)
    for contract_id, leader_id in rows:
        if leader_id not in kept:
            kept[leader_id] = contract_id
            continue
        bind.execute(contract.update().where(contract.c.id == contract_id).values(status="draft"))
        bind.execute(
            audit_event.insert().values(
                contract_id=contract_id,
                actor_id=None,
                action="contract.returned_to_draft",
                detail={
                    "reason": "a leader has one active contract at a time",
                    "active_contract": kept[leader_id],
                },
                created_at=now,
            )
        )


def upgrade() -> None:
    _return_extra_actives_to_draft()
    op.create_index(
        "uq_contract_one_active",
        "contract",
        ["leader_id"],
        unique=True,
        sqlite_where=ONE_ACTIVE,
        postgresql_where=ONE_ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_contract_one_active", table_name="contract")
