"""The period report as a PDF a board pack can hold (fpdf2): a cover with the period and the
portfolio's totals, then one page per contract with its figures and its charts.

People appear by name, never by a Slack or database id. Text is set in DejaVu Sans, which
matplotlib ships, so accents, Greek, Cyrillic and most symbols print; a character the font
lacks (CJK, colour emoji) falls back to a Last Resort placeholder glyph, never an error.
Each contract keeps to its one page: what would run past its foot is cut with a note.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from bot.core.progress import format_number, percent
from bot.core.text import truncate
from bot.report.model import ContractReport, Portfolio, name_of
from bot.report.render import day_text

FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FAMILY = "dejavu"
FALLBACK = "lastresort"
MARGIN = 15.0  # mm
FOOT = 282.0  # mm: below this nothing more is written on a page (A4 is 297 mm tall)
CHART_WIDTH = 88.0  # mm: two charts side by side
CHART_HEIGHT = CHART_WIDTH * 240 / 600
CHARTS_PER_PAGE = 4
LINE = 5.0
TEXT_CHARS = 400


class _Page(FPDF):
    """A4 portrait with the report's fonts and a footer naming the report and the page."""

    def __init__(self, footer: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_text = footer
        self.add_font(FAMILY, "", str(FONTS / "DejaVuSans.ttf"))
        self.add_font(FAMILY, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
        self.add_font(FALLBACK, "", str(FONTS / "LastResortHE-Regular.ttf"))
        self.set_fallback_fonts([FALLBACK], exact_match=False)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(False)
        self.cut = False

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FAMILY, "", 8)
        self.set_text_color(110)
        self.cell(0, 5, f"{self.footer_text} · page {self.page_no()}", align="C")
        self.set_text_color(0)

    def room(self, height: float) -> bool:
        """Whether `height` mm more fit above the foot; once not, the page says it was cut."""
        if self.get_y() + height <= FOOT:
            return True
        if not self.cut:
            self.cut = True
            self.set_font(FAMILY, "", 8)
            self.set_y(FOOT)
            self.cell(0, 4, "… more in the CSV and in Slack.", new_x=XPos.LMARGIN)
        return False

    def text_line(self, text: str, *, size: float = 10, bold: bool = False) -> None:
        self.set_font(FAMILY, "B" if bold else "", size)
        height = LINE * size / 10
        lines = self.multi_cell(
            0, height, _printable(text), align="L", dry_run=True, output="LINES"
        )
        count = len(lines) if isinstance(lines, list) else 1
        if not self.room(height * max(1, count)):
            return
        self.multi_cell(0, height, _printable(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(self, text: str, size: float = 16) -> None:
        self.text_line(text, size=size, bold=True)
        self.ln(1)


def _printable(text: str) -> str:
    """Text without control characters (a tab or a stray escape would print as a box)."""
    cleaned = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf") and ch != "\n" else ch for ch in text
    )
    return truncate(cleaned, TEXT_CHARS)


def _cover(pdf: _Page, portfolio: Portfolio) -> None:
    period = portfolio.period
    pdf.add_page()
    pdf.set_y(60)
    pdf.heading("North Star report", 26)
    pdf.heading(f"{period.label}", 20)
    pdf.text_line(
        f"{day_text(period.start)} – {day_text(period.end)} · made {day_text(portfolio.today)}"
    )
    pdf.ln(8)
    pdf.heading("The portfolio", 14)
    for line in portfolio.totals.lines():
        pdf.text_line(line, size=11)
    pdf.ln(6)
    if portfolio.reports:
        pdf.heading("Contracts", 14)
        for number, r in enumerate(portfolio.reports, start=2):
            leader = name_of(r.leader, portfolio.names)
            pdf.text_line(f"{r.title} · {leader} · {r.status} · page {number}", size=10)
    else:
        pdf.text_line("No contract ran in this period.")


def _contract(pdf: _Page, r: ContractReport, portfolio: Portfolio) -> None:
    names = portfolio.names
    pdf.add_page()
    pdf.cut = False
    pdf.heading(r.title, 15)
    people = f"Leader {name_of(r.leader, names)} · sponsor {name_of(r.sponsor, names)}"
    if r.owner:
        people += f" · owner {name_of(r.owner, names)}"
    pdf.text_line(people, size=10)
    pdf.text_line(f"{r.status} · version {r.version}", size=9)
    pdf.ln(2)
    pdf.text_line("Indicators measured in the period", size=11, bold=True)
    for m in r.moves:
        unit = f" {m.unit}" if m.unit else ""
        pdf.text_line(
            f"{m.key} {m.name}: {format_number(m.first)} → {format_number(m.last)}{unit} "
            f"({m.count} value{'s' if m.count != 1 else ''}); baseline "
            f"{format_number(m.baseline)}, target {format_number(m.target)}, "
            f"{percent(m.progress)} of the way {m.trend_mark}".rstrip(),
            size=9,
        )
    if not r.moves:
        pdf.text_line("None in the period.", size=9)
    if r.unmeasured:
        pdf.text_line(f"No value in the period: {', '.join(r.unmeasured)}", size=9)
    _charts(pdf, portfolio.images.get(r.contract_id, []))
    pdf.ln(2)
    amendments = f"{r.proposed} proposed, {r.applied} applied, {r.rejected} rejected"
    if r.lapsed:
        amendments += f", {r.lapsed} out of date"
    figures = [
        ("Milestones met", "; ".join(r.met) or "none"),
        ("Milestones missed", "; ".join(r.missed) or "none"),
        ("Check-ins", r.checkins.text),
        ("Risks", f"{r.risks_opened} raised, {r.risks_resolved} resolved in the period"),
        *(("Resilience", line) for line in (r.resilience.lines() if r.resilience else [])),
        ("Amendments", amendments),
        ("Alignment reviews", "; ".join(x.text(names) for x in r.reviews) or "none"),
        ("Lessons shared", "; ".join(r.lessons) or "none"),
    ]
    for label, text in figures:
        pdf.text_line(f"{label}: {text}", size=9)
    pdf.ln(2)
    pdf.text_line("360 feedback: the leader's self view beside the others' (counts)", size=9)
    for expectation in r.feedback:
        pdf.text_line(f"  {expectation.line()}", size=9)
    if not r.feedback:
        pdf.text_line("  None given or released in the period.", size=9)


def _charts(pdf: _Page, images: list[tuple[str, bytes]]) -> None:
    shown = images[:CHARTS_PER_PAGE]
    for row in range(0, len(shown), 2):
        pdf.ln(2)
        if not pdf.room(CHART_HEIGHT):
            return
        top = pdf.get_y()
        for column, (title, png) in enumerate(shown[row : row + 2]):
            x = MARGIN + column * (CHART_WIDTH + 4)
            pdf.image(io.BytesIO(png), x=x, y=top, w=CHART_WIDTH, h=CHART_HEIGHT, alt_text=title)
        pdf.set_y(top + CHART_HEIGHT)


def render_pdf(portfolio: Portfolio) -> bytes:
    """The report as PDF bytes: a cover page, then a page per contract."""
    period = portfolio.period
    pdf = _Page(f"North Star report {period.label}")
    pdf.set_title(f"North Star report {period.label}")
    pdf.set_creator("North Star")
    _cover(pdf, portfolio)
    for r in portfolio.reports:
        _contract(pdf, r, portfolio)
    return bytes(pdf.output())
