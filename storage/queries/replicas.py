"""Data access for replicas: the leader's advisory lock, the `replica_state` row (who leads,
the shared Retry-After pause) and the claims a dead leader left.

The lock is session-scoped and lives on a connection of its own (not the pool's), so the
server lets it go the moment that connection drops: a killed leader's lock is free at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import SessionFactory, writing
from storage.models import Delivery, DeliveryStatus, ReplicaState

STATE_ID = 1
# pg_try_advisory_lock's key: "northstar" in ASCII, as a bigint.
LEADER_LOCK = 0x6E6F727468737461
CONNECT_TIMEOUT = 5.0
# The channel on which a follower wakes the leader's `deliveries` job (LISTEN/NOTIFY).
WAKE_CHANNEL = "northstar_deliveries"


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def _upsert(session: AsyncSession, values: dict[str, Any], update_: dict[str, Any]) -> Any:
    insert = postgresql_insert if _dialect(session) == "postgresql" else sqlite_insert
    statement = insert(ReplicaState).values(id=STATE_ID, **values)
    return statement.on_conflict_do_update(index_elements=["id"], set_=update_)


# -- the lock (PostgreSQL only)


async def lock_connection(url: str, *, application_name: str) -> asyncpg.Connection:
    """A connection of its own for the leader's lock, named in pg_stat_activity."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection: asyncpg.Connection = await asyncpg.connect(
        dsn,
        timeout=CONNECT_TIMEOUT,
        server_settings={"application_name": application_name[:63]},
    )
    return connection


async def try_lock(connection: asyncpg.Connection) -> bool:
    """Take the leader's lock if no other connection holds it (held until this one drops)."""
    return bool(await connection.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK))


async def still_holds(connection: asyncpg.Connection) -> bool:
    """Whether this connection still answers and holds the leader's lock."""
    held = await connection.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND pid = pg_backend_pid() AND objid = $1::bigint & 4294967295 "
        "AND classid = $1::bigint >> 32",
        LEADER_LOCK,
    )
    return bool(held)


async def lock_holder_pid(*, session: AsyncSession) -> int | None:
    """The server process holding the leader's lock, or None (also on SQLite)."""
    if _dialect(session) != "postgresql":
        return None
    pid = (
        await session.exec(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND objid = CAST(:key AS bigint) & 4294967295 "
                "AND classid = CAST(:key AS bigint) >> 32"
            ).bindparams(key=LEADER_LOCK)  # type: ignore[call-overload]
        )
    ).first()
    return None if pid is None else int(pid[0])


# -- the shared row


async def state(*, session: AsyncSession) -> ReplicaState | None:
    return (await session.exec(select(ReplicaState).where(ReplicaState.id == STATE_ID))).first()


async def become_leader(*, sessions: SessionFactory, owner: str, now: datetime) -> str | None:
    """Name `owner` the leader; the leader before it (None if none or itself)."""
    async with sessions() as session:
        await writing(session)
        before = await state(session=session)
        previous = before.leader if before is not None else None
        await session.exec(
            _upsert(
                session,
                {"leader": owner, "leader_since": now},
                {"leader": owner, "leader_since": now},
            )
        )
        await session.commit()
    return previous if previous != owner else None


async def release_claims_of(*, sessions: SessionFactory, owner: str) -> int:
    """Give back every claim `owner` (a leader that died) still holds, so they go at once
    instead of after their lease; their attempts stand, so a post that may have gone out is
    read back first. How many."""
    async with sessions() as session:
        await writing(session)
        theirs = (col(Delivery.claimed_by) == owner) & (
            col(Delivery.status) == DeliveryStatus.claimed
        )
        scheduled = await session.exec(
            update(Delivery)
            .where(theirs, col(Delivery.due_at).is_not(None))
            .values(claimed_by=None, status=DeliveryStatus.scheduled)
        )
        rest = await session.exec(update(Delivery).where(theirs).values(claimed_by=None))
        await session.commit()
    return int(scheduled.rowcount or 0) + int(rest.rowcount or 0)


async def pause_until(*, sessions: SessionFactory, until: datetime) -> None:
    """Every sender pauses until `until` (kept when a later pause is already recorded)."""
    async with sessions() as session:
        await writing(session)
        found = (
            await session.exec(
                select(ReplicaState).where(ReplicaState.id == STATE_ID).with_for_update()
            )
        ).first()
        if found is not None and found.paused_until is not None and found.paused_until >= until:
            return
        await session.exec(_upsert(session, {"paused_until": until}, {"paused_until": until}))
        await session.commit()


async def paused_until(*, sessions: SessionFactory) -> datetime | None:
    """Until when every sender pauses, if a pause was ever recorded."""
    async with sessions() as session:
        found = await state(session=session)
    return found.paused_until if found is not None else None


async def wake_leader(*, sessions: SessionFactory) -> None:
    """Tell the leader (LISTENing on its lock's connection) that deliveries wait for it."""
    async with sessions() as session:
        await writing(session)  # NOTIFY is refused in a read-only transaction
        if _dialect(session) == "postgresql":
            await session.exec(
                text("SELECT pg_notify(:channel, '')").bindparams(channel=WAKE_CHANNEL)  # type: ignore[call-overload]
            )
        await session.commit()


async def deliveries_by_id(*, sessions: SessionFactory, ids: list[int]) -> dict[int, Delivery]:
    """The delivery rows of `ids`, as they stand."""
    async with sessions() as session:
        found = await session.exec(select(Delivery).where(col(Delivery.id).in_(ids)))
        return {row.id or 0: row for row in found.all()}
