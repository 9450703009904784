"""SQLModel tables for the whole contract domain (see DOMAIN.md).

Enumerated values are stored as short strings and validated in the domain layer, so adding
a value never needs a database enum migration. Timestamps are UTC-aware (`UTCDateTime`).
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


class ContractStatus(StrEnum):
    draft = "draft"
    active = "active"
    closed = "closed"


class Role(StrEnum):
    """A person's part in a contract; `approver`, `escalation`, `reviewer`, `report_reader`
    and the rater groups may be many.

    `peer`, `direct_report` and `stakeholder` are reviewers whose relationship to the leader
    the contract states (its rater groups); a plain `reviewer`'s is asked when they give.
    """

    leader = "leader"
    sponsor = "sponsor"
    owner = "owner"
    approver = "approver"
    escalation = "escalation"
    reviewer = "reviewer"
    # Named by the governance: may ask for the period report, and gets it by DM on its
    # cadence when the governance names no report channel.
    report_reader = "report_reader"
    peer = "peer"
    direct_report = "direct_report"
    stakeholder = "stakeholder"


class ActivityStatus(StrEnum):
    not_started = "not_started"
    in_progress = "in_progress"
    done = "done"
    blocked = "blocked"


class MilestoneStatus(StrEnum):
    pending = "pending"
    met = "met"
    missed = "missed"


class DeliveryStatus(StrEnum):
    scheduled = "scheduled"  # waiting for its due_at (a reminder, a snoozed prompt)
    claimed = "claimed"
    sent = "sent"
    failed = "failed"
    undeliverable = "undeliverable"
    cancelled = "cancelled"  # no longer needed (the check-in was answered or skipped)
    expired = "expired"  # still not sent when it stopped being useful (`expires_at`): given up


def _ts(**kwargs: Any) -> Any:
    """A UTC-aware timestamp column, set to now on insert."""
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kwargs)


RANDOM_ID_MAX = 2**31 - 2  # the largest id a 32-bit integer column takes, less one


def random_row_id() -> int:
    """A random id for a row whose position among others must not show when it was made."""
    return secrets.randbelow(RANDOM_ID_MAX) + 1


def _json(default: Any = None) -> Any:
    if default is None:
        return Field(default=None, sa_column=Column(JSON, nullable=True))
    return Field(default_factory=lambda: type(default)(), sa_column=Column(JSON, nullable=False))


def _text(nullable: bool = False) -> Any:
    return Field(default=None if nullable else "", sa_column=Column(Text, nullable=nullable))


ONE_ACTIVE = text("status = 'active'")


class Contract(SQLModel, table=True):
    __tablename__ = "contract"
    __table_args__ = (
        UniqueConstraint("leader_id", "title", name="uq_contract_leader_title"),
        # A leader has at most one active contract, whoever activates one and however fast.
        Index(
            "uq_contract_one_active",
            "leader_id",
            unique=True,
            sqlite_where=ONE_ACTIVE,
            postgresql_where=ONE_ACTIVE,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    leader_id: str = Field(max_length=32, index=True)
    sponsor_id: str = Field(max_length=32, index=True)
    owner_id: str | None = Field(default=None, max_length=32, index=True)
    status: str = Field(default=ContractStatus.draft, max_length=16)
    version: int = 1
    mission: str = _text()
    period_start: date
    period_end: date
    checkin_weekday: int = Field(default=4, description="0 = Monday ... 6 = Sunday")
    checkin_time: str = Field(default="15:00", max_length=5)
    checkin_timezone: str | None = Field(default=None, max_length=64)
    reminder_hours: int = 24
    feedback_cadence: str | None = Field(default=None, max_length=16)
    anonymity_threshold: int = 3
    digest_cadence: str = Field(default="monthly", max_length=16)
    digest_weekday: int = 0
    digest_time: str = Field(default="09:00", max_length=5)
    reporting: str = _text()
    # The period report: monthly, quarterly or yearly (None: not sent on a schedule), posted
    # to this channel, or else by DM to the report readers.
    report_cadence: str | None = Field(default=None, max_length=16)
    report_channel: str | None = Field(default=None, max_length=32)
    review_cadence: str = Field(default="quarterly", max_length=16)
    # An open risk that needs help escalates to the escalation contacts after this many days.
    escalation_days: int = 14
    recognition_channel: str | None = Field(default=None, max_length=32)
    created_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    # How a closed contract ended; the leader's closing reflection may come before it closes.
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=32)
    close_reason: str | None = _text(nullable=True)
    closing_reflection: str | None = _text(nullable=True)
    superseded_by: int | None = None  # the contract that replaced this one
    # The contract this one continues: a renewal, or a contract that replaced the leader's
    # active one on agreement (no foreign key: a discarded renewal draft leaves no trace).
    replaces_contract_id: int | None = None
    # A draft sent for agreement: when and by whom, the version of its terms the parties are
    # asked to agree to (0 until sent) and the fingerprint of those terms, so any change to
    # the draft is noticed and asks them again.
    agreement_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    agreement_sent_by: str | None = Field(default=None, max_length=32)
    terms_version: int = 0
    terms_fingerprint: str | None = Field(default=None, max_length=64)
    # On agreement, close the leader's active contract and take its place.
    replaces_current: bool = False


class ContractPerson(SQLModel, table=True):
    """Who holds which many-valued role (approver, escalation, reviewer) in a contract."""

    __tablename__ = "contract_person"
    __table_args__ = (
        UniqueConstraint("contract_id", "role", "user_id", name="uq_contract_person"),
        Index("ix_contract_person_user", "user_id", "role"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    role: str = Field(max_length=16)
    user_id: str = Field(max_length=32)
    position: int = 0


class Expectation(SQLModel, table=True):
    __tablename__ = "expectation"
    __table_args__ = (UniqueConstraint("contract_id", "key", name="uq_expectation_key"),)

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    key: str = Field(max_length=16)
    kind: str = Field(max_length=16)
    text: str = _text()
    position: int = 0


class DevelopmentActivity(SQLModel, table=True):
    __tablename__ = "development_activity"
    __table_args__ = (UniqueConstraint("contract_id", "key", name="uq_activity_key"),)

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    key: str = Field(max_length=16)
    title: str = Field(max_length=300)
    modality: str = Field(max_length=24)
    expectation_key: str | None = Field(default=None, max_length=16)
    start: date | None = None
    due: date
    demonstration: str = _text()
    status: str = Field(default=ActivityStatus.not_started, max_length=16)
    progress: int = 0
    position: int = 0
    updated_at: datetime = _ts()


class SuccessIndicator(SQLModel, table=True):
    __tablename__ = "success_indicator"
    __table_args__ = (UniqueConstraint("contract_id", "key", name="uq_indicator_key"),)

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    key: str = Field(max_length=16)
    name: str = Field(max_length=200)
    unit: str = Field(default="", max_length=32)
    baseline: float
    target: float
    direction: str = Field(max_length=16)
    source: str = Field(default="", max_length=200)
    cadence: str = Field(max_length=16)
    position: int = 0


class Measurement(SQLModel, table=True):
    """One value of a success indicator: the time series progress is measured on."""

    __tablename__ = "measurement"
    __table_args__ = (
        Index("ix_measurement_indicator_time", "indicator_id", "measured_at"),
        # A value the bot computed (a `north-star:` source): one per indicator and period.
        UniqueConstraint("indicator_id", "computed_period", name="uq_measurement_computed"),
    )

    id: int | None = Field(default=None, primary_key=True)
    indicator_id: int = Field(foreign_key="success_indicator.id", ondelete="CASCADE")
    value: float
    measured_at: datetime = _ts()
    source: str = Field(default="", max_length=200)
    recorded_by: str | None = Field(default=None, max_length=32)
    checkin_id: int | None = Field(default=None, foreign_key="checkin.id", ondelete="SET NULL")
    created_at: datetime = _ts()
    # The leader ticked "no change": the last value confirmed, not a new reading typed in.
    confirmed: bool = False
    # Set for a value the bot computed, not typed: the check-in period it stands for.
    computed_period: str | None = Field(default=None, max_length=16)


class Milestone(SQLModel, table=True):
    __tablename__ = "milestone"
    __table_args__ = (UniqueConstraint("contract_id", "key", name="uq_milestone_key"),)

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    key: str = Field(max_length=16)
    title: str = Field(max_length=300)
    due: date
    indicator_key: str | None = Field(default=None, max_length=16)
    threshold: float | None = None
    activity_key: str | None = Field(default=None, max_length=16)
    status: str = Field(default=MilestoneStatus.pending, max_length=16)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    missed_count: int = 0
    position: int = 0
    # When an accepted amendment last set `due` (null: set with the contract itself).
    due_set_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Resource(SQLModel, table=True):
    __tablename__ = "resource"

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=16)
    text: str = _text()
    position: int = 0


class Barrier(SQLModel, table=True):
    __tablename__ = "barrier"

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    risk: str = _text()
    contingency: str = _text()
    position: int = 0


class CheckIn(SQLModel, table=True):
    """A leader's answer (or skip) for one check-in period of a contract."""

    __tablename__ = "checkin"
    __table_args__ = (UniqueConstraint("contract_id", "period_key", name="uq_checkin_period"),)

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    period_key: str = Field(max_length=16)
    status: str = Field(default="answered", max_length=16)
    skip_reason: str | None = Field(default=None, max_length=32)
    confidence: int | None = None
    wins: str = _text()
    reflection: str = _text()
    submitted_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class CheckInReply(SQLModel, table=True):
    """A reader's answer to a leader's check-in: threaded under its prompt, kept with it.

    `request_key` is the view submission that wrote it (view id and hash): a replay or a
    double click writes nothing more."""

    __tablename__ = "checkin_reply"
    __table_args__ = (UniqueConstraint("request_key", name="uq_checkin_reply_request"),)

    id: int | None = Field(default=None, primary_key=True)
    checkin_id: int = Field(foreign_key="checkin.id", ondelete="CASCADE", index=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE")
    author_id: str = Field(max_length=32)
    text: str = _text()
    request_key: str = Field(max_length=200)
    created_at: datetime = _ts()


class CheckInReplyRisk(SQLModel, table=True):
    """The risk a reply answers, when it answers one raised in its check-in."""

    __tablename__ = "checkin_reply_risk"

    reply_id: int = Field(foreign_key="checkin_reply.id", ondelete="CASCADE", primary_key=True)
    risk_id: int = Field(foreign_key="risk.id", ondelete="CASCADE", index=True)


class CheckInNudge(SQLModel, table=True):
    """The one friendly reminder about a missed check-in week: who sent it, and when."""

    __tablename__ = "checkin_nudge"
    __table_args__ = (UniqueConstraint("contract_id", "period_key", name="uq_checkin_nudge"),)

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE")
    period_key: str = Field(max_length=16)
    nudged_by: str = Field(max_length=32)
    created_at: datetime = _ts()


class Risk(SQLModel, table=True):
    """A risk or blocker a leader raised, possibly asking the sponsor for help."""

    __tablename__ = "risk"

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    checkin_id: int | None = Field(default=None, foreign_key="checkin.id", ondelete="SET NULL")
    text: str = _text()
    needs_sponsor_help: bool = False
    status: str = Field(default="open", max_length=16)  # open | mitigating | resolved
    raised_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = _ts()
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When the leader first saw it (asked in the check-in), and who looks after it.
    noticed_on: date | None = None
    owner_id: str | None = Field(default=None, max_length=32)
    resolution_note: str | None = _text(nullable=True)
    resolved_by: str | None = Field(default=None, max_length=32)


class Evidence(SQLModel, table=True):
    """A link or note supporting one indicator, activity or expectation."""

    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_item", "contract_id", "item_type", "item_key"),)

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE")
    item_type: str = Field(max_length=16)
    item_key: str = Field(max_length=16)
    url: str | None = Field(default=None, max_length=2000)
    note: str = _text()
    excerpt: str = _text()
    source: str = Field(default="command", max_length=16)
    added_by: str | None = Field(default=None, max_length=32)
    checkin_id: int | None = Field(default=None, foreign_key="checkin.id", ondelete="SET NULL")
    created_at: datetime = _ts()


class EvidenceSource(SQLModel, table=True):
    """The message an "Add as evidence" shortcut was used on, as Slack's signed payload named
    it. The modal carries only `token`; its submission adds this message, and only once."""

    __tablename__ = "evidence_source"

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(max_length=64, unique=True)
    user_id: str = Field(max_length=32)
    channel: str = Field(max_length=32)
    message_ts: str = Field(max_length=32)
    excerpt: str = _text()
    permalink: str | None = Field(default=None, max_length=2000)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = _ts(index=True)


class Feedback(SQLModel, table=True):
    """Situation-behaviour-impact feedback. An anonymous entry keeps no author id.

    Ids are random, not a sequence: an anonymous entry's id must not tell when it came
    between named entries whose times are exact.
    """

    __tablename__ = "feedback"

    id: int | None = Field(default_factory=random_row_id, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    expectation_key: str | None = Field(default=None, max_length=16)
    polarity: str = Field(max_length=16)
    situation: str = _text()
    behaviour: str = _text()
    impact: str = _text()
    anonymous: bool = False
    author_id: str | None = Field(default=None, max_length=32)
    author_hash: str | None = Field(default=None, max_length=128, index=True)
    request_id: int | None = Field(
        default=None, foreign_key="feedback_request.id", ondelete="SET NULL"
    )
    window_key: str = Field(default="", max_length=16)
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = _ts()
    # The giver's relationship to the leader (peer, direct_report, sponsor, stakeholder, self);
    # None for entries given before rater groups.
    relation: str | None = Field(default=None, max_length=16)
    # The group an anonymous entry was released in (its own, or `others` when groups below
    # the threshold were merged): fixed at release, so no later view regroups it.
    released_as: str | None = Field(default=None, max_length=16)


class FeedbackAck(SQLModel, table=True):
    """The leader's acknowledgement of one entry shown to them: who and when, once."""

    __tablename__ = "feedback_ack"

    feedback_id: int = Field(foreign_key="feedback.id", ondelete="CASCADE", primary_key=True)
    acknowledged_by: str = Field(max_length=32)
    acknowledged_at: datetime = _ts()


class FeedbackActivity(SQLModel, table=True):
    """The amendment a leader proposed from one entry (*Make it an activity*): one live
    proposal per entry; a rejected or stale one is replaced by the next."""

    __tablename__ = "feedback_activity"

    feedback_id: int = Field(foreign_key="feedback.id", ondelete="CASCADE", primary_key=True)
    amendment_id: int = Field(foreign_key="amendment.id", ondelete="CASCADE", index=True)
    proposed_at: datetime = _ts()


class FeedbackRequest(SQLModel, table=True):
    __tablename__ = "feedback_request"

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    requester_id: str | None = Field(default=None, max_length=32)
    reviewer_id: str = Field(max_length=32)
    expectation_key: str | None = Field(default=None, max_length=16)
    status: str = Field(default="open", max_length=16)
    batch: str = Field(default="", max_length=40, index=True)
    created_at: datetime = _ts()
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Amendment(SQLModel, table=True):
    """A proposed change to an active contract; applied once every approver accepts."""

    __tablename__ = "amendment"

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    proposer_id: str | None = Field(default=None, max_length=32)
    item_type: str = Field(max_length=24)
    item_key: str | None = Field(default=None, max_length=16)
    before: dict[str, Any] | None = _json()
    after: dict[str, Any] | None = _json()
    rationale: str = _text()
    status: str = Field(default="pending", max_length=16)
    base_version: int
    created_at: datetime = _ts()
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decision_reason: str = _text()


class AlignmentReview(SQLModel, table=True):
    """One person's strategic-alignment review of a contract for one review period: each
    expectation and indicator kept, sent to amend or retired, with notes (`choices`)."""

    __tablename__ = "alignment_review"
    __table_args__ = (
        UniqueConstraint("contract_id", "period_key", "reviewer_id", name="uq_alignment_review"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    period_key: str = Field(max_length=16)
    reviewer_id: str = Field(max_length=32)
    role: str = Field(max_length=16)
    # [{"kind": "expectation", "key": "E1", "choice": "keep", "note": "", "amendment": 4}]
    choices: list[dict[str, Any]] = _json([])
    submitted_at: datetime = _ts()


class AmendmentApproval(SQLModel, table=True):
    __tablename__ = "amendment_approval"
    __table_args__ = (
        UniqueConstraint("amendment_id", "approver_id", name="uq_amendment_approver"),
    )

    id: int | None = Field(default=None, primary_key=True)
    amendment_id: int = Field(foreign_key="amendment.id", ondelete="CASCADE", index=True)
    approver_id: str = Field(max_length=32)
    decision: str = Field(max_length=16)
    reason: str = _text()
    decided_at: datetime = _ts()


class Agreement(SQLModel, table=True):
    """A party's agreement (leader, sponsor or owner) to one version of a draft's terms."""

    __tablename__ = "agreement"
    __table_args__ = (
        UniqueConstraint("contract_id", "terms_version", "user_id", name="uq_agreement_once"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    terms_version: int
    user_id: str = Field(max_length=32)
    # "slack" (the DM's Agree, or sending it), or "outside" (`contract import --agreed`).
    via: str = Field(default="slack", max_length=16)
    agreed_at: datetime = _ts()


class ContractVersion(SQLModel, table=True):
    """A readable snapshot of every version a contract has had."""

    __tablename__ = "contract_version"
    __table_args__ = (UniqueConstraint("contract_id", "version", name="uq_contract_version"),)

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    version: int
    snapshot: dict[str, Any] = _json({})
    reason: str = Field(default="", max_length=200)
    amendment_id: int | None = Field(default=None, foreign_key="amendment.id")
    created_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = _ts()


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int | None = Field(
        default=None, foreign_key="contract.id", ondelete="CASCADE", index=True
    )
    actor_id: str | None = Field(default=None, max_length=32)
    action: str = Field(max_length=64)
    detail: dict[str, Any] = _json({})
    created_at: datetime = _ts()


class SlackRequest(SQLModel, table=True):
    """A Slack request that wrote something, by the key its payload gives (view id and hash,
    trigger id, event id): the primary key makes a replay, a retry or a double click write
    nothing twice, and `answer` lets the repeat get the first request's answer."""

    __tablename__ = "slack_request"

    key: str = Field(primary_key=True, max_length=255)
    answer: dict[str, Any] | None = _json()
    created_at: datetime = _ts(index=True)


class SlackUser(SQLModel, table=True):
    """What `users.info` said about a person, cached: their time zone (or, without one, their
    UTC offset) for local-time prompts, and whether a message can reach them at all."""

    __tablename__ = "slack_user"

    user_id: str = Field(primary_key=True, max_length=32)
    tz: str | None = Field(default=None, max_length=64)
    fetched_at: datetime = _ts()
    tz_offset: int | None = None  # seconds east of UTC, used when `tz` is null
    deleted: bool = False  # a deactivated account: Slack still takes a DM, nobody reads it
    is_bot: bool = False


class CheckInDraft(SQLModel, table=True):
    """Answers from the earlier pages of a long check-in modal, until its last page is saved."""

    __tablename__ = "checkin_draft"
    __table_args__ = (
        UniqueConstraint("contract_id", "period_key", "user_id", name="uq_checkin_draft"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE", index=True)
    period_key: str = Field(max_length=16)
    user_id: str = Field(max_length=32)
    answers: dict[str, Any] = _json({})
    updated_at: datetime = _ts()


class Delivery(SQLModel, table=True):
    """One prompt, digest or notice to one person for one period: claimed, then sent.

    `contract_id` is 0 for a delivery that spans contracts (a sponsor's digest), so the
    unique key works the same on every database (NULLs never collide).
    """

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint(
            "kind", "contract_id", "recipient_id", "period_key", name="uq_delivery_once"
        ),
        Index("ix_delivery_status", "status", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    contract_id: int = 0
    recipient_id: str = Field(max_length=32)
    period_key: str = Field(max_length=32)
    status: str = Field(default=DeliveryStatus.claimed, max_length=16)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime = _ts()
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    slack_channel: str | None = Field(default=None, max_length=32)
    slack_ts: str | None = Field(default=None, max_length=32)
    last_error: str | None = Field(default=None, max_length=200)
    payload: dict[str, Any] | None = _json()
    # Until when the message is worth sending; after it, an unsent one is given up (`expired`).
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A `failed` delivery (Slack down, a timeout) is claimed again from this time on.
    retry_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When it was first posted without the answer being known to be "not posted": before any
    # later post, Slack is asked whether the message is already there.
    attempted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReplicaState(SQLModel, table=True):
    """One row the replicas share: which process leads (runs the jobs and sends) and until
    when every sender pauses for a 429's `Retry-After`, whichever replica saw it."""

    __tablename__ = "replica_state"

    id: int = Field(primary_key=True)
    leader: str | None = Field(default=None, max_length=80)
    leader_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paused_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Heartbeat(SQLModel, table=True):
    """One row that `/healthz` writes, so a health check proves the database takes writes
    (not only that it answers a read)."""

    id: int = Field(primary_key=True)
    beat_at: datetime = _ts()


class Lesson(SQLModel, table=True):
    """A lesson a leader shared from a reflection, a missed milestone or a resolved risk.

    It outlives its contract (`contract_id` is set to NULL when the contract goes) and its
    author's erasure (`author_id` is set to NULL: `named` stays, so it says so). A lesson
    shared without a name keeps no author id, no contract and no source id: only a keyed hash
    of its author (`bot.privacy.keys`), so its author alone can find it again, and
    `source_key`, a keyed hash of its source, so one source gives one lesson. Ids are random
    and an unnamed lesson is dated to the day, as anonymous feedback is.
    """

    __tablename__ = "lesson"

    id: int | None = Field(default_factory=random_row_id, primary_key=True)
    source_kind: str = Field(max_length=16)  # checkin, milestone or risk
    source_id: int | None = None  # named lessons only
    source_key: str = Field(max_length=128, unique=True, index=True)
    contract_id: int | None = Field(
        default=None, foreign_key="contract.id", ondelete="SET NULL", index=True
    )
    named: bool = True
    author_id: str | None = Field(default=None, max_length=32, index=True)
    author_hash: str | None = Field(default=None, max_length=128, index=True)
    title: str = Field(max_length=100)
    happened: str = _text()
    takeaway: str = _text()
    theme: str | None = Field(default=None, max_length=120)
    activity_type: str | None = Field(default=None, max_length=32)
    tags: list[str] = _json([])
    tag_text: str = _text()  # theme, activity type and tags in one text, for full-text search
    created_at: datetime = _ts(index=True)


class ChartFile(SQLModel, table=True):
    """A chart uploaded to Slack, by contract, subject (an indicator's key or `confidence`) and
    the hash of the data drawn: an unchanged chart is shown again, never drawn or uploaded."""

    __tablename__ = "chart_file"
    __table_args__ = (
        UniqueConstraint("contract_id", "subject", "data_hash", name="uq_chart_file"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE")
    subject: str = Field(max_length=32)
    data_hash: str = Field(max_length=64)
    file_id: str = Field(max_length=32)
    created_at: datetime = _ts()


class ContractHistory(SQLModel, table=True):
    """A number per contract that database triggers bump on every write of what its charts
    draw (the contract, its indicators, milestones, measurements and check-ins): equal
    numbers, equal charts. Written by the triggers only (migration `0027_chart_history`)."""

    __tablename__ = "contract_history"

    contract_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    version: int


class ChartSet(SQLModel, table=True):
    """The charts drawn of a contract at one number of its history (`ContractHistory`) and
    drawing version: each chart's subject, title, alt text and data hash, in order, so that
    a summary of an unchanged history shows them from `ChartFile` without reading a point."""

    __tablename__ = "chart_set"
    __table_args__ = (UniqueConstraint("contract_id", "history", "drawing", name="uq_chart_set"),)

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", ondelete="CASCADE")
    history: int
    drawing: int
    charts: list[dict[str, str]] = _json([])
    created_at: datetime = _ts()
