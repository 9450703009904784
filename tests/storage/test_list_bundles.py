"""A bundle loaded for a list (`load_bundles(recent=True)`, what App Home reads) shows what the
whole bundle shows, from a part of its history that does not grow with it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.evidence.blocks import evidence_headline
from bot.summary.blocks import headline, indicator_line
from bot.summary.home import build_home
from bot.summary.model import checkin_completion
from storage.db import SessionFactory, read_only, writing
from storage.models import (
    CheckIn,
    Contract,
    ContractStatus,
    Evidence,
    Measurement,
    SuccessIndicator,
)
from storage.queries.contracts import RECENT_VALUES, ContractBundle, load_bundles
from storage.queries.measurements import latest_ids, newest_ids
from tests.bot.checkins.test_support import add_contract

LEADER, OTHER, OWNER = "U0LEAD001", "U0LEAD002", "U0HRBP001"
TODAY = date(2027, 3, 10)  # a Wednesday: this week's check-in (Fridays) is not due yet
INDICATORS = [
    {"key": key, "name": name, "unit": "", "baseline": 62, "target": 75, "cadence": "weekly"}
    for key, name in (("I1", "Engagement"), ("I2", "Retention"), ("I3", "Never measured"))
]


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


async def add_history(sessions: SessionFactory, contract_id: int, weeks: int) -> None:
    """Weekly check-ins (one skipped, this week's answered early), two values a week of I1
    (the last two at the same instant: told apart by id), a single value of I2, none of I3,
    and evidence now and then."""
    async with sessions() as session:
        await writing(session)
        rows = await session.exec(
            select(SuccessIndicator).where(SuccessIndicator.contract_id == contract_id)
        )
        indicator = {i.key: i.id or 0 for i in rows.all()}
        first = TODAY - timedelta(weeks=weeks)
        for week in range(weeks + 1):
            day = first + timedelta(weeks=week)
            year, number, _ = day.isocalendar()
            skipped = week == 3
            session.add(
                CheckIn(
                    contract_id=contract_id,
                    period_key=f"{year}-W{number:02d}",
                    status="skipped" if skipped else "answered",
                    skip_reason="sick" if skipped else None,
                    confidence=None if skipped else 1 + week % 5,
                )
            )
            for value in (60 + week % 7, 61 + week % 5):
                session.add(
                    Measurement(indicator_id=indicator["I1"], value=value, measured_at=at(day))
                )
            if week % 4 == 0:
                session.add(
                    Evidence(
                        contract_id=contract_id,
                        item_type="indicator",
                        item_key="I1",
                        note="n",
                        created_at=at(day),
                    )
                )
        session.add(Measurement(indicator_id=indicator["I2"], value=70, measured_at=at(first)))
        await session.commit()


async def both(sessions: SessionFactory, ids: list[int]) -> tuple[list[ContractBundle], ...]:
    async with sessions() as session:
        await read_only(session)
        whole = await load_bundles(session=session, contracts=ids)
    async with sessions() as session:
        await read_only(session)
        listed = await load_bundles(session=session, contracts=ids, recent=True)
    return whole, listed


async def test_app_home_reads_the_same_from_a_list_bundle(sessions: SessionFactory) -> None:
    active = await add_contract(sessions, leader=LEADER, indicators=INDICATORS)
    closed = await add_contract(sessions, leader=OTHER, indicators=INDICATORS)
    fresh = await add_contract(sessions, leader="U0LEAD003", indicators=INDICATORS)
    await add_history(sessions, active, weeks=20)
    await add_history(sessions, closed, weeks=9)
    async with sessions() as session:
        await writing(session)
        row = await session.get(Contract, closed)
        assert row is not None
        row.status, row.closed_at = ContractStatus.closed, at(TODAY)
        await session.commit()
    whole, listed = await both(sessions, [active, closed, fresh])

    for full, lean in zip(whole, listed, strict=True):
        assert lean.recent and not lean.checkins and not lean.recent_evidence
        assert all(len(values) <= RECENT_VALUES for values in lean.measurements.values())
        assert lean.answered_periods == full.answered_periods
        for today in (TODAY, full.contract.period_end):
            assert checkin_completion(lean, today) == checkin_completion(full, today)
            assert headline(lean, today=today) == headline(full, today=today)
            assert evidence_headline(lean, today) == evidence_headline(full, today)
            for i in full.indicators:
                assert indicator_line(lean, i, today) == indicator_line(full, i, today)
    # 20 weeks answered, 9 of them due: the rest fell before the contract's start (4 January)
    # or is this week's, answered before its Friday.
    assert len(whole[0].answered_periods) == 20
    completion = checkin_completion(whole[0], TODAY)
    assert (completion.answered, completion.expected) == (9, 9)
    for viewer in (LEADER, OWNER):
        assert (
            build_home(viewer=viewer, bundles=listed, today=TODAY).to_dict()
            == build_home(viewer=viewer, bundles=whole, today=TODAY).to_dict()
        )


async def ids_of(session: AsyncSession, ids: Any) -> set[int | None]:
    found = await session.exec(select(Measurement.id).where(col(Measurement.id).in_(ids)))
    return set(found.all())


@pytest.mark.parametrize("keep", [1, 2, 3])
async def test_the_newest_values_by_index_are_the_newest_by_rank(
    sessions: SessionFactory, keep: int
) -> None:
    """`newest_ids` (a step down the index per indicator and place) picks the values
    `latest_ids` (every value ranked) does, ties in time told apart by id alike."""
    first = await add_contract(sessions, leader=LEADER, indicators=INDICATORS)
    await add_history(sessions, first, weeks=6)
    other = await add_contract(sessions, leader=OTHER, indicators=INDICATORS)
    await add_history(sessions, other, weeks=2)
    of_first = col(SuccessIndicator.contract_id) == first
    async with sessions() as session:
        await read_only(session)
        by_index = await ids_of(session, newest_ids(of_first, keep=keep))
        mine = select(SuccessIndicator.id).where(of_first)
        by_rank = await ids_of(
            session, latest_ids(col(Measurement.indicator_id).in_(mine), keep=keep)
        )
    assert by_index == by_rank
    assert len(by_index) == keep + 1  # I1's `keep` newest, I2's only one, none of I3
