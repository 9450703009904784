"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 06:36:44.604543
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contract",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("leader_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("sponsor_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("owner_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("mission", sa.Text(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("checkin_weekday", sa.Integer(), nullable=False),
        sa.Column("checkin_time", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("checkin_timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("reminder_hours", sa.Integer(), nullable=False),
        sa.Column("feedback_cadence", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("anonymity_threshold", sa.Integer(), nullable=False),
        sa.Column("digest_cadence", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("digest_weekday", sa.Integer(), nullable=False),
        sa.Column("digest_time", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("reporting", sa.Text(), nullable=False),
        sa.Column(
            "recognition_channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True
        ),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("leader_id", "title", name="uq_contract_leader_title"),
    )
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contract_leader_id"), ["leader_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contract_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contract_sponsor_id"), ["sponsor_id"], unique=False)

    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("period_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("claimed_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("slack_channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("slack_ts", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "kind", "contract_id", "recipient_id", "period_key", name="uq_delivery_once"
        ),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_status", ["status", "kind"], unique=False)

    op.create_table(
        "amendment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("proposer_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("item_type", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("item_key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("amendment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_amendment_contract_id"), ["contract_id"], unique=False)

    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_event_contract_id"), ["contract_id"], unique=False
        )

    op.create_table(
        "barrier",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("risk", sa.Text(), nullable=False),
        sa.Column("contingency", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("barrier", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_barrier_contract_id"), ["contract_id"], unique=False)

    op.create_table(
        "checkin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("period_key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("skip_reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("confidence", sa.Integer(), nullable=True),
        sa.Column("wins", sa.Text(), nullable=False),
        sa.Column("reflection", sa.Text(), nullable=False),
        sa.Column("submitted_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "period_key", name="uq_checkin_period"),
    )
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkin_contract_id"), ["contract_id"], unique=False)

    op.create_table(
        "contract_person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "role", "user_id", name="uq_contract_person"),
    )
    with op.batch_alter_table("contract_person", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contract_person_contract_id"), ["contract_id"], unique=False
        )
        batch_op.create_index("ix_contract_person_user", ["user_id", "role"], unique=False)

    op.create_table(
        "development_activity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("modality", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("expectation_key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("start", sa.Date(), nullable=True),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("demonstration", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "key", name="uq_activity_key"),
    )
    with op.batch_alter_table("development_activity", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_development_activity_contract_id"), ["contract_id"], unique=False
        )

    op.create_table(
        "expectation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "key", name="uq_expectation_key"),
    )
    with op.batch_alter_table("expectation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_expectation_contract_id"), ["contract_id"], unique=False
        )

    op.create_table(
        "feedback_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("reviewer_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("expectation_key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("feedback_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feedback_request_contract_id"), ["contract_id"], unique=False
        )

    op.create_table(
        "milestone",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("indicator_key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("activity_key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("decided_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("missed_count", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "key", name="uq_milestone_key"),
    )
    with op.batch_alter_table("milestone", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_milestone_contract_id"), ["contract_id"], unique=False)

    op.create_table(
        "resource",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_resource_contract_id"), ["contract_id"], unique=False)

    op.create_table(
        "success_indicator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("unit", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("direction", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("cadence", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "key", name="uq_indicator_key"),
    )
    with op.batch_alter_table("success_indicator", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_success_indicator_contract_id"), ["contract_id"], unique=False
        )

    op.create_table(
        "amendment_approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("amendment_id", sa.Integer(), nullable=False),
        sa.Column("approver_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["amendment_id"], ["amendment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("amendment_id", "approver_id", name="uq_amendment_approver"),
    )
    with op.batch_alter_table("amendment_approval", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_amendment_approval_amendment_id"), ["amendment_id"], unique=False
        )

    op.create_table(
        "contract_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("amendment_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["amendment_id"],
            ["amendment.id"],
        ),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "version", name="uq_contract_version"),
    )
    with op.batch_alter_table("contract_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contract_version_contract_id"), ["contract_id"], unique=False
        )

    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("item_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("item_key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("added_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("checkin_id", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["checkin_id"], ["checkin.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.create_index(
            "ix_evidence_item", ["contract_id", "item_type", "item_key"], unique=False
        )

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("expectation_key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("polarity", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("situation", sa.Text(), nullable=False),
        sa.Column("behaviour", sa.Text(), nullable=False),
        sa.Column("impact", sa.Text(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("author_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("author_hash", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("window_key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("released_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["request_id"], ["feedback_request.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_author_hash"), ["author_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_contract_id"), ["contract_id"], unique=False)

    op.create_table(
        "measurement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("indicator_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("measured_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("recorded_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("checkin_id", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["checkin_id"], ["checkin.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["indicator_id"], ["success_indicator.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.create_index(
            "ix_measurement_indicator_time", ["indicator_id", "measured_at"], unique=False
        )

    op.create_table(
        "risk",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("needs_sponsor_help", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("raised_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["checkin_id"], ["checkin.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("risk", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_risk_contract_id"), ["contract_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("risk", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_contract_id"))

    op.drop_table("risk")
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.drop_index("ix_measurement_indicator_time")

    op.drop_table("measurement")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_contract_id"))
        batch_op.drop_index(batch_op.f("ix_feedback_author_hash"))

    op.drop_table("feedback")
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_index("ix_evidence_item")

    op.drop_table("evidence")
    with op.batch_alter_table("contract_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_version_contract_id"))

    op.drop_table("contract_version")
    with op.batch_alter_table("amendment_approval", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_amendment_approval_amendment_id"))

    op.drop_table("amendment_approval")
    with op.batch_alter_table("success_indicator", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_success_indicator_contract_id"))

    op.drop_table("success_indicator")
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resource_contract_id"))

    op.drop_table("resource")
    with op.batch_alter_table("milestone", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_milestone_contract_id"))

    op.drop_table("milestone")
    with op.batch_alter_table("feedback_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_request_contract_id"))

    op.drop_table("feedback_request")
    with op.batch_alter_table("expectation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_expectation_contract_id"))

    op.drop_table("expectation")
    with op.batch_alter_table("development_activity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_development_activity_contract_id"))

    op.drop_table("development_activity")
    with op.batch_alter_table("contract_person", schema=None) as batch_op:
        batch_op.drop_index("ix_contract_person_user")
        batch_op.drop_index(batch_op.f("ix_contract_person_contract_id"))

    op.drop_table("contract_person")
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_contract_id"))

    op.drop_table("checkin")
    with op.batch_alter_table("barrier", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_barrier_contract_id"))

    op.drop_table("barrier")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_contract_id"))

    op.drop_table("audit_event")
    with op.batch_alter_table("amendment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_amendment_contract_id"))

    op.drop_table("amendment")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_status")

    op.drop_table("delivery")
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_sponsor_id"))
        batch_op.drop_index(batch_op.f("ix_contract_owner_id"))
        batch_op.drop_index(batch_op.f("ix_contract_leader_id"))

    op.drop_table("contract")
