"""A check-in's values of each indicator (its own, the latest other, the latest of all) come
from the latest few values and the check-in's own, not the whole history, on SQLite and
PostgreSQL (the latest come from a window function)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest_asyncio
from sqlmodel import col, select

from bot.checkins.model import Plan
from bot.checkins.service import load_plans
from bot.core.calendar import period_key
from storage.db import SessionFactory, read_only, writing
from storage.models import CheckIn, Contract, Measurement
from storage.queries.checkins import LATEST_VALUES, period_rows
from tests.harness import START
from tests.scale import seed_organisation

WEEKS = 30
ZONE = ZoneInfo("Europe/Berlin")
NOW_PERIOD = period_key(START.date())  # no check-in yet
LATE_PERIOD = period_key((START - timedelta(weeks=10)).date())  # answered, ten weeks back
LAST_PERIOD = period_key((START - timedelta(weeks=1)).date())  # answered, the latest values


@pytest_asyncio.fixture
async def two_contracts(database_url: str) -> None:
    """Contracts 1 and 2, each with two indicators and `WEEKS` weeks of check-ins."""
    await seed_organisation(
        database_url, now=START, contracts=2, weeks=WEEKS, leader="U0LEAD001", governor="U0HR"
    )


def expected(plan: Plan, history: dict[int, list[Measurement]]) -> list[tuple[object, ...]]:
    """What each ask should hold, worked out from the whole history (oldest first)."""
    found: list[tuple[object, ...]] = []
    for ask in plan.indicators:
        values = history[ask.indicator.id or 0]
        mine = next(
            (m for m in values if plan.checkin is not None and m.checkin_id == plan.checkin.id),
            None,
        )
        others = [m for m in values if m is not mine]
        found.append(
            (
                values[-1].value,
                None if mine is None else mine.id,
                others[-1].id if others else None,
            )
        )
    return found


def held(plan: Plan) -> list[tuple[object, ...]]:
    return [
        (
            ask.last,
            None if ask.answered is None else ask.answered.id,
            None if ask.previous is None else ask.previous.id,
        )
        for ask in plan.indicators
    ]


async def test_a_plan_shows_the_values_the_whole_history_gives(
    sessions: SessionFactory, two_contracts: None
) -> None:
    async with sessions() as session:
        await writing(session)
        # A value recorded outside any check-in, after all of them: the latest of indicator 1.
        session.add(
            Measurement(
                indicator_id=1,
                value=99,
                measured_at=START - timedelta(days=1),
                source="",
                recorded_by="U0LEAD001",
                created_at=START - timedelta(days=1),
            )
        )
        await session.commit()
    async with sessions() as session:
        await read_only(session)
        everything = (
            await session.exec(
                select(Measurement).order_by(col(Measurement.measured_at), col(Measurement.id))
            )
        ).all()
        history: dict[int, list[Measurement]] = {}
        for m in everything:
            history.setdefault(m.indicator_id, []).append(m)
        one, two = (await session.get(Contract, 1)), (await session.get(Contract, 2))
        assert one is not None and two is not None
        wanted = [
            (one, NOW_PERIOD, ZONE),
            (one, LATE_PERIOD, ZONE),
            (two, LATE_PERIOD, ZONE),
            (two, LAST_PERIOD, ZONE),
        ]
        plans = await load_plans(session=session, wanted=wanted)
        # No check-in in any period asked for: an empty list where the check-ins go.
        (alone,) = await load_plans(session=session, wanted=[(one, NOW_PERIOD, ZONE)])

    assert alone.checkin is None and held(alone) == expected(alone, history)
    assert plans[0].checkin is None and plans[1].checkin is not None
    assert [len(p.indicators) for p in plans] == [2, 2, 2, 2]
    for plan in plans:
        assert held(plan) == expected(plan, history)
    # The late check-in's own values, and the latest other: the one outside any check-in.
    assert all(ask.answered is not None for ask in plans[1].indicators)
    assert plans[1].indicators[0].last == 99
    assert plans[1].indicators[0].previous is not None
    assert plans[1].indicators[0].previous.checkin_id is None
    # A check-in holding the latest values: the latest other is the one before.
    latest = plans[3].indicators[1]
    assert latest.answered is not None and latest.previous is not None
    assert latest.previous.measured_at == latest.answered.measured_at - timedelta(weeks=1)


async def test_the_values_read_do_not_grow_with_history(
    sessions: SessionFactory, two_contracts: None
) -> None:
    async with sessions() as session:
        await read_only(session)
        late = (
            await session.exec(
                select(CheckIn).where(CheckIn.contract_id == 1, CheckIn.period_key == LATE_PERIOD)
            )
        ).one()
        rows = await period_rows(
            session=session, contract_ids=[1, 2], periods={NOW_PERIOD, LATE_PERIOD}
        )

    assert sorted(rows.series) == [1, 2, 3, 4]  # two indicators a contract
    for values in rows.series.values():
        # The latest two, and the late check-in's own (each contract answered that week).
        assert len(values) == LATEST_VALUES + 1
        assert values == sorted(values, key=lambda m: (m.measured_at, m.id or 0))
    assert {m.checkin_id for m in rows.series[1]} >= {late.id}
