"""Summary figures: indicator and overall progress, pace, check-in completion, missed milestones.

Pure functions of a loaded contract (`ContractBundle`), as summaries, App Home, digests and
reports show them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, timedelta

from bot.core.calendar import first_weekday_on_or_after, period_key
from bot.core.progress import IndicatorProgress, indicator_progress, percent
from storage.models import MilestoneStatus, SuccessIndicator
from storage.queries.contracts import ContractBundle

# Progress within this many points of the share of the period gone is on pace.
PACE_MARGIN = 0.10


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


@dataclass(frozen=True, slots=True)
class Pace:
    """Mean progress toward the targets against the share of the contract's period gone."""

    progress: float
    elapsed: float

    @property
    def verdict(self) -> str:
        if self.progress < self.elapsed - PACE_MARGIN:
            return "behind pace"
        if self.progress > self.elapsed + PACE_MARGIN:
            return "ahead of pace"
        return "on pace"

    @property
    def text(self) -> str:
        """`37% toward targets, 45% of the period gone: behind pace`."""
        return (
            f"{percent(self.progress)} toward targets, {percent(self.elapsed)} of the period "
            f"gone: {self.verdict}"
        )


def pace(bundle: ContractBundle, today: date) -> Pace | None:
    """How far along the targets are against how far along the period is; None without
    indicators."""
    overall = overall_progress(bundle)
    if overall is None:
        return None
    c = bundle.contract
    span = (c.period_end - c.period_start).days
    gone = (today - c.period_start).days
    elapsed = min(max(gone / span, 0.0), 1.0) if span > 0 else 1.0
    return Pace(progress=overall, elapsed=elapsed)


def checkin_completion(bundle: ContractBundle, today: date) -> CheckinCompletion:
    """The contract's weekly check-ins due so far, and how many of them were answered."""
    c = bundle.contract
    return completion_between(bundle, c.period_start, c.period_end, today)


def completion_between(
    bundle: ContractBundle, start: date, end: date, today: date
) -> CheckinCompletion:
    """The weekly check-ins whose day falls from `start` to `end` and has come by `today`,
    and how many of them were answered. They are the weeks from the first such check-in day
    to the last, so a period key (`2027-W03`, which sorts as its week does) is one of them
    when it lies between theirs: worked out without writing out every week of a three-year
    contract (App Home does it for each one listed)."""
    first = first_weekday_on_or_after(start, bundle.contract.checkin_weekday)
    last = min(end, today)
    if last < first:
        return CheckinCompletion(answered=0, expected=0)
    expected = (last - first).days // 7 + 1
    low, high = period_key(first), period_key(first + timedelta(weeks=expected - 1))
    keys = bundle.answered_periods  # in order: those between are counted by two bisections
    answered = bisect_right(keys, high) - bisect_left(keys, low)
    return CheckinCompletion(answered=answered, expected=expected)


def missed_milestones(bundle: ContractBundle, today: date) -> list[str]:
    return [
        m.key
        for m in bundle.milestones
        if m.status == MilestoneStatus.missed or (m.status == "pending" and m.due < today)
    ]
