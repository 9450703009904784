"""The scheduler inside `northstar run`: APScheduler drives the bot's recurring jobs.

What is due, sent and answered lives in the database, so a job that runs late, twice or on
another replica finds the same state; the scheduler only decides when to look.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobRun:
    """What one run of a job gets. `force`: treat every active contract as due now."""

    services: Services
    client: AsyncWebClient
    force: bool = False


JobFunction = Callable[[JobRun], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Job:
    """A recurring job: its name (what `northstar jobs run NAME` runs) and how often it runs."""

    name: str
    run: JobFunction
    every_seconds: int


def build_scheduler(
    services: Services, client: AsyncWebClient, jobs: Iterable[Job]
) -> AsyncIOScheduler:
    """An AsyncIOScheduler with `jobs` (bot.jobs lists them); start it inside the running loop."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    for registered in jobs:
        scheduler.add_job(
            _guarded(registered, services, client),
            IntervalTrigger(seconds=registered.every_seconds),
            id=registered.name,
            name=registered.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=registered.every_seconds,
        )
    return scheduler


def _guarded(
    registered: Job, services: Services, client: AsyncWebClient
) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await registered.run(JobRun(services=services, client=client))
        except Exception:
            logger.exception("Job %s failed; it runs again on its next tick", registered.name)

    return run
