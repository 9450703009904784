"""The scheduler inside `northstar run`: APScheduler drives the bot's recurring jobs.

What is due, sent and answered lives in the database, so a job that runs late, twice or on
another replica finds the same state; the scheduler only decides when to look.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services

logger = logging.getLogger(__name__)

# How long a cancelled run may take to hand back what it holds before the process goes on.
CANCEL_WAIT = 3.0


@dataclass(frozen=True, slots=True)
class JobRun:
    """What one run of a job gets. `force`: treat every active contract as due now."""

    services: Services
    client: AsyncWebClient
    force: bool = False


JobFunction = Callable[[JobRun], Coroutine[Any, Any, object]]


@dataclass(frozen=True, slots=True)
class Job:
    """A recurring job: its name (what `northstar jobs run NAME` runs) and how often it runs."""

    name: str
    run: JobFunction
    every_seconds: int


@dataclass(frozen=True, slots=True)
class Stopped:
    """What a stop came to: the runs in flight that finished within the grace, and the
    names of those that were cancelled."""

    finished: int
    cancelled: tuple[str, ...]

    def __str__(self) -> str:
        jobs = "job" if self.finished == 1 else "jobs"
        named = f" ({', '.join(sorted(self.cancelled))})" if self.cancelled else ""
        return f"{self.finished} {jobs} finished, {len(self.cancelled)} cancelled{named}"


class Scheduler:
    """APScheduler driving `jobs` (bot.jobs lists them), and the runs in flight, so a stop
    can wait.

    Every job runs once at start (a restarted bot catches up at once, not a tick later),
    then every `every_seconds`, on the leading replica only (`leads`): a replica that
    becomes the leader runs them all at once (`follow`). A run is a task of its own, so a
    stop can cancel it without touching the scheduler's; its cancellation is a stop, not an
    error.
    """

    def __init__(
        self,
        services: Services,
        client: AsyncWebClient,
        jobs: Iterable[Job],
        *,
        leads: Callable[[], bool] | None = None,
    ) -> None:
        """`leads`: whether this replica leads now; the jobs run only while it does (all of
        them at once when it becomes the leader: call `led()`)."""
        self.services = services
        self.client = client
        self.leads = leads
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        # The scheduler's task of each run in flight, and the run's own task inside it.
        self._running: dict[asyncio.Task[Any], tuple[str, asyncio.Task[object]]] = {}
        self._again: set[str] = set()  # jobs asked to run while a run of theirs was in flight
        first = datetime.now(UTC)
        for registered in jobs:
            self._scheduler.add_job(
                self._guarded(registered),
                IntervalTrigger(seconds=registered.every_seconds),
                id=registered.name,
                name=registered.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=registered.every_seconds,
                next_run_time=first,
            )

    def start(self) -> None:
        """Start scheduling; call inside the running loop."""
        self._scheduler.start()

    def led(self) -> None:
        """This replica became the leader: run every job now, not at its next tick."""
        if not self._scheduler.running:
            return
        now = datetime.now(UTC)
        for job in self._scheduler.get_jobs():
            job.modify(next_run_time=now)

    def run_now(self, name: str) -> None:
        """Run job `name` now, or again as soon as the run in flight ends."""
        if name in {running for running, _ in self._running.values()}:
            self._again.add(name)
            return
        job = self._scheduler.get_job(name)
        if job is not None and self._scheduler.running:
            job.modify(next_run_time=datetime.now(UTC))

    def follow(self, role: str) -> None:
        """This replica's role changed to `role` (leader or follower): `led` or `followed`."""
        if role == "leader":
            self.led()
        else:
            self.followed()

    def followed(self) -> None:
        """This replica no longer leads: cancel the runs in flight (each gives back what it
        holds), so only the new leader sends."""
        for name, inner in list(self._running.values()):
            logger.info("Job %s stopped: this replica no longer leads", name)
            inner.cancel()

    @property
    def running(self) -> int:
        """How many runs are in flight."""
        return len(self._running)

    async def stop(self, grace: float) -> Stopped:
        """Start no new run, give the runs in flight `grace` seconds, then cancel the rest.

        Call once `services.stopping` is set, so the runs stop claiming work and hand back
        what they hold; a cancelled run gets `CANCEL_WAIT` seconds more to do so.
        """
        self._scheduler.pause()
        await asyncio.sleep(0)  # a run the scheduler started just now sees the stop and returns
        finished: set[asyncio.Task[Any]] = set()
        late: set[asyncio.Task[Any]] = set()
        if self._running:
            finished, late = await asyncio.wait(set(self._running), timeout=max(0.0, grace))
        cancelled = []
        for outer in late:
            name, inner = self._running.get(outer, (None, None))
            if inner is not None:
                cancelled.append(name or "")
                inner.cancel()
        if late:
            await asyncio.wait(late, timeout=CANCEL_WAIT)
        self._scheduler.shutdown(wait=False)
        return Stopped(finished=len(finished), cancelled=tuple(cancelled))

    def _guarded(self, registered: Job) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if self.services.stopping.is_set():
                return
            if self.leads is not None and not self.leads():
                return
            outer = asyncio.current_task()
            inner: asyncio.Task[object] = asyncio.create_task(
                registered.run(JobRun(services=self.services, client=self.client)),
                name=f"job {registered.name}",
            )
            if outer is not None:
                self._running[outer] = (registered.name, inner)
            try:
                await inner
            except asyncio.CancelledError:
                if outer is not None and outer.cancelling():
                    raise  # the scheduler's own task is being cancelled: let it end
                # The stop's one log line names it.
                logger.debug("Job %s was stopped mid-run", registered.name)
            except Exception:
                logger.exception("Job %s failed; it runs again on its next tick", registered.name)
            finally:
                if outer is not None:
                    self._running.pop(outer, None)
                if registered.name in self._again and not self.services.stopping.is_set():
                    self._again.discard(registered.name)
                    self.run_now(registered.name)

        return run
