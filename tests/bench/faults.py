"""Faults: N check-in prompts through the real `checkins` job while Slack or the process fails.

Each row fans out N prompts (all due at once) through `send_prompts`, run as the scheduler
runs it (once a minute, a run never overlapping the one before), against the fake Slack with
one fault:

- `none`: no fault, for reference;
- `5xx bursts`: 20 s of 503 every two minutes, from the 5th second on;
- `latency 2-5 s`: every call answers after 2 to 5 s (uniform);
- `outage 30 min`: every call answers 503 for the first 30 minutes;
- `timeouts`: every 20th accepted post answers only after 45 s, past the client's 30 s;
- `kill -9`: the fan-out runs in a real subprocess, killed (SIGKILL) once a third of the
  prompts went out; this process then runs the job as another replica would.

The leaders are known to the bot as a running bot knows them (`users.info` asked within
the day, cached), so a prompt costs its post and no lookup.

Figures: prompts lost (no message in the leader's DM: must be 0), doubled (more than one:
must be 0; a post cut off by the kill is read back, not posted again), and the elapsed time
against the floor N/R at the configured pace R, as a ratio; the outage row also against
floor + outage. Time is simulated by scaling: every clock and wait of the bot, the pacer and
the fake runs `SCALE` times faster than the wall clock (a minute of the bot's time is
60/SCALE real seconds), while the HTTP calls, the database and the subprocess are real and
cost SCALE times more of the bot's time than they would (the `none` row shows how much).
Elapsed is the bot's time from the first run's start (the subprocess's, for kill -9) to the
last post reaching the fake.
Run with `python -m tests.bench --only faults`, or alone:
`python -m tests.bench.faults [--n 1000] [--scale 20] [--rate 120] [--only "kill -9"]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bot.checkins.jobs import send_prompts
from bot.client import create_client
from bot.core.lifecycle import Stopping
from bot.delivery import (
    CLAIM_LEASE,
    EVENT_TYPE,
    PROCESS_OWNER,
    DeliveryQueue,
    Pacer,
    RetryPolicy,
)
from bot.services import Services
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import SlackUser
from tests.bench.checkins import FRIDAY_AFTERNOON, seed
from tests.bench.measure import BenchFailure, Options
from tests.fakes import FakeSlack
from tests.fakes.slack_api import JSON, _Reply
from tests.harness import BOT_TOKEN, make_settings

NAME = "faults"
N = 1_000
RATE_PER_MINUTE = 120  # the default DELIVERY_RATE_PER_MINUTE
SCALE = 20.0
CLIENT_TIMEOUT = 30.0  # slack_sdk's default, in the bot's seconds
JOB_EVERY = 60.0
FAULTS = ("none", "5xx bursts", "latency 2-5 s", "outage 30 min", "timeouts", "kill -9")
ROOT = Path(__file__).resolve().parents[2]


class ScaledTime:
    """The bot's time, `scale` times faster than the wall clock from one shared origin, so
    every process given the same origin agrees on it."""

    def __init__(self, scale: float, origin: datetime, wall_origin: float) -> None:
        self.scale = scale
        self.origin = origin
        self.wall_origin = wall_origin

    def seconds(self) -> float:
        """The bot's seconds since the origin (its monotonic clock)."""
        return (time.time() - self.wall_origin) * self.scale

    def now(self) -> datetime:
        return self.origin + timedelta(seconds=self.seconds())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)

    def real(self, seconds: float) -> float:
        return seconds / self.scale


class CountingSlack(FakeSlack):
    """The fake Slack, keeping no call log (thousands of calls), noting when posts land."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.posted_at: list[float] = []  # when each post landed, on the fake's clock
        self.errors = 0

    @property
    def posts(self) -> int:
        return len(self.posted_at)

    def _dispatch(self, method: str, args: JSON, token: str | None) -> _Reply:
        reply = super()._dispatch(method, args, token)
        if not reply.body.get("ok"):
            self.errors += 1
        elif method == "chat.postMessage":
            self.posted_at.append(self.clock())
        return reply

    async def _record(self, call: Any) -> None:
        """No call log: only the counts above."""

    def delivered(self, leaders: list[str]) -> dict[str, int]:
        """How many prompts (messages with the queue's metadata) each leader's DM holds."""
        return {
            leader: sum(
                1
                for m in self.messages.get(self.dm_id(leader), [])
                if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE
            )
            for leader in leaders
        }


@dataclass(frozen=True)
class Row:
    fault: str
    prompts: int
    per_minute: int
    elapsed: float  # the bot's seconds
    lost: int
    doubled: int
    errors: int  # calls Slack (the fake) failed
    runs: int
    extra: float = 0.0  # the outage's length, for the outage row
    takeover: float | None = None  # kill -9: seconds from the kill to the next post

    @property
    def floor(self) -> float:
        return self.prompts / (self.per_minute / 60.0)

    def row(self) -> str:
        against = ""
        if self.extra:
            against = f"  ({self.elapsed / (self.floor + self.extra):.2f}x floor+outage)"
        if self.takeover is not None:
            against = f"  (next post {self.takeover:.0f} s after the kill)"
        return (
            f"{self.fault:<15} {self.prompts:>6,} {self.elapsed:>9.0f} s {self.floor:>7.0f} s "
            f"{self.elapsed / self.floor:>6.2f}x {self.lost:>5} {self.doubled:>7} "
            f"{self.errors:>6} {self.runs:>5}{against}"
        )


@dataclass(frozen=True)
class FaultsResult:
    rows: list[Row]
    scale: float
    name: str = NAME

    def table(self) -> str:
        head = (
            f"{'fault':<15} {'N':>6} {'elapsed':>11} {'floor':>9} {'ratio':>7} {'lost':>5} "
            f"{'doubled':>7} {'errors':>6} {'runs':>5}"
        )
        return "\n".join(
            [
                "Check-in fan-out through the `checkins` job while Slack or the process fails",
                f"R = {self.rows[0].per_minute if self.rows else RATE_PER_MINUTE} a minute "
                f"(the default pace); floor = N/R; time scaled {self.scale:g}x (the bot's "
                "seconds shown); errors = calls the fake failed; runs = job runs",
                "",
                head,
                *(row.row() for row in self.rows),
            ]
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "scale": self.scale,
            "rows": [
                {**asdict(row), "floor": round(row.floor, 1), "ratio": row.elapsed / row.floor}
                for row in self.rows
            ],
        }


def build_queue(
    services: Services, time_: ScaledTime, *, rate: int, owner: str | None = None
) -> DeliveryQueue:
    """The queue a replica's job gets, on scaled time."""
    pacer = Pacer(per_minute=rate, monotonic=time_.seconds, sleep=time_.sleep)
    return DeliveryQueue(
        sessions=services.sessions,
        client=create_client(services.settings),
        clock=time_,
        pacer=pacer,
        policy=RetryPolicy(),
        stopping=services.stopping,
        heartbeat=time_.real(CLAIM_LEASE.total_seconds() / 3),
        timeout=time_.real(CLIENT_TIMEOUT),
        owner=owner or PROCESS_OWNER,
    )


async def run_jobs(
    services: Services,
    time_: ScaledTime,
    *,
    rate: int,
    done: Callable[[], bool],
    deadline: float,
    owner: str | None = None,
) -> int:
    """The `checkins` job once a minute, a run never overlapping the one before, until
    `done()` or the bot's time reaches `deadline`; the number of runs. One pacer for the
    process, as `pacer_for` gives."""
    runs = 0
    pacer = Pacer(per_minute=rate, monotonic=time_.seconds, sleep=time_.sleep)
    while not done() and time_.seconds() < deadline:
        started = time_.seconds()
        queue = build_queue(services, time_, rate=rate, owner=owner)
        queue.pacer = pacer
        await send_prompts(services=services, client=queue.client, queue=queue)
        runs += 1
        if done():
            break
        await time_.sleep(JOB_EVERY - (time_.seconds() - started))
    return runs


@contextlib.asynccontextmanager
async def replica(url: str, api_url: str, time_: ScaledTime, rate: int) -> AsyncIterator[Services]:
    """A replica's services: its own engine, the fake's Web API, the scaled clock."""
    settings = make_settings(api_url=api_url, database_url=url, delivery_rate_per_minute=rate)
    engine = create_engine(url)
    try:
        yield Services(
            settings=settings, sessions=session_factory(engine), clock=time_, stopping=Stopping()
        )
    finally:
        await engine.dispose()


def arrange(fault: str, fake: FakeSlack) -> float:
    """Set the fake up for `fault`; the outage's length (0 for the others)."""
    if fault == "5xx bursts":
        for start in range(5, 3_600, 120):
            fake.outage(start=float(start), seconds=20.0)
    elif fault == "latency 2-5 s":
        fake.set_latency((2.0, 5.0))
    elif fault == "outage 30 min":
        fake.outage(start=0.0, seconds=1_800.0)
        return 1_800.0
    elif fault == "timeouts":
        fake.stall_after_accepting(seconds=45.0, times=100_000, every=20)
    return 0.0


async def measure_fault(
    fault: str, *, n: int, rate: int, scale: float, url: str | None = None
) -> Row:
    """One row: N prompts due at once, `fault` on the way; on `url` (an empty, migrated
    database) or a new SQLite file."""
    with tempfile.TemporaryDirectory(prefix="northstar-faults-") as directory:
        if url is None:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'northstar.db'}"
            await upgrade(url)
        return await _measure(fault, n=n, rate=rate, scale=scale, url=url)


async def _measure(fault: str, *, n: int, rate: int, scale: float, url: str) -> Row:
    leaders = [f"U{i:08d}" for i in range(n)]
    time_ = ScaledTime(scale, FRIDAY_AFTERNOON, time.time())
    fake = CountingSlack(
        bot_token=BOT_TOKEN,
        clock=time_.seconds,
        wall_clock=lambda: time_.now().timestamp(),
        sleep=time_.sleep,
    )
    extra = arrange(fault, fake)
    async with fake:
        await seed(url, fake, n)
        await known_people(url, leaders)
        time_.wall_origin = time.time()  # the bot's time starts now: every prompt is due
        deadline = 4 * n / (rate / 60.0) + extra + 3_600

        def done() -> bool:
            return fake.posts >= n and all(fake.delivered(leaders).values())

        takeover: float | None = None
        owner: str | None = None
        start = 0.0
        if fault == "kill -9":
            start, killed_at = await kill_mid_fan_out(url, fake, time_, rate=rate, after=n // 3)
            owner = "replica"
        async with replica(url, fake.api_url, time_, rate) as services:
            runs = await run_jobs(
                services, time_, rate=rate, done=done, deadline=deadline, owner=owner
            )
        if fault == "kill -9":
            after = [t for t in fake.posted_at if t > killed_at]
            takeover = min(after) - killed_at if after else None
        counts = fake.delivered(leaders)
    return Row(
        fault=fault,
        prompts=n,
        per_minute=rate,
        elapsed=max(fake.posted_at, default=time_.seconds()) - start,
        lost=sum(1 for c in counts.values() if c == 0),
        doubled=sum(1 for c in counts.values() if c > 1),
        errors=fake.errors,
        runs=runs,
        extra=extra,
        takeover=takeover,
    )


async def known_people(url: str, users: list[str]) -> None:
    """What `users.info` said about each leader an hour ago, as a running bot has it cached
    (it asks again after a day), so a prompt costs its post, not a lookup as well."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(SlackUser),
                [
                    {
                        "user_id": user,
                        "tz": "Europe/Berlin",
                        "fetched_at": FRIDAY_AFTERNOON - timedelta(hours=1),
                        "deleted": False,
                        "is_bot": False,
                    }
                    for user in users
                ],
            )
    finally:
        await engine.dispose()


async def kill_mid_fan_out(
    url: str, fake: CountingSlack, time_: ScaledTime, *, rate: int, after: int
) -> tuple[float, float]:
    """Run the job in a subprocess (a replica, tests/bench/worker.py) and SIGKILL it once
    `after` prompts went out; the bot's times its first run started and it was killed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.bench.worker",
        "--database",
        url,
        "--slack",
        fake.api_url,
        "--rate",
        str(rate),
        "--scale",
        repr(time_.scale),
        "--origin",
        time_.origin.isoformat(),
        "--wall-origin",
        repr(time_.wall_origin),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await process.stdout.readline()
        if not line.startswith(b"started "):
            err = await process.stderr.read() if process.stderr else b""
            raise BenchFailure(f"the worker did not start: {err.decode()[-2000:]}")
        started = float(line.split()[1])
        while fake.posts < after:
            if process.returncode is not None:
                err = await process.stderr.read() if process.stderr else b""
                raise BenchFailure(f"the worker exited early: {err.decode()[-2000:]}")
            await asyncio.sleep(0.002)
        os.kill(process.pid, signal.SIGKILL)
        killed_at = time_.seconds()
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return started, killed_at


async def measure(
    *,
    n: int = N,
    rate: int = RATE_PER_MINUTE,
    scale: float = SCALE,
    only: tuple[str, ...] = FAULTS,
) -> FaultsResult:
    logging.getLogger("bot.delivery").setLevel(logging.ERROR)  # thousands of retries
    rows = [await measure_fault(fault, n=n, rate=rate, scale=scale) for fault in only]
    for row in rows:
        if row.lost or row.doubled:
            raise BenchFailure(f"prompts lost or doubled: {row}")
    return FaultsResult(rows=rows, scale=scale)


async def run(options: Options) -> FaultsResult:
    """The `make bench` entry: N = 1,000 at the default pace, every fault."""
    return await measure()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.faults", description=__doc__)
    parser.add_argument("--n", type=int, default=N)
    parser.add_argument("--rate", type=int, default=RATE_PER_MINUTE, metavar="PER_MINUTE")
    parser.add_argument("--scale", type=float, default=SCALE)
    parser.add_argument("--only", action="append", choices=FAULTS)
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(
            measure(n=args.n, rate=args.rate, scale=args.scale, only=tuple(args.only or FAULTS))
        )
    except BenchFailure as failure:
        print(f"benchmark {NAME} FAILED: {failure}", file=sys.stderr)
        return 1
    print(result.table())
    print(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
