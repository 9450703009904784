"""`northstar report --period 2027Q2`: what each contract came to in a period, for executives.

Per contract: its status, the indicators measured in the period (first and last value there,
against baseline and target), the milestones met and missed in it, check-in completion in it
(answered of the weekly check-ins due, counted as `/contract summary` counts them), and the
amendments proposed and decided in it. Days are read in the workspace's default time zone.
People are named as Slack names them (`users.info`, with SLACK_BOT_TOKEN), or by their user
ids, said so, without it. Against a sandbox's database, "today" is the sandbox's clock and
the names are its people's (`bot.sandbox.state`).
"""

from __future__ import annotations

import argparse
import calendar
import csv
import io
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.amendments import AmendmentStatus
from bot.app import create_client
from bot.clock import SystemClock
from bot.contract_io import AMENDMENT_REASON
from bot.csv_cells import safe_row
from bot.output import write_output
from bot.people import real_names
from bot.periods import elapsed_periods
from bot.progress import change_text, format_number, percent, progress
from bot.sandbox.state import SavedSandbox, saved_beside
from bot.settings import Settings
from bot.summary import STATUS_LABEL, CheckinCompletion
from storage.db import database
from storage.migrate import require_current
from storage.models import (
    Amendment,
    ContractStatus,
    ContractVersion,
    MilestoneStatus,
)
from storage.queries import ContractBundle, list_contracts, load_bundle

PERIOD_HELP = "a quarter (2027Q2), a month (2027-05) or a year (2027)"
CSV_COLUMNS = (
    "period",
    "contract_id",
    "title",
    "leader",
    "leader_name",
    "sponsor",
    "sponsor_name",
    "status",
    "version",
    "indicators_measured",
    "indicator_moves",
    "milestones_met",
    "milestones_missed",
    "checkins_answered",
    "checkins_expected",
    "checkin_completion",
    "amendments_proposed",
    "amendments_applied",
    "amendments_rejected",
    "amendments_lapsed",
    "import_amendments",
)


@dataclass(frozen=True, slots=True)
class Period:
    """A reporting period: whole days from `start` to `end`, both included."""

    key: str
    label: str
    start: date
    end: date

    def holds(self, day: date) -> bool:
        return self.start <= day <= self.end


def parse_period(text: str) -> Period:
    """2027Q2, 2027-05 or 2027; ValueError with a sentence saying what is wanted."""
    value = text.strip()
    if match := re.fullmatch(r"(\d{4})-?[Qq]([1-4])", value):
        year, quarter = int(match[1]), int(match[2])
        first = 3 * quarter - 2
        end = date(year, first + 2, calendar.monthrange(year, first + 2)[1])
        return Period(f"{year}Q{quarter}", f"{year} Q{quarter}", date(year, first, 1), end)
    if match := re.fullmatch(r"(\d{4})-(\d{2})", value):
        year, month = int(match[1]), int(match[2])
        if 1 <= month <= 12:
            start = date(year, month, 1)
            end = date(year, month, calendar.monthrange(year, month)[1])
            return Period(f"{year}-{month:02d}", start.strftime("%B %Y"), start, end)
    elif match := re.fullmatch(r"(\d{4})", value):
        year = int(match[1])
        return Period(str(year), str(year), date(year, 1, 1), date(year, 12, 31))
    raise ValueError(f"the period must be {PERIOD_HELP}, got {text!r}")


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


def _local(at: datetime | None, zone: ZoneInfo) -> date | None:
    return at.astimezone(zone).date() if at is not None else None


def checkins_in(bundle: ContractBundle, period: Period, today: date) -> CheckinCompletion:
    """Answered of the weekly check-ins due in the period (up to today)."""
    c = bundle.contract
    start, end = max(c.period_start, period.start), min(c.period_end, period.end)
    if start > end:
        return CheckinCompletion(answered=0, expected=0)
    due = set(elapsed_periods(start, end, c.checkin_weekday, today))
    answered = {k.period_key for k in bundle.checkins if k.status == "answered"}
    return CheckinCompletion(answered=len(due & answered), expected=len(due))


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

    amendments = (await session.exec(select(Amendment).where(Amendment.contract_id == c.id))).all()
    for a in amendments:
        report.proposed += period.holds(_local(a.created_at, zone) or date.min)
        if period.holds(_local(a.decided_at, zone) or date.min):
            report.applied += a.status == AmendmentStatus.applied
            report.rejected += a.status == AmendmentStatus.rejected
            report.lapsed += a.status == AmendmentStatus.stale
    versions = (
        await session.exec(
            select(ContractVersion.created_at).where(
                ContractVersion.contract_id == c.id, ContractVersion.reason == AMENDMENT_REASON
            )
        )
    ).all()
    report.imports = sum(period.holds(_local(at, zone) or date.min) for at in versions)
    return report


async def build_report(
    *, session: AsyncSession, period: Period, today: date, zone: ZoneInfo
) -> list[ContractReport]:
    """Every contract that is not a draft and whose period overlaps the report's."""
    reports = []
    for contract in await list_contracts(session=session):
        if contract.status == ContractStatus.draft:
            continue
        if contract.period_start > period.end or contract.period_end < period.start:
            continue
        bundle = await load_bundle(session=session, contract_id=contract.id or 0)
        if bundle is not None:
            reports.append(await contract_report(session, bundle, period, today=today, zone=zone))
    return sorted(reports, key=lambda r: (r.title.lower(), r.contract_id))


# --- output ---------------------------------------------------------------------------------


def _day(value: date) -> str:
    return f"{value.day} {value.strftime('%b %Y')}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _amendments(r: ContractReport) -> str:
    parts = [f"{r.proposed} proposed", f"{r.applied} applied", f"{r.rejected} rejected"]
    if r.lapsed:
        parts.append(f"{r.lapsed} out of date")
    text = " · ".join(parts)
    if r.imports:
        text += f"; {r.imports} administrative amendment{'s' if r.imports != 1 else ''} by import"
    return text


# Names by user id; None: nobody could be asked (no token), and people appear by id.
Names = Mapping[str, str] | None
UNNAMED = (
    "People appear as Slack user ids: names are looked up in Slack only with SLACK_BOT_TOKEN set."
)


def _person(user_id: str, names: Names) -> str:
    if names is None:
        return user_id
    name = names.get(user_id)
    return f"{name} ({user_id})" if name else f"{user_id} (no name from Slack)"


def render_markdown(
    period: Period, reports: Sequence[ContractReport], *, today: date, names: Names = None
) -> str:
    if today < period.start:
        counted = "the period has not begun: no check-in or milestone is due yet"
    else:
        counted = f"check-ins and missed milestones counted up to {_day(min(today, period.end))}"
    lines = [
        f"# North Star report: {period.label} ({_day(period.start)} – {_day(period.end)})",
        "",
        f"{len(reports)} contract{'s' if len(reports) != 1 else ''} · generated {_day(today)}"
        f" · {counted}.",
    ]
    if reports and names is None:
        lines += ["", UNNAMED]
    if not reports:
        lines += ["", "No active or closed contract overlaps this period."]
    for r in reports:
        lines += [
            "",
            f"## {r.title}",
            "",
            f"Leader {_person(r.leader, names)} · sponsor {_person(r.sponsor, names)} · "
            f"{r.status} · version {r.version}",
            "",
        ]
        if r.moves:
            lines += [
                "| Indicator | Baseline | First → last in the period | Target | Progress |",
                "| --- | --- | --- | --- | --- |",
            ]
            for m in r.moves:
                unit = f" ({m.unit})" if m.unit else ""
                values = f"{m.count} value{'s' if m.count != 1 else ''}"
                moved = f"{percent(m.progress)} {m.trend_mark}".strip()
                lines.append(
                    f"| {_cell(f'{m.key} {m.name}{unit}')} | {format_number(m.baseline)} | "
                    f"{format_number(m.first)} → {format_number(m.last)} ({values}) | "
                    f"{format_number(m.target)} | {moved} |"
                )
            lines.append("")
        if r.unmeasured:
            lines += [f"No value recorded in the period: {', '.join(r.unmeasured)}.", ""]
        lines += [
            f"- Milestones met: {'; '.join(r.met) or 'none'}",
            f"- Milestones missed: {'; '.join(r.missed) or 'none'}",
            f"- Check-ins: {r.checkins.text}",
            f"- Amendments: {_amendments(r)}",
        ]
    return "\n".join(lines) + "\n"


def render_csv(period: Period, reports: Sequence[ContractReport], names: Names = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in reports:
        share = (
            round(100 * r.checkins.answered / r.checkins.expected) if r.checkins.expected else ""
        )
        row = [
            period.key,
            r.contract_id,
            r.title,
            r.leader,
            (names or {}).get(r.leader, ""),
            r.sponsor,
            (names or {}).get(r.sponsor, ""),
            r.status,
            r.version,
            len(r.moves),
            "; ".join(m.text() for m in r.moves),
            "; ".join(r.met),
            "; ".join(r.missed),
            r.checkins.answered,
            r.checkins.expected,
            share,
            r.proposed,
            r.applied,
            r.rejected,
            r.lapsed,
            r.imports,
        ]
        writer.writerow(safe_row(row))
    return out.getvalue()


# --- the command ----------------------------------------------------------------------------


def period_argument(text: str) -> Period:
    """argparse's `type` for --period: a bad period exits 2 with the sentence."""
    try:
        return parse_period(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


async def people_names(
    reports: Sequence[ContractReport], settings: Settings, sandbox: SavedSandbox | None
) -> Names:
    """The names of the reports' people: the sandbox's, Slack's, or None without a token."""
    if sandbox is not None:
        return sandbox.names
    if settings.slack_bot_token is None:
        return None
    people = sorted({r.leader for r in reports} | {r.sponsor for r in reports})
    return await real_names(create_client(settings), people)


async def run_report_command(args: argparse.Namespace, settings: Settings) -> int:
    zone = ZoneInfo(settings.default_timezone)
    sandbox = saved_beside(settings.database_url)
    today = (sandbox.clock if sandbox else SystemClock().now()).astimezone(zone).date()
    if sandbox is not None:
        print(
            f"northstar: this is the sandbox's database: today is {_day(today)} by its clock, "
            f"and its people are named from {sandbox.path}.",
            file=sys.stderr,
        )
    await require_current(settings.database_url)
    async with database(settings.database_url) as (_engine, sessions), sessions() as session:
        reports = await build_report(session=session, period=args.period, today=today, zone=zone)
    names = await people_names(reports, settings, sandbox)
    if args.format == "csv":
        output = render_csv(args.period, reports, names)
    else:
        output = render_markdown(args.period, reports, today=today, names=names)
    write_output(output, args.out)
    return 0
