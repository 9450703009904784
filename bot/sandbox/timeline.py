"""The sandbox's clock control: move the bot's clock and run the jobs that are due.

`northstar run` lets APScheduler call every registered job on its interval; the sandbox
instead moves its ManualClock from moment to moment (each check-in, reminder, digest and
morning on the way) and runs every job of `bot.jobs.JOBS` at each, so a week's loop
takes a click. Which contracts are due is still each job's decision; the moments here are
only where to stop and look.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.web.async_client import AsyncWebClient

from bot import delivery
from bot.core.clock import ManualClock
from bot.digest.service import is_digest_day
from bot.jobs import JOBS
from bot.scheduler import JobRun
from bot.services import Services
from storage.queries.contracts import active_contracts

logger = logging.getLogger(__name__)

STEPS = {
    "checkin": "the next check-in",
    "digest": "the next digest",
    "day": "the next day",
}
# Jobs look a little after a moment, so "due at 15:00" is due when they run.
SETTLE = timedelta(minutes=1)
MORNING = 9
MAX_STOPS = 120


@dataclass(frozen=True, slots=True)
class Schedule:
    """When one active contract's check-ins, reminders and digests fall."""

    checkin_weekday: int
    checkin_time: str
    checkin_tz: ZoneInfo
    reminder_hours: int
    digest_cadence: str
    digest_weekday: int
    digest_time: str
    digest_tz: ZoneInfo
    period_start: datetime


@dataclass
class JobOutcome:
    name: str
    runs: int = 0
    errors: int = 0
    last: str = ""


@dataclass
class Advance:
    """What one press of the clock control did."""

    step: str
    before: datetime
    after: datetime
    stops: int
    jobs: list[JobOutcome] = field(default_factory=list)
    sent: int = 0
    note: str = ""


def zone(name: str | None, fallback: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or fallback)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def _hour_minute(text: str) -> tuple[int, int]:
    try:
        hour, minute = (int(part) for part in text.split(":", 1))
    except ValueError:
        return 9, 0
    return hour, minute


def weekly(after: datetime, weekday: int, at: str, tz: ZoneInfo) -> datetime:
    """The first `weekday` at `at` (local time in `tz`) strictly after `after`, in UTC."""
    local = after.astimezone(tz)
    hour, minute = _hour_minute(at)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    candidate += timedelta(days=(weekday - local.weekday()) % 7)
    if candidate <= local:
        candidate += timedelta(days=7)
    return candidate.astimezone(UTC)


def next_digest(schedule: Schedule, after: datetime) -> datetime:
    """The next digest of the contract by the `digests` job's reading of the cadence.

    weekly: every digest weekday; biweekly: every other one from the Monday of the contract's
    first week; monthly: the first digest weekday of a month (`bot.digest.service.is_digest_day`).
    """
    moment = after
    for _ in range(10):
        moment = weekly(moment, schedule.digest_weekday, schedule.digest_time, schedule.digest_tz)
        local = moment.astimezone(schedule.digest_tz)
        if is_digest_day(schedule.digest_cadence, local.date(), schedule.period_start.date()):
            return moment
    return moment


def every(first: datetime, days: int, tz: ZoneInfo) -> Iterator[datetime]:
    """`first`, then the same local time every `days` calendar days in `tz`, in UTC: across a
    daylight-saving change the local hour stays and the UTC hour moves."""
    local = first.astimezone(tz)
    for n in itertools.count():
        yield (local + timedelta(days=n * days)).astimezone(UTC)


def stops_between(
    schedules: Iterable[Schedule], start: datetime, end: datetime, default_tz: ZoneInfo
) -> list[datetime]:
    """Every moment in (start, end] worth running the jobs at, ending with `end`."""
    moments: set[datetime] = set()

    def collect(found: Iterator[datetime], after: timedelta = timedelta(0)) -> None:
        for moment in (m + after for m in found):
            if moment > end or len(moments) >= MAX_STOPS:
                return
            if moment > start:
                moments.add(moment)

    for s in schedules:
        checkin = weekly(start - timedelta(days=7), s.checkin_weekday, s.checkin_time, s.checkin_tz)
        collect(every(checkin, 7, s.checkin_tz), SETTLE)
        # A reminder is due a number of hours after its prompt went out, whatever the zone.
        collect(every(checkin, 7, s.checkin_tz), timedelta(hours=s.reminder_hours) + SETTLE)
        digest = weekly(start, s.digest_weekday, s.digest_time, s.digest_tz)
        collect(every(digest, 7, s.digest_tz), SETTLE)
    local = start.astimezone(default_tz)
    collect(every(local.replace(hour=MORNING, minute=0, second=0, microsecond=0), 1, default_tz))
    moments.add(end)
    return sorted(moments)[-MAX_STOPS:]


async def schedules(services: Services, user_tz: dict[str, str]) -> list[Schedule]:
    """The schedule of every active contract; time zones from the contract or the person."""
    default = services.settings.default_timezone
    async with services.sessions() as session:
        contracts = await active_contracts(session=session)
    return [
        Schedule(
            checkin_weekday=c.checkin_weekday,
            checkin_time=c.checkin_time,
            checkin_tz=zone(c.checkin_timezone or user_tz.get(c.leader_id), default),
            reminder_hours=c.reminder_hours,
            digest_cadence=c.digest_cadence,
            digest_weekday=c.digest_weekday,
            digest_time=c.digest_time,
            digest_tz=zone(user_tz.get(c.sponsor_id), default),
            period_start=datetime.combine(c.period_start, datetime.min.time(), tzinfo=UTC),
        )
        for c in contracts
    ]


def target_of(step: str, now: datetime, found: list[Schedule], default_tz: ZoneInfo) -> datetime:
    if step == "checkin" and found:
        return min(weekly(now, s.checkin_weekday, s.checkin_time, s.checkin_tz) for s in found)
    if step == "digest" and found:
        return min(next_digest(s, now) for s in found)
    return (now.astimezone(default_tz) + timedelta(days=1)).astimezone(UTC)


async def run_due_jobs(
    services: Services, client: AsyncWebClient, outcomes: dict[str, JobOutcome]
) -> None:
    """Run every registered job once at the clock's current time."""
    for registered in list(JOBS.values()):
        outcome = outcomes.setdefault(registered.name, JobOutcome(registered.name))
        outcome.runs += 1
        try:
            result = await registered.run(JobRun(services=services, client=client))
        except Exception as error:
            logger.exception("Job %s failed in the sandbox", registered.name)
            outcome.errors += 1
            outcome.last = f"failed: {type(error).__name__}"
        else:
            if result is not None:
                outcome.last = str(result)[:300]


class _Instant:
    """Pacing time that passes at once: weeks go by in a click, so waiting in real time for
    Slack's per-second pace would only slow the click; the pace's order and books still hold."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@contextmanager
def paced_at_once(services: Services) -> Iterator[None]:
    """While the clock jumps, the jobs' deliveries keep their pace in virtual time."""
    real = delivery.pacer_for(services.settings)
    instant = _Instant()
    delivery.install_pacer(
        services.settings,
        delivery.Pacer(
            per_minute=real.per_minute,
            per_channel=real.per_channel,
            monotonic=instant.monotonic,
            sleep=instant.sleep,
        ),
    )
    try:
        yield
    finally:
        delivery.install_pacer(services.settings, real)


async def advance(
    *,
    step: str,
    services: Services,
    clock: ManualClock,
    client: AsyncWebClient,
    user_tz: dict[str, str],
) -> Advance:
    """Move the clock to `step`'s moment, running the jobs at every stop on the way."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; one of {', '.join(STEPS)}")
    default_tz = zone(services.settings.default_timezone, "UTC")
    before = clock.now()
    found = await schedules(services, user_tz)
    target = target_of(step, before, found, default_tz)
    if step != "day":
        target += SETTLE
    stops = stops_between(found, before, target, default_tz)
    outcomes: dict[str, JobOutcome] = {}
    with paced_at_once(services):
        for stop in stops:
            clock.set(stop)
            await run_due_jobs(services, client, outcomes)
    notes = []
    if not found and step != "day":
        notes.append(f"No active contract has {STEPS[step]}, so the clock moved one day.")
    if not JOBS:
        notes.append(
            "No jobs are registered yet (check-ins, reminders and digests arrive with their "
            "features): the clock moved, nothing ran."
        )
    return Advance(
        step=step,
        before=before,
        after=clock.now(),
        stops=len(stops),
        jobs=list(outcomes.values()),
        note=" ".join(notes),
    )
