"""The report's resilience figures: a Markdown line and four CSV columns."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.report.model import ContractReport, Period
from bot.report.render import RESILIENCE_COLUMNS, render_csv, render_markdown
from bot.report.service import period_resilience
from bot.risks.model import Resilience
from storage.models import Contract, Risk
from storage.queries.contracts import ContractBundle

PERIOD = Period("2027-Q1", "Q1 2027", date(2027, 1, 1), date(2027, 3, 31))


def report(figures: Resilience | None) -> ContractReport:
    return ContractReport(
        contract_id=1,
        title="Head of Platform",
        leader="U0LEAD001",
        sponsor="U0SPON001",
        status="Active",
        version=1,
        resilience=figures,
    )


def test_the_figures_are_a_line_and_columns() -> None:
    figures = Resilience(
        surfacing=2.5, resolution=4.0, recovery=None, open_count=1, resolved_count=2, recovered=[]
    )
    text = render_markdown(PERIOD, [report(figures)], today=date(2027, 4, 2))
    assert (
        "- Resilience: Surfacing: 2.5 days from noticed to raised (mean); Resolution: 4 days "
        "from raised to resolved (mean, 2 resolved, 1 open)" in text
    )
    (row,) = list(csv.DictReader(io.StringIO(render_csv(PERIOD, [report(figures)]))))
    assert [row[c] for c in RESILIENCE_COLUMNS] == ["2.5", "4", "", "1"]
    (empty,) = list(csv.DictReader(io.StringIO(render_csv(PERIOD, [report(None)]))))
    assert [empty[c] for c in RESILIENCE_COLUMNS] == ["", "", "", ""]


def test_the_period_counts_risks_as_they_stood_at_its_end() -> None:
    contract = Contract(
        id=1,
        title="t",
        leader_id="U0LEAD001",
        sponsor_id="U0SPON001",
        period_start=date(2027, 1, 4),
        period_end=date(2027, 12, 17),
    )
    raised = datetime(2027, 3, 1, 9, tzinfo=UTC)
    bundle = ContractBundle(
        contract=contract,
        risks=[
            Risk(
                contract_id=1,
                text="a",
                noticed_on=date(2027, 2, 27),
                created_at=raised,
                status="resolved",
                resolved_at=datetime(2027, 4, 5, 9, tzinfo=UTC),  # after Q1
            ),
            Risk(contract_id=1, text="b", created_at=datetime(2027, 4, 2, 9, tzinfo=UTC)),
        ],
    )
    figures = period_resilience(bundle, PERIOD, ZoneInfo("Europe/Berlin"))
    assert (figures.surfacing, figures.resolution, figures.open_count) == (2, None, 1)
