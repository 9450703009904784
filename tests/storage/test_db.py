"""The engine on SQLite and PostgreSQL: migrations, time zones, constraints, concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from storage.db import SessionFactory
from storage.migrate import pending_changes
from storage.models import AuditEvent, Contract, Delivery, Expectation


def contract(**overrides: object) -> Contract:
    values: dict[str, object] = {
        "title": "Head of Platform",
        "leader_id": "U0LEAD001",
        "sponsor_id": "U0SPON001",
        "period_start": date(2027, 1, 4),
        "period_end": date(2027, 12, 17),
    }
    values.update(overrides)
    return Contract(**values)  # type: ignore[arg-type]


async def test_migrations_match_the_models(database_url: str) -> None:
    assert await pending_changes(database_url) == []


async def test_timestamps_come_back_utc_aware(sessions: SessionFactory) -> None:
    berlin = timezone(timedelta(hours=1))
    async with sessions() as session:
        row = contract(created_at=datetime(2027, 1, 4, 10, 0, tzinfo=berlin))
        session.add(row)
        await session.commit()
    async with sessions() as session:
        stored = (await session.exec(select(Contract))).one()
    assert stored.created_at == datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    assert stored.created_at.tzinfo is not None


async def test_naive_timestamps_are_refused(sessions: SessionFactory) -> None:
    async with sessions() as session:
        session.add(contract(created_at=datetime(2027, 1, 4, 10, 0)))
        with pytest.raises(Exception, match="naive datetime"):
            await session.commit()


async def test_foreign_keys_are_enforced(sessions: SessionFactory) -> None:
    async with sessions() as session:
        session.add(Expectation(contract_id=999, key="E1", kind="impact", text="x"))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_deleting_a_contract_cascades_to_its_items(sessions: SessionFactory) -> None:
    async with sessions() as session:
        row = contract()
        session.add(row)
        await session.flush()
        session.add(Expectation(contract_id=row.id or 0, key="E1", kind="impact", text="x"))
        await session.commit()
        await session.delete(row)
        await session.commit()
        assert (await session.exec(select(Expectation))).all() == []


async def test_a_delivery_is_claimed_once(sessions: SessionFactory) -> None:
    claim = {"kind": "checkin", "contract_id": 1, "recipient_id": "U1", "period_key": "2027-W10"}
    async with sessions() as session:
        session.add(Delivery(**claim))  # type: ignore[arg-type]
        await session.commit()
    async with sessions() as session:
        session.add(Delivery(**claim))  # type: ignore[arg-type]
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_concurrent_writers_never_see_database_locked(sessions: SessionFactory) -> None:
    """Fifty handlers reading then writing at once, as Slack's bursts make them do."""

    async def handler(n: int) -> None:
        async with sessions() as session:
            await session.exec(select(AuditEvent).limit(1))  # a read first, then a write
            session.add(AuditEvent(action="test.write", contract_id=None, detail={"n": n}))
            await asyncio.sleep(0)
            await session.commit()

    await asyncio.gather(*(handler(n) for n in range(50)))
    async with sessions() as session:
        assert len((await session.exec(select(AuditEvent))).all()) == 50


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url: str) -> None:
    from storage.db import create_engine

    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as connection:
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
            keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar()
            busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
    finally:
        await engine.dispose()
    assert (mode, keys) == ("wal", 1)
    assert busy and busy >= 1000


async def test_read_only_sessions_do_not_wait_for_a_writer(sqlite_url: str) -> None:
    from storage.db import create_engine, read_only, session_factory

    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as writer:
            writer.add(AuditEvent(action="held", contract_id=None))
            await writer.flush()  # the write lock is held until commit
            async with sessions() as reader:
                await read_only(reader)
                rows = await asyncio.wait_for(reader.exec(select(AuditEvent)), timeout=5)
                assert rows.all() == []  # the uncommitted write is invisible, and no wait
            await writer.commit()
    finally:
        await engine.dispose()
