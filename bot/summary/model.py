"""Summary figures: indicator and overall progress, check-in completion, missed milestones.

Pure functions of a loaded contract (`ContractBundle`), as summaries, App Home, digests and
reports show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.core.calendar import elapsed_periods
from bot.core.progress import IndicatorProgress, indicator_progress
from storage.models import MilestoneStatus, SuccessIndicator
from storage.queries.contracts import ContractBundle


@dataclass(frozen=True, slots=True)
class CheckinCompletion:
    answered: int
    expected: int

    @property
    def text(self) -> str:
        if self.expected == 0:
            return "no check-in due yet"
        share = round(100 * self.answered / self.expected)
        return f"{self.answered} of {self.expected} weekly check-ins answered ({share}%)"


def progress_of(bundle: ContractBundle, indicator: SuccessIndicator) -> IndicatorProgress:
    values = [m.value for m in bundle.measurements.get(indicator.id or 0, [])]
    return indicator_progress(indicator.baseline, indicator.target, values)


def overall_progress(bundle: ContractBundle) -> float | None:
    """Mean indicator progress, each clamped to 0..100%, or None without indicators."""
    if not bundle.indicators:
        return None
    shares = [min(max(progress_of(bundle, i).fraction, 0.0), 1.0) for i in bundle.indicators]
    return sum(shares) / len(shares)


def checkin_completion(bundle: ContractBundle, today: date) -> CheckinCompletion:
    c = bundle.contract
    due = set(elapsed_periods(c.period_start, c.period_end, c.checkin_weekday, today))
    answered = {k.period_key for k in bundle.checkins if k.status == "answered"}
    return CheckinCompletion(answered=len(due & answered), expected=len(due))


def missed_milestones(bundle: ContractBundle, today: date) -> list[str]:
    return [
        m.key
        for m in bundle.milestones
        if m.status == MilestoneStatus.missed or (m.status == "pending" and m.due < today)
    ]
