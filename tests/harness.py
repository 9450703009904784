"""The real app served over HTTP on a free port, wired to a fake Slack and a database.

Used by the test fixtures and by the benchmarks, so both measure the same assembly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot.app import create_app
from bot.client import create_client
from bot.core.clock import ManualClock
from bot.server import create_web_app
from bot.services import FILL_SLOTS, Services
from bot.settings import Settings
from bot.ui.views import LOADING
from storage.db import SessionFactory, create_engine, session_factory
from tests.fakes import FakeSlack, SlackDriver

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
POSTGRES_FEEDBACK_KEY = "a-configured-feedback-key-for-postgresql-tests"
START = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)


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
    if not database_url.startswith("sqlite"):
        # PostgreSQL replicas need a configured key, as in production.
        values["feedback_hash_key"] = POSTGRES_FEEDBACK_KEY
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


@asynccontextmanager
async def running_bot(
    fake: FakeSlack, database_url: str, **overrides: object
) -> AsyncIterator[Bot]:
    """Serve the app on 127.0.0.1 and a free port until the block ends."""
    settings = make_settings(api_url=fake.api_url, database_url=database_url, **overrides)
    engine = create_engine(database_url)
    clock = ManualClock(START)
    services = Services(settings=settings, sessions=session_factory(engine), clock=clock)
    app = create_app(services, create_client(settings))
    runner = web.AppRunner(
        create_web_app(app, services.sessions, signing_secret=settings.slack_signing_secret),
        access_log=None,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with SlackDriver(
            app_url=f"{url}/slack/events", signing_secret=SIGNING_SECRET, fake=fake
        ) as driver:
            yield Bot(app=app, services=services, clock=clock, fake=fake, driver=driver, url=url)
    finally:
        await runner.cleanup()
        await engine.dispose()


def filled(view: dict[str, Any]) -> bool:
    """A modal past its "Loading…" state: what the bot put in it with `views.update`."""
    return view.get("callback_id") != LOADING


async def filled_modal(fake: FakeSlack, user: str | None = None) -> dict[str, Any]:
    """The newest open modal (of `user`) once the bot has filled it."""
    return await fake.wait_for_view(user, where=filled)


async def modal_says(fake: FakeSlack, user: str, *, opened: int = 1) -> str:
    """What the `opened`-th modal opened says once the bot filled it with a sentence
    (`bot.ui.views.message_view`, a refusal) rather than a form: that sentence."""
    calls = await fake.wait_for("views.open", count=opened)
    view_id = calls[opened - 1].response["view"]["id"]
    view = await fake.wait_for_view(user, where=lambda v: v["id"] == view_id and filled(v))
    assert [block["type"] for block in view["blocks"]] == ["section"], view
    assert view.get("submit") is None, view
    return str(view["blocks"][0]["text"]["text"])


@asynccontextmanager
async def loading_while_fills_wait(
    bot: Bot, command: str, text: str, *, user: str
) -> AsyncIterator[None]:
    """`command` sent while every fill slot is taken: inside the block its modal is open
    and still loading; it is filled once the block ends."""
    async with AsyncExitStack() as held:
        for _ in range(FILL_SLOTS):
            await held.enter_async_context(bot.services.fill_slots)
        assert (await bot.driver.command(command, text, user=user)).status == 200
        (opened,) = await bot.fake.wait_for("views.open")
        assert opened.response["ok"], opened.response
        yield
