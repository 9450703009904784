"""`northstar report`: periods, the figures of each contract in a period, Markdown and CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.amendments.model import KINDS, Outcome, find_item
from bot.amendments.service import decide, propose
from bot.contracts.document import snapshot
from bot.contracts.io import import_text
from bot.core.calendar import period_key
from bot.report.model import ContractReport
from bot.report.render import CSV_COLUMNS, render_csv, render_markdown
from bot.report.service import build_report, parse_period
from storage.db import SessionFactory, writing
from storage.models import CheckIn, Measurement, Milestone, SuccessIndicator
from storage.queries.contracts import load_bundle
from tests.bot.amendments.test_service import example_text
from tests.bot.cli.test_main import northstar
from tests.fakes import FakeSlack
from tests.harness import BOT_TOKEN

BERLIN = ZoneInfo("Europe/Berlin")
Q2 = parse_period("2027Q2")
AFTER_Q2 = date(2027, 7, 15)


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "key", "start", "end"),
    [
        ("2027Q2", "2027Q2", date(2027, 4, 1), date(2027, 6, 30)),
        ("2027-q4", "2027Q4", date(2027, 10, 1), date(2027, 12, 31)),
        ("2027-05", "2027-05", date(2027, 5, 1), date(2027, 5, 31)),
        ("2028-02", "2028-02", date(2028, 2, 1), date(2028, 2, 29)),
        (" 2027 ", "2027", date(2027, 1, 1), date(2027, 12, 31)),
    ],
)
def test_periods(text: str, key: str, start: date, end: date) -> None:
    period = parse_period(text)
    assert (period.key, period.start, period.end) == (key, start, end)


@pytest.mark.parametrize("text", ["2027Q5", "2027Q0", "2027-13", "2027-00", "27", "Q2 2027", ""])
def test_bad_periods_say_what_is_wanted(text: str) -> None:
    with pytest.raises(ValueError, match=r"a quarter \(2027Q2\), a month \(2027-05\) or a year"):
        parse_period(text)


async def _q2_contract(sessions: SessionFactory) -> int:
    """The example contract with a second quarter's worth of data."""
    results, problems = await import_text(
        example_text(),
        filename="c.yml",
        sessions=sessions,
        client=None,
        draft=False,
        now=at("2027-01-04"),
    )
    assert problems == []
    contract_id = results[0].contract_id
    async with sessions() as session:
        await writing(session)
        indicators = {i.key: i for i in (await session.exec(select(SuccessIndicator))).all()}
        values = {
            "I1": [("2027-03-20", 63), ("2027-04-05", 64), ("2027-06-20", 68)],
            "I2": [("2027-05-10", 44)],
        }
        for key, series in values.items():
            for day, value in series:
                session.add(
                    Measurement(
                        indicator_id=indicators[key].id or 0, value=value, measured_at=at(day)
                    )
                )
        # The night of 30 June, UTC, is already 1 July in Berlin: outside the quarter there.
        session.add(
            Measurement(
                indicator_id=indicators["I2"].id or 0, value=20, measured_at=at("2027-06-30", 23)
            )
        )
        milestones = {m.key: m for m in (await session.exec(select(Milestone))).all()}
        milestones["M1"].status = "met"
        milestones["M1"].decided_at = at("2027-04-02")
        session.add(milestones["M1"])
        fridays = [date(2027, 4, 2) + timedelta(weeks=n) for n in range(13)]
        for friday in fridays[:10]:
            session.add(CheckIn(contract_id=contract_id, period_key=period_key(friday)))
        session.add(
            CheckIn(contract_id=contract_id, period_key=period_key(fridays[10]), status="skipped")
        )
        await session.commit()

    async with sessions() as session:
        await writing(session)
        bundle = await load_bundle(session=session, contract_id=contract_id)
        assert bundle is not None
        i2 = find_item(snapshot(bundle), KINDS["indicator"], "I2")
        ids = []
        for target in (28, 26):
            amendment = await propose(
                session=session,
                bundle=bundle,
                proposer="U0LEAD001",
                kind=KINDS["indicator"],
                handle="I2",
                after={**(i2 or {}), "target": target},
                rationale="why",
                now=at("2027-05-02"),
            )
            ids.append(amendment.id or 0)
    applied = await decide(
        sessions=sessions, amendment_id=ids[0], user="U0SPON001", approve=True, now=at("2027-05-03")
    )
    rejected = await decide(
        sessions=sessions,
        amendment_id=ids[1],
        user="U0SPON001",
        approve=False,
        reason="no",
        now=at("2027-07-03"),
    )
    assert (applied.outcome, rejected.outcome) == (Outcome.applied, Outcome.rejected)
    _, problems = await import_text(
        example_text(("target: 90", "target: 92"), ("target: 30", "target: 28")),
        filename="c.yml",
        sessions=sessions,
        client=None,
        draft=False,
        now=at("2027-06-01"),
    )
    assert problems == []
    return contract_id


async def report_of(
    sessions: SessionFactory, text: str = "2027Q2", today: date = AFTER_Q2
) -> list[ContractReport]:
    async with sessions() as session:
        return await build_report(
            session=session, period=parse_period(text), today=today, zone=BERLIN
        )


async def test_a_quarter_of_one_contract(sessions: SessionFactory) -> None:
    await _q2_contract(sessions)
    (report,) = await report_of(sessions)
    assert (report.status, report.version) == ("Active", 3)
    moves = {m.key: (m.first, m.last, m.count) for m in report.moves}
    assert moves == {"I1": (64, 68, 2), "I2": (44, 44, 1)}
    assert report.moves[0].text() == (
        "I1: 64 -> 68 (2 values; baseline 62, target 75, 46% of the way)"
    )
    assert report.unmeasured == ["I3"]
    assert report.met == ["M1 Engagement at 68 or above"]
    assert report.missed == ["M2 Coaching programme completed"]  # due 30 June, not met
    assert (report.checkins.answered, report.checkins.expected) == (10, 13)
    assert (report.proposed, report.applied, report.rejected, report.imports) == (2, 1, 0, 1)


async def test_the_figures_follow_the_period(sessions: SessionFactory) -> None:
    await _q2_contract(sessions)
    (may,) = await report_of(sessions, "2027-05")
    assert [m.key for m in may.moves] == ["I2"]
    assert may.met == [] and may.missed == []
    assert (may.checkins.answered, may.checkins.expected) == (4, 4)
    (july,) = await report_of(sessions, "2027-07")
    assert (july.proposed, july.applied, july.rejected) == (0, 0, 1)
    assert [m.key for m in july.moves] == ["I2"]  # the Berlin night of 1 July
    (during,) = await report_of(sessions, "2027Q2", today=date(2027, 5, 1))
    assert during.missed == []  # nothing is missed before its date
    assert during.checkins.expected == 5
    (year,) = await report_of(sessions, "2027")
    assert year.moves[0].first == 63
    assert await report_of(sessions, "2026") == []


async def test_drafts_are_left_out(sessions: SessionFactory) -> None:
    _, problems = await import_text(
        example_text(),
        filename="c.yml",
        sessions=sessions,
        client=None,
        draft=True,
        now=at("2027-01-04"),
    )
    assert problems == []
    assert await report_of(sessions) == []


async def test_markdown_and_csv(sessions: SessionFactory) -> None:
    await _q2_contract(sessions)
    reports = await report_of(sessions)
    text = render_markdown(Q2, reports, today=AFTER_Q2)
    assert text.startswith("# North Star report: 2027 Q2 (1 Apr 2027 – 30 Jun 2027)\n")
    assert "## Head of Platform: FY2027 leadership contract" in text
    assert (
        "| I1 Team engagement score (points) | 62 | 64 → 68 (2 values) | 75 | "
        "46% ↗ up 4 points · improving |" in text
    )
    assert "| I2 Median project cycle time (days) | 45 | 44 → 44 (1 value) | 28 | 6% |" in text
    assert "No value recorded in the period: I3." in text
    assert "- Check-ins: 10 of 13 weekly check-ins answered (77%)" in text
    assert (
        "- Amendments: 2 proposed · 1 applied · 0 rejected; 1 administrative amendment by import"
        in text
    )
    rows = list(csv.DictReader(io.StringIO(render_csv(Q2, reports))))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert (
        rows[0]["checkin_completion"] == "77"
        and rows[0]["milestones_met"] == "M1 Engagement at 68 or above"
    )
    assert rows[0]["indicator_moves"].startswith("I1: 64 -> 68")
    empty = render_markdown(Q2, [], today=date(2027, 1, 1))
    assert "the period has not begun" in empty and "No active or closed contract" in empty


async def test_the_command(fake_slack: FakeSlack, sqlite_url: str, tmp_path: Path) -> None:
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": fake_slack.api_url,
        "DATABASE_URL": sqlite_url,
        "LOG_LEVEL": "WARNING",
    }
    contract = tmp_path / "contract.yml"
    contract.write_text(example_text(), encoding="utf-8")
    imported = await northstar(
        "contract", "import", str(contract), "--agreed", cwd=tmp_path, env=env
    )
    assert imported.code == 0

    asked = len(fake_slack.calls_to("users.info"))
    run = await northstar("report", "--period", "2027Q2", cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    assert "## Head of Platform: FY2027 leadership contract" in run.out
    assert "Leader Dana Leader (U0LEAD001) · sponsor Sam Sponsor (U0SPON001) · Active" in run.out
    assert len(fake_slack.calls_to("users.info")) == asked + 2  # each person asked once
    out = tmp_path / "q2.csv"
    run = await northstar(
        "report", "--period", "2027-05", "--format", "csv", "--out", str(out), cwd=tmp_path, env=env
    )
    assert run.code == 0, run.err
    (row,) = csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))
    assert (row["period"], row["status"], row["indicators_measured"]) == ("2027-05", "Active", "0")
    assert (row["leader"], row["leader_name"]) == ("U0LEAD001", "Dana Leader")

    offline = {key: value for key, value in env.items() if key != "SLACK_BOT_TOKEN"}
    run = await northstar("report", "--period", "2027Q2", cwd=tmp_path, env=offline)
    assert run.code == 0, run.err
    assert "Leader U0LEAD001 · sponsor U0SPON001 · Active" in run.out
    assert "People appear as Slack user ids: names are looked up in Slack only with" in run.out
    run = await northstar(
        "report", "--period", "2027Q2", "--format", "csv", cwd=tmp_path, env=offline
    )
    (row,) = csv.DictReader(io.StringIO(run.out))
    assert (row["leader"], row["leader_name"], row["sponsor_name"]) == ("U0LEAD001", "", "")

    run = await northstar("report", "--period", "Q2", cwd=tmp_path, env=env)
    assert run.code == 2 and run.out == ""
    assert "argument --period: the period must be a quarter (2027Q2)" in run.err
    run = await northstar("report", "--period", "2027", "--format", "pdf", cwd=tmp_path, env=env)
    assert run.code == 2 and "invalid choice: 'pdf'" in run.err
