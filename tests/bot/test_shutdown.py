"""SIGTERM stops `northstar run` cleanly: the jobs running get their grace, then are
cancelled without a traceback; one log line says how it went; a second signal exits at once.

The bot runs as a real process against the fake Slack, through a small proxy that holds
`chat.postMessage` calls until the test lets them go: a job is then mid-send when the
signal comes, as with a slow Slack.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import select

from bot.checkins.jobs import send_prompts
from bot.checkins.model import PROMPT
from bot.contracts.io import import_file
from bot.core.clock import SystemClock
from bot.delivery import Outcome, Pacer, install_pacer
from bot.jobs import JOBS
from bot.scheduler import Job, JobRun, Scheduler
from bot.services import Services
from storage.db import create_engine, session_factory, writing
from storage.models import Contract, Delivery, DeliveryStatus
from tests.bot.checkins.test_support import (
    VirtualTime,
    add_contract,
    at,
    deliveries,
    virtual_time,
)
from tests.bot.test_runtime import ROOT, free_port
from tests.conftest import EXAMPLE_CONTRACT
from tests.fakes import FakeSlack
from tests.harness import BOT_TOKEN, POSTGRES_FEEDBACK_KEY, SIGNING_SECRET, Bot, make_settings

LEADER = "U0LEAD001"
STOP_LINE = re.compile(r"Stopped: (\d+) jobs? finished, (\d+) cancelled(?: \(([^)]*)\))? in ")


@dataclass
class HoldingProxy:
    """Forwards the Web API to the fake Slack, holding each chat.postMessage to the leader
    until released (other jobs' posts, to peers, go through: they run beside the prompts)."""

    target: str
    released: asyncio.Event = field(default_factory=asyncio.Event)
    held: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await request.read()
        if method == "chat.postMessage" and _channel_of(body) == LEADER:
            self.held.set()
            await self.released.wait()
        kept = ("authorization", "content-type")
        headers = {k: v for k, v in request.headers.items() if k.lower() in kept}
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method,
                f"{self.target}{method}",
                params=request.query,
                data=body,
                headers=headers,
            ) as answer,
        ):
            retry_after = answer.headers.get("Retry-After")
            return web.Response(
                status=answer.status,
                body=await answer.read(),
                content_type="application/json",
                headers={"Retry-After": retry_after} if retry_after else None,
            )


def _channel_of(body: bytes) -> str | None:
    """The channel a Web API call's body (JSON, as slack_sdk posts messages, or a form) names."""
    try:
        found = json.loads(body).get("channel")
    except ValueError:
        found = parse_qs(body.decode()).get("channel", [None])[0]
    return found if isinstance(found, str) else None


@pytest_asyncio.fixture
async def proxy(fake_slack: FakeSlack) -> AsyncIterator[HoldingProxy]:
    holding = HoldingProxy(target=fake_slack.api_url)
    app = web.Application()
    app.router.add_route("*", "/api/{method}", holding.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    holding.url = f"http://127.0.0.1:{port}/api/"
    try:
        yield holding
    finally:
        holding.released.set()
        await runner.cleanup()


@pytest_asyncio.fixture
async def due_now(fake_slack: FakeSlack, database_url: str) -> str:
    """A database (SQLite, and PostgreSQL when TEST_DATABASE_URL is set) whose one
    contract's check-in prompt is due now: its URL."""
    url = database_url
    engine = create_engine(url)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    try:
        results, problems = await import_file(
            EXAMPLE_CONTRACT, sessions=sessions, client=client, draft=False, now=now
        )
        assert problems == []
        async with sessions() as session:
            await writing(session)
            contract = await session.get(Contract, results[0].contract_id)
            assert contract is not None
            contract.checkin_timezone = "UTC"
            contract.checkin_weekday = now.weekday()
            contract.checkin_time = "00:00"
            contract.period_start = now.date() - timedelta(days=30)
            contract.period_end = now.date() + timedelta(days=300)
            contract.created_at = now - timedelta(days=30)
            session.add(contract)
            await session.commit()
    finally:
        await engine.dispose()
    return url


async def start_bot(
    url: str, proxy: HoldingProxy, tmp_path: Path, **extra: str
) -> asyncio.subprocess.Process:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "DATABASE_URL", "PORT", "SHUTDOWN_"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=proxy.url,
        DATABASE_URL=url,
        PORT=str(free_port()),
        **extra,
    )
    if not url.startswith("sqlite"):
        env["FEEDBACK_HASH_KEY"] = POSTGRES_FEEDBACK_KEY
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def rows_in(url: str) -> list[Delivery]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return list((await session.exec(select(Delivery))).all())
    finally:
        await engine.dispose()


def prompts_to_leader(fake: FakeSlack) -> int:
    return sum(
        1
        for call in fake.calls_to("chat.postMessage")
        if call.response.get("ok") and call.args.get("channel") == LEADER
    )


def stop_lines(err: str) -> list[re.Match[str]]:
    return [m for m in (STOP_LINE.search(line) for line in err.splitlines()) if m]


async def test_sigterm_mid_send_lets_the_job_finish(
    fake_slack: FakeSlack, proxy: HoldingProxy, due_now: str, tmp_path: Path
) -> None:
    process = await start_bot(due_now, proxy, tmp_path, SHUTDOWN_GRACE_SECONDS="20")
    try:
        await asyncio.wait_for(proxy.held.wait(), timeout=30)  # the prompt is on its way
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(1)  # the stop has begun; Slack answers now, inside the grace
        proxy.released.set()
        _, err_bytes = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    err = err_bytes.decode()
    assert process.returncode == 0, err
    assert "Traceback" not in err and " ERROR " not in err, err
    lines = stop_lines(err)
    assert len(lines) == 1, err
    assert int(lines[0][1]) >= 1 and lines[0][2] == "0", err
    assert "Shutting down" not in err
    assert prompts_to_leader(fake_slack) == 1
    rows = await rows_in(due_now)
    assert [r.status for r in rows if r.recipient_id == LEADER and r.kind == "checkin_prompt"] == [
        DeliveryStatus.sent
    ]
    # Given back, a claim has no owner: the next process takes it at once.
    assert not [r for r in rows if r.claimed_by is not None and r.status != DeliveryStatus.sent], (
        rows
    )


async def test_a_job_past_its_grace_is_cancelled_quietly(
    fake_slack: FakeSlack, proxy: HoldingProxy, due_now: str, tmp_path: Path
) -> None:
    process = await start_bot(due_now, proxy, tmp_path, SHUTDOWN_GRACE_SECONDS="0.5")
    try:
        await asyncio.wait_for(proxy.held.wait(), timeout=30)
        process.send_signal(signal.SIGTERM)
        # Slack never answers: the job is cancelled once its grace is over.
        _, err_bytes = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    err = err_bytes.decode()
    assert process.returncode == 0, err
    assert "Traceback" not in err and "CancelledError" not in err and " ERROR " not in err, err
    lines = stop_lines(err)
    assert len(lines) == 1, err
    assert int(lines[0][2]) >= 1 and "checkins" in (lines[0][3] or ""), err
    assert prompts_to_leader(fake_slack) == 0


async def test_a_second_signal_exits_at_once(
    fake_slack: FakeSlack, proxy: HoldingProxy, due_now: str, tmp_path: Path
) -> None:
    process = await start_bot(due_now, proxy, tmp_path, SHUTDOWN_GRACE_SECONDS="60")
    try:
        await asyncio.wait_for(proxy.held.wait(), timeout=30)
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        # Well inside the 60 s grace the first signal alone would have waited.
        _, err_bytes = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    err = err_bytes.decode()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "Exiting at once on a second SIGTERM" in err
    assert "Traceback" not in err


# --- the stop itself, in process ------------------------------------------------------------


async def test_stop_gives_the_grace_with_the_stop_flag_set_then_cancels(
    fake_slack: FakeSlack, sqlite_url: str
) -> None:
    """A quick run finishes inside the grace; a slow one sees the stop flag set, and is
    cancelled only once the grace is over; neither is logged as an error."""
    settings = make_settings(api_url=fake_slack.api_url, database_url=sqlite_url)
    engine = create_engine(sqlite_url)
    services = Services(settings=settings, sessions=session_factory(engine), clock=SystemClock())
    loop = asyncio.get_running_loop()
    stop_at: list[float] = []
    seen: dict[str, tuple[str, bool, float]] = {}
    started = {"quick": asyncio.Event(), "slow": asyncio.Event()}

    async def quick(run: JobRun) -> None:
        started["quick"].set()
        await run.services.stopping.wait()
        await asyncio.sleep(0.05)
        seen["quick"] = ("finished", run.services.stopping.is_set(), 0.0)

    async def slow(run: JobRun) -> None:
        started["slow"].set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen["slow"] = ("cancelled", run.services.stopping.is_set(), loop.time() - stop_at[0])
            raise

    jobs = [Job("quick", quick, 3600), Job("slow", slow, 3600)]
    scheduler = Scheduler(services, AsyncWebClient(token=BOT_TOKEN), jobs)
    scheduler.start()
    try:
        for event in started.values():
            await asyncio.wait_for(event.wait(), timeout=10)
        assert scheduler.running == 2
        services.stopping.set()
        stop_at.append(loop.time())
        stopped = await scheduler.stop(grace=0.3)
    finally:
        await engine.dispose()
    assert stopped.finished == 1 and stopped.cancelled == ("slow",)
    assert str(stopped) == "1 job finished, 1 cancelled (slow)"
    assert seen["quick"] == ("finished", True, 0.0)
    state, flag, after = seen["slow"]
    assert state == "cancelled" and flag is True and after >= 0.3
    assert scheduler.running == 0


async def test_a_failing_job_is_logged_and_a_stopped_one_is_not(
    fake_slack: FakeSlack, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(api_url=fake_slack.api_url, database_url=sqlite_url)
    engine = create_engine(sqlite_url)
    services = Services(settings=settings, sessions=session_factory(engine), clock=SystemClock())
    ran, hangs = asyncio.Event(), asyncio.Event()

    async def broken(_: JobRun) -> None:
        ran.set()
        raise RuntimeError("boom")

    async def hanging(_: JobRun) -> None:
        hangs.set()
        await asyncio.sleep(3600)

    scheduler = Scheduler(
        services,
        AsyncWebClient(token=BOT_TOKEN),
        [Job("broken", broken, 3600), Job("hanging", hanging, 3600)],
    )
    scheduler.start()
    try:
        await asyncio.wait_for(ran.wait(), timeout=10)
        await asyncio.wait_for(hangs.wait(), timeout=10)
        services.stopping.set()
        stopped = await scheduler.stop(grace=0)
    finally:
        await engine.dispose()
    assert stopped.cancelled == ("hanging",)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == ["Job broken failed; it runs again on its next tick"]
    assert not any("CancelledError" in (r.exc_text or "") for r in caplog.records)


# --- jobs honour the stop between contracts -------------------------------------------------


async def test_a_job_stops_claiming_within_one_contract_of_the_stop(bot: Bot) -> None:
    """The stop comes while the second prompt waits for its slot: the first has gone, and
    whatever the queue had claimed past it is given back unsent, for the next process."""
    leaders = [LEADER, "U0VP00001", "U0PEER002"]
    for leader in leaders:
        await add_contract(bot.sessions, leader=leader, owner=None)
    time = VirtualTime(bot.clock)

    async def sleep_then_stop(seconds: float) -> None:
        bot.services.stopping.set()
        await time.sleep(seconds)

    install_pacer(
        bot.services.settings,
        Pacer(per_minute=120, monotonic=time.monotonic, sleep=sleep_then_stop),
    )
    bot.clock.set(at("2027-03-12 16:00", "Europe/Berlin"))
    report = await send_prompts(services=bot.services, client=bot.app.client, batch=1)
    assert report.count(Outcome.sent) == 1
    [first] = [c.args["channel"] for c in bot.fake.calls_to("chat.postMessage")]
    rows = await deliveries(bot.sessions, PROMPT)
    assert (first, DeliveryStatus.sent) in [(r.recipient_id, r.status) for r in rows]
    unsent = [r for r in rows if r.recipient_id != first]
    assert all(r.status != DeliveryStatus.sent and r.claimed_by is None for r in unsent), unsent


async def test_jobs_started_after_the_stop_claim_nothing(bot: Bot) -> None:
    virtual_time(bot.services)
    await add_contract(bot.sessions, leader=LEADER)
    bot.clock.set(at("2027-03-15 15:00", "Europe/Berlin"))  # a prompt and a digest are due
    bot.services.stopping.set()
    for name in ("checkins", "reminders", "digests", "feedback", "milestones"):
        await JOBS[name].run(JobRun(services=bot.services, client=bot.app.client, force=True))
    assert bot.fake.calls_to("chat.postMessage") == []
    assert await deliveries(bot.sessions) == []
