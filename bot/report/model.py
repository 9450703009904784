"""Report types: a reporting period, an indicator's move in it, one contract's figures."""

from __future__ import annotations

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


@dataclass
class ContractReport:
    contract_id: int
    title: str
    leader: str
    sponsor: str
    status: str
    version: int
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
    reviews: list[str] = field(default_factory=list)
    # Risks raised and resolved up to the period's end, missed milestones' recovery.
    resilience: Resilience | None = None
