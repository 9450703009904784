"""Helpers shared by the check-in and delivery tests: virtual time, contracts, running jobs.

(No tests here; pytest collects the module and finds none.)
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select

from bot import delivery
from bot.core.clock import ManualClock
from bot.delivery import Pacer, Report
from bot.jobs import JOBS
from bot.scheduler import JobRun
from bot.services import Services
from storage.db import SessionFactory, writing
from storage.models import (
    Contract,
    ContractStatus,
    Delivery,
    DevelopmentActivity,
    Expectation,
    Milestone,
    SuccessIndicator,
)
from tests.fakes import FakeSlack
from tests.harness import Bot


class VirtualTime:
    """Monotonic time that is the manual clock: sleeping moves the clock, never waits."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.clock.now().timestamp()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(timedelta(microseconds=math.ceil(seconds * 1_000_000)))
        await asyncio.sleep(0)

    def pacer(self, per_minute: float = 120) -> Pacer:
        return Pacer(per_minute=per_minute, monotonic=self.monotonic, sleep=self.sleep)


def virtual_time(services: Services, *, per_minute: float = 120) -> VirtualTime:
    """Give this workspace a pacer on virtual time, so no test ever sleeps for real."""
    assert isinstance(services.clock, ManualClock)
    time = VirtualTime(services.clock)
    delivery.install_pacer(services.settings, time.pacer(per_minute))
    return time


def on_virtual_time(fake: FakeSlack, time: VirtualTime) -> None:
    """Stamp the fake's calls with virtual time (and age its trigger ids on it)."""
    fake.clock = time.monotonic


async def run_job(bot: Bot, name: str, *, force: bool = False) -> Report:
    result = await JOBS[name].run(JobRun(services=bot.services, client=bot.app.client, force=force))
    assert isinstance(result, Report)
    return result


async def run_job_with(
    services: Services, client: AsyncWebClient, name: str, *, force: bool = False
) -> Report:
    result = await JOBS[name].run(JobRun(services=services, client=client, force=force))
    assert isinstance(result, Report)
    return result


def at(text: str, zone: str = "UTC") -> datetime:
    """An aware instant from local wall-clock text, e.g. at("2027-03-12 15:00", "Europe/Berlin")."""
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


async def add_contract(
    sessions: SessionFactory,
    *,
    leader: str = "U0LEAD001",
    sponsor: str = "U0SPON001",
    owner: str | None = "U0HRBP001",
    weekday: int = 4,
    clock_time: str = "15:00",
    timezone: str | None = "Europe/Berlin",
    start: date = date(2027, 1, 4),
    end: date = date(2027, 12, 17),
    reminder_hours: int = 24,
    title: str | None = None,
    indicators: list[dict[str, Any]] | None = None,
    activities: list[dict[str, Any]] | None = None,
    milestones: list[dict[str, Any]] | None = None,
    status: str = ContractStatus.active,
) -> int:
    """An active contract with a few items, straight into the database."""
    async with sessions() as session:
        await writing(session)
        contract = Contract(
            title=title or f"Contract of {leader}",
            leader_id=leader,
            sponsor_id=sponsor,
            owner_id=owner,
            status=status,
            period_start=start,
            period_end=end,
            checkin_weekday=weekday,
            checkin_time=clock_time,
            checkin_timezone=timezone,
            reminder_hours=reminder_hours,
            # Created before the simulated weeks, whatever the real date is when tests run.
            created_at=datetime(start.year, start.month, 1, tzinfo=UTC) - timedelta(days=28),
        )
        session.add(contract)
        await session.flush()
        cid = contract.id or 0
        session.add(Expectation(contract_id=cid, key="E1", kind="impact", text="Ship it."))
        for position, values in enumerate(
            indicators
            if indicators is not None
            else [
                {
                    "key": "I1",
                    "name": "Engagement",
                    "unit": "points",
                    "baseline": 62,
                    "target": 75,
                    "cadence": "weekly",
                }
            ]
        ):
            session.add(
                SuccessIndicator(
                    contract_id=cid,
                    direction="increase" if values["target"] > values["baseline"] else "decrease",
                    position=position,
                    **values,
                )
            )
        for position, values in enumerate(
            activities
            if activities is not None
            else [
                {
                    "key": "D1",
                    "title": "Coaching",
                    "modality": "coaching",
                    "due": date(2027, 6, 30),
                    "status": "in_progress",
                    "progress": 20,
                }
            ]
        ):
            session.add(DevelopmentActivity(contract_id=cid, position=position, **values))
        for position, values in enumerate(milestones or []):
            session.add(Milestone(contract_id=cid, position=position, **values))
        await session.commit()
        return cid


async def set_status(sessions: SessionFactory, contract_id: int, status: str) -> None:
    """Set a contract's status straight in the database (closed behind the bot's back)."""
    async with sessions() as session:
        await writing(session)
        contract = await session.get(Contract, contract_id)
        assert contract is not None
        contract.status = status
        session.add(contract)
        await session.commit()


async def deliveries(sessions: SessionFactory, kind: str | None = None) -> list[Delivery]:
    async with sessions() as session:
        query = select(Delivery).order_by(col(Delivery.id))
        if kind is not None:
            query = query.where(Delivery.kind == kind)
        return list((await session.exec(query)).all())


def posts_to(fake: FakeSlack, user: str) -> list[Any]:
    """Successful chat.postMessage calls that landed in `user`'s DM."""
    dm = fake.dm_id(user)
    return [
        c
        for c in fake.calls_to("chat.postMessage")
        if c.response.get("ok") and c.response.get("channel") == dm
    ]
