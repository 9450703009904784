"""The number of a contract's history: every write of what its charts draw bumps it, on both
databases, and only that contract's; nothing else does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import SessionFactory, create_engine, read_only, session_factory, writing
from storage.models import (
    ChartSet,
    CheckIn,
    Contract,
    ContractHistory,
    Evidence,
    Measurement,
    Milestone,
    SuccessIndicator,
)
from storage.queries.charts import DrawnSet, chart_sets, history_versions, keep_chart_sets
from tests.bot.checkins.test_support import add_contract

INDICATOR = {"key": "I1", "name": "Engagement", "baseline": 62, "target": 75, "cadence": "weekly"}
MILESTONE = {"key": "M1", "title": "Halfway", "due": date(2027, 6, 1)}
MILESTONES = [MILESTONE, {"key": "M2", "title": "At target", "due": date(2027, 9, 1)}]
WHEN = datetime(2027, 2, 1, 10, tzinfo=UTC)

Change = Callable[[AsyncSession], Awaitable[None]]


async def numbers(sessions: SessionFactory, *ids: int) -> list[int]:
    async with sessions() as session:
        await read_only(session)
        found = await history_versions(session=session, contract_ids=ids)
    return [found[i] for i in ids]


async def write(sessions: SessionFactory, change: Change) -> None:
    async with sessions() as session:
        await writing(session)
        await change(session)
        await session.commit()


async def indicator_of(sessions: SessionFactory, contract_id: int) -> int:
    async with sessions() as session:
        await read_only(session)
        found = await session.exec(
            select(SuccessIndicator.id).where(SuccessIndicator.contract_id == contract_id)
        )
        return found.one() or 0


async def test_every_write_of_what_a_chart_draws_bumps_its_contract_only(
    sessions: SessionFactory,
) -> None:
    one = await add_contract(sessions, indicators=[INDICATOR], milestones=[MILESTONE])
    other = await add_contract(sessions, leader="U0LEAD002", indicators=[INDICATOR])
    indicator = await indicator_of(sessions, one)
    seen = await numbers(sessions, one, other)

    async def add_value(session: AsyncSession) -> None:
        session.add(Measurement(indicator_id=indicator, value=64, measured_at=WHEN))

    async def edit_value(session: AsyncSession) -> None:
        value = (await session.exec(select(Measurement))).one()
        value.value = 65
        session.add(value)

    async def delete_value(session: AsyncSession) -> None:
        await session.delete((await session.exec(select(Measurement))).one())

    async def add_checkin(session: AsyncSession) -> None:
        session.add(CheckIn(contract_id=one, period_key="2027-W05", confidence=3))

    async def rate_checkin(session: AsyncSession) -> None:
        checkin = (await session.exec(select(CheckIn))).one()
        checkin.confidence = 4
        session.add(checkin)

    async def decide_milestone(session: AsyncSession) -> None:
        milestone = (await session.exec(select(Milestone))).one()
        milestone.status = "missed"
        session.add(milestone)

    async def rename_indicator(session: AsyncSession) -> None:
        row = await session.get(SuccessIndicator, indicator)
        assert row is not None
        row.name = "Team engagement"
        session.add(row)

    async def move_the_end(session: AsyncSession) -> None:
        contract = await session.get(Contract, one)
        assert contract is not None
        contract.period_end = datetime(2027, 12, 31).date()
        session.add(contract)

    for change in (
        add_value,
        edit_value,
        delete_value,
        add_checkin,
        rate_checkin,
        decide_milestone,
        rename_indicator,
        move_the_end,
    ):
        await write(sessions, change)
        now = await numbers(sessions, one, other)
        assert now[0] > seen[0], change.__name__
        assert now[1] == seen[1], change.__name__
        seen = now

    async def add_evidence(session: AsyncSession) -> None:
        session.add(Evidence(contract_id=one, item_type="indicator", item_key="I1", note="n"))

    await write(sessions, add_evidence)  # evidence is no chart's
    assert await numbers(sessions, one, other) == seen


async def test_a_value_moved_to_another_contract_bumps_both(sessions: SessionFactory) -> None:
    one = await add_contract(sessions, indicators=[INDICATOR])
    other = await add_contract(sessions, leader="U0LEAD002", indicators=[INDICATOR])
    first, second = await indicator_of(sessions, one), await indicator_of(sessions, other)

    async def add_value(session: AsyncSession) -> None:
        session.add(Measurement(indicator_id=first, value=64, measured_at=WHEN))

    async def move_value(session: AsyncSession) -> None:
        value = (await session.exec(select(Measurement))).one()
        value.indicator_id = second
        session.add(value)

    await write(sessions, add_value)
    before = await numbers(sessions, one, other)
    await write(sessions, move_value)
    after = await numbers(sessions, one, other)
    assert after[0] > before[0] and after[1] > before[1]


async def keep(sessions: SessionFactory, *drawn: DrawnSet, drawing: int = 3) -> None:
    await keep_chart_sets(sessions=sessions, drawing=drawing, drawn=drawn)


async def sets_now(
    sessions: SessionFactory, *ids: int, drawing: int = 3
) -> dict[int, list[dict[str, str]]]:
    async with sessions() as session:
        await read_only(session)
        return await chart_sets(session=session, contract_ids=ids, drawing=drawing)


DRAWN = [{"subject": "I1", "title": "I1 · Engagement", "alt_text": "a", "data_hash": "h"}]


async def test_a_deleted_contract_takes_its_children_and_charts_with_it(
    sessions: SessionFactory,
) -> None:
    one = await add_contract(sessions, indicators=[INDICATOR], milestones=[MILESTONE])
    indicator = await indicator_of(sessions, one)

    async def add_value(session: AsyncSession) -> None:
        session.add(Measurement(indicator_id=indicator, value=64, measured_at=WHEN))

    await write(sessions, add_value)
    [history] = await numbers(sessions, one)
    await keep(sessions, DrawnSet(one, history, DRAWN))
    assert await sets_now(sessions, one) == {one: DRAWN}

    async def delete_contract(session: AsyncSession) -> None:
        await session.delete(await session.get(Contract, one))

    await write(sessions, delete_contract)
    async with sessions() as session:
        await read_only(session)
        assert await session.get(Contract, one) is None
        assert len((await session.exec(select(ChartSet))).all()) == 0


async def test_sets_are_kept_once_found_at_the_number_now_and_let_go_after(
    sessions: SessionFactory,
) -> None:
    one = await add_contract(sessions, indicators=[INDICATOR])
    other = await add_contract(sessions, leader="U0LEAD002", indicators=[INDICATOR])
    indicator = await indicator_of(sessions, one)
    now = dict(zip((one, other), await numbers(sessions, one, other), strict=True))
    first, second = DrawnSet(one, now[one], DRAWN), DrawnSet(other, now[other], [])
    await keep(sessions, first, second)
    await keep(sessions, first)  # again (a second replica, a double click): kept once
    assert await sets_now(sessions, one, other) == {one: DRAWN, other: []}
    assert await sets_now(sessions, one, other, drawing=4) == {}

    async def add_value(session: AsyncSession) -> None:
        session.add(Measurement(indicator_id=indicator, value=64, measured_at=WHEN))

    await write(sessions, add_value)  # the first contract's history moves on
    assert await sets_now(sessions, one, other) == {other: []}
    [moved] = await numbers(sessions, one)
    await keep(sessions, DrawnSet(one, moved, []))
    assert await sets_now(sessions, one, other) == {one: [], other: []}
    async with sessions() as session:
        await read_only(session)
        kept = (await session.exec(select(ChartSet.contract_id, ChartSet.history))).all()
    assert sorted(kept) == sorted([(one, moved), (other, now[other])])  # the older one let go


async def test_a_set_of_a_contract_deleted_meanwhile_is_not_kept(
    sessions: SessionFactory,
) -> None:
    one = await add_contract(sessions, indicators=[INDICATOR])
    [history] = await numbers(sessions, one)
    # No error: none is kept, the other's neither (kept by the next reading).
    await keep(sessions, DrawnSet(one, history, DRAWN), DrawnSet(one + 1, 1, DRAWN))
    async with sessions() as session:
        await read_only(session)
        assert (await session.exec(select(ChartSet))).all() == []


async def test_a_contract_from_before_the_numbers_is_at_zero(sessions: SessionFactory) -> None:
    one = await add_contract(sessions, indicators=[INDICATOR])
    async with sessions() as session:
        await writing(session)
        connection = await session.connection()
        await connection.execute(delete(ContractHistory))
        await session.commit()
    assert await numbers(sessions, one) == [0]
    await keep(sessions, DrawnSet(one, 0, DRAWN))
    assert await sets_now(sessions, one) == {one: DRAWN}


async def test_two_writers_of_one_contract_do_not_deadlock_on_its_number(
    postgres_url: str,
) -> None:
    """A milestone decided while an amendment moves another (each writer holding a row the
    other will write): the second writer is never held up by the first one's number, only
    by the row itself, so both finish; PostgreSQL bumps the number at commit."""
    engine = create_engine(postgres_url)
    sessions = session_factory(engine)
    try:
        one = await add_contract(sessions, indicators=[INDICATOR], milestones=MILESTONES)
        [before] = await numbers(sessions, one)

        def retitle(key: str, title: str) -> Any:
            return (
                update(Milestone)
                .where(col(Milestone.contract_id) == one, col(Milestone.key) == key)
                .values(title=title)
            )

        async with sessions() as first, sessions() as second:
            await writing(first)
            await writing(second)
            await first.exec(retitle("M1", "first"))
            await asyncio.wait_for(second.exec(retitle("M2", "second")), timeout=5)
            waiting = asyncio.create_task(first.exec(retitle("M2", "first")))
            await asyncio.sleep(0.2)
            assert not waiting.done()  # the row M2, held by the second writer
            await asyncio.wait_for(second.commit(), timeout=5)
            await asyncio.wait_for(waiting, timeout=5)
            await first.commit()
        assert await numbers(sessions, one) == [before + 3]
    finally:
        await engine.dispose()
