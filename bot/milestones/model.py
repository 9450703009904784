"""Milestone types: what a decision rests on, a decided milestone, and the notices' kinds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from storage.models import (
    Contract,
    DeliveryStatus,
    DevelopmentActivity,
    Measurement,
    Milestone,
    MilestoneStatus,
    SuccessIndicator,
)

MET = "milestone_met"  # the leader's recognition DM
MET_NOTE = "milestone_met_note"  # the sponsor's note
MET_POST = "milestone_met_post"  # the recognition channel's post (recipient: the channel)
MISSED = "milestone_missed"  # the leader's recalibration DM
MISSED_NOTE = "milestone_missed_note"  # the sponsor's note
ESCALATION = "milestone_escalation"  # each escalation contact, from the second miss on
SUPPORT = "milestone_support"  # the leader asked the sponsor for support, once per miss
NOTICE_KINDS = (MET, MET_NOTE, MET_POST, MISSED, MISSED_NOTE, ESCALATION)
NOTICE_WINDOW = timedelta(days=7)
ESCALATE_AT = 2
FINAL = (DeliveryStatus.sent, DeliveryStatus.undeliverable, DeliveryStatus.cancelled)


def threshold_of(milestone: Milestone, indicator: SuccessIndicator) -> float:
    return milestone.threshold if milestone.threshold is not None else indicator.target


@dataclass(frozen=True, slots=True)
class Basis:
    """What one milestone is decided on: its indicator and values, or its activity."""

    indicator: SuccessIndicator | None = None
    values: Sequence[Measurement] = ()
    activity: DevelopmentActivity | None = None

    def latest(self, until: datetime) -> float | None:
        """The latest value measured at or before `until`."""
        kept = [m for m in self.values if m.measured_at <= until]
        return kept[-1].value if kept else None


def decision_period(milestone: Milestone) -> str:
    """What names a decision in its deliveries: `M1:met:2027-03-12`, `M1:missed2`."""
    if milestone.status == MilestoneStatus.met:
        decided = milestone.decided_at.date() if milestone.decided_at else date.min
        return f"{milestone.key}:met:{decided.isoformat()}"
    return f"{milestone.key}:missed{milestone.missed_count}"


@dataclass
class Decided:
    """A decided milestone with what its notices show."""

    contract: Contract
    milestone: Milestone
    indicator: SuccessIndicator | None
    value: float | None
    activity: DevelopmentActivity | None
    escalation: list[str]

    @property
    def period(self) -> str:
        return decision_period(self.milestone)

    @property
    def met(self) -> bool:
        return self.milestone.status == MilestoneStatus.met
