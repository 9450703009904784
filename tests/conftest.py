"""Shared fixtures: migrated databases, the fake Slack, and the real app served over HTTP."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot.app import create_app, create_client
from bot.clock import ManualClock
from bot.server import create_web_app
from bot.services import Services
from bot.settings import Settings
from storage.db import SessionFactory, create_engine, session_factory
from storage.migrate import upgrade
from tests.fakes import FakeSlack, SlackDriver

SHARED = Path(__file__).resolve().parents[2] / "shared"
EXAMPLE_CONTRACT = SHARED / "examples" / "contract.yml"
SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"

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


# --- Slack ---------------------------------------------------------------------------


@pytest_asyncio.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN)
    for user_id, (name, real_name, email, tz) in PEOPLE.items():
        fake.add_user(user_id, name=name, real_name=real_name, email=email, tz=tz)
    await fake.start()
    yield fake
    await fake.stop()


def make_settings(*, api_url: str, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_app_token": None,
        "slack_api_url": api_url,
        "database_url": database_url,
        "port": 3000,
        "log_level": "INFO",
        "default_timezone": "Europe/Berlin",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Bot:
    """The real app, served over HTTP, wired to the fake Slack and a real database."""

    app: AsyncApp
    services: Services
    clock: ManualClock
    fake: FakeSlack
    driver: SlackDriver
    url: str

    @property
    def sessions(self) -> SessionFactory:
        return self.services.sessions


@pytest_asyncio.fixture
async def bot(fake_slack: FakeSlack, sqlite_url: str) -> AsyncIterator[Bot]:
    settings = make_settings(api_url=fake_slack.api_url, database_url=sqlite_url)
    engine = create_engine(sqlite_url)
    clock = ManualClock(datetime(2027, 3, 10, 9, 0, tzinfo=UTC))
    services = Services(settings=settings, sessions=session_factory(engine), clock=clock)
    app = create_app(services, create_client(settings))
    runner = web.AppRunner(create_web_app(app, services.sessions))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}"
    async with SlackDriver(
        app_url=f"{url}/slack/events", signing_secret=SIGNING_SECRET, fake=fake_slack
    ) as driver:
        yield Bot(app=app, services=services, clock=clock, fake=fake_slack, driver=driver, url=url)
    await runner.cleanup()
    await engine.dispose()
