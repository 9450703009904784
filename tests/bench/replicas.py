"""Replicas: N check-in prompts fanned out by real `northstar run` processes sharing one
PostgreSQL database, at the configured pace R, while Slack answers 429 now and then.

Each row starts REPLICAS processes (`python -m bot run`, HTTP mode, against the fake Slack
of this process) with every one of N leaders' prompts due now. One replica leads (the
advisory lock) and sends; the others serve HTTP only. Twice during the fan-out the fake
answers a post 429 with a `Retry-After`; every replica must then keep quiet for it. In the
`leader killed` row the leading process is SIGKILLed once 30% of the prompts went out; a
follower takes over (it tries every LEADER_POLL_SECONDS), gives back the dead leader's
claims and goes on.

Figures: prompts lost (no prompt in the leader's DM: must be 0), doubled (more than one:
must be 0), Retry-After violations (posts that reached the fake inside a window a 429 had
asked for, from any replica: must be 0), the elapsed time from the first post to the last
against the floor N/R plus the Retry-After pauses (within 1.05x), the highest pace seen in
any 10 s (must stay at most R, plus the one-slot tolerance of the start) and, when killed,
the seconds from the kill to the next post. Real time, no scaling: pick R so that N/R is a
few minutes.

Needs a PostgreSQL server: TEST_DATABASE_URL or `--database` (a server URL; a fresh
database is created on it and dropped after).
Run with `python -m tests.bench --only replicas`, or alone:
`python -m tests.bench.replicas [--n 10000] [--rate 1200] [--replicas 3] [--only "leader killed"]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy import update

from storage.db import create_engine
from storage.migrate import upgrade
from storage.models import Contract
from storage.queries.replicas import LEADER_LOCK
from tests.bench.checkins import seed
from tests.bench.faults import CountingSlack, known_people
from tests.bench.measure import BenchFailure, Options
from tests.fakes.slack_api import JSON, _Reply
from tests.harness import BOT_TOKEN, POSTGRES_FEEDBACK_KEY, SIGNING_SECRET

NAME = "replicas"
N = 10_000
RATE_PER_MINUTE = 1_200
REPLICAS = 3
KILL_AT = 0.3
POLL_SECONDS = 1.0
RETRY_AFTER = 2  # seconds, each of the 429s the fake answers
LIMITED_AT = (0.15, 0.6)  # the 429s come once this share of the prompts went out
ROWS = ("no fault", "leader killed")
ROOT = Path(__file__).resolve().parents[2]
WINDOW = 10.0  # seconds over which the highest pace is measured


class LimitingSlack(CountingSlack):
    """The counting fake, answering one post 429 at each of `limited_at` posts, and noting
    every post that reaches it inside a Retry-After window it gave."""

    def __init__(self, *, limited_at: list[int], retry_after: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limited_at = sorted(limited_at)
        self.retry_after = retry_after
        self.windows: list[tuple[float, float]] = []
        self.violations = 0

    def _dispatch(self, method: str, args: JSON, token: str | None) -> _Reply:
        if method == "chat.postMessage":
            now = self.clock()
            if any(start <= now < end for start, end in self.windows):
                self.violations += 1
            if self.limited_at and self.posts >= self.limited_at[0]:
                self.limited_at.pop(0)
                self.windows.append((now, now + self.retry_after))
                self.errors += 1
                headers = {"Retry-After": str(self.retry_after)}
                return _Reply(429, {"ok": False, "error": "ratelimited"}, headers)
        return super()._dispatch(method, args, token)


@dataclass(frozen=True)
class Row:
    name: str
    prompts: int
    per_minute: int
    replicas: int
    elapsed: float
    paused: float  # the Retry-After seconds asked for
    lost: int
    doubled: int
    violations: int
    peak_per_minute: float
    peak_in_a_minute: float = 0.0  # the most posts within any 60 s
    takeover: float | None = None  # seconds from the kill to the next post
    senders: int = 0  # processes that led at some point
    gaps: tuple[float, ...] = ()  # the longest silences between two posts, in seconds

    @property
    def floor(self) -> float:
        return self.prompts / (self.per_minute / 60.0) + self.paused

    @property
    def ratio(self) -> float:
        return self.elapsed / self.floor

    def row(self) -> str:
        takeover = "" if self.takeover is None else f"{self.takeover:.1f} s"
        return (
            f"{self.name:<14} {self.prompts:>6,} {self.replicas:>8} {self.elapsed:>8.1f} s "
            f"{self.floor:>7.1f} s {self.ratio:>6.3f}x {self.peak_per_minute:>9,.0f} "
            f"{self.peak_in_a_minute:>8,.0f} "
            f"{self.violations:>10} {self.lost:>5} {self.doubled:>7} {takeover:>9}"
        )


@dataclass(frozen=True)
class ReplicasResult:
    rows: list[Row]
    name: str = NAME
    skipped: str | None = None

    def table(self) -> str:
        if self.skipped is not None:
            return f"Replicas benchmark skipped: {self.skipped}"
        rate = self.rows[0].per_minute if self.rows else RATE_PER_MINUTE
        head = (
            f"{'row':<14} {'N':>6} {'replicas':>8} {'elapsed':>10} {'floor':>9} {'ratio':>7} "
            f"{'peak/min':>9} {'in 60 s':>8} {'violations':>10} {'lost':>5} {'doubled':>7} "
            f"{'takeover':>9}"
        )
        return "\n".join(
            [
                "Check-in fan-out by `northstar run` replicas on one PostgreSQL database",
                f"R = {rate:,} a minute (DELIVERY_RATE_PER_MINUTE); floor = N/R + the "
                f"Retry-After pauses ({len(LIMITED_AT)} x {RETRY_AFTER} s); peak = the most "
                f"posts in any {WINDOW:g} s, per minute, and in any 60 s (as received by the fake "
                "Slack); violations = posts inside a 429's "
                "Retry-After; takeover = kill to next post",
                "",
                head,
                *(row.row() for row in self.rows),
            ]
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "skipped": self.skipped,
            "rows": [
                {**asdict(row), "floor": round(row.floor, 1), "ratio": row.ratio}
                for row in self.rows
            ],
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg", "postgresql")


@contextlib.asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A new, migrated database on the server of `server_url`, dropped after."""
    name = f"northstar_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_plain(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = server_url.rsplit("/", 1)[0] + "/" + name
    try:
        await upgrade(url)
        yield url
    finally:
        admin = await asyncpg.connect(_plain(server_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def due_now(url: str, fake: CountingSlack, n: int) -> list[str]:
    """N active contracts whose prompts are all due now (in real time), their leaders known
    to the bot as a running bot knows them; the leaders."""
    leaders = [f"U{i:08d}" for i in range(n)]
    await seed(url, fake, n)
    await known_people(url, leaders)
    now = datetime.now(UTC)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(Contract).values(
                    checkin_timezone="UTC",
                    checkin_weekday=now.weekday(),
                    checkin_time="00:00",
                    period_start=now.date() - timedelta(days=30),
                    period_end=now.date() + timedelta(days=300),
                    created_at=now - timedelta(days=30),
                    digest_weekday=(now.weekday() + 3) % 7,  # no digest falls due meanwhile
                    digest_cadence="weekly",
                )
            )
    finally:
        await engine.dispose()
    return leaders


@dataclass
class Replica:
    process: asyncio.subprocess.Process
    port: int
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


async def start_replica(url: str, api_url: str, *, rate: int, poll: float, home: Path) -> Replica:
    """`northstar run` as a replica: HTTP mode, the fake's Web API, its own port."""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "PORT"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=api_url,
        DATABASE_URL=url,
        PORT=str(port),
        HOST="127.0.0.1",
        FEEDBACK_HASH_KEY=POSTGRES_FEEDBACK_KEY,
        DELIVERY_RATE_PER_MINUTE=str(rate),
        LEADER_POLL_SECONDS=str(poll),
        LOG_LEVEL="WARNING",
        XDG_CONFIG_HOME=str(home),
    )
    log = home / f"replica-{port}.log"
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=home,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
        )
    return Replica(process=process, port=port, log=log)


async def health(replica: Replica) -> dict[str, Any]:
    """What the replica's /healthz answers ({} while it does not answer)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(f"http://127.0.0.1:{replica.port}/healthz") as answer,
        ):
            found = await answer.json()
            return found if isinstance(found, dict) else {}
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return {}


async def leader_pid(url: str) -> int | None:
    """The OS process id of the replica holding the leader's lock (from its connection's
    application_name, `northstar <host>:<pid>:<nonce>`), or None."""
    connection = await asyncpg.connect(_plain(url))
    try:
        name = await connection.fetchval(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.objid = $1::bigint & 4294967295 AND l.classid = $1::bigint >> 32",
            LEADER_LOCK,
        )
    finally:
        await connection.close()
    if not name:
        return None
    return int(str(name).split()[-1].split(":")[1])


async def stop_all(replicas: list[Replica]) -> None:
    for replica in replicas:
        if replica.process.returncode is None:
            replica.process.send_signal(signal.SIGTERM)
    for replica in replicas:
        try:
            await asyncio.wait_for(replica.process.wait(), timeout=30)
        except TimeoutError:
            replica.process.kill()
            await replica.process.wait()


def longest_gaps(times: list[float], most: int = 8) -> tuple[float, ...]:
    """The `most` longest silences between consecutive posts (where the pace was lost)."""
    ordered = sorted(times)
    gaps = sorted((b - a for a, b in itertools.pairwise(ordered)), reverse=True)
    return tuple(round(gap, 3) for gap in gaps[:most])


def peak_per_minute(times: list[float], window: float = WINDOW) -> float:
    """The most posts within any `window` seconds, as a pace per minute (after the first
    window: the first post of all may come at once)."""
    ordered = sorted(times)
    most = start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] > window:
            start += 1
        most = max(most, end - start + 1)
    return (most - 1) * 60.0 / window if most > 1 else 0.0


async def measure_row(
    name: str, *, server_url: str, n: int, rate: int, replicas: int, kill: bool, home: Path
) -> Row:
    limited_at = [int(n * share) for share in LIMITED_AT]
    fake = LimitingSlack(
        bot_token=BOT_TOKEN,
        limited_at=limited_at,
        retry_after=RETRY_AFTER,
        wall_clock=time.time,  # messages dated as Slack dates them, for the read-back
    )
    async with fresh_database(server_url) as url, fake:
        leaders = await due_now(url, fake, n)
        started: list[Replica] = []
        try:
            for _ in range(replicas):
                started.append(
                    await start_replica(url, fake.api_url, rate=rate, poll=POLL_SECONDS, home=home)
                )
            deadline = time.monotonic() + 3 * n / (rate / 60.0) + 120
            killed_at: float | None = None
            killed: int | None = None
            senders: set[int] = set()

            def done() -> bool:
                return fake.posts >= n and all(fake.delivered(leaders).values())

            while not done():
                if time.monotonic() > deadline:
                    raise BenchFailure(f"{name}: {fake.posts} of {n} prompts after the deadline")
                for replica in started:
                    if replica.process.returncode is not None and replica.process.pid != killed:
                        raise BenchFailure(f"a replica exited: {replica.tail()}")
                pid = await leader_pid(url)
                if pid is not None:
                    senders.add(pid)
                if kill and killed is None and fake.posts >= n * KILL_AT and pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed, killed_at = pid, fake.clock()
                await asyncio.sleep(0.2)
            await asyncio.sleep(3 * POLL_SECONDS)  # anything doubled comes now
            roles = [await health(r) for r in started if r.process.returncode is None]
        finally:
            await stop_all(started)
        counts = fake.delivered(leaders)
        if [r.get("role") for r in roles].count("leader") != 1:
            raise BenchFailure(f"{name}: not one leader among the replicas: {roles}")
    takeover = None
    if killed_at is not None:
        after = [t for t in fake.posted_at if t > killed_at]
        takeover = min(after) - killed_at if after else None
    return Row(
        name=name,
        prompts=n,
        per_minute=rate,
        replicas=replicas,
        elapsed=max(fake.posted_at) - min(fake.posted_at),
        paused=len(LIMITED_AT) * RETRY_AFTER,
        lost=sum(1 for c in counts.values() if c == 0),
        doubled=sum(1 for c in counts.values() if c > 1),
        violations=fake.violations,
        peak_per_minute=peak_per_minute(fake.posted_at),
        peak_in_a_minute=peak_per_minute(fake.posted_at, 60.0),
        takeover=takeover,
        senders=len(senders),
        gaps=longest_gaps(fake.posted_at),
    )


def server_url(database: str | None) -> str:
    url = database or os.environ.get("TEST_DATABASE_URL")
    if not url:
        raise BenchFailure("needs PostgreSQL: set TEST_DATABASE_URL or pass --database")
    return url


async def measure(
    *,
    n: int = N,
    rate: int = RATE_PER_MINUTE,
    replicas: int = REPLICAS,
    only: tuple[str, ...] = ROWS,
    database: str | None = None,
) -> ReplicasResult:
    logging.getLogger("bot.delivery").setLevel(logging.ERROR)
    rows = []
    with contextlib.ExitStack() as stack:
        import tempfile

        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="northstar-rep-")))
        for name in only:
            row = await measure_row(
                name,
                server_url=server_url(database),
                n=n,
                rate=rate,
                replicas=replicas,
                kill=name == "leader killed",
                home=home,
            )
            rows.append(row)
            print(row.row(), flush=True)  # each row as it comes: a long run shows progress
            if row.lost or row.doubled or row.violations:
                raise BenchFailure(f"prompts lost, doubled or sent inside a Retry-After: {row}")
    return ReplicasResult(rows=rows)


async def run(options: Options) -> ReplicasResult:
    """The `make bench` entry: N = 10,000 at R a minute, 3 replicas, both rows; skipped
    without a PostgreSQL server (TEST_DATABASE_URL)."""
    if not os.environ.get("TEST_DATABASE_URL"):
        return ReplicasResult(rows=[], skipped="TEST_DATABASE_URL is not set")
    return await measure()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.replicas", description=__doc__)
    parser.add_argument("--n", type=int, default=N)
    parser.add_argument("--rate", type=int, default=RATE_PER_MINUTE, metavar="PER_MINUTE")
    parser.add_argument("--replicas", type=int, default=REPLICAS)
    parser.add_argument("--only", action="append", choices=ROWS)
    parser.add_argument("--database", help="a PostgreSQL server URL (default TEST_DATABASE_URL)")
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(
            measure(
                n=args.n,
                rate=args.rate,
                replicas=args.replicas,
                only=tuple(args.only or ROWS),
                database=args.database,
            )
        )
    except BenchFailure as failure:
        print(f"benchmark {NAME} FAILED: {failure}", file=sys.stderr)
        return 1
    print(result.table())
    print(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
