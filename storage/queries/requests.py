"""Data access for `slack_request`, the keys of the Slack requests that wrote something."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from storage.db import SessionFactory, read_only, writing
from storage.idempotency import AlreadyDone, claim_day
from storage.models import SlackRequest

ANSWER_WAIT_SECONDS = 1.0


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


async def release(*, sessions: SessionFactory, key: str) -> None:
    """Forget a claim made by `claim_now` whose handling failed, so Slack's retry runs."""
    async with sessions() as session:
        await writing(session)
        connection = await session.connection()
        await connection.execute(delete(SlackRequest).where(col(SlackRequest.key) == key))
        await session.commit()


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
    """Whether `key` was claimed already, and the answer kept for it (if any yet)."""
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
    return int(result.rowcount or 0)
