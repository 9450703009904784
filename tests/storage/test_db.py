"""The engine on SQLite and PostgreSQL: migrations, time zones, constraints, concurrency."""

from __future__ import annotations

import ast
import asyncio
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import select

from storage.db import SessionFactory, writing
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
        await writing(session)
        row = contract(created_at=datetime(2027, 1, 4, 10, 0, tzinfo=berlin))
        session.add(row)
        await session.commit()
    async with sessions() as session:
        stored = (await session.exec(select(Contract))).one()
    assert stored.created_at == datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    assert stored.created_at.tzinfo is not None


async def test_naive_timestamps_are_refused(sessions: SessionFactory) -> None:
    async with sessions() as session:
        await writing(session)
        session.add(contract(created_at=datetime(2027, 1, 4, 10, 0)))
        with pytest.raises(Exception, match="naive datetime"):
            await session.commit()


async def test_foreign_keys_are_enforced(sessions: SessionFactory) -> None:
    async with sessions() as session:
        await writing(session)
        session.add(Expectation(contract_id=999, key="E1", kind="impact", text="x"))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_deleting_a_contract_cascades_to_its_items(sessions: SessionFactory) -> None:
    async with sessions() as session:
        await writing(session)
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
        await writing(session)
        session.add(Delivery(**claim))  # type: ignore[arg-type]
        await session.commit()
    async with sessions() as session:
        await writing(session)
        session.add(Delivery(**claim))  # type: ignore[arg-type]
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_concurrent_writers_never_see_database_locked(sessions: SessionFactory) -> None:
    """Fifty handlers reading then writing at once, as Slack's bursts make them do."""

    async def handler(n: int) -> None:
        async with sessions() as session:
            await writing(session)
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
            await writing(writer)
            writer.add(AuditEvent(action="held", contract_id=None))
            await writer.flush()  # the write lock is held until commit
            async with sessions() as declared:
                await read_only(declared)
                rows = await asyncio.wait_for(declared.exec(select(AuditEvent)), timeout=5)
                assert rows.all() == []  # the uncommitted write is invisible, and no wait
            async with sessions() as undeclared:  # read-only by default: no wait either
                rows = await asyncio.wait_for(undeclared.exec(select(AuditEvent)), timeout=5)
                assert rows.all() == []
            await writer.commit()
    finally:
        await engine.dispose()


async def test_a_write_in_an_undeclared_session_fails_loudly(sessions: SessionFactory) -> None:
    async with sessions() as session:
        session.add(AuditEvent(action="sneaked", contract_id=None))
        with pytest.raises(DBAPIError, match=r"(?i)read.?only"):
            await session.commit()
    async with sessions() as session:
        with pytest.raises(DBAPIError, match=r"(?i)read.?only"):
            await session.exec(text("DELETE FROM audit_event"))  # type: ignore[call-overload]
    async with sessions() as session:
        assert (await session.exec(select(AuditEvent))).all() == []


async def test_a_writing_session_writes_in_every_transaction(sessions: SessionFactory) -> None:
    async with sessions() as session:
        await writing(session)
        session.add(AuditEvent(action="first", contract_id=None))
        await session.commit()
        session.add(AuditEvent(action="second", contract_id=None))  # a new transaction
        await session.commit()
    async with sessions() as session:
        await session.exec(select(AuditEvent))
        with pytest.raises(RuntimeError, match="before its first query"):
            await writing(session)
    async with sessions() as session:
        actions = (await session.exec(select(AuditEvent.action))).all()
    assert sorted(actions) == ["first", "second"]


async def test_a_pooled_connection_takes_each_sessions_mode(database_url: str) -> None:
    """One connection, reused: a reader after a writer cannot write, a writer after a
    reader can (SQLite's query_only and PostgreSQL's READ ONLY are set per transaction)."""
    from storage.db import create_engine, session_factory

    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    sessions = session_factory(engine)
    try:
        for n in range(2):
            async with sessions() as session:
                await writing(session)
                session.add(AuditEvent(action=f"write {n}", contract_id=None))
                await session.commit()
            async with sessions() as session:
                session.add(AuditEvent(action=f"sneak {n}", contract_id=None))
                with pytest.raises(DBAPIError):
                    await session.commit()
        async with sessions() as session:
            actions = (await session.exec(select(AuditEvent.action))).all()
        assert sorted(actions) == ["write 0", "write 1"]
    finally:
        await engine.dispose()


def test_every_session_that_writes_says_so_first() -> None:
    """Every `async with ...sessions() as session:` in bot/, handlers/ and storage/ whose
    block commits, flushes, adds or deletes through its session begins `await writing(...)`
    (enforcement makes the rest fail at run time: the suite covers those)."""
    root = Path(__file__).resolve().parents[2]
    undeclared = []
    openings = 0
    for folder in ("bot", "handlers", "storage"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.AsyncWith):
                    continue
                for item in node.items:
                    name = item.optional_vars
                    opened = item.context_expr
                    if not (
                        isinstance(name, ast.Name)
                        and isinstance(opened, ast.Call)
                        and "sessions" in ast.unparse(opened.func)
                    ):
                        continue
                    openings += 1
                    first = ast.unparse(node.body[0])
                    writes = any(
                        isinstance(call, ast.Call)
                        and isinstance(call.func, ast.Attribute)
                        and isinstance(call.func.value, ast.Name)
                        and call.func.value.id == name.id
                        and call.func.attr in {"commit", "flush", "add", "add_all", "delete"}
                        for statement in node.body
                        for call in ast.walk(statement)
                    )
                    if writes and not first.startswith(f"await writing({name.id})"):
                        undeclared.append(f"{path.relative_to(root)}:{node.lineno}")
    assert openings > 50
    assert undeclared == []
