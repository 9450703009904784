"""`northstar run`: the bot, its HTTP server and its scheduler in one event loop.

SIGTERM or SIGINT stops it in a few seconds, with one log line: `services.stopping` is set
(jobs and queues claim nothing more and hand back what they hold), the scheduler starts no
new run, the runs in flight get `SHUTDOWN_GRACE_SECONDS` to finish and are cancelled after,
then Socket Mode, the HTTP server and the database engine are closed. A second signal ends
the process at once, and so does a stop that has not finished `STOP_DEADLINE` seconds past
the grace (something hung): claims left behind are taken over once their lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable

from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

from bot.app import create_app
from bot.client import connection_pool, create_client
from bot.core.clock import SystemClock
from bot.jobs import DELIVERIES_JOB, JOBS
from bot.leadership import Leadership
from bot.privacy.keys import KeyUnavailable, announce_key
from bot.scheduler import CANCEL_WAIT, Scheduler
from bot.server import create_web_app
from bot.services import Services
from bot.settings import Settings, SettingsError
from storage.db import create_engine, session_factory
from storage.migrate import upgrade

logger = logging.getLogger(__name__)

# The collector's first generation: collected after this many new objects, not Python's 700.
# A request in flight holds its rows and blocks for some milliseconds; collected every 700
# allocations, they outlive young collections, are promoted and make full collections come
# more often, each going through every object the process holds. `make bench` (modal) put
# the summary under ten concurrent requests at a fifth to a third less CPU per request.
YOUNG_COLLECTION = 10_000

# Closing Socket Mode, the HTTP server (its requests in flight) or the engine: this long, each.
CLOSE_TIMEOUT = 3.0
# After the grace: the most the rest of a stop may take before the process exits anyway.
STOP_DEADLINE = CANCEL_WAIT + 3 * CLOSE_TIMEOUT + 3.0


def collect_less_often() -> None:
    """Let the young generation grow to `YOUNG_COLLECTION` before it is collected (the older
    generations' thresholds stay as they are)."""
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION, middle, old)


async def run_bot(settings: Settings) -> None:
    settings.require_slack()
    collect_less_often()
    try:
        announce_key(settings)
    except KeyUnavailable as problem:
        raise SettingsError([str(problem)]) from None
    stop = asyncio.Event()
    _stop_on_signals(stop)
    await upgrade(settings.database_url)
    if stop.is_set():  # asked to stop while migrating: nothing started yet
        logger.info("Stopped before starting")
        return
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    leadership = Leadership(
        url=settings.database_url,
        sessions=sessions,
        clock=SystemClock(),
        poll_seconds=settings.leader_poll_seconds,
    )
    services = Services(
        settings=settings, sessions=sessions, clock=SystemClock(), leads=leadership.leads
    )
    pool = connection_pool()
    client = create_client(settings, pool)
    app = create_app(services, client)
    scheduler = Scheduler(services, client, JOBS.values(), leads=leadership.leads)
    leadership.on_change(scheduler.follow)
    leadership.on_wake(lambda: scheduler.run_now(DELIVERIES_JOB))
    grace = settings.shutdown_grace_seconds
    # Socket Mode: Slack talks over the socket, so HTTP serves /healthz only.
    signing_secret = None if settings.socket_mode else settings.slack_signing_secret
    # No access log: a refused request gets its one line from bot/server.py, and health
    # probes would fill the log.
    runner = web.AppRunner(
        create_web_app(
            app, services.sessions, signing_secret=signing_secret, role=lambda: leadership.role
        ),
        access_log=None,
        shutdown_timeout=CLOSE_TIMEOUT - 0.5,
    )
    await runner.setup()
    host = settings.bind_host
    await web.TCPSite(runner, host, settings.port).start()

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
    await leadership.start()
    scheduler.start()
    logger.info("This replica is the %s", leadership.role)
    try:
        await stop.wait()
    finally:
        started = time.monotonic()
        services.stopping.set()
        watchdog = threading.Timer(
            grace + STOP_DEADLINE,
            exit_now,
            args=(f"a stop still unfinished after {grace + STOP_DEADLINE:g} s", 1),
        )
        watchdog.daemon = True
        watchdog.start()
        stopped = await scheduler.stop(grace)
        await _closing("the leader's lock", leadership.stop())
        if connecting is not None:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
        if socket_handler is not None:
            await _closing("Socket Mode", socket_handler.close_async())
        await _closing("the HTTP server", runner.cleanup())
        await _closing("the connections to Slack", pool.close())
        await _closing("the database", engine.dispose())
        logger.info("Stopped: %s in %.1f s", stopped, time.monotonic() - started)


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop`; a second one ends the process at once."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            exit_now(f"a second {signal.Signals(signum).name}", 128 + signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal, sig)


async def _closing(what: str, closing: Awaitable[None]) -> None:
    """Await a close for at most `CLOSE_TIMEOUT` seconds; a hang or a failure is logged."""
    try:
        await asyncio.wait_for(closing, timeout=CLOSE_TIMEOUT)
    except TimeoutError:
        logger.warning("Closing %s took too long; going on without it", what)
    except Exception:
        logger.warning("Closing %s failed", what, exc_info=True)


def exit_now(why: str, status: int) -> None:
    """End the process without waiting for anything (a second signal, a hung stop)."""
    logger.warning("Exiting at once on %s", why)
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    os._exit(status)
