"""Database faults are visible: `/healthz` is 200 only when the database takes a write, and
answers 503 with a short reason in bounded time otherwise; a SQLite database whose folder or
files this process cannot write refuses to start, with one line.

How the faults are made, faithfully and even as root (whom file modes do not stop):
- a read-only SQLite file: the engine opens it `mode=ro`. SQLite opens a file it may not
  write exactly so (read-only, falling back from read-write), so every write then fails
  with SQLITE_READONLY, as in production;
- a locked SQLite database: another connection holds `BEGIN IMMEDIATE`;
- PostgreSQL refusing connections: a URL to a port where nothing listens; a read-only
  PostgreSQL (a standby, or `default_transaction_read_only`): the server setting itself;
- files the bot cannot write, at start-up: `chmod` for an ordinary user; as root, the
  file system's immutable flag (`chattr +i`), which refuses root's writes too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import select

from bot.server import create_web_app
from storage.db import (
    DatabaseNotWritable,
    SessionFactory,
    create_engine,
    ensure_writable,
    session_factory,
    sqlite_path,
)
from storage.migrate import upgrade
from storage.models import Heartbeat
from tests.bot.test_runtime import ROOT
from tests.harness import BOT_TOKEN, SIGNING_SECRET, Bot


@asynccontextmanager
async def health_of(bot: Bot, sessions: SessionFactory, within: float = 3.0) -> AsyncIterator[Any]:
    """The real web app on `sessions`, served; a function that GETs its /healthz."""
    runner = web.AppRunner(
        create_web_app(bot.app, sessions, signing_secret=SIGNING_SECRET, health_timeout=within),
        access_log=None,
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/healthz"
    async with aiohttp.ClientSession() as http:

        async def get() -> tuple[int, dict[str, Any]]:
            async with http.get(url) as response:
                return response.status, await response.json()

        try:
            yield get
        finally:
            await runner.cleanup()


@asynccontextmanager
async def engine_on(url: str, **kwargs: Any) -> AsyncIterator[SessionFactory]:
    engine = create_engine(url, **kwargs)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def heartbeats(sessions: SessionFactory) -> list[Heartbeat]:
    async with sessions() as session:
        return list((await session.exec(select(Heartbeat))).all())


async def test_a_database_that_takes_writes_is_healthy(bot: Bot, database_url: str) -> None:
    async with engine_on(database_url) as sessions, health_of(bot, sessions) as health:
        assert await health() == (200, {"status": "ok", "database": "ok"})
        assert await health() == (200, {"status": "ok", "database": "ok"})
        (row,) = await heartbeats(sessions)
    assert row.id == 1  # one row, written again by every check


async def test_a_read_only_sqlite_file_is_503(
    bot: Bot, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = sqlite_path(sqlite_url)
    read_only = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
    async with engine_on(read_only) as sessions, health_of(bot, sessions) as health:
        async with sessions() as session:  # it still reads: SELECT 1 alone would pass
            assert (await session.exec(select(Heartbeat))).all() == []
        assert await health() == (503, {"status": "unavailable", "database": "read-only"})
        assert await health() == (503, {"status": "unavailable", "database": "read-only"})
    said = [r.getMessage() for r in caplog.records if r.name == "bot.server"]
    assert said == [  # once, with SQLite's own words, not at every probe
        "The database cannot be written (read-only): /healthz answers 503 until it can; "
        "OperationalError: attempt to write a readonly database"
    ]


async def test_a_locked_sqlite_database_answers_503_in_time_then_recovers(
    bot: Bot, sqlite_url: str
) -> None:
    holder = sqlite3.connect(str(sqlite_path(sqlite_url)), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        async with engine_on(sqlite_url) as sessions, health_of(bot, sessions, 0.3) as health:
            assert await health() == (
                503,
                {"status": "unavailable", "database": "no answer in time"},
            )
            # Probes meanwhile wait for the write already waiting, instead of adding more.
            both = await asyncio.gather(health(), health())
            assert [status for status, _ in both] == [503, 503]
            holder.execute("ROLLBACK")
            for _ in range(50):  # the waiting write goes through once the lock is free
                if (await health())[0] == 200:
                    break
            assert await health() == (200, {"status": "ok", "database": "ok"})
    finally:
        holder.close()


async def test_postgresql_refusing_connections_is_503(bot: Bot) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # nothing listens there once the socket is closed
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed}/northstar"
    async with engine_on(url) as sessions, health_of(bot, sessions) as health:
        assert await health() == (503, {"status": "unavailable", "database": "unreachable"})


@pytest.mark.postgres
async def test_a_read_only_postgresql_is_503(bot: Bot, postgres_url: str) -> None:
    """A standby, or a server set read-only: a read would still succeed."""
    read_only = {"server_settings": {"default_transaction_read_only": "on"}}
    async with (
        engine_on(postgres_url, connect_args=read_only) as sessions,
        health_of(bot, sessions) as health,
    ):
        assert await health() == (503, {"status": "unavailable", "database": "read-only"})
    async with engine_on(postgres_url) as sessions:
        assert await heartbeats(sessions) == []


# --- start-up: a SQLite folder or file it cannot write ---------------------------------------


@contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """Make `path` unwritable for this process: chmod, or as root the immutable flag."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    made = (
        chattr is not None
        and subprocess.run([chattr, "+i", str(path)], capture_output=True, check=False).returncode
        == 0
    )
    if not made:
        pytest.skip("running as root on a file system without the immutable flag (chattr +i)")
    assert chattr is not None
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=False)


@pytest.mark.parametrize("which", ["-shm", "-wal", "folder"])
async def test_an_unwritable_sqlite_file_or_folder_refuses_to_start_with_one_line(
    tmp_path: Path, which: str
) -> None:
    folder = tmp_path / "data"
    database = folder / "northstar.db"
    url = f"sqlite+aiosqlite:///{database}"
    await upgrade(url)
    for suffix in ("-wal", "-shm"):  # as a bot that stopped leaves them, or one still running
        Path(f"{database}{suffix}").touch()
    target = folder if which == "folder" else Path(f"{database}{which}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL"))}
    env.update(
        PYTHONPATH=str(ROOT),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL="http://127.0.0.1:9/api/",  # never reached
        DATABASE_URL=url,
        PORT="9",
    )
    with unwritable(target):
        with pytest.raises(DatabaseNotWritable) as refused:
            ensure_writable(url)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    said = err.decode()
    assert process.returncode == 2, said
    assert "Traceback" not in said
    lines = [line for line in said.splitlines() if line.startswith("northstar:")]
    assert lines == [f"northstar: {refused.value}"]
    named = str(folder) if which == "folder" else f"{database}{which}"
    assert f"the SQLite database {database} cannot be written: " in lines[0]
    assert named in lines[0]
    assert not [p for p in folder.iterdir() if p.name.startswith(".northstar-write-check")]


def test_a_file_uri_names_its_file(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    assert sqlite_path(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true") == path
    assert sqlite_path("sqlite+aiosqlite:///file:memdb?mode=memory&uri=true") is None
    assert sqlite_path("sqlite+aiosqlite://") is None
