"""Risk types and the resilience figures, as pure functions of rows already loaded.

Resilience is measured three ways, never typed in: *surfacing* (days from when the leader
first saw a risk to when they raised it in a check-in), *resolution* (days from raised to
resolved) and *recovery* (after a missed milestone decided by an indicator, the days from its
due date until a later value reached its threshold, or "not yet"). A contract can name them as
success indicators with the sources in `COMPUTED_SOURCES`; their values are then recorded each
check-in period by the bot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from storage.models import (
    Contract,
    Measurement,
    Milestone,
    MilestoneStatus,
    Risk,
    SuccessIndicator,
)
from storage.queries.measurements import Reach

REPLY = "risk_reply"  # Reply beside an open risk (digest, summary): answer the leader about it
REPLY_MODAL = "risk_reply_modal"

DEFAULT_ESCALATION_DAYS = 14
MAX_ESCALATION_DAYS = 365
NOTE_MAX = 1000
RISK_ESCALATION = "risk_escalation"
CARRIED_MAX = 5  # open risks carried into a check-in modal ("Still open?")


class RiskStatus(StrEnum):
    open = "open"
    mitigating = "mitigating"
    resolved = "resolved"


STATUS_LABEL = {
    RiskStatus.open: "Still open",
    RiskStatus.mitigating: "Mitigating",
    RiskStatus.resolved: "Resolved",
}
STATUS_MARK = {
    RiskStatus.open: "🔴 open",
    RiskStatus.mitigating: "🟠 mitigating",
    RiskStatus.resolved: "✅ resolved",
}

SURFACING = "north-star:risk-surfacing-days"
RESOLUTION = "north-star:risk-resolution-days"
RECOVERY = "north-star:milestone-recovery-days"
COMPUTED_SOURCES = {
    SURFACING: "days from noticing a risk to raising it (mean)",
    RESOLUTION: "days from raising a risk to resolving it (mean)",
    RECOVERY: "days for an indicator to recover after a missed milestone (mean)",
}
COMPUTED_PREFIX = "north-star:"
COMPUTED_BY = "north-star"


@dataclass(frozen=True, slots=True)
class Resolved:
    """A resolved risk; `already`: it had been resolved before this request."""

    risk: Risk
    contract: Contract
    already: bool
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class RiskToResolve:
    risk: Risk
    contract: Contract
    zone: ZoneInfo


def is_open(risk: Risk) -> bool:
    return risk.status != RiskStatus.resolved


def needs_help(risk: Risk) -> bool:
    """A risk that asks for help: the sponsor's, or a blocker (both escalate)."""
    return risk.needs_sponsor_help


def source_problem(source: str) -> str | None:
    """A `north-star:` source the bot does not compute is a mistake worth naming."""
    text = source.strip()
    if not text.lower().startswith(COMPUTED_PREFIX) or text in COMPUTED_SOURCES:
        return None
    return f"{text} is not a figure North Star computes (use one of {', '.join(COMPUTED_SOURCES)})"


def is_computed(indicator: SuccessIndicator) -> bool:
    return indicator.source.strip() in COMPUTED_SOURCES


def raised_on(risk: Risk, zone: ZoneInfo) -> date:
    return risk.created_at.astimezone(zone).date()


def surfacing_days(risk: Risk, zone: ZoneInfo) -> int | None:
    """Days from noticed to raised; None when the noticed-on date is not known."""
    if risk.noticed_on is None:
        return None
    return max((raised_on(risk, zone) - risk.noticed_on).days, 0)


def resolution_days(risk: Risk, zone: ZoneInfo) -> int | None:
    """Days from raised to resolved; None while open."""
    if risk.resolved_at is None or risk.status != RiskStatus.resolved:
        return None
    return max((risk.resolved_at.astimezone(zone).date() - raised_on(risk, zone)).days, 0)


def age_days(risk: Risk, now: datetime) -> int:
    """Whole days since it was raised."""
    return max(int((now - risk.created_at).total_seconds() // 86400), 0)


def escalation_due(risk: Risk, now: datetime, days: int) -> bool:
    """An open risk needing help, unresolved `days` after it was raised."""
    return is_open(risk) and needs_help(risk) and age_days(risk, now) >= days


def decreasing(indicator: SuccessIndicator) -> bool:
    """Whether the indicator gets better going down: as it says, else from its target."""
    if indicator.direction in ("increase", "decrease"):
        return indicator.direction == "decrease"
    return indicator.target < indicator.baseline


def reaches(indicator: SuccessIndicator, threshold: float, value: float) -> bool:
    return value <= threshold if decreasing(indicator) else value >= threshold


@dataclass(frozen=True, slots=True)
class Recovery:
    """After a missed milestone: whether its indicator reached the threshold later, and when."""

    milestone: Milestone
    days: int | None  # None: not yet

    @property
    def text(self) -> str:
        if self.days is None:
            return f"{self.milestone.key}: not recovered yet"
        return f"{self.milestone.key}: recovered in {self.days} day{'s' if self.days != 1 else ''}"


def recoveries(
    milestones: Iterable[Milestone],
    indicators: Sequence[SuccessIndicator],
    series: dict[int, list[Measurement]],
    zone: ZoneInfo,
) -> list[Recovery]:
    """Each missed milestone decided by an indicator, with its recovery (or not yet)."""
    by_key = {i.key: i for i in indicators}
    found = []
    for m in milestones:
        indicator = by_key.get(m.indicator_key or "")
        if m.status != MilestoneStatus.missed or indicator is None:
            continue
        threshold = m.threshold if m.threshold is not None else indicator.target
        later = [
            v
            for v in series.get(indicator.id or 0, [])
            if v.measured_at.astimezone(zone).date() > m.due
            and reaches(indicator, threshold, v.value)
        ]
        first = min((v.measured_at for v in later), default=None)
        days = None if first is None else (first.astimezone(zone).date() - m.due).days
        found.append(Recovery(m, days))
    return found


def recovery_reaches(
    milestones: Iterable[Milestone], indicators: Sequence[SuccessIndicator], zone: ZoneInfo
) -> list[Reach]:
    """What `recoveries` looks for in each series, as a query can find it without the series:
    for each missed milestone decided by an indicator, the first value reaching its threshold
    from the first instant of the day after it was due, in the contract's zone."""
    by_key = {i.key: i for i in indicators}
    found = []
    for m in milestones:
        indicator = by_key.get(m.indicator_key or "")
        if m.status != MilestoneStatus.missed or indicator is None or indicator.id is None:
            continue
        after = datetime.combine(m.due + timedelta(days=1), time(), tzinfo=zone)
        found.append(
            Reach(
                indicator_id=indicator.id,
                since=after.astimezone(UTC),
                threshold=m.threshold if m.threshold is not None else indicator.target,
                decreasing=decreasing(indicator),
            )
        )
    return found


def _mean(values: Iterable[int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 1) if known else None


@dataclass(frozen=True, slots=True)
class Resilience:
    """A contract's resilience figures; None where there is nothing to measure yet."""

    surfacing: float | None
    resolution: float | None
    recovery: float | None
    open_count: int
    resolved_count: int
    recovered: list[Recovery]

    def value_of(self, source: str) -> float | None:
        return {SURFACING: self.surfacing, RESOLUTION: self.resolution, RECOVERY: self.recovery}[
            source
        ]

    def lines(self) -> list[str]:
        """`Risks surface in 3.5 days on average …`: the figures as short sentences."""

        def days(value: float | None) -> str:
            if value is None:
                return "—"
            shown = int(value) if float(value).is_integer() else value
            return f"{shown} day{'s' if value != 1 else ''}"

        lines = [
            f"Surfacing: {days(self.surfacing)} from noticed to raised (mean)",
            f"Resolution: {days(self.resolution)} from raised to resolved (mean, "
            f"{self.resolved_count} resolved, {self.open_count} open)",
        ]
        if self.recovered:
            lines.append("Recovery: " + "; ".join(r.text for r in self.recovered))
        return lines


def resilience(
    risks: Sequence[Risk],
    milestones: Iterable[Milestone],
    indicators: Sequence[SuccessIndicator],
    series: dict[int, list[Measurement]],
    zone: ZoneInfo,
    *,
    until: datetime | None = None,
) -> Resilience:
    """The figures from `risks` (raised before `until`, if given) and the milestones."""
    counted = [r for r in risks if until is None or r.created_at <= until]
    resolved = [
        r
        for r in counted
        if r.status == RiskStatus.resolved
        and r.resolved_at is not None
        and (until is None or r.resolved_at <= until)
    ]
    recovered = recoveries(milestones, indicators, series, zone)
    return Resilience(
        surfacing=_mean(surfacing_days(r, zone) for r in counted),
        resolution=_mean(resolution_days(r, zone) for r in resolved),
        recovery=_mean(r.days for r in recovered),
        open_count=len(counted) - len(resolved),
        resolved_count=len(resolved),
        recovered=recovered,
    )
