"""The contract summary: what `/contract summary`, App Home and digests show of a contract."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import Block, DividerBlock

from bot.charts.blocks import chart_blocks
from bot.charts.model import ShownChart
from bot.core.calendar import zone_named
from bot.core.permissions import may_answer_checkin, may_read_feedback
from bot.core.progress import change_text, figures_text, format_number
from bot.core.text import escape, truncate
from bot.evidence.blocks import evidence_lines
from bot.evidence.model import STALE_MARK, is_stale
from bot.feedback.blocks import theme_lines, three_sixty_lines
from bot.risks.blocks import open_risk_blocks, resilience_blocks
from bot.risks.model import Resilience, resilience
from bot.summary.model import (
    checkin_completion,
    missed_milestones,
    pace,
    progress_of,
)
from bot.summary.reflection import latest_checkin_blocks
from bot.ui.blocks import capped, context, day, header, mention, section, sections
from storage.models import (
    ActivityStatus,
    Contract,
    ContractStatus,
    MilestoneStatus,
    SuccessIndicator,
)
from storage.queries.contracts import ContractBundle

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ACTIVITY_MARK = {
    ActivityStatus.not_started: "⚪ not started",
    ActivityStatus.in_progress: "🔵 in progress",
    ActivityStatus.done: "✅ done",
    ActivityStatus.blocked: "🔴 blocked",
}
STATUS_LABEL = {
    ContractStatus.draft: "Draft",
    ContractStatus.active: "Active",
    ContractStatus.closed: "Closed",
}
UPCOMING_MILESTONES = 3


def expectation_lines(bundle: ContractBundle) -> list[str]:
    """`*E1* Own the platform reliability roadmap… · _impact_`: what the other sections'
    E1, E2… stand for."""
    return [
        f"*{escape(e.key)}* {escape(truncate(e.text, 280))} · _{escape(e.kind)}_"
        for e in bundle.expectations
    ]


def indicator_line(
    bundle: ContractBundle, indicator: SuccessIndicator, today: date | None = None
) -> str:
    p = progress_of(bundle, indicator)
    unit = f" {escape(indicator.unit)}" if indicator.unit else ""
    latest = f"*{format_number(p.latest)}*" if p.latest is not None else "_no value yet_"
    trend = latest_change(bundle, indicator)
    evidence = bundle.evidence_counts.get(("indicator", indicator.key), 0)
    facts = " · ".join(
        part
        for part in (
            escape(indicator.cadence),
            escape(truncate(indicator.source, 60)) if indicator.source else "",
            f"{evidence} evidence" if evidence else "",
            STALE_MARK if is_stale(bundle, "indicator", indicator.key, today) else "",
        )
        if part
    )
    figures = figures_text(indicator.baseline, latest, indicator.target, unit)
    way = f"{p.bar} {p.percent} of the way" if p.latest is not None else ""
    return f"*{indicator.key} · {escape(truncate(indicator.name, 120))}*  _{facts}_\n" + " · ".join(
        part for part in (figures, way, trend) if part
    )


def latest_change(bundle: ContractBundle, indicator: SuccessIndicator) -> str:
    """The last change of an indicator, said so that arrow, word and numbers agree:
    `↘ down 3 days since 12 Feb 2027 · improving`, or `→ no change, confirmed 9 Apr 2027`."""
    series = bundle.measurements.get(indicator.id or 0, [])
    if len(series) < 2:
        return ""
    before, after = series[-2], series[-1]
    if after.confirmed and after.value == before.value:
        return f"→ no change, confirmed {day(after.measured_at.date())}"
    unit = f" {escape(indicator.unit)}" if indicator.unit else ""
    since = f" since {day(before.measured_at.date())}"
    return change_text(indicator.baseline, indicator.target, before.value, after.value, unit, since)


def activity_lines(bundle: ContractBundle, today: date) -> list[str]:
    lines = []
    for a in bundle.activities:
        overdue = " ⚠️ overdue" if a.due < today and a.status != ActivityStatus.done else ""
        progress = f" · {a.progress}%" if a.status == ActivityStatus.in_progress else ""
        evidence = bundle.evidence_counts.get(("activity", a.key), 0)
        progress += f" · {evidence} evidence" if evidence else ""
        progress += f" · {STALE_MARK}" if is_stale(bundle, "activity", a.key, today) else ""
        lines.append(
            f"{ACTIVITY_MARK.get(ActivityStatus(a.status), a.status)} *{a.key}* "
            f"{escape(truncate(a.title, 150))} · due {day(a.due)}{progress}{overdue}"
        )
    return lines


def milestone_lines(bundle: ContractBundle, today: date) -> tuple[list[str], list[str]]:
    """(upcoming, missed) milestone lines."""
    missed_keys = set(missed_milestones(bundle, today))
    upcoming = [
        f"🎯 *{m.key}* {escape(truncate(m.title, 150))} · due {day(m.due)}"
        for m in sorted(bundle.milestones, key=lambda m: m.due)
        if m.status == MilestoneStatus.pending and m.key not in missed_keys
    ][:UPCOMING_MILESTONES]
    missed = [
        f"❗ *{m.key}* {escape(truncate(m.title, 150))} · was due {day(m.due)}"
        for m in bundle.milestones
        if m.key in missed_keys
    ]
    return upcoming, missed


def reflection_lines(contract: Contract) -> list[str]:
    """The leader's closing reflection, or that there is none yet."""
    text = contract.closing_reflection
    if not text:
        return [f"_{mention(contract.leader_id)} has not written a closing reflection yet._"]
    return [f"*{mention(contract.leader_id)}'s closing reflection*\n>{escape(text)}"]


def closed_lines(contract: Contract) -> list[str]:
    """How a closed contract ended: when, by whom, why, what renewed it, the reflection."""
    when = day(contract.closed_at.date()) if contract.closed_at else "an unknown day"
    who = f" by {mention(contract.closed_by)}" if contract.closed_by else ""
    lines = [f"Closed on {when}{who}."]
    if contract.close_reason:
        lines.append(f"Reason: {escape(contract.close_reason)}")
    if contract.superseded_by:
        lines.append(f"Continued by contract {contract.superseded_by}.")
    if contract.closing_reflection:
        lines += reflection_lines(contract)
    return lines


def build_summary(
    bundle: ContractBundle,
    *,
    today: date,
    pending: Sequence[str] = (),
    viewer: str | None = None,
) -> list[Block]:
    """Every section of a contract a reader may see, in Block Kit, ready to split.

    `pending`: a line per pending amendment (bot.amendments.blocks.pending_lines);
    `viewer`: who reads it (*Reply* on a risk is for those who answer the leader).
    """
    c = bundle.contract
    blocks: list[Block] = [
        header(c.title),
        context(
            f"Leader {mention(c.leader_id)}",
            f"Sponsor {mention(c.sponsor_id)}",
            f"{STATUS_LABEL.get(ContractStatus(c.status), c.status)} · version {c.version}",
            f"{day(c.period_start)} – {day(c.period_end)}",
        ),
    ]
    if c.status == ContractStatus.closed:
        blocks += sections("Closed", closed_lines(c))
    if c.mission:
        blocks.append(section(f"*Mission*\n{escape(c.mission)}"))
    blocks += sections("Expectations", capped(expectation_lines(bundle)) or ["_None yet._"])

    blocks.append(DividerBlock())
    indicator_lines = [indicator_line(bundle, i, today) for i in bundle.indicators]
    overall = pace(bundle, today)
    if overall is not None:
        indicator_lines.insert(0, f"_Overall: {overall.text}._")
    blocks += sections("Success indicators", capped(indicator_lines) or ["_None yet._"])

    blocks.append(DividerBlock())
    blocks += sections(
        "Development activities", capped(activity_lines(bundle, today)) or ["_None yet._"]
    )

    upcoming, missed = milestone_lines(bundle, today)
    blocks.append(DividerBlock())
    blocks += sections("Next milestones", upcoming or ["_Nothing scheduled._"])
    if missed:
        blocks += sections("Missed milestones", capped(missed))

    blocks.append(DividerBlock())
    completion = checkin_completion(bundle, today)
    weekday = WEEKDAYS[c.checkin_weekday % 7]
    blocks.append(
        section(
            f"*Check-ins* · {weekday}s at {c.checkin_time}"
            f"{f' ({c.checkin_timezone})' if c.checkin_timezone else ''}\n{completion.text}"
        )
    )
    blocks += latest_checkin_blocks(bundle)

    resources = [f"• _{escape(r.kind)}_: {escape(truncate(r.text, 300))}" for r in bundle.resources]
    barriers = [
        f"• {escape(truncate(b.risk, 300))}\n   ↳ _{escape(truncate(b.contingency, 300))}_"
        for b in bundle.barriers
    ]
    if resources:
        blocks += sections("Committed resources", capped(resources))
    if barriers:
        blocks += sections("Barriers and contingencies", capped(barriers))

    blocks += risk_blocks(bundle, today, viewer)

    evidence = evidence_lines(bundle, today)
    if evidence:
        blocks += sections("Evidence", evidence)
    # The 360 view (self beside each rater group) is for those who read the feedback itself.
    by_group = three_sixty_lines(bundle) if viewer and may_read_feedback(bundle, viewer) else []
    themes = theme_lines(bundle)
    if by_group:
        blocks += sections("Feedback: self view beside the others'", by_group)
    elif themes:
        blocks += sections("Feedback themes", themes)

    if pending:
        blocks += sections("Pending amendments", capped(pending))

    blocks.append(DividerBlock())
    governance = [
        f"Owner: {mention(c.owner_id)}",
        f"Approvers: {', '.join(mention(u) for u in bundle.approvers) or mention(c.sponsor_id)}",
    ]
    if bundle.escalation:
        governance.append(f"Escalation: {', '.join(mention(u) for u in bundle.escalation)}")
    if c.reporting:
        governance.append(f"Reporting: {escape(truncate(c.reporting, 300))}")
    blocks += sections("Governance", governance)
    return blocks


# --- risks and resilience ------------------------------------------------------------------


def risk_blocks(bundle: ContractBundle, today: date, viewer: str | None = None) -> list[Block]:
    """Every open risk with its Resolve and Reply buttons (checked when pressed), and the resilience
    figures; nothing when the contract has no risks yet."""
    zone = zone_named(bundle.contract.checkin_timezone) or ZoneInfo("UTC")
    active = bundle.contract.status == ContractStatus.active
    answers = (
        viewer is not None
        and viewer != bundle.contract.leader_id
        and may_answer_checkin(bundle, viewer)
    )
    shown = open_risk_blocks(
        bundle.risks, zone, today, resolvable=active, repliable=active and answers
    )
    shown += resilience_blocks(figures_of(bundle, zone))
    return [DividerBlock(), *shown] if shown else []


def figures_of(bundle: ContractBundle, zone: ZoneInfo) -> Resilience:
    return resilience(bundle.risks, bundle.milestones, bundle.indicators, bundle.measurements, zone)


def headline(bundle: ContractBundle, *, today: date) -> str:
    """One line of figures for lists: progress, next milestone, check-ins."""
    overall = pace(bundle, today)
    parts = [overall.text if overall is not None else "no indicators"]
    _, missed = milestone_lines(bundle, today)
    if missed:
        parts.append(f"{len(missed)} missed milestone{'s' if len(missed) > 1 else ''}")
    next_due = next(
        (m for m in sorted(bundle.milestones, key=lambda m: m.due) if m.due >= today), None
    )
    if next_due is not None:
        parts.append(f"next: {next_due.key} {day(next_due.due)}")
    parts.append(checkin_completion(bundle, today).text)
    return " · ".join(parts)


def chart_section(shown: Sequence[ShownChart]) -> list[Block]:
    """The contract's charts under their heading, or nothing when none could be shown."""
    if not shown:
        return []
    return [DividerBlock(), section("*Charts*"), *chart_blocks(shown)]
