"""The report's PDF read back with pypdf: a cover and a page per contract, names and figures
in it, no ids, and text fpdf2's core fonts could not hold (accents, emoji, CJK)."""

from __future__ import annotations

import io
import re
from datetime import date

import pypdf

from bot.charts.draw import draw
from bot.charts.model import IndicatorChart
from bot.report.blocks import report_messages
from bot.report.model import ContractReport, IndicatorMove, Portfolio, ReviewLine
from bot.report.pdf import render_pdf
from bot.report.service import parse_period
from bot.summary.model import CheckinCompletion

NAMES = {"U0LEAD001": "Dana Léader", "U0SPON001": "Sam 🙂 Sponsor", "U0HRBP001": "Hana 花子"}


def report(number: int, title: str) -> ContractReport:
    return ContractReport(
        contract_id=number,
        title=title,
        leader="U0LEAD001",
        sponsor="U0SPON001",
        owner="U0HRBP001",
        status="Active",
        version=2,
        moves=[IndicatorMove("I1", "Engagement ✓ “score”", "pts", 60, 75, 62, 68, 3)],
        met=["M1 Roadmap — published"],
        missed=["M2 Hire 🚀"],
        checkins=CheckinCompletion(11, 13),
        reviews=[ReviewLine("2027-Q2", "U0LEAD001", "leader", "kept E1, E2")],
        risks_opened=2,
        risks_resolved=1,
        lessons=["Delegate early — 早めに任せる"],
    )


def portfolio(*titles: str) -> Portfolio:
    chart = IndicatorChart(
        1, "I1", "Engagement", "pts", 60, 75, date(2027, 1, 4), date(2027, 12, 17),
        ((date(2027, 4, 5), 62.0), (date(2027, 6, 20), 68.0)), (),
    )  # fmt: skip
    png = draw(chart)
    return Portfolio(
        period=parse_period("2027Q2"),
        reports=[report(i, t) for i, t in enumerate(titles, start=1)],
        today=date(2027, 7, 1),
        names=NAMES,
        images={i: [("I1 · Engagement", png)] * 3 for i in range(1, len(titles) + 1)},
    )


def test_a_cover_then_a_page_per_contract_with_names_and_figures() -> None:
    titles = ("Head of Platform 🚀", "Café Ops Lead", "データ基盤リード")
    pdf = pypdf.PdfReader(io.BytesIO(render_pdf(portfolio(*titles))))
    assert len(pdf.pages) == 1 + 3
    pages = [page.extract_text() for page in pdf.pages]
    cover = pages[0]
    assert "2027 Q2" in cover and "Contracts: 3" in cover
    assert "Milestones: 3 met, 3 missed" in cover and "Risks: 6 raised, 3 resolved" in cover
    assert "Head of Platform" in pages[1] and "Café Ops Lead" in pages[2]
    for page in pages[1:]:
        assert "Dana Léader" in page and "Hana" in page
        assert "62 → 68 pts" in page and "11 of 13 weekly check-ins answered" in page
        assert "2 raised, 1 resolved" in page
    assert not any(re.search(r"\bU0[A-Z0-9]{6,}", page) for page in pages)
    # The chart is drawn three times on each page (one image, placed three times).
    for sheet in pdf.pages[1:]:
        contents = sheet.get_contents()
        assert contents is not None and contents.get_data().count(b" Do") == 3


def test_a_long_contract_keeps_to_its_page() -> None:
    shown = portfolio("Long one")
    shown.reports[0].met = [f"M{i} " + "a milestone with a long name " * 4 for i in range(60)]
    pdf = pypdf.PdfReader(io.BytesIO(render_pdf(shown)))
    assert len(pdf.pages) == 2


def test_no_contract_is_a_cover_alone() -> None:
    pdf = pypdf.PdfReader(io.BytesIO(render_pdf(portfolio())))
    assert len(pdf.pages) == 1
    assert "No contract ran in this period" in pdf.pages[0].extract_text()


def test_the_messages_keep_within_slack_limits() -> None:
    many = portfolio(*[f"Contract {i} <b>&" for i in range(30)])
    assert len(report_messages(many)) > 2  # 30 contracts need more than two messages
    parts = report_messages(many, most=2)
    assert len(parts) == 2 and all(len(p) <= 50 for p in parts)
    text = str([b.to_dict() for p in parts for b in p])
    assert "<b>" not in text and "&lt;b&gt;" in text  # user text escaped
    assert "U0LEAD001" not in text and "Dana Léader" in text
    assert "the attached PDF holds the whole report" in text
