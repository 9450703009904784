"""Fan-out: N check-in prompts through the real `checkins` job against a rate-limited fake Slack.

The fake Slack enforces a workspace budget on `chat.postMessage` of R a minute (a token
bucket holding one second's worth) and answers 429 with an integer `Retry-After` when it is
used up, as Slack does. Other apps in the workspace use `OTHERS` of that budget, which the
bot does not know about: it is configured at `DELIVERY_RATE_PER_MINUTE` = R, so Slack's 429s
and their `Retry-After` pace the rest. The fake notes every call that arrives while an
earlier 429's `Retry-After` is still running.

Figures: elapsed against the floor N/R, 429s received, calls made before `Retry-After`
had passed (must be 0), prompts lost and doubled (0 and 0; counted from what reached the
fake and from the `delivery` table). Run with `python -m tests.bench --only fanout`, or
alone: `python -m tests.bench.checkins [--sizes 1000,10000] [--rate 6000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlmodel import select

from bot.checkins.jobs import send_prompts
from bot.checkins.model import PROMPT
from bot.client import create_client
from bot.core.clock import ManualClock
from bot.delivery import DeliveryQueue, Pacer
from bot.services import Services
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import Contract, Delivery, DevelopmentActivity, SuccessIndicator
from tests.bench.measure import BenchFailure, Options
from tests.fakes import FakeSlack
from tests.fakes.slack_api import JSON, _Reply
from tests.harness import BOT_TOKEN, make_settings

NAME = "fanout"
SIZES = (1_000, 10_000)
RATE_PER_MINUTE = 6_000  # the workspace budget R of the fake, and the bot's configured pace
OTHERS = 0.2  # the share of the budget other apps use
FRIDAY_AFTERNOON = datetime(2027, 3, 12, 14, 30, tzinfo=UTC)  # 15:30 in Berlin: all due


class RateLimitedSlack(FakeSlack):
    """The fake Slack with a workspace limit on chat.postMessage, as Slack answers it."""

    def __init__(self, *, per_minute: float, others: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.capacity = max(1.0, per_minute / 60.0)  # one second's worth of burst
        self.rate = (1 - others) * per_minute / 60.0  # what other apps leave of the refill
        self.tokens = self.capacity
        self.refilled = self.clock()
        self.retry_until = float("-inf")
        self.limited = 0
        self.early = 0
        self.posted: Counter[str] = Counter()

    def _dispatch(self, method: str, args: JSON, token: str | None) -> _Reply:
        if method != "chat.postMessage":
            return super()._dispatch(method, args, token)
        now = self.clock()
        if now < self.retry_until:
            self.early += 1
        self.tokens = min(self.capacity, self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now
        if self.tokens < 1:
            wait = math.ceil((1 - self.tokens) / self.rate)
            self.retry_until = max(self.retry_until, now + wait)
            self.limited += 1
            return _Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)})
        self.tokens -= 1
        reply = super()._dispatch(method, args, token)
        if reply.body.get("ok"):
            self.posted[str(reply.body.get("channel"))] += 1
        return reply

    async def _record(self, call: Any) -> None:
        """Keep no call log: ten thousand calls with their blocks would only cost memory."""


@dataclass(frozen=True)
class Run:
    prompts: int
    per_minute: int
    others: float
    elapsed: float
    rate_limited: int
    early_calls: int
    lost: int
    doubled: int
    calls: int
    sent_rows: int

    @property
    def floor(self) -> float:
        """N/R: the least time R a minute allows."""
        return self.prompts / (self.per_minute / 60.0)

    @property
    def left_floor(self) -> float:
        """N over what other apps leave of R."""
        return self.floor / (1 - self.others)

    def row(self) -> str:
        return (
            f"{self.prompts:>7,} {self.elapsed:>9.1f} s {self.floor:>8.1f} s "
            f"{self.elapsed / self.floor:>6.2f}x {self.left_floor:>9.1f} s "
            f"{self.rate_limited:>6,} {self.early_calls:>6} {self.lost:>5} {self.doubled:>7}"
        )


@dataclass(frozen=True)
class FanoutResult:
    runs: list[Run]
    rate: int
    others: float
    name: str = NAME

    def table(self) -> str:
        head = (
            f"{'N':>7} {'elapsed':>11} {'floor N/R':>10} {'ratio':>7} {'N/left':>11} "
            f"{'429s':>6} {'early':>6} {'lost':>5} {'doubled':>7}"
        )
        return "\n".join(
            [
                "Check-in fan-out through the `checkins` job against the fake Slack",
                f"R = {self.rate:,} chat.postMessage a minute (token bucket, 429 + Retry-After); "
                f"the bot is configured at R; other apps use {self.others:.0%} of R "
                f"(N/left = N over the {1 - self.others:.0%} they leave)",
                "early = calls made before an earlier 429's Retry-After had passed",
                "",
                head,
                *(run.row() for run in self.runs),
            ]
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "rate_per_minute": self.rate,
            "others": self.others,
            "runs": [
                {
                    **asdict(run),
                    "floor": round(run.floor, 2),
                    "left_floor": round(run.left_floor, 2),
                }
                for run in self.runs
            ],
        }


async def seed(url: str, fake: FakeSlack, n: int) -> None:
    """N active contracts, each with an indicator and an activity, leaders in the fake."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            contracts = [
                {
                    "id": i + 1,
                    "title": f"Contract {i}",
                    "leader_id": f"U{i:08d}",
                    "sponsor_id": "U0SPON001",
                    "owner_id": None,
                    "status": "active",
                    "version": 1,
                    "mission": "",
                    "period_start": date(2027, 1, 4),
                    "period_end": date(2027, 12, 17),
                    "checkin_weekday": 4,
                    "checkin_time": "15:00",
                    "checkin_timezone": "Europe/Berlin",
                    "reminder_hours": 24,
                    "anonymity_threshold": 3,
                    "digest_cadence": "monthly",
                    "digest_weekday": 0,
                    "digest_time": "09:00",
                    "reporting": "",
                    "created_at": FRIDAY_AFTERNOON,
                    "updated_at": FRIDAY_AFTERNOON,
                }
                for i in range(n)
            ]
            await connection.execute(insert(Contract), contracts)
            await connection.execute(
                insert(SuccessIndicator),
                [
                    {
                        "contract_id": i + 1,
                        "key": "I1",
                        "name": "Engagement",
                        "unit": "points",
                        "baseline": 60,
                        "target": 75,
                        "direction": "increase",
                        "source": "",
                        "cadence": "weekly",
                        "position": 0,
                    }
                    for i in range(n)
                ],
            )
            await connection.execute(
                insert(DevelopmentActivity),
                [
                    {
                        "contract_id": i + 1,
                        "key": "D1",
                        "title": "Coaching",
                        "modality": "coaching",
                        "due": date(2027, 6, 30),
                        "demonstration": "",
                        "status": "in_progress",
                        "progress": 20,
                        "position": 0,
                        "updated_at": FRIDAY_AFTERNOON,
                    }
                    for i in range(n)
                ],
            )
    finally:
        await engine.dispose()
    for i in range(n):
        fake.add_user(f"U{i:08d}", name=f"leader{i}")


async def fan_out(n: int, *, rate: int, others: float) -> Run:
    """Seed N due contracts, run the job once, count what reached the fake."""
    fake = RateLimitedSlack(per_minute=rate, others=others, bot_token=BOT_TOKEN)
    with tempfile.TemporaryDirectory(prefix="northstar-fanout-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'northstar.db'}"
        await upgrade(url)
        async with fake:
            await seed(url, fake, n)
            settings = make_settings(
                api_url=fake.api_url, database_url=url, delivery_rate_per_minute=rate
            )
            engine = create_engine(url)
            try:
                clock = ManualClock(FRIDAY_AFTERNOON)
                services = Services(
                    settings=settings, sessions=session_factory(engine), clock=clock
                )
                client = create_client(settings)
                queue = DeliveryQueue(
                    sessions=services.sessions,
                    client=client,
                    clock=clock,
                    pacer=Pacer(per_minute=rate),
                )
                started = time.perf_counter()
                report = await send_prompts(services=services, client=client, queue=queue)
                elapsed = time.perf_counter() - started
                async with services.sessions() as session:
                    rows = await session.exec(
                        select(Delivery.recipient_id).where(
                            Delivery.kind == PROMPT, Delivery.status == "sent"
                        )
                    )
                    sent_rows = len(set(rows.all()))
            finally:
                await engine.dispose()
    leaders = {fake.dm_id(f"U{i:08d}") for i in range(n)}
    return Run(
        prompts=n,
        per_minute=rate,
        others=others,
        elapsed=elapsed,
        rate_limited=fake.limited,
        early_calls=fake.early,
        lost=len(leaders - set(fake.posted)),
        doubled=sum(1 for count in fake.posted.values() if count > 1),
        calls=report.calls,
        sent_rows=sent_rows,
    )


async def measure(
    sizes: tuple[int, ...] = SIZES, rate: int = RATE_PER_MINUTE, others: float = OTHERS
) -> FanoutResult:
    runs = [await fan_out(n, rate=rate, others=others) for n in sizes]
    for run in runs:
        if run.lost or run.doubled or run.early_calls or run.sent_rows != run.prompts:
            raise BenchFailure(f"fan-out went wrong: {run}")
    return FanoutResult(runs=runs, rate=rate, others=others)


async def run(options: Options) -> FanoutResult:
    """The `make bench` entry: this module's sizes, rate and share (see `main` to change them)."""
    return await measure()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.checkins", description=__doc__)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES), metavar="1000,10000")
    parser.add_argument("--rate", type=int, default=RATE_PER_MINUTE, metavar="PER_MINUTE")
    parser.add_argument("--others", type=float, default=OTHERS, metavar="SHARE")
    args = parser.parse_args(argv)
    sizes = tuple(int(part) for part in args.sizes.split(","))
    try:
        result = asyncio.run(measure(sizes, args.rate, args.others))
    except BenchFailure as failure:
        print(f"benchmark {NAME} FAILED: {failure}", file=sys.stderr)
        return 1
    print(result.table())
    print(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
