"""Peak memory of `northstar run` (`python -m bot run`, HTTP mode) idle and with 10,000 active
contracts, against the bare Bolt app of `baseline` run as a process of its own; and of the
jobs that go through a whole organisation (`JOBS_MEASURED`), each run once alone with
`northstar jobs run NAME` on the same 10,000 contracts as seeded.

Each process talks to the same fake Slack (served by this process); each `northstar run` is
watched for `WATCH_SECONDS` after it answers /healthz, its scheduler free to run whatever is
due. The figures are VmHWM (peak resident set) and VmRSS at the end, from /proc/<pid>/status
(Linux); a job reports its own as it exits (`tests.bench.peak`).
Run with `python -m tests.bench --only rss`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bot.settings import DELIVERY_RATE_MAX
from storage.migrate import upgrade
from tests.bench.measure import BenchFailure, Options
from tests.bench.peak import read_memory
from tests.conftest import PEOPLE
from tests.fakes import FakeSlack
from tests.harness import BOT_TOKEN, SIGNING_SECRET
from tests.scale import seed_organisation

NAME = "rss"
ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = 10_000
WATCH_SECONDS = 30.0
# The jobs that go through every active contract: the check-in prompts each minute, the
# alignment reviews, the computed values and escalations, the digest of the owner of all of
# them, and the milestones decided hourly.
JOBS_MEASURED = ("checkins", "reviews", "risks", "digests", "milestones")
# Measured once more on the database their first run left: the check-in prompts of a
# minute with every prompt of the week sent, what the job meets nearly every minute.
JOBS_AGAIN = ("checkins",)


@dataclass(frozen=True)
class Memory:
    label: str
    peak_mb: float
    end_mb: float


@dataclass(frozen=True)
class RssResult:
    rows: list[Memory]
    watch_seconds: float
    name: str = NAME

    def table(self) -> str:
        bare = self.rows[0].peak_mb
        lines = [
            f"Peak RSS (VmHWM) over {self.watch_seconds:g} s after /healthz answers, MiB",
            f"{'process':<44}{'peak':>8}{'at end':>9}{'vs bare':>9}",
        ]
        lines += [
            f"{row.label:<44}{row.peak_mb:>8.1f}{row.end_mb:>9.1f}{row.peak_mb / bare:>8.2f}x"
            for row in self.rows
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "watch_seconds": self.watch_seconds,
            "rows": [asdict(r) for r in self.rows],
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_mb(pid: int, *fields: str) -> list[float]:
    """`fields` of /proc/<pid>/status in MiB, from one read: a process still growing can
    never show a current size above the peak read a moment before."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in fields:
            found[name] = int(value.split()[0]) / 1024
    missing = [field for field in fields if field not in found]
    if missing:
        raise BenchFailure(f"no {', '.join(missing)} for process {pid}")
    return [found[field] for field in fields]


@asynccontextmanager
async def started(
    label: str, command: list[str], env: dict[str, str], port: int
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A process of its own, once its /healthz answers on `port`; terminated at the end."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                if process.returncode is not None:
                    err = (await process.stderr.read()).decode() if process.stderr else ""
                    raise BenchFailure(f"{label} stopped: {err[-500:]}")
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise BenchFailure(f"{label}: /healthz never answered")
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


def baseline_command(api_url: str, port: int) -> list[str]:
    """The bare app alone: `tests.bench.bare_app`, which imports nothing of North Star."""
    return [
        sys.executable,
        "-m",
        "tests.bench.bare_app",
        "--slack",
        api_url,
        "--port",
        str(port),
        "--token",
        BOT_TOKEN,
        "--secret",
        SIGNING_SECRET,
    ]


def baseline_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


async def watch(
    label: str, command: list[str], env: dict[str, str], port: int, seconds: float
) -> Memory:
    async with started(label, command, env, port) as process:
        await asyncio.sleep(seconds)
        peak, now = status_mb(process.pid, "VmHWM", "VmRSS")
        return Memory(label, peak, now)


async def job_memory(label: str, job: str, env: dict[str, str]) -> Memory:
    """`northstar jobs run JOB` to its end: its peak and final resident set."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.bench.peak", "jobs", "run", job),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    text = err.decode(errors="replace")
    memory = read_memory(text)
    if process.returncode != 0 or memory is None:
        raise BenchFailure(f"{label} failed ({process.returncode}): {text[-500:]}")
    return Memory(label, *memory)


def bot_env(api_url: str, database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL"))}
    env.update(
        PYTHONPATH=str(ROOT),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=api_url,
        DATABASE_URL=database_url,
        PORT=str(port),
        HOST="127.0.0.1",
        LOG_LEVEL="WARNING",
    )
    return env


async def measure(contracts: int = CONTRACTS, seconds: float = WATCH_SECONDS) -> RssResult:
    fake = FakeSlack(bot_token=BOT_TOKEN)
    for user_id, (name, real_name, email, tz) in PEOPLE.items():
        fake.add_user(user_id, name=name, real_name=real_name, email=email, tz=tz)
    for i in range(2, contracts + 1):
        fake.add_user(f"UL{i:07d}", name=f"leader{i}", tz="Europe/Berlin")
    rows = []
    async with fake:
        port = free_port()
        rows.append(
            await watch(
                "bare Bolt app (static modal)",
                baseline_command(fake.api_url, port),
                baseline_env(),
                port,
                seconds,
            )
        )
        for count in (0, contracts):
            with tempfile.TemporaryDirectory(prefix="northstar-rss-") as directory:
                seeded = Path(directory) / "seeded.db"
                url = f"sqlite+aiosqlite:///{seeded}"
                await upgrade(url)
                if count:
                    await seed_organisation(
                        url,
                        now=datetime.now(UTC),
                        contracts=count,
                        weeks=1,
                        leader="U0LEAD001",
                        governor="U0HRBP001",
                    )
                running = Path(directory) / "northstar.db"
                shutil.copyfile(seeded, running)
                port = free_port()
                rows.append(
                    await watch(
                        f"northstar run, {count:,} active contracts",
                        [sys.executable, "-m", "bot", "run"],
                        bot_env(fake.api_url, f"sqlite+aiosqlite:///{running}", port),
                        port,
                        seconds,
                    )
                )
                fake.reset()
                for job in JOBS_MEASURED if count else ():
                    alone = Path(directory) / f"{job}.db"
                    shutil.copyfile(seeded, alone)
                    env = bot_env(fake.api_url, f"sqlite+aiosqlite:///{alone}", free_port())
                    # What the job holds, not how long its pace takes: every prompt due
                    # goes out as fast as the fake Slack answers.
                    env["DELIVERY_RATE_PER_MINUTE"] = str(DELIVERY_RATE_MAX)
                    label = f"jobs run {job}, {count:,} active contracts"
                    rows.append(await job_memory(label, job, env))
                    if job in JOBS_AGAIN:
                        label = f"jobs run {job} again, nothing due"
                        rows.append(await job_memory(label, job, env))
                    fake.reset()
    return RssResult(rows, seconds)


async def run(options: Options) -> RssResult:
    return await measure()
