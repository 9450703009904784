"""Lists that can hold a whole organisation are bound a chunk at a time: PostgreSQL takes at
most 32,767 parameters a statement, and SQLAlchemy binds each value of an `IN` list as one."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.risks.model import SURFACING
from storage.db import SessionFactory, read_only, writing
from storage.models import SlackUser
from storage.queries import IN_LIMIT, in_chunks
from storage.queries.people import cached_people
from storage.queries.risks import computed_indicators
from tests.bot.checkins.test_support import add_contract

PAST_LIMIT = 40_000  # more than PostgreSQL's 32,767 parameters


def test_chunks_cover_the_values_in_order() -> None:
    assert list(in_chunks([], size=3)) == []
    assert list(in_chunks([1, 2, 3, 4, 5, 6, 7], size=3)) == [[1, 2, 3], [4, 5, 6], [7]]
    assert IN_LIMIT < 32_767


async def test_forty_thousand_people_are_looked_up(sessions: SessionFactory) -> None:
    now = datetime(2027, 3, 1, tzinfo=UTC)
    wanted = [f"U{n:08d}" for n in range(PAST_LIMIT)]
    async with sessions() as session:
        await writing(session)
        for user in (wanted[0], wanted[-1], "U0ELSEWHERE"):
            session.add(SlackUser(user_id=user, fetched_at=now))
        await session.commit()
    async with sessions() as session:
        await read_only(session)
        found = await cached_people(session=session, user_ids=wanted)
    assert sorted(found) == [wanted[0], wanted[-1]]


async def test_the_computed_indicators_of_forty_thousand_contracts(
    sessions: SessionFactory,
) -> None:
    indicator = {"name": "Risk surfacing", "baseline": 10, "target": 5, "cadence": "weekly"}
    cid = await add_contract(
        sessions,
        indicators=[
            {"key": "I1", "source": SURFACING, **indicator},
            {"key": "I2", "source": "survey", **indicator},
        ],
    )
    ids = [*range(cid + 1, cid + PAST_LIMIT), cid]
    async with sessions() as session:
        await read_only(session)
        found = await computed_indicators(session=session, contract_ids=ids, sources=[SURFACING])
    assert [(i.contract_id, i.key) for i in found] == [(cid, "I1")]
