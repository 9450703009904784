"""The period report: what each contract came to in a period, for executives.

Per contract: its status, the indicators measured in the period (first and last value there,
against baseline and target), the milestones met and missed in it, check-in completion in it
(answered of the weekly check-ins due, counted as `/contract summary` counts them), and the
amendments proposed and decided in it. Days are read in the workspace's default time zone.
People are named as Slack names them (`users.info`, with SLACK_BOT_TOKEN), or by their user
ids, said so, without it (`bot.cli.report`, which also reads a sandbox's clock and people
when pointed at a sandbox's database).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.amendments.model import AmendmentStatus
from bot.charts.model import Chart, indicator_chart
from bot.contracts.io import AMENDMENT_REASON
from bot.core.calendar import (
    month_end,
    quarter_end,
    quarter_of,
    quarter_start,
)
from bot.core.permissions import Refusal
from bot.feedback.service import three_sixty
from bot.report.model import (
    ContractReport,
    ExpectationFeedback,
    GroupCount,
    IndicatorMove,
    Period,
    ReviewLine,
)
from bot.risks.model import Resilience, resilience
from bot.summary.blocks import STATUS_LABEL
from bot.summary.model import CheckinCompletion, completion_between
from storage.models import AlignmentReview, Contract, ContractStatus, MilestoneStatus
from storage.queries.contracts import ContractBundle, list_contracts, load_bundle
from storage.queries.report import (
    amendments_of,
    contracts_reported_to,
    named_lessons_between,
    versions_made,
)
from storage.queries.reviews import reviews_between

PERIOD_HELP = "a quarter (2027Q2), a month (2027-05) or a year (2027)"


def parse_period(text: str) -> Period:
    """2027Q2, 2027-05 or 2027; ValueError with a sentence saying what is wanted."""
    value = text.strip()
    if match := re.fullmatch(r"(\d{4})-?[Qq]([1-4])", value):
        year, quarter = int(match[1]), int(match[2])
        start, end = quarter_start(year, quarter), quarter_end(year, quarter)
        return Period(f"{year}Q{quarter}", f"{year} Q{quarter}", start, end)
    if match := re.fullmatch(r"(\d{4})-(\d{2})", value):
        year, month = int(match[1]), int(match[2])
        if 1 <= month <= 12:
            start, end = date(year, month, 1), month_end(year, month)
            return Period(f"{year}-{month:02d}", start.strftime("%B %Y"), start, end)
    elif match := re.fullmatch(r"(\d{4})", value):
        year = int(match[1])
        return Period(str(year), str(year), date(year, 1, 1), date(year, 12, 31))
    raise ValueError(f"the period must be {PERIOD_HELP}, got {text!r}")


def quarter_period(day: date) -> Period:
    """The quarter `day` falls in."""
    return parse_period(f"{day.year}Q{quarter_of(day)}")


def period_of(cadence: str, day: date) -> Period:
    """The period of a report `cadence` (monthly, quarterly, yearly) that `day` falls in."""
    if cadence == "monthly":
        return parse_period(f"{day.year}-{day.month:02d}")
    if cadence == "yearly":
        return parse_period(str(day.year))
    return quarter_period(day)


def previous_period(cadence: str, day: date) -> Period:
    """The last whole period of `cadence` before the one `day` falls in."""
    return period_of(cadence, period_of(cadence, day).start - timedelta(days=1))


def _local(at: datetime | None, zone: ZoneInfo) -> date | None:
    return at.astimezone(zone).date() if at is not None else None


def checkins_in(bundle: ContractBundle, period: Period, today: date) -> CheckinCompletion:
    """Answered of the weekly check-ins due in the period (up to today)."""
    c = bundle.contract
    start, end = max(c.period_start, period.start), min(c.period_end, period.end)
    return completion_between(bundle, start, end, today)


async def contract_report(
    session: AsyncSession, bundle: ContractBundle, period: Period, *, today: date, zone: ZoneInfo
) -> ContractReport:
    c = bundle.contract
    report = ContractReport(
        contract_id=c.id or 0,
        title=c.title,
        leader=c.leader_id,
        sponsor=c.sponsor_id,
        status=STATUS_LABEL.get(ContractStatus(c.status), c.status),
        version=c.version,
        owner=c.owner_id,
    )
    for indicator in bundle.indicators:
        values = [
            m.value
            for m in bundle.measurements.get(indicator.id or 0, [])
            if period.holds(_local(m.measured_at, zone) or date.min)
        ]
        if not values:
            report.unmeasured.append(indicator.key)
            continue
        report.moves.append(
            IndicatorMove(
                indicator.key,
                indicator.name,
                indicator.unit,
                indicator.baseline,
                indicator.target,
                values[0],
                values[-1],
                len(values),
            )
        )
    for m in bundle.milestones:
        decided = _local(m.decided_at, zone)
        if m.status == MilestoneStatus.met and period.holds(decided or m.due):
            report.met.append(f"{m.key} {m.title}")
        elif m.status != MilestoneStatus.met and period.holds(m.due) and m.due < today:
            report.missed.append(f"{m.key} {m.title}")
    report.checkins = checkins_in(bundle, period, today)

    amendments = await amendments_of(session=session, contract_id=c.id)
    for a in amendments:
        report.proposed += period.holds(_local(a.created_at, zone) or date.min)
        if period.holds(_local(a.decided_at, zone) or date.min):
            report.applied += a.status == AmendmentStatus.applied
            report.rejected += a.status == AmendmentStatus.rejected
            report.lapsed += a.status == AmendmentStatus.stale
    versions = await versions_made(session=session, contract_id=c.id, reason=AMENDMENT_REASON)
    report.imports = sum(period.holds(_local(at, zone) or date.min) for at in versions)
    reviews = await reviews_between(session=session, contract_ids=[c.id or 0])
    report.reviews = [
        review_text(r) for r in reviews if period.holds(_local(r.submitted_at, zone) or date.min)
    ]
    report.resilience = period_resilience(bundle, period, zone)
    report.risks_opened = sum(
        period.holds(_local(r.created_at, zone) or date.min) for r in bundle.risks
    )
    report.risks_resolved = sum(
        period.holds(_local(r.resolved_at, zone) or date.min) for r in bundle.risks
    )
    start = datetime.combine(period.start, time.min, zone)
    end = datetime.combine(period.end + timedelta(days=1), time.min, zone)
    lessons = await named_lessons_between(session=session, contract_id=c.id, start=start, end=end)
    report.lessons = [lesson.title for lesson in lessons]
    report.feedback = await period_feedback(session, c.id or 0, period)
    return report


async def period_feedback(
    session: AsyncSession, contract_id: int, period: Period
) -> list[ExpectationFeedback]:
    """The 360 of the period as counts per expectation and rater group: named entries given
    in it, anonymous ones released in it (held ones never), as `three_sixty` places them."""
    found = await three_sixty(session, contract_id, period.start, period.end)
    if found is None:
        return []
    counted: list[ExpectationFeedback] = []
    for view in found.expectations:
        groups: dict[str, tuple[int, int]] = {}
        for group in view.groups:  # a group's named and anonymous entries, counted together
            strengths, development = groups.get(group.label, (0, 0))
            groups[group.label] = (
                strengths + len(group.strengths),
                development + len(group.development),
            )
        counted.append(
            ExpectationFeedback(
                key=view.key,
                text=view.text,
                groups=tuple(GroupCount(label, s, d) for label, (s, d) in groups.items()),
            )
        )
    return counted


def period_resilience(bundle: ContractBundle, period: Period, zone: ZoneInfo) -> Resilience:
    """The resilience figures as they stood at the end of the period."""
    until = datetime.combine(period.end + timedelta(days=1), time.min, zone)
    return resilience(
        bundle.risks, bundle.milestones, bundle.indicators, bundle.measurements, zone, until=until
    )


def review_text(review: AlignmentReview) -> ReviewLine:
    """`2027-Q1`, the reviewer, `leader`, and `kept E1, E2; retired E3 (amendment #1); to
    amend I2 (“Target too soft.”)`, as plain text."""
    groups: dict[str, list[str]] = {}
    for entry in review.choices or []:
        if not isinstance(entry, dict):
            continue
        text = str(entry.get("key") or "?")
        if entry.get("amendment"):
            text += f" (amendment #{entry['amendment']})"
        if entry.get("note"):
            text += f" (“{' '.join(str(entry['note']).split())[:200]}”)"
        groups.setdefault(str(entry.get("choice") or "keep"), []).append(text)
    verbs = {"keep": "kept", "amend": "to amend", "retire": "retired"}
    parts = [f"{verbs.get(c, c)} {', '.join(keys)}" for c, keys in groups.items()]
    return ReviewLine(
        review.period_key, review.reviewer_id, review.role, "; ".join(parts) or "nothing reviewed"
    )


def overlaps(contract: Contract, period: Period, zone: ZoneInfo) -> bool:
    """Whether the contract (not a draft) ran in the period: until its closing day when it
    closed early."""
    if contract.status == ContractStatus.draft:
        return False
    last = contract.period_end
    if contract.closed_at is not None:
        last = min(last, contract.closed_at.astimezone(zone).date())
    return contract.period_start <= period.end and last >= period.start


async def build_report(
    *,
    session: AsyncSession,
    period: Period,
    today: date,
    zone: ZoneInfo,
    contract_ids: Sequence[int] | None = None,
) -> list[ContractReport]:
    """Every contract (of `contract_ids`, when given) that is not a draft and whose period
    (until it closed, if it closed early) overlaps the report's."""
    reports = []
    for contract in await list_contracts(session=session):
        if contract_ids is not None and contract.id not in contract_ids:
            continue
        if not overlaps(contract, period, zone):
            continue
        bundle = await load_bundle(session=session, contract_id=contract.id or 0)
        if bundle is not None:
            reports.append(await contract_report(session, bundle, period, today=today, zone=zone))
    return sorted(reports, key=lambda r: (r.title.lower(), r.contract_id))


NOT_A_READER = (
    "Only a contract's owner, and the report readers its governance names, can ask for its "
    "report, and you are neither for any contract."
)


async def contracts_for_reader(
    *, session: AsyncSession, viewer: str, period: Period, zone: ZoneInfo
) -> list[int] | Refusal:
    """The contracts `viewer` governs (owns, or reads the report of) that ran in the period;
    a Refusal for anyone else, or when none of theirs ran then."""
    governed = await contracts_reported_to(session=session, user_id=viewer)
    if not governed:
        return Refusal(NOT_A_READER)
    ran = [c.id or 0 for c in governed if overlaps(c, period, zone)]
    if not ran:
        return Refusal(
            f"None of the contracts you govern ran in {period.label}: try another period."
        )
    return ran


async def report_charts(
    *, session: AsyncSession, reports: Sequence[ContractReport], limit: int = 3
) -> list[Chart]:
    """Charts of the indicators each contract measured in the period (the first `limit`)."""
    charts: list[Chart] = []
    for r in reports:
        bundle = await load_bundle(session=session, contract_id=r.contract_id)
        if bundle is None:
            continue
        moved = {m.key for m in r.moves}
        charts += [indicator_chart(bundle, i) for i in bundle.indicators if i.key in moved][:limit]
    return charts
