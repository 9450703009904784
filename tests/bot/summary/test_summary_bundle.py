"""A summary read from what it shows (`load_summary`) is the summary read from the whole
history: on both databases, for three years of weeks, on several days, for each reader."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.charts.model import charts_of
from bot.summary.blocks import build_summary, figures_of
from bot.summary.service import load_summary
from storage.db import SessionFactory, read_only, writing
from storage.models import CheckIn, Evidence, Measurement, Risk, SuccessIndicator
from storage.queries.contracts import ContractBundle, load_bundle
from tests.bot.checkins.test_support import add_contract

LEADER, SPONSOR, OWNER = "U0LEAD001", "U0SPON001", "U0HRBP001"
ZONE = "Pacific/Auckland"  # a day ahead of UTC most of the time: a due day's end is not UTC's
START, END = date(2027, 1, 4), date(2029, 12, 21)
INDICATORS = [
    {
        "key": "I1",
        "name": "Engagement",
        "unit": "",
        "baseline": 62,
        "target": 75,
        "cadence": "weekly",
    },
    {
        "key": "I2",
        "name": "Attrition",
        "unit": "%",
        "baseline": 40,
        "target": 20,
        "cadence": "monthly",
    },
    {
        "key": "I3",
        "name": "Never measured",
        "unit": "",
        "baseline": 0,
        "target": 5,
        "cadence": "weekly",
    },
]
MILESTONES = [
    # Recovered: I1 reaches 68 in the week after, a value on the due day itself does not count.
    {
        "key": "M1",
        "title": "Up to 68",
        "due": date(2027, 3, 5),
        "indicator_key": "I1",
        "threshold": 68,
        "status": "missed",
    },
    # Never recovered: I1 never reaches its target of 75.
    {
        "key": "M2",
        "title": "At target",
        "due": date(2027, 6, 4),
        "indicator_key": "I1",
        "status": "missed",
    },
    # A decreasing indicator: recovered once attrition is at or under 30.
    {
        "key": "M3",
        "title": "Attrition 30",
        "due": date(2027, 9, 3),
        "indicator_key": "I2",
        "threshold": 30,
        "status": "missed",
    },
    {
        "key": "M4",
        "title": "Met",
        "due": date(2027, 4, 2),
        "indicator_key": "I1",
        "threshold": 63,
        "status": "met",
    },
    {
        "key": "M5",
        "title": "Later",
        "due": date(2029, 6, 1),
        "indicator_key": "I1",
        "threshold": 70,
    },
    {"key": "M6", "title": "No indicator", "due": date(2027, 5, 7), "status": "missed"},
]


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(ZONE)).astimezone(
        UTC
    )


async def add_history(sessions: SessionFactory, contract_id: int, weeks: int) -> None:
    """Weekly check-ins (some skipped, some unrated, words in a few, none in the last ten:
    the latest words are not among the weeks of the confidence trend),
    I1 around 60-67 with a 68 late on M1's due day and one early the next day, I2 falling,
    a dozen pieces of evidence and three risks."""
    async with sessions() as session:
        await writing(session)
        rows = await session.exec(
            select(SuccessIndicator).where(SuccessIndicator.contract_id == contract_id)
        )
        indicator = {i.key: i.id or 0 for i in rows.all()}
        for week in range(weeks):
            day = START + timedelta(weeks=week, days=4)
            year, number, _ = day.isocalendar()
            skipped = week % 9 == 4
            session.add(
                CheckIn(
                    contract_id=contract_id,
                    period_key=f"{year}-W{number:02d}",
                    status="skipped" if skipped else "answered",
                    confidence=None if skipped or week % 7 == 3 else 1 + week % 5,
                    wins=f"Win of week {week}" if week % 10 == 2 and week < weeks - 10 else "",
                    reflection=f"Thought {week}" if week % 15 == 1 and week < weeks - 10 else "",
                    created_at=local(day, 17),
                )
            )
            session.add(
                Measurement(
                    indicator_id=indicator["I1"], value=60 + week % 8, measured_at=local(day, 9)
                )
            )
            if week % 4 == 0:
                session.add(
                    Measurement(
                        indicator_id=indicator["I2"], value=40 - week / 8, measured_at=local(day, 9)
                    )
                )
            if week % 13 == 0:
                session.add(
                    Evidence(
                        contract_id=contract_id,
                        item_type="indicator",
                        item_key="I1",
                        note=f"evidence {week}",
                        created_at=local(day, 12),
                    )
                )
        for when, value in (
            (local(date(2027, 3, 5), 23, 30), 69),
            (local(date(2027, 3, 6), 0, 30), 68),
        ):
            session.add(Measurement(indicator_id=indicator["I1"], value=value, measured_at=when))
        for n, (raised, resolved) in enumerate(
            (
                (date(2027, 2, 1), date(2027, 2, 9)),
                (date(2027, 5, 3), None),
                (date(2028, 1, 10), date(2028, 3, 1)),
            )
        ):
            session.add(
                Risk(
                    contract_id=contract_id,
                    text=f"Risk {n}",
                    created_at=local(raised, 10),
                    noticed_on=raised - timedelta(days=3),
                    status="resolved" if resolved else "open",
                    resolved_at=local(resolved, 10) if resolved else None,
                )
            )
        await session.commit()


async def read(sessions: SessionFactory, contract_id: int) -> tuple[ContractBundle, ContractBundle]:
    async with sessions() as session:
        await read_only(session)
        whole = await load_bundle(session=session, contract_id=contract_id)
    async with sessions() as session:
        await read_only(session)
        shown = await load_summary(session=session, contract_id=contract_id)
    assert whole is not None and shown is not None
    return whole, shown


async def test_a_summary_reads_the_same_from_what_it_shows(sessions: SessionFactory) -> None:
    contract = await add_contract(
        sessions, timezone=ZONE, start=START, end=END, indicators=INDICATORS, milestones=MILESTONES
    )
    await add_history(sessions, contract, weeks=156)
    whole, shown = await read(sessions, contract)

    assert shown.recent and len(shown.checkins) <= 7 and len(shown.recent_evidence) == 5
    assert sum(len(v) for v in shown.measurements.values()) <= 6
    zone = ZoneInfo(ZONE)
    recovered = [(r.milestone.key, r.days) for r in figures_of(whole, zone).recovered]
    assert recovered == [
        ("M1", 1),
        ("M2", None),
        # I2 is at 30 in week 80, on its Friday.
        ("M3", (START + timedelta(weeks=80, days=4) - date(2027, 9, 3)).days),
    ]
    assert figures_of(shown, zone) == figures_of(whole, zone)
    for today in (date(2027, 3, 10), date(2028, 6, 14), END, END + timedelta(days=30)):
        for viewer in (LEADER, SPONSOR, OWNER, None):
            assert [b.to_dict() for b in build_summary(shown, today=today, viewer=viewer)] == [
                b.to_dict() for b in build_summary(whole, today=today, viewer=viewer)
            ], (today, viewer)
    assert charts_of(whole)
    with pytest.raises(ValueError, match="whole history"):
        charts_of(shown)  # its charts are known by the history's number, or drawn from all


async def test_a_fresh_contract_reads_the_same(sessions: SessionFactory) -> None:
    contract = await add_contract(
        sessions, timezone=None, indicators=INDICATORS, milestones=MILESTONES
    )
    whole, shown = await read(sessions, contract)
    assert not shown.checkins and not shown.measurements
    for viewer in (LEADER, OWNER):
        today = date(2027, 8, 1)
        assert [b.to_dict() for b in build_summary(shown, today=today, viewer=viewer)] == [
            b.to_dict() for b in build_summary(whole, today=today, viewer=viewer)
        ]
