"""`northstar sandbox`: the real bot, a local Slack Web API and the page, in one process.

The bot is assembled exactly as `northstar run` assembles it in HTTP mode (bot.app,
bot.server), on its own SQLite file, with SLACK_API_URL pointed at the local Slack and a
clock the page can move. Everything the page does reaches the bot as Slack's signed
requests; everything the bot does goes through the Web API. Only 127.0.0.1 is bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import secrets
import shutil
import signal
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import create_app
from bot.client import connection_pool, create_client
from bot.core.clock import ManualClock
from bot.privacy.keys import announce_key
from bot.sandbox import timeline
from bot.sandbox.demo import DEMO_NOW, add_people, seed_demo
from bot.sandbox.driver import SlackDriver
from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.manifest import AppManifest, load_manifest
from bot.sandbox.server import create_page_app
from bot.sandbox.state import STATE_FILE, read_state, write_state
from bot.server import EVENTS_PATH, create_web_app
from bot.services import Services
from bot.settings import Settings
from storage.db import create_engine, session_factory
from storage.migrate import upgrade

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
TEAM_ID = "T0SANDBOX"
SAVE_DELAY = 0.3
_SENDING = frozenset({"chat.postMessage", "chat.postEphemeral", "chat.update"})


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    port: int = 8080
    data_dir: Path = Path("data")
    empty: bool = False
    reset: bool = False

    @property
    def home(self) -> Path:
        """The sandbox's own folder: its database, workspace and anything kept beside them."""
        return self.data_dir / ("sandbox-empty" if self.empty else "sandbox")


class Sandbox:
    """One sandbox: start() brings up the local Slack, the bot and the page; stop() ends them."""

    def __init__(
        self, base: Settings, options: SandboxOptions, manifest: AppManifest | None = None
    ) -> None:
        self.base = base
        self.options = options
        self.manifest = manifest or load_manifest()
        self.db_path = options.home / "northstar.db"
        self.state_path = options.home / STATE_FILE
        self.secret = secrets.token_hex(16)
        self.clock = ManualClock(DEMO_NOW)
        self.fake = FakeSlack(
            bot_token=f"xoxb-sandbox-{secrets.token_hex(12)}",
            team_id=TEAM_ID,
            wall_clock=lambda: self.clock.now().timestamp(),
        )
        self.fake.team_name = "North Star sandbox"
        self.fake.team_domain = "northstar-sandbox"
        self.seeded = False
        self.page_url = ""
        self.bot_url = ""
        self._engine: AsyncEngine | None = None
        self._services: Services | None = None
        self._client: AsyncWebClient | None = None
        self._pool: aiohttp.ClientSession | None = None
        self._app: AsyncApp | None = None
        self._driver: SlackDriver | None = None
        self._runners: list[web.AppRunner] = []
        self._saver: asyncio.Task[None] | None = None
        self._stopping = False
        self._clock_lock = asyncio.Lock()

    # -- what the page server uses

    @property
    def services(self) -> Services:
        assert self._services is not None, "the sandbox is not started"
        return self._services

    @property
    def driver(self) -> SlackDriver:
        assert self._driver is not None, "the sandbox is not started"
        return self._driver

    @property
    def client(self) -> AsyncWebClient:
        assert self._client is not None, "the sandbox is not started"
        return self._client

    @property
    def events_url(self) -> str:
        return self.bot_url + EVENTS_PATH

    async def advance(self, step: str) -> timeline.Advance:
        """Move the bot's clock by `step` and run the due jobs; one press at a time."""
        async with self._clock_lock:
            first = len(self.fake.calls)
            result = await timeline.advance(
                step=step,
                services=self.services,
                clock=self.clock,
                client=self.client,
                user_tz={uid: str(u.get("tz") or "") for uid, u in self.fake.users.items()},
            )
            result.sent = sum(
                1
                for call in self.fake.calls[first:]
                if call.method in _SENDING and call.response.get("ok")
            )
            self.fake.touch()
            return result

    # -- lifecycle

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        home = self.options.home
        home.mkdir(parents=True, exist_ok=True)
        if self.options.reset:
            self._forget()
        fresh = not self.db_path.exists()
        saved = None if fresh else read_state(self.state_path)
        if saved is not None and saved.get("clock"):
            self.clock.set(datetime.fromisoformat(saved["clock"]))
        elif self.options.empty:
            self.clock.set(datetime.now(UTC).replace(second=0, microsecond=0))
        add_people(self.fake)
        if saved is not None:
            self.fake.load_state(saved.get("slack") or {})
        await self.fake.start()

        settings = replace(
            self.base,
            slack_bot_token=self.fake.bot_token,
            slack_signing_secret=self.secret,
            slack_app_token=None,
            slack_api_url=self.fake.api_url,
            database_url=f"sqlite+aiosqlite:///{self.db_path.resolve()}",
        )
        announce_key(settings)
        await upgrade(settings.database_url)
        self._engine = create_engine(settings.database_url)
        self._services = Services(
            settings=settings, sessions=session_factory(self._engine), clock=self.clock
        )
        self._pool = connection_pool()
        self._client = create_client(settings, self._pool)
        self._app = create_app(self._services, self._client)
        bot_runner = web.AppRunner(
            create_web_app(self._app, self._services.sessions, signing_secret=self.secret),
            access_log=None,
        )
        self._runners.append(bot_runner)
        await bot_runner.setup()
        await web.TCPSite(bot_runner, HOST, 0).start()
        self.bot_url = f"http://{HOST}:{bot_runner.addresses[0][1]}"
        self._driver = SlackDriver(
            app_url=self.events_url,
            signing_secret=self.secret,
            fake=self.fake,
            team_id=self.fake.team_id,
            api_app_id=self.fake.app_id,
        )
        if fresh and not self.options.empty:
            await seed_demo(
                sessions=self._services.sessions,
                client=self._client,
                fake=self.fake,
                clock=self.clock,
            )
            self.seeded = True
        self.save_state()

        page_runner = web.AppRunner(create_page_app(self), access_log=None)
        self._runners.append(page_runner)
        await page_runner.setup()
        await web.TCPSite(page_runner, HOST, self.options.port).start()
        self.page_url = f"http://{HOST}:{page_runner.addresses[0][1]}"
        self._saver = asyncio.create_task(self._keep_saving())

    async def stop(self) -> None:
        self._stopping = True
        if self._saver is not None:
            self.fake.touch()  # wakes the saver, which then sees _stopping even if a cancel is lost
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
            self._saver = None
        if self.page_url:
            with contextlib.suppress(OSError):
                self.save_state()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self._driver is not None:
            await self._driver.aclose()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        await self.fake.stop()

    # -- what a restart keeps

    def save_state(self) -> None:
        write_state(self.state_path, clock=self.clock.now(), slack=self.fake.dump_state())

    def _forget(self) -> None:
        """--reset: everything in the sandbox's own folder goes."""
        shutil.rmtree(self.options.home, ignore_errors=True)
        self.options.home.mkdir(parents=True, exist_ok=True)

    async def _keep_saving(self) -> None:
        seen = self.fake.version
        while not self._stopping:
            changed = await self.fake.wait_for_change(seen, 60)
            if changed == seen or self._stopping:
                continue
            await asyncio.sleep(SAVE_DELAY)  # one write for a burst of changes
            seen = self.fake.version
            try:
                self.save_state()
            except OSError:
                logger.exception("Could not save the sandbox's workspace to %s", self.state_path)


def banner(sandbox: Sandbox) -> str:
    data = "a blank workspace" if sandbox.options.empty else "the demo workspace"
    if sandbox.seeded:
        data += " (seeded just now: Dana Leader's contract and ten weeks of history)"
    return "\n".join(
        [
            f"North Star sandbox: open {sandbox.page_url}",
            f"  {data}, kept in {sandbox.options.home}/",
            f"  the bot (HTTP mode) answers on {sandbox.events_url}, "
            f"its local Slack Web API is {sandbox.fake.api_url}",
            "  Stop with Ctrl+C. To run against a real Slack workspace, set the tokens in "
            ".env (see README).",
        ]
    )


def run_sandbox(settings: Settings, options: SandboxOptions, out: TextIO = sys.stdout) -> int:
    """Serve the sandbox until SIGINT or SIGTERM; 2 when its port is taken."""
    return asyncio.run(_serve(settings, options, out))


async def _serve(settings: Settings, options: SandboxOptions, out: TextIO) -> int:
    sandbox = Sandbox(settings, options)
    try:
        await sandbox.start()
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        print(
            f"northstar: port {options.port} on {HOST} is in use; "
            "pick another with --port or SANDBOX_PORT.",
            file=sys.stderr,
        )
        return 2
    print(banner(sandbox), file=out, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sandbox.stop()
    return 0
