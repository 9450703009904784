"""The risk queries on SQLite and PostgreSQL: open risks, escalation candidates, computed
values recorded once per indicator and period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from bot.risks.model import SURFACING
from storage.db import SessionFactory, writing
from storage.models import Measurement, Risk, SuccessIndicator
from storage.queries.risks import (
    computed_indicators,
    needing_help,
    open_risks,
    record_computed,
    risks_of,
)
from tests.bot.checkins.test_support import add_contract

NOW = datetime(2027, 3, 20, 9, 0, tzinfo=UTC)


async def test_open_risks_and_escalation_candidates(sessions: SessionFactory) -> None:
    active = await add_contract(sessions)
    closed = await add_contract(sessions, leader="U0PEER001", status="closed")
    async with sessions() as session:
        await writing(session)
        for cid, text, status, helped, days in (
            (active, "old help", "open", True, 20),
            (active, "mitigating help", "mitigating", True, 15),
            (active, "no help", "open", False, 20),
            (active, "new help", "open", True, 0),
            (active, "resolved help", "resolved", True, 30),
            (closed, "closed contract", "open", True, 30),
        ):
            session.add(
                Risk(
                    contract_id=cid,
                    text=text,
                    status=status,
                    needs_sponsor_help=helped,
                    created_at=NOW - timedelta(days=days),
                )
            )
        await session.commit()
    async with sessions() as session:
        found = await open_risks(session=session, contract_ids=[active, closed])
        assert [r.text for r in found[active]] == [
            "old help",
            "no help",
            "mitigating help",
            "new help",
        ]
        assert [r.text for r in found[closed]] == ["closed contract"]
        assert await open_risks(session=session, contract_ids=[]) == {}
        due = await needing_help(session=session, raised_before=NOW - timedelta(days=1))
        assert [(r.text, c.id) for r, c in due] == [
            ("old help", active),
            ("mitigating help", active),
        ]
        assert len(await risks_of(session=session, contract_id=active)) == 5


async def test_a_computed_value_is_recorded_once_per_indicator_and_period(
    sessions: SessionFactory,
) -> None:
    cid = await add_contract(sessions)
    async with sessions() as session:
        await writing(session)
        indicator = SuccessIndicator(
            contract_id=cid,
            key="I9",
            name="Surfacing",
            baseline=10,
            target=2,
            direction="decrease",
            source=SURFACING,
            cadence="weekly",
        )
        session.add(indicator)
        await session.commit()
    async with sessions() as session:
        await writing(session)
        (found,) = await computed_indicators(
            session=session, contract_ids=[cid], sources=[SURFACING]
        )
        assert found.key == "I9"
        args: dict[str, Any] = {
            "indicator_id": found.id or 0,
            "measured_at": NOW,
            "source": SURFACING,
            "recorded_by": "north-star",
        }
        assert await record_computed(session=session, period="2027-W11", value=4, **args)
        assert not await record_computed(session=session, period="2027-W11", value=5, **args)
        assert await record_computed(session=session, period="2027-W12", value=3, **args)
        await session.commit()
    async with sessions() as session:
        rows = (await session.exec(select(Measurement))).all()
        assert sorted((m.computed_period, m.value) for m in rows) == [
            ("2027-W11", 4),
            ("2027-W12", 3),
        ]
    # A value another writer recorded first is kept.
    async with sessions() as session:
        await writing(session)
        session.add(
            Measurement(
                indicator_id=found.id or 0, value=9, measured_at=NOW, computed_period="2027-W13"
            )
        )
        await session.commit()
    async with sessions() as session:
        await writing(session)
        with_race = await record_computed(session=session, period="2027-W13", value=1, **args)
        assert not with_race
