"""Data access for `slack_request`, the keys of the Slack requests that wrote something."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from storage.db import SessionFactory, read_only, writing
from storage.idempotency import AlreadyDone, KnownKeys, claim_day, known_keys
from storage.models import SlackRequest

ANSWER_WAIT_SECONDS = 1.0


def _known(sessions: SessionFactory) -> KnownKeys | None:
    bind = sessions.kw.get("bind")
    return None if bind is None else known_keys(str(bind.url))


async def load_known(*, sessions: SessionFactory) -> None:
    """Read every claimed key (two days' worth, `bot.idempotency.KEEP_CLAIMS`) into memory
    where this process is the one writer (SQLite), so that new requests skip
    `stored_answer`'s round trip."""
    known = _known(sessions)
    if known is None:
        return
    async with sessions() as session:
        await read_only(session)
        rows = (await session.exec(select(SlackRequest.key, SlackRequest.created_at))).all()
    known.load((key, created_at) for key, created_at in rows)


async def claim_now(*, sessions: SessionFactory, key: str) -> None:
    """Claim `key` on its own, for a request whose handling writes nothing (an event)."""
    try:
        async with sessions() as session:
            await writing(session)
            connection = await session.connection()
            await connection.execute(
                insert(SlackRequest).values(key=key, created_at=claim_day(), answer=None)
            )
            await session.commit()
    except IntegrityError:
        raise AlreadyDone(key) from None
    if (known := _known(sessions)) is not None:
        known.add(key, claim_day())


async def release(*, sessions: SessionFactory, key: str) -> None:
    """Forget a claim made by `claim_now` whose handling failed, so Slack's retry runs."""
    async with sessions() as session:
        await writing(session)
        connection = await session.connection()
        await connection.execute(delete(SlackRequest).where(col(SlackRequest.key) == key))
        await session.commit()
    if (known := _known(sessions)) is not None:
        known.discard(key)


async def record_answer(*, sessions: SessionFactory, key: str, answer: dict[str, Any]) -> None:
    """Keep what the first request answered Slack, for its repeats."""
    async with sessions() as session:
        await writing(session)
        connection = await session.connection()
        await connection.execute(
            update(SlackRequest).where(col(SlackRequest.key) == key).values(answer=answer)
        )
        await session.commit()


async def stored_answer(
    *, sessions: SessionFactory, key: str
) -> tuple[bool, dict[str, Any] | None]:
    """Whether `key` was claimed already, and the answer kept for it (if any yet). Answered
    from memory, with no round trip, for a key this process knows was never claimed."""
    known = _known(sessions)
    if known is not None:
        if not known.complete:
            await load_known(sessions=sessions)
        if not known.may_hold(key):
            return (False, None)
    async with sessions() as session:
        await read_only(session)
        row = (await session.exec(select(SlackRequest).where(col(SlackRequest.key) == key))).first()
    return (row is not None, None if row is None else row.answer)


async def answer_of(*, sessions: SessionFactory, key: str) -> dict[str, Any] | None:
    """The first request's answer; waits a moment for one that is still being given."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ANSWER_WAIT_SECONDS
    while True:
        async with sessions() as session:
            await read_only(session)
            row = (
                await session.exec(select(SlackRequest.answer).where(col(SlackRequest.key) == key))
            ).first()
        if row is not None:
            return dict(row)
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(0.05)


async def forget_before(*, sessions: SessionFactory, cutoff: datetime) -> int:
    """Drop claims older than any repeat Slack would still send; how many went."""
    async with sessions() as session:
        await writing(session)
        connection = await session.connection()
        result = await connection.execute(
            delete(SlackRequest).where(col(SlackRequest.created_at) < cutoff)
        )
        await session.commit()
    if (known := _known(sessions)) is not None:
        known.forget_before(cutoff)
    return int(result.rowcount or 0)
