"""`northstar run`: the bot, its HTTP server and its scheduler in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

from bot.app import create_app
from bot.client import create_client
from bot.core.clock import SystemClock
from bot.jobs import JOBS
from bot.privacy.keys import KeyUnavailable, announce_key
from bot.scheduler import build_scheduler
from bot.server import create_web_app
from bot.services import Services
from bot.settings import Settings, SettingsError
from storage.db import create_engine, session_factory
from storage.migrate import upgrade

logger = logging.getLogger(__name__)


async def run_bot(settings: Settings) -> None:
    settings.require_slack()
    try:
        announce_key(settings)
    except KeyUnavailable as problem:
        raise SettingsError([str(problem)]) from None
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    services = Services(settings=settings, sessions=session_factory(engine), clock=SystemClock())
    client = create_client(settings)
    app = create_app(services, client)
    scheduler = build_scheduler(services, client, JOBS.values())
    # Socket Mode: Slack talks over the socket, so HTTP serves /healthz only.
    signing_secret = None if settings.socket_mode else settings.slack_signing_secret
    # No access log: a refused request gets its one line from bot/server.py, and health
    # probes would fill the log.
    runner = web.AppRunner(
        create_web_app(app, services.sessions, signing_secret=signing_secret), access_log=None
    )
    await runner.setup()
    host = settings.bind_host
    await web.TCPSite(runner, host, settings.port).start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    socket_handler = None
    connecting: asyncio.Task[None] | None = None
    if settings.socket_mode:
        socket_handler = AsyncSocketModeHandler(app, settings.slack_app_token)
        # The client retries until Slack answers; meanwhile /healthz answers and stop works.
        connecting = asyncio.create_task(socket_handler.connect_async())
        logger.info(
            "Connecting to Slack over Socket Mode; health check on http://%s:%s/healthz",
            host,
            settings.port,
        )
    else:
        logger.info("Listening for Slack on http://%s:%s/slack/events", host, settings.port)
    scheduler.start()
    try:
        await stop.wait()
    finally:
        logger.info("Shutting down")
        scheduler.shutdown(wait=False)
        if connecting is not None:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
        if socket_handler is not None:
            await socket_handler.close_async()
        await runner.cleanup()
        await engine.dispose()
