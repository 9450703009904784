"""Shared fixtures: migrated databases, the fake Slack, and the real app served over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from slack_sdk.web.async_client import AsyncWebClient

from bot.client import create_client
from bot.core.clock import Clock
from bot.delivery import DeliveryQueue, Pacer
from bot.sandbox.demo import DEMO_CONTRACT
from bot.services import Services
from storage.db import SessionFactory, create_engine, session_factory
from storage.migrate import upgrade
from tests.fakes import FakeSlack
from tests.harness import BOT_TOKEN, Bot, make_settings, running_bot

SHARED = Path(__file__).resolve().parents[2] / "shared"
# The packaged copy of shared/examples/contract.yml, so the suite runs without shared/;
# tests/sandbox/test_parts.py keeps it identical to the shared file wherever that exists.
EXAMPLE_CONTRACT = DEMO_CONTRACT

# The people of shared/examples/contract.yml, as the fake workspace knows them.
PEOPLE = {
    "U0LEAD001": ("dana", "Dana Leader", "dana@example.com", "Europe/Berlin"),
    "U0SPON001": ("sam", "Sam Sponsor", "sam@example.com", "Europe/Berlin"),
    "U0HRBP001": ("hana", "Hana HR", "hana@example.com", "Europe/Berlin"),
    "U0VP00001": ("victor", "Victor VP", "victor@example.com", "America/New_York"),
    "U0PEER001": ("pia", "Pia Peer", "pia@example.com", "Europe/Berlin"),
    "U0PEER002": ("raj", "Raj Report", "raj@example.com", "Asia/Kolkata"),
    "U0PEER003": ("paul", "Paul Three", "peer.three@example.com", "Europe/Berlin"),
    "U0OUTSIDE": ("olga", "Olga Outsider", "olga@example.com", "Europe/Berlin"),
}


@pytest.fixture(autouse=True)
def _config_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A generated feedback hash key goes to a folder of the test's own, never ~/.config."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))


# --- leaks ---------------------------------------------------------------------------
# An aiohttp session dropped unclosed leaks its socket and logs "Unclosed client session"
# when it is garbage-collected. Each session remembers the test that opened it, so the
# leak fails that test (at its end when the session is freed at once, as usual) or, if it
# lingers in a reference cycle, the whole run once it is collected at the end.

_OPENED_BY: dict[int, str] = {}
_LEAKED: list[tuple[str, str]] = []
_RUNNING = ["(outside any test)"]
_session_init = aiohttp.ClientSession.__init__
_session_del = aiohttp.ClientSession.__del__


def _tracked_init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
    _OPENED_BY[id(self)] = _RUNNING[0]
    _session_init(self, *args, **kwargs)


def _tracked_del(self: aiohttp.ClientSession, *args: Any) -> None:
    opener = _OPENED_BY.pop(id(self), "(unknown)")
    with contextlib.suppress(Exception):
        if not self.closed:
            _LEAKED.append((opener, repr(self)))
    _session_del(self, *args)


aiohttp.ClientSession.__init__ = _tracked_init  # type: ignore[method-assign]
aiohttp.ClientSession.__del__ = _tracked_del  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def no_unclosed_sessions(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that drops an HTTP session without closing it."""
    _RUNNING[0] = request.node.nodeid
    yield
    _RUNNING[0] = "(between tests)"
    mine = [leak for leak in _LEAKED if leak[0] == request.node.nodeid]
    for leak in mine:
        _LEAKED.remove(leak)
    if mine:
        pytest.fail(f"{len(mine)} HTTP session(s) left unclosed", pytrace=False)


def pytest_sessionfinish(session: pytest.Session) -> None:
    gc.collect()
    if _LEAKED:
        for opener, session_repr in _LEAKED:
            print(f"\nHTTP session left unclosed, opened in {opener}: {session_repr}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- databases -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "northstar.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


async def _postgres_answers(url: str) -> bool:
    import asyncpg

    try:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    except (OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated, dropped at the end."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    if not asyncio.run(_postgres_answers(base)):
        pytest.skip(f"no PostgreSQL server answers at {base}")
    import asyncpg

    name = f"northstar_test_{uuid.uuid4().hex[:10]}"
    admin = base.replace("postgresql+asyncpg", "postgresql")

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    asyncio.run(upgrade(url))
    yield url
    asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest_asyncio.fixture
async def postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    """The session's PostgreSQL database, emptied before each test."""
    import asyncpg

    connection = await asyncpg.connect(
        postgres_server_url.replace("postgresql+asyncpg", "postgresql")
    )
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
        names = ", ".join(f'"{t["tablename"]}"' for t in tables)
        await connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()
    yield postgres_server_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each storage test runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest_asyncio.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


@dataclass(frozen=True)
class Replica:
    """One replica of the bot as a test runs it: its own engine, client and queue."""

    services: Services
    client: AsyncWebClient
    queue: DeliveryQueue


ReplicaQueue = Callable[..., contextlib.AbstractAsyncContextManager[Replica]]


@pytest.fixture
def replica_queue(postgres_url: str, fake_slack: FakeSlack) -> ReplicaQueue:
    """Replicas on the test's PostgreSQL database and the fake Slack, as separate processes
    are: `async with replica_queue("a", clock) as replica:` inside the replica's own event
    loop (`asyncio.to_thread(asyncio.run, ...)`), with its own engine, client and pacer (a
    fast one unless `pacer` is given); its queue's owner is `replica-<name>`."""
    settings = make_settings(api_url=fake_slack.api_url, database_url=postgres_url)

    @contextlib.asynccontextmanager
    async def replica(
        name: str, clock: Clock, *, pacer: Pacer | None = None, **options: Any
    ) -> AsyncIterator[Replica]:
        engine = create_engine(postgres_url)
        try:
            services = Services(settings=settings, sessions=session_factory(engine), clock=clock)
            client = create_client(settings)
            queue = DeliveryQueue(
                sessions=services.sessions,
                client=client,
                clock=clock,
                pacer=pacer or Pacer(per_minute=60_000, per_channel=0),
                owner=f"replica-{name}",
                **options,
            )
            try:
                yield Replica(services=services, client=client, queue=queue)
            finally:
                await queue.close()
        finally:
            await engine.dispose()

    return replica


# --- Slack ---------------------------------------------------------------------------


@pytest_asyncio.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN)
    for user_id, (name, real_name, email, tz) in PEOPLE.items():
        fake.add_user(user_id, name=name, real_name=real_name, email=email, tz=tz)
    await fake.start()
    yield fake
    await fake.stop()


@pytest_asyncio.fixture
async def bot(fake_slack: FakeSlack, sqlite_url: str) -> AsyncIterator[Bot]:
    async with running_bot(fake_slack, sqlite_url) as harness:
        yield harness


@pytest_asyncio.fixture
async def example_contract(bot: Bot) -> int:
    """shared/examples/contract.yml imported through the real importer; its contract id."""
    if not EXAMPLE_CONTRACT.is_file():
        pytest.skip(f"{EXAMPLE_CONTRACT} is not there")
    return await import_example(bot)


async def import_example(bot: Bot) -> int:
    """Import the example contract through the real importer (active); its contract id."""
    from bot.contracts.io import import_file

    results, problems = await import_file(
        EXAMPLE_CONTRACT,
        sessions=bot.sessions,
        client=bot.app.client,
        draft=False,
        now=bot.clock.now(),
    )
    assert problems == []
    return results[0].contract_id


def response_texts(fake: FakeSlack) -> list[str]:
    """Everything the app said through response URLs, text and block text alike."""
    said = []
    for call in fake.calls_to("response_url"):
        parts = [str(call.args.get("text", ""))]
        parts += [_block_text(b) for b in call.args.get("blocks") or []]
        said.append("\n".join(parts))
    return said


def _block_text(block: dict[str, object]) -> str:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(block)
    return "\n".join(found)
