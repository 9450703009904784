"""On SQLite, where this process is the one writer, the keys of claimed Slack requests are
known in memory: a new request's look-up for a repeat costs no round trip, and a repeat is
still found, whether claimed before this process started or by a request since."""

from __future__ import annotations

from pathlib import Path

from storage.db import database, writing
from storage.idempotency import AlreadyDone, claim_day, request_scope
from storage.migrate import upgrade
from storage.models import AuditEvent, SlackRequest
from storage.queries.requests import forget_before, release, stored_answer
from tests.scale import counting_statements

ANSWER = {"status": 200, "body": '{"text": "first"}'}


async def test_a_new_key_costs_no_statement_and_a_claimed_one_is_found(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'known.db'}"
    await upgrade(url)
    async with database(url) as (_engine, sessions):
        async with sessions() as session:  # claimed before this process looked: a restart
            await writing(session)
            session.add(SlackRequest(key="command:T1", created_at=claim_day(), answer=ANSWER))
            await session.commit()

        assert await stored_answer(sessions=sessions, key="command:T1") == (True, ANSWER)
        with counting_statements() as seen:
            assert await stored_answer(sessions=sessions, key="command:T2") == (False, None)
        assert seen.seen == []

        with request_scope("command:T2"):  # a request's first write claims its key
            async with sessions() as session:
                await writing(session)
                session.add(AuditEvent(action="test"))
                await session.commit()
        assert await stored_answer(sessions=sessions, key="command:T2") == (True, None)
        try:
            with request_scope("command:T2"):  # its repeat is refused at the write
                async with sessions() as session:
                    await writing(session)
                    session.add(AuditEvent(action="again"))
                    await session.commit()
        except AlreadyDone:
            pass
        else:
            raise AssertionError("the repeat wrote")

        await release(sessions=sessions, key="command:T2")
        assert await stored_answer(sessions=sessions, key="command:T2") == (False, None)
        await forget_before(sessions=sessions, cutoff=claim_day().replace(year=2999))
        with counting_statements() as seen:
            assert await stored_answer(sessions=sessions, key="command:T1") == (False, None)
        assert seen.seen == []
