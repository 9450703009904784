"""Check-in types: a period's plan, the answers a modal gives, what a save or history says."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.calendar import checkin_day
from storage.models import (
    CheckIn,
    Contract,
    DevelopmentActivity,
    Evidence,
    Expectation,
    Measurement,
    Milestone,
    Risk,
    SuccessIndicator,
)

PROMPT = "checkin_prompt"
REMINDER = "checkin_reminder"
SPONSOR_HELP = "sponsor_help"
UNDELIVERABLE_NOTICE = "undeliverable_notice"
SKIP_REASONS = ("leave", "sick", "other")
ANSWERED, SKIPPED = "answered", "skipped"
HISTORY_PERIODS = 8
MILESTONE_DAYS = 14
CHECKIN_SOURCE = "check-in"


@dataclass
class IndicatorAsk:
    indicator: SuccessIndicator
    last: float | None
    answered: Measurement | None = None
    # The latest value from before this check-in: shown beside the input, and what
    # "no change" confirms. None when the indicator has no value yet.
    previous: Measurement | None = None


@dataclass
class Plan:
    """A contract's check-in for one period: what to ask, what was answered, in which zone."""

    contract: Contract
    period: str
    zone: ZoneInfo
    indicators: list[IndicatorAsk]
    activities: list[DevelopmentActivity]
    milestones: list[Milestone]
    expectations: list[Expectation]
    all_indicators: list[SuccessIndicator]
    checkin: CheckIn | None = None
    risks: list[Risk] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    # Set when the period's week is over but it can still be answered: until when.
    open_until: datetime | None = None
    # Open risks raised before this check-in: asked "still open?" on its last page.
    carried: list[Risk] = field(default_factory=list)
    # The leader's today when the plan was loaded for them (a noticed-on date's limit).
    today: date | None = None

    @property
    def contract_id(self) -> int:
        return self.contract.id or 0

    @property
    def answered(self) -> bool:
        return self.checkin is not None and self.checkin.status == ANSWERED

    @property
    def skipped(self) -> bool:
        return self.checkin is not None and self.checkin.status == SKIPPED

    @property
    def day(self) -> date:
        return checkin_day(self.contract, self.period)

    def indicator(self, key: str) -> IndicatorAsk | None:
        return next((i for i in self.indicators if i.indicator.key == key), None)

    def carried_risk(self, risk_id: int) -> Risk | None:
        return next((r for r in self.carried if r.id == risk_id), None)

    def activity(self, key: str) -> DevelopmentActivity | None:
        return next((a for a in self.activities if a.key == key), None)

    def item_keys(self) -> dict[str, set[str]]:
        """The items evidence may be tied to."""
        return {
            "indicator": {i.key for i in self.all_indicators},
            "activity": {a.key for a in self.activities},
            "expectation": {e.key for e in self.expectations},
        }


@dataclass(frozen=True)
class Opening:
    """A check-in that may be opened, before its plan is loaded: enough to open its modal."""

    contract: Contract
    period: str
    zone: ZoneInfo
    open_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class NotYours:
    """Why there is no check-in for this person now: one sentence for a reply or a modal."""

    text: str


NO_ACTIVE_CONTRACT = (
    "You don't have an active leadership contract, so there is no check-in for you to fill in."
)


@dataclass
class EvidenceAnswer:
    item_type: str
    item_key: str
    url: str | None
    note: str


@dataclass
class RiskAnswer:
    text: str
    needs_help: bool
    noticed_on: date | None = None
    owner: str | None = None

    def to_json(self) -> dict[str, Any]:
        noticed = self.noticed_on.isoformat() if self.noticed_on else None
        return {**vars(self), "noticed_on": noticed}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RiskAnswer:
        noticed = data.get("noticed_on")
        return cls(
            text=data["text"],
            needs_help=bool(data["needs_help"]),
            noticed_on=date.fromisoformat(noticed) if noticed else None,
            owner=data.get("owner"),
        )


@dataclass
class RiskUpdate:
    """A carried risk's "still open?" answer: open, mitigating or resolved, with a note."""

    status: str
    note: str


@dataclass
class Answers:
    """What a check-in modal (or its pages together) says; JSON-able for a draft."""

    values: dict[str, float | None] = field(default_factory=dict)
    activities: dict[str, tuple[str, int]] = field(default_factory=dict)
    evidence: list[EvidenceAnswer | None] = field(default_factory=list)
    wins: str = ""
    risks: list[RiskAnswer | None] = field(default_factory=list)
    reflection: str = ""
    confidence: int | None = None
    closing: bool = False  # the page with wins, risks, reflection and confidence was answered
    confirmed: list[str] = field(default_factory=list)  # indicators ticked "no change"
    updates: dict[int, RiskUpdate] = field(default_factory=dict)  # carried risks, by id

    def merge(self, other: Answers) -> Answers:
        merged = Answers(
            values={**self.values, **other.values},
            activities={**self.activities, **other.activities},
            confirmed=[k for k in self.confirmed if k not in other.values] + other.confirmed,
        )
        closing = other if other.closing else self
        merged.evidence, merged.wins, merged.risks = closing.evidence, closing.wins, closing.risks
        merged.reflection, merged.confidence = closing.reflection, closing.confidence
        merged.updates = closing.updates
        merged.closing = self.closing or other.closing
        return merged

    def to_json(self) -> dict[str, Any]:
        return {
            "values": self.values,
            "activities": {k: list(v) for k, v in self.activities.items()},
            "evidence": [None if e is None else vars(e) for e in self.evidence],
            "wins": self.wins,
            "risks": [None if r is None else r.to_json() for r in self.risks],
            "reflection": self.reflection,
            "confidence": self.confidence,
            "closing": self.closing,
            "confirmed": self.confirmed,
            "updates": {str(k): vars(v) for k, v in self.updates.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Answers:
        return cls(
            values={k: (None if v is None else float(v)) for k, v in data["values"].items()},
            activities={k: (str(v[0]), int(v[1])) for k, v in data["activities"].items()},
            evidence=[None if e is None else EvidenceAnswer(**e) for e in data["evidence"]],
            wins=data["wins"],
            risks=[None if r is None else RiskAnswer.from_json(r) for r in data["risks"]],
            reflection=data["reflection"],
            confidence=data["confidence"],
            closing=data["closing"],
            confirmed=[str(k) for k in data.get("confirmed") or []],
            updates={int(k): RiskUpdate(**v) for k, v in (data.get("updates") or {}).items()},
        )


@dataclass
class Saved:
    checkin: CheckIn
    edited: bool
    help_risks: list[Risk]


@dataclass(frozen=True, slots=True)
class PeriodStatus:
    period: str
    status: str  # answered, skipped, missed, open, upcoming
    confidence: int | None = None
    skip_reason: str | None = None


@dataclass(frozen=True, slots=True)
class DuePrompt:
    """A leader's prompt due for a period: its contract by id (the first run of a week holds
    one for every leader; their contracts are read a batch of sends at a time)."""

    contract_id: int
    leader_id: str
    period: str
    zone: ZoneInfo
    due_at: datetime
