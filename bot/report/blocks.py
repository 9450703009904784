"""The period report as Block Kit: the portfolio's totals, then a section per contract with
its charts. People by name, every piece of user text escaped; cut into messages that keep
within Slack's limits (`split_messages`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from slack_sdk.models.blocks import Block, DividerBlock

from bot.charts.blocks import chart_blocks
from bot.charts.model import ShownChart
from bot.core.progress import format_number, percent
from bot.core.text import escape, truncate
from bot.report.model import ContractReport, Portfolio, name_of
from bot.report.render import day_text
from bot.ui.blocks import MESSAGE_BLOCKS, capped, context, header, sections, split_messages

ITEM_CHARS = 200  # a milestone, review or lesson line


def title_of(portfolio: Portfolio) -> str:
    p = portfolio.period
    return f"North Star report: {p.label} ({day_text(p.start)} – {day_text(p.end)})"


def _contract_blocks(
    r: ContractReport, portfolio: Portfolio, charts: Sequence[ShownChart]
) -> list[Block]:
    names = portfolio.names
    people = (
        f"Leader {escape(name_of(r.leader, names))} · sponsor {escape(name_of(r.sponsor, names))}"
    )
    if r.owner:
        people += f" · owner {escape(name_of(r.owner, names))}"
    lines = []
    for m in r.moves:
        unit = f" {escape(m.unit)}" if m.unit else ""
        values = f"{m.count} value{'s' if m.count != 1 else ''}"
        lines.append(
            f"• *{escape(m.key)}* {escape(truncate(m.name, ITEM_CHARS))}: "
            f"{format_number(m.first)} → {format_number(m.last)}{unit} ({values}; target "
            f"{format_number(m.target)}, {percent(m.progress)} of the way) {m.trend_mark}".rstrip()
        )
    if r.unmeasured:
        lines.append(f"_No value in the period: {escape(', '.join(r.unmeasured))}_")

    def listed(items: Sequence[str]) -> str:
        shown = capped([escape(truncate(i, ITEM_CHARS)) for i in items], 5)
        return "; ".join(shown) or "none"

    figures = [
        f"*Milestones met:* {listed(r.met)}",
        f"*Milestones missed:* {listed(r.missed)}",
        f"*Check-ins:* {r.checkins.text}",
        f"*Risks:* {r.risks_opened} raised, {r.risks_resolved} resolved in the period",
    ]
    if r.resilience is not None:
        figures += [f"   {escape(line)}" for line in r.resilience.lines()]
    amendments = f"{r.proposed} proposed, {r.applied} applied, {r.rejected} rejected"
    if r.lapsed:
        amendments += f", {r.lapsed} out of date"
    figures.append(f"*Amendments:* {amendments}")
    reviews = [line.text(names) for line in r.reviews]
    figures.append(f"*Alignment reviews:* {listed(reviews)}")
    figures.append(f"*Lessons shared:* {listed(r.lessons)}")
    feedback = [
        f"• {_expectation(e.key, e.text)} — {escape('; '.join(g.text() for g in e.groups))}"
        for e in r.feedback
    ]
    return [
        DividerBlock(),
        *sections(escape(truncate(r.title, 200)), [people, f"{r.status} · version {r.version}"]),
        *sections("Indicators measured", lines or ["_none in the period_"]),
        *chart_blocks(charts),
        *sections(None, figures),
        *sections(
            "360 feedback: the leader's self view beside the others' (counts)",
            feedback or ["_none given or released in the period_"],
        ),
    ]


def build_report_blocks(
    portfolio: Portfolio, charts: Mapping[int, Sequence[ShownChart]] | None = None
) -> list[Block]:
    """Every block of the report, in order (cut into messages by `report_messages`)."""
    totals = portfolio.totals
    blocks: list[Block] = [
        header(title_of(portfolio)),
        context(
            f"Made {day_text(portfolio.today)} · the PDF and the CSV are attached"
            + (" · counted up to today" if portfolio.today <= portfolio.period.end else "")
        ),
        *sections("The portfolio", totals.lines()),
    ]
    if not portfolio.reports:
        blocks.append(context("No contract you govern ran in this period."))
    for r in portfolio.reports:
        blocks += _contract_blocks(r, portfolio, (charts or {}).get(r.contract_id, []))
    return blocks


def report_messages(
    portfolio: Portfolio,
    charts: Mapping[int, Sequence[ShownChart]] | None = None,
    *,
    most: int | None = None,
) -> list[list[Block]]:
    """The report cut into messages within Slack's limits; with `most`, at most that many,
    the last one saying the rest is in the PDF."""
    parts = split_messages(build_report_blocks(portfolio, charts))
    if most is not None and len(parts) > most:
        last = parts[most - 1][: MESSAGE_BLOCKS - 1]
        left = len(parts) - most
        more = context(
            f"_…and {left} more message{'s' if left != 1 else ''} of it: "
            "the attached PDF holds the whole report._"
        )
        parts = [*parts[: most - 1], [*last, more]]
    return parts


def _expectation(key: str | None, text: str) -> str:
    if key is None:
        return "_No expectation named_"
    return f"*{escape(key)}* {escape(truncate(text, ITEM_CHARS))}".rstrip()
