"""Data access for health checks: whether the database answers, and whether it takes writes.

A read (`SELECT 1`) succeeds on a SQLite file that can no longer be written, on a full disk
and on a PostgreSQL server that is read-only (a standby, `default_transaction_read_only`),
while every prompt the bot sends then fails to be marked sent. So the check behind `/healthz`
writes: it upserts the one `heartbeat` row and commits, exactly as the bot's own writes do (on
SQLite under `BEGIN IMMEDIATE`, so the write lock is taken too).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import SessionFactory, writing
from storage.models import Heartbeat

HEARTBEAT_ID = 1

# SQLite's result codes and PostgreSQL's SQLSTATEs for a database that refuses writes.
_SQLITE_REASONS = {
    "SQLITE_READONLY": "read-only",
    "SQLITE_BUSY": "locked",
    "SQLITE_LOCKED": "locked",
    "SQLITE_FULL": "disk full",
    "SQLITE_CANTOPEN": "cannot open its files",
    "SQLITE_IOERR": "I/O error",
    "SQLITE_CORRUPT": "corrupt",
}
_POSTGRES_REASONS = {
    "25006": "read-only",  # read_only_sql_transaction
    "53100": "disk full",  # disk_full
    "53300": "too many connections",
    "57P01": "shutting down",  # admin_shutdown
    "57P03": "not accepting connections",  # cannot_connect_now
    "40P01": "locked",  # deadlock_detected
    "55P03": "locked",  # lock_not_available
}


async def database_answers(*, session: AsyncSession) -> None:
    """Ask the database the least question there is; raises whatever keeps it from answering."""
    await session.exec(text("SELECT 1"))  # type: ignore[call-overload]


async def write_heartbeat(*, sessions: SessionFactory, now: datetime) -> None:
    """Write the heartbeat row and commit; raises whatever the database answers."""
    async with sessions() as session:
        await writing(session)
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(Heartbeat).values(id=HEARTBEAT_ID, beat_at=now)
        await session.exec(
            statement.on_conflict_do_update(index_elements=["id"], set_={"beat_at": now})
        )
        await session.commit()


def write_failure(error: BaseException) -> str:
    """A short reason a write failed, safe to show anyone: no host, path or statement."""
    if isinstance(error, TimeoutError):
        return "no answer in time"
    original = getattr(error, "orig", None) or error
    if isinstance(original, sqlite3.Error):
        name = getattr(original, "sqlite_errorname", "") or ""
        base = name.split("_")[0:2]
        return _SQLITE_REASONS.get(name) or _SQLITE_REASONS.get("_".join(base)) or "refused"
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if isinstance(state, str):
        if state.startswith("08"):
            return "unreachable"  # connection_exception
        return _POSTGRES_REASONS.get(state, "refused")
    if isinstance(original, OSError):
        return "unreachable"
    return "refused"
