"""The report as text: Markdown for people, CSV (safe for spreadsheets) for the rest."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date

from bot.core.csv_cells import safe_row
from bot.core.progress import format_number, percent
from bot.report.model import ContractReport, Names, Period, ReviewLine
from bot.risks.blocks import resilience_cells

RESILIENCE_COLUMNS = (
    "risk_surfacing_days",
    "risk_resolution_days",
    "milestone_recovery_days",
    "open_risks",
)
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
    "alignment_reviews",
    *RESILIENCE_COLUMNS,
    "owner_name",
    "risks_raised",
    "risks_resolved",
    "lessons_shared",
)
# The CSV posted in Slack: people by name only, no Slack or database ids.
ID_COLUMNS = frozenset({"contract_id", "leader", "sponsor"})
NAMED_COLUMNS = tuple(c for c in CSV_COLUMNS if c not in ID_COLUMNS)


def day_text(value: date) -> str:
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


UNNAMED = (
    "People appear as Slack user ids: names are looked up in Slack only with SLACK_BOT_TOKEN set."
)


def _person(user_id: str, names: Names) -> str:
    if names is None:
        return user_id
    name = names.get(user_id)
    return f"{name} ({user_id})" if name else f"{user_id} (no name from Slack)"


# --- resilience -----------------------------------------------------------------------------


def _resilience_lines(r: ContractReport) -> list[str]:
    if r.resilience is None:
        return []
    return [f"- Resilience: {'; '.join(_cell(line) for line in r.resilience.lines())}"]


def _resilience_cells(r: ContractReport) -> list[str]:
    if r.resilience is None:
        return ["" for _ in RESILIENCE_COLUMNS]
    cells = resilience_cells(r.resilience)
    return [cells[name] for name in RESILIENCE_COLUMNS]


def render_markdown(
    period: Period, reports: Sequence[ContractReport], *, today: date, names: Names = None
) -> str:
    if today < period.start:
        counted = "the period has not begun: no check-in or milestone is due yet"
    else:
        counted = (
            f"check-ins and missed milestones counted up to {day_text(min(today, period.end))}"
        )
    lines = [
        f"# North Star report: {period.label} ({day_text(period.start)} – {day_text(period.end)})",
        "",
        f"{len(reports)} contract{'s' if len(reports) != 1 else ''} · generated {day_text(today)}"
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
            f"- Alignment reviews: "
            f"{'; '.join(_cell(_review(line, names)) for line in r.reviews) or 'none'}",
            f"- Risks: {r.risks_opened} raised, {r.risks_resolved} resolved in the period",
            *_resilience_lines(r),
            f"- Lessons shared: {'; '.join(_cell(t) for t in r.lessons) or 'none'}",
        ]
    return "\n".join(lines) + "\n"


def _review(line: ReviewLine, names: Names) -> str:
    return line.text(names, by_id=names is None)


def render_csv(
    period: Period, reports: Sequence[ContractReport], names: Names = None, *, ids: bool = True
) -> str:
    """One row per contract; `ids=False`: without the Slack and database ids (for Slack)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = CSV_COLUMNS if ids else NAMED_COLUMNS
    writer.writerow(columns)
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
            " | ".join(_review(line, names) for line in r.reviews),
            *_resilience_cells(r),
            (names or {}).get(r.owner or "", ""),
            r.risks_opened,
            r.risks_resolved,
            "; ".join(r.lessons),
        ]
        if not ids:
            row = [v for c, v in zip(CSV_COLUMNS, row, strict=True) if c not in ID_COLUMNS]
        writer.writerow(safe_row(row))
    return out.getvalue()
