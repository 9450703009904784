"""Data access for `slack_user`: what `users.info` said of each person, cached."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import SlackUser
from storage.queries import in_chunks


async def cached_people(*, session: AsyncSession, user_ids: Iterable[str]) -> dict[str, SlackUser]:
    """What is cached of each of `user_ids`, by id (those never asked about are absent)."""
    found: dict[str, SlackUser] = {}
    for ids in in_chunks(sorted(set(user_ids))):
        rows = await session.exec(select(SlackUser).where(col(SlackUser.user_id).in_(ids)))
        found.update((row.user_id, row) for row in rows.all())
    return found


async def store_people(
    *, session: AsyncSession, people: dict[str, dict[str, Any]], now: datetime
) -> None:
    """Keep what Slack said of each person (`slack_user`'s columns), replacing what was kept;
    the caller commits."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    for user_id, facts in people.items():
        values = {**facts, "fetched_at": now}
        statement = insert(SlackUser).values(user_id=user_id, **values)
        await session.exec(statement.on_conflict_do_update(index_elements=["user_id"], set_=values))
