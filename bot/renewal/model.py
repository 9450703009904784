"""What the end of a period shows and carries: the final figures, and a renewal's plan.

Pure functions of a loaded contract. A renewal carries the expectations, the development
activities not done yet, the resources, the barriers and every indicator (its latest value the
new baseline, its target kept) into a new period of the same length from the day after the old
end; activities and the milestones not met yet move by that same offset (a met milestone is
done, and stays in the old contract).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from bot.core.progress import format_number, percent, progress
from bot.core.text import escape, truncate
from storage.models import ActivityStatus, Contract, ContractStatus, MilestoneStatus
from storage.queries.contracts import ContractBundle

# Delivery kinds: the owner's and sponsor's Close / Renew message, the leader's request for a
# closing reflection, and the one reminder when nobody decided within `DECIDE_WITHIN`.
END_DECISION = "contract_end"
END_REFLECTION = "contract_end_reflection"
END_REMINDER = "contract_end_reminder"
DECIDE_WITHIN = timedelta(days=14)
TITLE_MAX = 200
REFLECTION_MAX = 3000
REASON_MAX = 500


def end_key(contract_end: date) -> str:
    """The period key of every end-of-period delivery of a contract: its last day."""
    return f"end:{contract_end.isoformat()}"


def renewed_text(old: Contract, draft: Contract) -> str:
    """`“Title” was renewed by @hana on 18 Dec 2027 as the draft “…”`: the end-of-period
    decision as the other decider, a second click or a late one hears it."""
    who = f" by <@{draft.created_by}>" if draft.created_by else ""
    at = draft.created_at
    # Slack shows the date in each reader's own zone; the fallback is UTC's.
    when = f" on <!date^{int(at.timestamp())}^{{date_short}}|{at:%-d %b %Y} UTC>"
    if draft.status == ContractStatus.active:
        state = "; everyone agreed and it is active"
    else:
        state = (
            ", now awaiting agreement"
            if draft.agreement_sent_at
            else ", still to be completed and sent for agreement"
        )
    return (
        f"“{escape(old.title)}” was renewed{who}{when} as the draft "
        f"“{escape(draft.title)}” (contract {draft.id}){state}."
    )


@dataclass(frozen=True, slots=True)
class IndicatorFigure:
    key: str
    name: str
    unit: str
    baseline: float
    latest: float | None
    target: float

    @property
    def share(self) -> float | None:
        if self.latest is None:
            return None
        return progress(self.baseline, self.target, self.latest)

    @property
    def reached(self) -> bool:
        return self.share is not None and self.share >= 1.0

    def text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        latest = format_number(self.latest) if self.latest is not None else "no value yet"
        share = self.share
        way = f" · {percent(share)} of the way" if share is not None else ""
        mark = " ✅" if self.reached else ""
        return (
            f"{self.key} {self.name}: baseline {format_number(self.baseline)} → "
            f"latest {latest} vs target {format_number(self.target)}{unit}{way}{mark}"
        )


@dataclass(frozen=True, slots=True)
class FinalFigures:
    """What a contract came to: its indicators, and its milestones met and missed."""

    indicators: list[IndicatorFigure]
    met: list[str]  # "M1 Engagement at 68 or above"
    missed: list[str]
    open: list[str]  # still pending, due after the end (none, usually)

    @property
    def milestone_line(self) -> str:
        total = len(self.met) + len(self.missed) + len(self.open)
        if not total:
            return "No milestones."
        return f"{len(self.met)} of {total} milestones met, {len(self.missed)} missed."


def final_figures(bundle: ContractBundle, today: date) -> FinalFigures:
    indicators = []
    for indicator in bundle.indicators:
        latest = bundle.latest(indicator)
        indicators.append(
            IndicatorFigure(
                key=indicator.key,
                name=indicator.name,
                unit=indicator.unit,
                baseline=indicator.baseline,
                latest=latest.value if latest is not None else None,
                target=indicator.target,
            )
        )
    met, missed, still = [], [], []
    for m in sorted(bundle.milestones, key=lambda m: (m.due, m.position)):
        label = f"{m.key} {m.title}"
        if m.status == MilestoneStatus.met:
            met.append(label)
        elif m.status == MilestoneStatus.missed or m.due < today:
            missed.append(label)
        else:
            still.append(label)
    return FinalFigures(indicators=indicators, met=met, missed=missed, open=still)


@dataclass
class RenewalPlan:
    """The new draft a renewal makes: its period, title and the items it carries."""

    title: str
    period_start: date
    period_end: date
    offset: timedelta
    expectations: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    indicators: list[dict[str, Any]] = field(default_factory=list)
    milestones: list[dict[str, Any]] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    barriers: list[dict[str, Any]] = field(default_factory=list)


def renewal_title(title: str, start: date, taken: set[str] | None = None) -> str:
    """`<old title> (renewed 18 Dec 2027)`, unique among `taken`, within `TITLE_MAX`."""
    taken = taken or set()
    for n in range(1, 100):
        suffix = f" (renewed {start.day} {start:%b %Y}{'' if n == 1 else f', {n}'})"
        candidate = truncate(title, TITLE_MAX - len(suffix)) + suffix
        if candidate not in taken:
            return candidate
    return truncate(title, TITLE_MAX)


def _within(day: date, start: date, end: date) -> date:
    return min(max(day, start), end)


def renewal_plan(bundle: ContractBundle, *, taken_titles: set[str] | None = None) -> RenewalPlan:
    """What a renewal of `bundle` carries (see the module's doc)."""
    c = bundle.contract
    start = c.period_end + timedelta(days=1)
    offset = start - c.period_start
    end = c.period_end + offset
    plan = RenewalPlan(
        title=renewal_title(c.title, start, taken_titles),
        period_start=start,
        period_end=end,
        offset=offset,
    )
    plan.expectations = [
        {"key": e.key, "kind": e.kind, "text": e.text, "position": e.position}
        for e in bundle.expectations
    ]
    for a in bundle.activities:
        if a.status == ActivityStatus.done:
            continue
        plan.activities.append(
            {
                "key": a.key,
                "title": a.title,
                "modality": a.modality,
                "expectation_key": a.expectation_key,
                "start": _within(a.start + offset, start, end) if a.start else None,
                "due": _within(a.due + offset, start, end),
                "demonstration": a.demonstration,
                "status": a.status,
                "progress": a.progress,
                "position": a.position,
            }
        )
    for i in bundle.indicators:
        latest = bundle.latest(i)
        plan.indicators.append(
            {
                "key": i.key,
                "name": i.name,
                "unit": i.unit,
                "baseline": latest.value if latest is not None else i.baseline,
                "target": i.target,
                "direction": i.direction,
                "source": i.source,
                "cadence": i.cadence,
                "position": i.position,
            }
        )
    carried = {a["key"] for a in plan.activities}
    for m in bundle.milestones:
        if m.status == MilestoneStatus.met:
            continue
        if m.activity_key is not None and m.activity_key not in carried:
            continue
        plan.milestones.append(
            {
                "key": m.key,
                "title": m.title,
                "due": _within(m.due + offset, start, end),
                "indicator_key": m.indicator_key,
                "threshold": m.threshold,
                "activity_key": m.activity_key,
                "position": m.position,
            }
        )
    plan.resources = [
        {"kind": r.kind, "text": r.text, "position": r.position} for r in bundle.resources
    ]
    plan.barriers = [
        {"risk": b.risk, "contingency": b.contingency, "position": b.position}
        for b in bundle.barriers
    ]
    return plan
