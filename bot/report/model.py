"""Report types: a reporting period, an indicator's move in it, one contract's figures, and
the portfolio of contracts one report covers, with the names of the people in it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from bot.core.progress import change_text, format_number, percent, progress
from bot.risks.model import Resilience
from bot.summary.model import CheckinCompletion


@dataclass(frozen=True, slots=True)
class Period:
    """A reporting period: whole days from `start` to `end`, both included."""

    key: str
    label: str
    start: date
    end: date

    def holds(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class IndicatorMove:
    """An indicator's first and last value within the period, against baseline and target."""

    key: str
    name: str
    unit: str
    baseline: float
    target: float
    first: float
    last: float
    count: int

    @property
    def progress(self) -> float:
        return progress(self.baseline, self.target, self.last)

    @property
    def trend_mark(self) -> str:
        if self.count < 2:
            return ""  # one value in the period: no change to tell
        unit = f" {self.unit}" if self.unit else ""
        return change_text(self.baseline, self.target, self.first, self.last, unit)

    def text(self) -> str:
        n = format_number
        values = f"{self.count} value{'s' if self.count != 1 else ''}"
        return (
            f"{self.key}: {n(self.first)} -> {n(self.last)} ({values}; baseline "
            f"{n(self.baseline)}, target {n(self.target)}, {percent(self.progress)} of the way)"
        )


# Names by user id; None: nobody could be asked (no token), and people appear by id.
Names = Mapping[str, str] | None
NO_NAME = "someone Slack could not name"


def name_of(user_id: str | None, names: Names) -> str:
    """A person as a report shows them: their Slack name, never their id."""
    if not user_id:
        return "nobody"
    return (names or {}).get(user_id) or NO_NAME


@dataclass(frozen=True, slots=True)
class ReviewLine:
    """An alignment review submitted in the period: who, in which part, and what came of it."""

    period_key: str
    reviewer: str
    role: str
    outcome: str

    def text(self, names: Names = None, *, by_id: bool = False) -> str:
        who = self.reviewer if by_id else name_of(self.reviewer, names)
        return f"{self.period_key} by {who} ({self.role}): {self.outcome}"


@dataclass(frozen=True, slots=True)
class GroupCount:
    """How many strengths and development areas one rater group gave on one expectation."""

    label: str  # "Self", "Peers", "Direct reports", "Sponsor", …
    strengths: int
    development: int

    def text(self) -> str:
        def counted(n: int, one: str, many: str) -> str:
            return f"{n} {one if n == 1 else many}"

        return (
            f"{self.label}: {counted(self.strengths, 'strength', 'strengths')}, "
            f"{counted(self.development, 'development area', 'development areas')}"
        )


@dataclass(frozen=True, slots=True)
class ExpectationFeedback:
    """The 360 of one expectation in the period: the leader's self view beside each group's,
    as counts (a report may go to a channel: the words stay in the summary)."""

    key: str | None
    text: str
    groups: tuple[GroupCount, ...]

    @property
    def label(self) -> str:
        if self.key is None:
            return "No expectation named"
        return f"{self.key} {self.text}".strip()

    def line(self) -> str:
        return f"{self.label} — " + "; ".join(group.text() for group in self.groups)


@dataclass
class ContractReport:
    contract_id: int
    title: str
    leader: str
    sponsor: str
    status: str
    version: int
    owner: str | None = None
    moves: list[IndicatorMove] = field(default_factory=list)
    unmeasured: list[str] = field(default_factory=list)
    met: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    checkins: CheckinCompletion = field(default_factory=lambda: CheckinCompletion(0, 0))
    proposed: int = 0
    applied: int = 0
    rejected: int = 0
    lapsed: int = 0
    imports: int = 0
    # One line per alignment review submitted in the period: who, and what came of each item.
    reviews: list[ReviewLine] = field(default_factory=list)
    # Risks raised and resolved up to the period's end, missed milestones' recovery.
    resilience: Resilience | None = None
    # Risks raised in the period, and risks resolved in it.
    risks_opened: int = 0
    risks_resolved: int = 0
    # Titles of the lessons its leader shared by name in the period.
    lessons: list[str] = field(default_factory=list)
    # The 360 in the period, per expectation: self beside peers, reports, sponsor, others.
    feedback: list[ExpectationFeedback] = field(default_factory=list)

    @property
    def people(self) -> list[str]:
        return [p for p in (self.leader, self.sponsor, self.owner) if p]


@dataclass(frozen=True, slots=True)
class Totals:
    """The portfolio's figures, summed over its contracts."""

    contracts: int
    indicators_moved: int
    milestones_met: int
    milestones_missed: int
    checkins_answered: int
    checkins_expected: int
    risks_opened: int
    risks_resolved: int
    amendments_applied: int
    lessons: int

    @property
    def checkins(self) -> CheckinCompletion:
        return CheckinCompletion(self.checkins_answered, self.checkins_expected)

    def lines(self) -> list[str]:
        """The totals as short lines, the same on the cover, in Slack and in the CSV."""
        return [
            f"Contracts: {self.contracts}",
            f"Indicators measured: {self.indicators_moved}",
            f"Milestones: {self.milestones_met} met, {self.milestones_missed} missed",
            f"Check-ins: {self.checkins.text}",
            f"Risks: {self.risks_opened} raised, {self.risks_resolved} resolved",
            f"Amendments applied: {self.amendments_applied}",
            f"Lessons shared: {self.lessons}",
        ]


def totals_of(reports: Sequence[ContractReport]) -> Totals:
    return Totals(
        contracts=len(reports),
        indicators_moved=sum(len(r.moves) for r in reports),
        milestones_met=sum(len(r.met) for r in reports),
        milestones_missed=sum(len(r.missed) for r in reports),
        checkins_answered=sum(r.checkins.answered for r in reports),
        checkins_expected=sum(r.checkins.expected for r in reports),
        risks_opened=sum(r.risks_opened for r in reports),
        risks_resolved=sum(r.risks_resolved for r in reports),
        amendments_applied=sum(r.applied for r in reports),
        lessons=sum(len(r.lessons) for r in reports),
    )


@dataclass
class Portfolio:
    """One report: the period, the contracts it covers, when it was made, who is who."""

    period: Period
    reports: list[ContractReport]
    today: date
    names: Mapping[str, str] = field(default_factory=dict)
    # The charts of each contract's indicators measured in the period, as PNG bytes.
    images: dict[int, list[tuple[str, bytes]]] = field(default_factory=dict)

    @property
    def totals(self) -> Totals:
        return totals_of(self.reports)
