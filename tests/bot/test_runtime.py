"""`northstar run` as a real process: migrates, serves /healthz and Slack, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from bot.runtime import YOUNG_COLLECTION, collect_less_often
from tests.fakes import FakeSlack, SlackDriver
from tests.harness import BOT_TOKEN, SIGNING_SECRET

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_env(fake_slack: FakeSlack, tmp_path: Path, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "DATABASE_URL", "PORT"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}",
        PORT=str(port),
    )
    return env


async def test_run_serves_health_and_slack_then_stops(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    port = free_port()
    env = run_env(fake_slack, tmp_path, port)
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
    try:
        async with aiohttp.ClientSession() as http:
            health = None
            for _ in range(200):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        health = (response.status, await response.json())
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            assert health == (200, {"status": "ok", "database": "ok", "role": "leader"})
            async with http.post(
                f"http://127.0.0.1:{port}/slack/events", data="command=/contract"
            ) as response:
                assert response.status == 401  # unsigned: refused
        assert (tmp_path / "run.db").exists()
        # Its Web API calls share kept-alive connections: no new connection (and, with
        # Slack, no new TLS handshake) for each call.
        async with SlackDriver(
            app_url=f"http://127.0.0.1:{port}/slack/events",
            signing_secret=SIGNING_SECRET,
            fake=fake_slack,
        ) as slack:
            for times in range(1, 5):
                assert (await slack.app_home_opened("U0LEAD001")).status == 200
                await fake_slack.wait_for("views.publish", count=times, timeout=20)
        # One connection, or two where a job's call was in flight at the same moment: with a
        # connection per call, four.
        peers = {call.peer for call in fake_slack.calls_to("views.publish")}
        assert 1 <= len(peers) <= 2 and "" not in peers, peers
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err


def test_run_collects_young_objects_less_often() -> None:
    before = gc.get_threshold()
    try:
        collect_less_often()
        assert gc.get_threshold() == (YOUNG_COLLECTION, *before[1:])
    finally:
        gc.set_threshold(*before)
