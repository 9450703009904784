"""`load_bundles`: many contracts in a dozen statements, each bundle as `load_bundle` gives it,
on SQLite and PostgreSQL (the newest evidence per contract comes from a window function)."""

from __future__ import annotations

from itertools import pairwise

import pytest_asyncio

from storage.db import SessionFactory, read_only, writing
from storage.queries.contracts import RECENT_EVIDENCE, load_bundle, load_bundles
from tests.harness import START
from tests.scale import counting_statements, seed_organisation

WEEKS = RECENT_EVIDENCE + 3


async def test_many_bundles_load_together_as_each_alone(
    sessions: SessionFactory, database_url: str
) -> None:
    await seed_organisation(
        database_url, now=START, contracts=3, weeks=WEEKS, leader="U0LEAD001", governor="U0HR"
    )
    async with sessions() as session:
        await read_only(session)
        with counting_statements() as seen:
            together = await load_bundles(session=session, contracts=[3, 99, 1, 2])
        alone = [await load_bundle(session=session, contract_id=cid) for cid in (3, 1, 2)]

    assert len(seen) <= 14  # the contracts, each kind of child row (risks too), their figures
    assert [b.contract.id for b in together] == [3, 1, 2]  # as asked, unknown ids left out
    for mine, theirs in zip(together, alone, strict=True):
        assert theirs is not None
        cid = mine.contract.id
        assert [i.key for i in mine.indicators] == ["I1", "I2"]
        assert [p.user_id for p in mine.people] == ["U0HR"]
        assert len(mine.checkins) == WEEKS
        assert all(len(series) == WEEKS for series in mine.measurements.values())
        assert all(
            a.measured_at <= b.measured_at
            for series in mine.measurements.values()
            for a, b in pairwise(series)
        )
        assert mine.evidence_counts == {("indicator", "I1"): WEEKS}
        assert mine.evidence_latest == {
            ("indicator", "I1"): max(e.created_at for e in mine.recent_evidence)
        }
        assert len(mine.recent_evidence) == RECENT_EVIDENCE
        assert all(e.contract_id == cid for e in mine.recent_evidence)
        assert [e.id for e in mine.recent_evidence] == [e.id for e in theirs.recent_evidence]
        assert mine.recent_evidence[0].created_at > mine.recent_evidence[-1].created_at
        assert mine.measurements.keys() == theirs.measurements.keys()


async def test_no_contracts_no_statements(sessions: SessionFactory) -> None:
    async with sessions() as session:
        with counting_statements() as seen:
            assert await load_bundles(session=session, contracts=[]) == []
    assert len(seen) == 0


@pytest_asyncio.fixture
async def one_contract(database_url: str) -> int:
    await seed_organisation(
        database_url, now=START, contracts=1, weeks=1, leader="U0LEAD001", governor="U0HR"
    )
    return 1


async def test_a_contract_the_session_holds_is_not_read_again(
    sessions: SessionFactory, one_contract: int
) -> None:
    async with sessions() as session:
        await read_only(session)
        with counting_statements() as fresh:
            first = await load_bundle(session=session, contract_id=one_contract)
        with counting_statements() as held:
            again = await load_bundle(session=session, contract_id=one_contract)
        assert first is not None and again is not None
        assert again.contract is first.contract
        assert len(held) == len(fresh) - 1  # the contract's own row, read once
        # A rollback expires what the session holds: read again, not used as it was.
        await session.rollback()
        with counting_statements() as expired:
            after = await load_bundle(session=session, contract_id=one_contract)
        assert after is not None and after.contract.leader_id == "U0LEAD001"
        read = [sql for sql, _ in expired.seen if not sql.startswith("BEGIN")]  # SQLite's
        assert len(read) == len(fresh)


async def test_a_contract_the_session_is_deleting_is_not_taken_as_held(
    sessions: SessionFactory, one_contract: int
) -> None:
    async with sessions() as session:
        await writing(session)
        bundle = await load_bundle(session=session, contract_id=one_contract)
        assert bundle is not None
        # Not flushed yet (a select flushes it first); its rows go with it (ON DELETE CASCADE).
        await session.delete(bundle.contract)
        assert await load_bundle(session=session, contract_id=one_contract) is None
        await session.rollback()
