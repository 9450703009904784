"""Weekly check-ins: periods at the leader's local time, what is due, saving, history, the jobs.

Periods. A check-in period is the ISO week (`2027-W10`) in the leader's time zone: the
contract's `checkin_timezone`, else the leader's Slack `tz` (from `users.info`, cached in
`slack_user` and refreshed after `TZ_MAX_AGE`) or, when Slack has none, a fixed zone at
their `tz_offset`, else `DEFAULT_TIMEZONE`. Leaders Slack was not asked about yet are looked
up a few a run, after the prompts already known went out. Its prompt is due at the
contract's weekday and time, local wall-clock time. Local times are turned into instants
with zoneinfo: a time the spring-forward gap skips (02:30) is read with the offset before
the change, so it exists (03:30 summer time), and a time that happens twice in autumn is the
first of the two. The period key, not the instant, decides what was sent, so a DST week
never skips or doubles a prompt.

Late answers. A period can be answered until the end of the Tuesday after its week, on the
leader's wall clock (`answerable_until`, the one rule for it). A prompt missed while the bot
was down (or still unsent when its week ended) is sent once when the bot is back inside that
window, worded for last week; after it, it is not sent, and the modal refuses the period.
A prompt is owed only if it fell due after the contract was created. A late answer's values
are dated within the week they answer.

What the modal asks for. An indicator is asked for when its cadence falls due:
weekly every period; biweekly every second week counted from the contract's first week;
monthly in the first period of a month (its check-in day is the 1st to the 7th);
quarterly in the first period of January, April, July and October. It is also asked for
in any later period of the same cycle while that cycle has no value for it yet, so a
skipped week never loses a monthly value. Activities that are not done and have started
(or have no start date) are shown with their status and progress; milestones due in the
14 days from the check-in day are listed in the prompt.

State lives in the database. The `checkins` job sends each due prompt once through the
delivery queue (kind `checkin_prompt`), which schedules one reminder (`checkin_reminder`,
`reminder_hours` after it; a snooze moves it); the `reminders` job sends due reminders. An
answer or a skip cancels the reminder. A leader whose account is deactivated (or a bot)
gets neither: `users.info` says so when their message is about to go (Slack itself would
accept the DM), and the contract's owner is told once.
"""

from __future__ import annotations

import functools
import io
import logging
import struct
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import delivery
from bot.blocks import escape, truncate
from bot.delivery import DeliveryKey, DeliveryQueue, Message, Outgoing, Report, queue_of
from bot.periods import period_key
from bot.scheduler import JobRun, job
from bot.services import Services
from storage.db import SessionFactory
from storage.models import (
    ActivityStatus,
    CheckIn,
    CheckInDraft,
    Contract,
    ContractStatus,
    Delivery,
    DeliveryStatus,
    DevelopmentActivity,
    Evidence,
    Expectation,
    Measurement,
    Milestone,
    MilestoneStatus,
    Risk,
    SlackUser,
    SuccessIndicator,
)
from storage.queries import audit

logger = logging.getLogger(__name__)

PROMPT = "checkin_prompt"
REMINDER = "checkin_reminder"
SPONSOR_HELP = "sponsor_help"
UNDELIVERABLE_NOTICE = "undeliverable_notice"
SKIP_REASONS = ("leave", "sick", "other")
ANSWERED, SKIPPED = "answered", "skipped"
TZ_MAX_AGE = timedelta(hours=24)
LOOKUPS_PER_RUN = 50
DEACTIVATED, IS_BOT = "user_deactivated", "user_is_bot"  # why a person is not messaged
HISTORY_PERIODS = 8
MILESTONE_DAYS = 14
CHECKIN_SOURCE = "check-in"
PROMPT_BATCH = 50
ANSWER_GRACE_DAYS = 2  # a week can still be answered on the Monday and Tuesday after it


# --- periods ------------------------------------------------------------------------------


def monday_of(period: str) -> date:
    """The Monday that starts an ISO-week period key such as 2027-W10."""
    year, week = period.split("-W")
    return date.fromisocalendar(int(year), int(week), 1)


def shift_period(period: str, weeks: int) -> str:
    return period_key(monday_of(period) + timedelta(weeks=weeks))


def checkin_day(contract: Contract, period: str) -> date:
    return monday_of(period) + timedelta(days=contract.checkin_weekday % 7)


def local_instant(day: date, clock_time: str, zone: ZoneInfo) -> datetime:
    """`day` at `clock_time` on the wall clocks of `zone`, as a UTC instant (see module doc)."""
    hours, minutes = (int(part) for part in clock_time.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=zone).astimezone(UTC)


def prompt_due_at(contract: Contract, period: str, zone: ZoneInfo) -> datetime:
    return local_instant(checkin_day(contract, period), contract.checkin_time, zone)


def period_ends_at(period: str, zone: ZoneInfo) -> datetime:
    """The instant the period's week is over: the next Monday's local midnight."""
    return local_instant(monday_of(period) + timedelta(days=7), "00:00", zone)


def answerable_until(period: str, zone: ZoneInfo) -> datetime:
    """The instant the period can no longer be answered: the end of the Tuesday after its
    week (Wednesday's local midnight), so a prompt missed at the end of a week, or a
    weekend away, still leaves the leader two days to answer for it."""
    return local_instant(monday_of(period) + timedelta(days=7 + ANSWER_GRACE_DAYS), "00:00", zone)


def late_until(period: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    """`answerable_until(period)` if its week is over at `now` but it can still be answered;
    else None (its week is still on, or it has closed)."""
    if period_ends_at(period, zone) <= now < answerable_until(period, zone):
        return answerable_until(period, zone)
    return None


def current_period(now: datetime, zone: ZoneInfo) -> str:
    return period_key(now.astimezone(zone).date())


def in_contract(contract: Contract, period: str) -> bool:
    """Whether the period's check-in day lies within the contract's dates."""
    return contract.period_start <= checkin_day(contract, period) <= contract.period_end


def first_period(contract: Contract) -> str:
    start = contract.period_start
    first = start + timedelta(days=(contract.checkin_weekday % 7 - start.weekday()) % 7)
    return period_key(first)


def period_label(period: str) -> str:
    """`week 10 (8–14 Mar 2027)`."""
    week = int(period.split("-W")[1])
    return f"week {week} ({period_dates(period)} {monday_of(period) + timedelta(days=6):%Y})"


def period_dates(period: str) -> str:
    """`8–14 Mar`, `28 Feb–6 Mar`: the period's Monday to Sunday."""
    monday = monday_of(period)
    sunday = monday + timedelta(days=6)
    left = f"{monday.day}" if monday.month == sunday.month else f"{monday.day} {monday:%b}"
    return f"{left}–{sunday.day} {sunday:%b}"


# --- indicator cadence --------------------------------------------------------------------


def cadence_falls_due(cadence: str, day: date, first_day: date) -> bool:
    """The base rule: is a value asked for in the period whose check-in day is `day`?"""
    if cadence == "biweekly":
        weeks = (day - timedelta(days=day.weekday()) - _monday(first_day)).days // 7
        return weeks % 2 == 0
    if cadence == "monthly":
        return day.day <= 7
    if cadence == "quarterly":
        return day.day <= 7 and day.month in (1, 4, 7, 10)
    return True


def cycle_start(cadence: str, day: date, first_day: date) -> date:
    """The first day of the cadence cycle `day` belongs to."""
    monday = _monday(day)
    if cadence == "biweekly":
        weeks = (monday - _monday(first_day)).days // 7
        return monday - timedelta(weeks=weeks % 2)
    if cadence == "monthly":
        return day.replace(day=1)
    if cadence == "quarterly":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return monday


def indicator_due(cadence: str, day: date, first_day: date, last_measured: date | None) -> bool:
    """Asked for when its cadence falls due, or while its cycle still has no value."""
    if cadence_falls_due(cadence, day, first_day):
        return True
    return last_measured is None or last_measured < cycle_start(cadence, day, first_day)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


# --- time zones ---------------------------------------------------------------------------


def zone_named(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@functools.lru_cache(maxsize=64)
def fixed_offset_zone(seconds: int) -> ZoneInfo:
    """A zone always `seconds` east of UTC, named like `UTC+05:30`, for people whose Slack
    profile has a `tz_offset` but no `tz`. Built as a one-rule TZif file so it is a real
    ZoneInfo, like every other zone here."""
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    abbreviation = f"{sign}{hours:02d}{minutes:02d}".encode() + b"\0"

    def tzif(version: bytes) -> bytes:  # no transitions, one local time type
        counts = struct.pack(">6l", 0, 0, 0, 0, 1, len(abbreviation))
        return (
            b"TZif"
            + version
            + b"\0" * 15
            + counts
            + struct.pack(">lBB", seconds, 0, 0)
            + (abbreviation)
        )

    posix = f"<{sign}{hours:02d}{minutes:02d}>{'-' if seconds >= 0 else '+'}{hours}:{minutes:02d}"
    data = tzif(b"2") + tzif(b"2") + f"\n{posix}\n".encode()
    return ZoneInfo.from_file(io.BytesIO(data), key=f"UTC{sign}{hours:02d}:{minutes:02d}")


def zone_of(person: SlackUser | None) -> ZoneInfo | None:
    """A person's zone as Slack gave it: their `tz`, else a fixed zone at their `tz_offset`."""
    if person is None:
        return None
    named = zone_named(person.tz)
    if named is not None or person.tz_offset is None:
        return named
    return fixed_offset_zone(person.tz_offset)


def unreachable_reason(person: SlackUser | None) -> str | None:
    """Why no message can reach this person (`users.info` said so), or None."""
    if person is None:
        return None
    if person.deleted:
        return DEACTIVATED
    if person.is_bot:
        return IS_BOT
    return None


async def cached_zones(*, session: AsyncSession, user_ids: Iterable[str]) -> dict[str, SlackUser]:
    ids = list(set(user_ids))
    if not ids:
        return {}
    rows = await session.exec(select(SlackUser).where(col(SlackUser.user_id).in_(ids)))
    return {row.user_id: row for row in rows.all()}


async def zone_for(*, session: AsyncSession, contract: Contract, default: str) -> ZoneInfo:
    """The contract's zone, else the leader's cached Slack zone, else the default (no calls)."""
    explicit = zone_named(contract.checkin_timezone)
    if explicit is not None:
        return explicit
    cached = (await cached_zones(session=session, user_ids=[contract.leader_id])).get(
        contract.leader_id
    )
    return zone_of(cached) or ZoneInfo(default)


async def refresh_zones(
    *,
    sessions: SessionFactory,
    client: AsyncWebClient,
    user_ids: Iterable[str],
    now: datetime,
    limit: int = LOOKUPS_PER_RUN,
) -> int:
    """Ask `users.info` about the people not cached yet, then about those cached longer than
    `TZ_MAX_AGE`, at most `limit` of them; how many answers were stored.

    One person at a time, a few per run, never `users.list`: that is Tier 2 (about 20 calls
    a minute) and pages through the whole workspace, so in a large one it would hold every
    prompt behind minutes of paging. Callers send what they already know first. A lookup
    that fails for a passing reason keeps what was cached and is tried on a later run.
    """
    wanted = set(user_ids)
    async with sessions() as session:
        cached = await cached_zones(session=session, user_ids=wanted)
    unknown = sorted(u for u in wanted if u not in cached)
    stale = sorted(
        (u for u in wanted if u in cached and cached[u].fetched_at < now - TZ_MAX_AGE),
        key=lambda u: cached[u].fetched_at,
    )
    found: dict[str, dict[str, Any]] = {}
    for user_id in [*unknown, *stale][:limit]:
        facts = await _lookup(client, user_id)
        if facts is None:
            break  # Slack is busy or away: the rest wait for a later run
        found[user_id] = facts
    if found:
        async with sessions() as session:
            await _store_people(session, found, now)
            await session.commit()
    return len(found)


async def person(
    *, sessions: SessionFactory, client: AsyncWebClient | None, user_id: str, now: datetime
) -> SlackUser | None:
    """What Slack says about `user_id`: the cached answer while fresh, else `users.info` now
    (when a client is given); None if nothing is known."""
    async with sessions() as session:
        cached = await session.get(SlackUser, user_id)
    if client is None or (cached is not None and cached.fetched_at >= now - TZ_MAX_AGE):
        return cached
    facts = await _lookup(client, user_id)
    if facts is None:
        return cached
    async with sessions() as session:
        await _store_people(session, {user_id: facts}, now)
        await session.commit()
        return await session.get(SlackUser, user_id, populate_existing=True)


async def viewer_zone(
    *, services: Services, client: AsyncWebClient | None, user_id: str
) -> ZoneInfo:
    """The zone to show a person times in: their own (`users.info`), else the default."""
    found = await person(
        sessions=services.sessions, client=client, user_id=user_id, now=services.clock.now()
    )
    return zone_of(found) or ZoneInfo(services.settings.default_timezone)


async def ensure_reachable(
    *, services: Services, client: AsyncWebClient | None, user_id: str
) -> None:
    """Raise `delivery.Unreachable` if `user_id` is deactivated or a bot.

    Slack accepts a DM to a deactivated account (`account_inactive` is about the bot's own
    token), so only `users.info` tells: asked lazily, when their message is about to go.
    """
    found = await person(
        sessions=services.sessions, client=client, user_id=user_id, now=services.clock.now()
    )
    reason = unreachable_reason(found)
    if reason is not None:
        raise delivery.Unreachable(reason)


async def _lookup(client: AsyncWebClient, user_id: str) -> dict[str, Any] | None:
    """`users.info` about one person as the columns of `slack_user`; None if Slack did not
    answer this time (rate limit, server or network trouble)."""
    try:
        info = await client.users_info(user=user_id)
    except SlackApiError as error:
        status = error.response.status_code
        if status == 429 or status >= 500 or error.response.get("error") in delivery.TOKEN_ERRORS:
            logger.warning("users.info about %s failed: %s", user_id, error.response.get("error"))
            return None
        # Not found, or a refusal that asking again will not change: the default zone it is.
        return {"tz": None, "tz_offset": None, "deleted": False, "is_bot": False}
    except Exception:
        logger.warning("users.info about %s failed", user_id, exc_info=True)
        return None
    user = info.get("user") or {}
    offset = user.get("tz_offset")
    return {
        "tz": user.get("tz") or None,
        "tz_offset": int(offset) if isinstance(offset, int | float) else None,
        "deleted": bool(user.get("deleted")),
        "is_bot": bool(user.get("is_bot")),
    }


async def _store_people(
    session: AsyncSession, people: dict[str, dict[str, Any]], now: datetime
) -> None:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    for user_id, facts in people.items():
        values = {**facts, "fetched_at": now}
        statement = insert(SlackUser).values(user_id=user_id, **values)
        await session.exec(statement.on_conflict_do_update(index_elements=["user_id"], set_=values))


async def known_zones(
    *, services: Services, contracts: Sequence[Contract]
) -> dict[int, ZoneInfo | None]:
    """Each contract's zone from the database alone: its own, else its leader's cached Slack
    zone, else the default if Slack was asked and knew none; None if Slack was never asked."""
    implicit = [c.leader_id for c in contracts if zone_named(c.checkin_timezone) is None]
    async with services.sessions() as session:
        cached = await cached_zones(session=session, user_ids=implicit)
    default = ZoneInfo(services.settings.default_timezone)
    zones: dict[int, ZoneInfo | None] = {}
    for c in contracts:
        found = cached.get(c.leader_id)
        explicit = zone_named(c.checkin_timezone)
        zones[c.id or 0] = explicit or (None if found is None else zone_of(found) or default)
    return zones


async def zones_of(
    *,
    services: Services,
    client: AsyncWebClient | None,
    contracts: Sequence[Contract],
    now: datetime,
) -> dict[int, ZoneInfo]:
    """Each contract's zone; asks Slack about a few unknown or stale leaders first when a
    client is given; whoever is still unknown gets the default."""
    implicit = [c.leader_id for c in contracts if zone_named(c.checkin_timezone) is None]
    if client is not None and implicit:
        await refresh_zones(sessions=services.sessions, client=client, user_ids=implicit, now=now)
    default = ZoneInfo(services.settings.default_timezone)
    zones = await known_zones(services=services, contracts=contracts)
    return {cid: zone or default for cid, zone in zones.items()}


# --- what one period of one contract holds ------------------------------------------------


@dataclass
class IndicatorAsk:
    indicator: SuccessIndicator
    last: float | None
    answered: Measurement | None = None
    # The latest value from before this check-in: shown beside the input, and what
    # "no change" confirms. None when the indicator has no value yet.
    previous: Measurement | None = None


@dataclass
class Plan:
    """A contract's check-in for one period: what to ask, what was answered, in which zone."""

    contract: Contract
    period: str
    zone: ZoneInfo
    indicators: list[IndicatorAsk]
    activities: list[DevelopmentActivity]
    milestones: list[Milestone]
    expectations: list[Expectation]
    all_indicators: list[SuccessIndicator]
    checkin: CheckIn | None = None
    risks: list[Risk] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    # Set when the period's week is over but it can still be answered: until when.
    open_until: datetime | None = None

    @property
    def contract_id(self) -> int:
        return self.contract.id or 0

    @property
    def answered(self) -> bool:
        return self.checkin is not None and self.checkin.status == ANSWERED

    @property
    def skipped(self) -> bool:
        return self.checkin is not None and self.checkin.status == SKIPPED

    @property
    def day(self) -> date:
        return checkin_day(self.contract, self.period)

    def indicator(self, key: str) -> IndicatorAsk | None:
        return next((i for i in self.indicators if i.indicator.key == key), None)

    def activity(self, key: str) -> DevelopmentActivity | None:
        return next((a for a in self.activities if a.key == key), None)

    def item_keys(self) -> dict[str, set[str]]:
        """The items evidence may be tied to."""
        return {
            "indicator": {i.key for i in self.all_indicators},
            "activity": {a.key for a in self.activities},
            "expectation": {e.key for e in self.expectations},
        }


async def load_plan(
    *, session: AsyncSession, contract: Contract, period: str, zone: ZoneInfo
) -> Plan:
    return (await load_plans(session=session, wanted=[(contract, period, zone)]))[0]


async def load_plans(
    *, session: AsyncSession, wanted: Sequence[tuple[Contract, str, ZoneInfo]]
) -> list[Plan]:
    """The plans of many contracts (each for its period), with one query per table."""
    if not wanted:
        return []
    ids = [c.id or 0 for c, _, _ in wanted]

    async def rows(model: Any, *order: Any) -> dict[int, list[Any]]:
        found: dict[int, list[Any]] = {}
        result = await session.exec(
            select(model).where(col(model.contract_id).in_(ids)).order_by(*order, model.id)
        )
        for row in result.all():
            found.setdefault(row.contract_id, []).append(row)
        return found

    indicators = await rows(SuccessIndicator, col(SuccessIndicator.position))
    activities = await rows(DevelopmentActivity, col(DevelopmentActivity.position))
    expectations = await rows(Expectation, col(Expectation.position))
    milestones = await rows(Milestone, col(Milestone.due))
    checkins = {
        (c.contract_id, c.period_key): c
        for c in (
            await session.exec(
                select(CheckIn).where(
                    col(CheckIn.contract_id).in_(ids),
                    col(CheckIn.period_key).in_({p for _, p, _ in wanted}),
                )
            )
        ).all()
    }
    indicator_ids = [i.id for found in indicators.values() for i in found]
    series: dict[int, list[Measurement]] = {}
    if indicator_ids:
        result = await session.exec(
            select(Measurement)
            .where(col(Measurement.indicator_id).in_(indicator_ids))
            .order_by(col(Measurement.measured_at), col(Measurement.id))
        )
        for m in result.all():
            series.setdefault(m.indicator_id, []).append(m)
    checkin_ids = [c.id for c in checkins.values()]
    risks: dict[int, list[Risk]] = {}
    evidence: dict[int, list[Evidence]] = {}
    if checkin_ids:
        for risk in (
            await session.exec(
                select(Risk).where(col(Risk.checkin_id).in_(checkin_ids)).order_by(col(Risk.id))
            )
        ).all():
            risks.setdefault(risk.checkin_id or 0, []).append(risk)
        for item in (
            await session.exec(
                select(Evidence)
                .where(col(Evidence.checkin_id).in_(checkin_ids))
                .order_by(col(Evidence.id))
            )
        ).all():
            evidence.setdefault(item.checkin_id or 0, []).append(item)

    plans = []
    for contract, period, zone in wanted:
        cid = contract.id or 0
        checkin = checkins.get((cid, period))
        plan = _plan(
            contract,
            period,
            zone,
            indicators.get(cid, []),
            series,
            activities.get(cid, []),
            milestones.get(cid, []),
            expectations.get(cid, []),
            checkin,
        )
        if checkin is not None:
            plan.risks = risks.get(checkin.id or 0, [])
            plan.evidence = evidence.get(checkin.id or 0, [])
        plans.append(plan)
    return plans


def _plan(
    contract: Contract,
    period: str,
    zone: ZoneInfo,
    indicators: list[SuccessIndicator],
    series: dict[int, list[Measurement]],
    activities: list[DevelopmentActivity],
    milestones: list[Milestone],
    expectations: list[Expectation],
    checkin: CheckIn | None,
) -> Plan:
    day = checkin_day(contract, period)
    first_day = checkin_day(contract, first_period(contract))
    asks: list[IndicatorAsk] = []
    for indicator in indicators:
        values = series.get(indicator.id or 0, [])
        mine = next((m for m in values if checkin is not None and m.checkin_id == checkin.id), None)
        others = [m for m in values if m is not mine]
        last_date = others[-1].measured_at.astimezone(zone).date() if others else None
        if mine is not None or indicator_due(indicator.cadence, day, first_day, last_date):
            last = values[-1].value if values else None
            asks.append(IndicatorAsk(indicator, last, mine, others[-1] if others else None))
    return Plan(
        contract=contract,
        period=period,
        zone=zone,
        indicators=asks,
        activities=[
            a
            for a in activities
            if a.status != ActivityStatus.done
            and (a.start is None or a.start <= day + timedelta(days=6))
        ],
        milestones=[
            m
            for m in milestones
            if m.status == MilestoneStatus.pending
            and monday_of(period) <= m.due <= day + timedelta(days=MILESTONE_DAYS)
        ],
        expectations=expectations,
        all_indicators=indicators,
        checkin=checkin,
    )


# --- whose check-in, which period ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotYours:
    """Why there is no check-in for this person now: one sentence for an ephemeral reply."""

    text: str


NO_ACTIVE_CONTRACT = (
    "You don't have an active leadership contract, so there is no check-in for you to fill in."
)


async def active_contract_of(*, session: AsyncSession, leader_id: str) -> Contract | None:
    rows = await session.exec(
        select(Contract)
        .where(Contract.leader_id == leader_id, Contract.status == ContractStatus.active)
        .order_by(col(Contract.updated_at).desc(), col(Contract.id).desc())
    )
    return rows.first()


async def plan_for_leader(
    *, services: Services, leader_id: str, period: str | None = None
) -> Plan | NotYours:
    """The leader's current (or named, still open) check-in, or why there is none."""
    async with services.sessions() as session:
        contract = await active_contract_of(session=session, leader_id=leader_id)
        if contract is None:
            return NotYours(NO_ACTIVE_CONTRACT)
        return await _open_plan(services, session, contract, period)


async def plan_for_contract(
    *, services: Services, contract_id: int, user_id: str, period: str | None
) -> Plan | NotYours:
    """The check-in a button or modal names, if `user_id` is its leader and it is open."""
    async with services.sessions() as session:
        contract = await session.get(Contract, contract_id)
        if contract is None or contract.leader_id != user_id:
            return NotYours("Only the contract's leader can fill in its check-in.")
        if contract.status != ContractStatus.active:
            return NotYours("This contract is no longer active, so its check-ins are closed.")
        return await _open_plan(services, session, contract, period)


async def _open_plan(
    services: Services, session: AsyncSession, contract: Contract, period: str | None
) -> Plan | NotYours:
    zone = await zone_for(
        session=session, contract=contract, default=services.settings.default_timezone
    )
    now = services.clock.now()
    current = current_period(now, zone)
    period = period or current
    late = None if period == current else late_until(period, zone, now)
    if period != current and late is None:
        if monday_of(period) > monday_of(current):
            return NotYours(f"The check-in for {period_label(period)} is not open yet.")
        closed = (answerable_until(period, zone) - timedelta(microseconds=1)).astimezone(zone)
        return NotYours(
            f"The check-in for {period_label(period)} closed at the end of "
            f"{closed:%A %-d %b}; `/checkin` opens this week's."
        )
    if not in_contract(contract, period):
        if late is not None:
            return NotYours(f"Your contract had no check-in in {period_label(period)}.")
        return NotYours(
            f"Your contract's check-ins run from {contract.period_start:%-d %b %Y} "
            f"to {contract.period_end:%-d %b %Y}, so there is none this week."
        )
    plan = await load_plan(session=session, contract=contract, period=period, zone=zone)
    plan.open_until = late
    return plan


# --- answers ------------------------------------------------------------------------------


@dataclass
class EvidenceAnswer:
    item_type: str
    item_key: str
    url: str | None
    note: str


@dataclass
class RiskAnswer:
    text: str
    needs_help: bool


@dataclass
class Answers:
    """What a check-in modal (or its pages together) says; JSON-able for a draft."""

    values: dict[str, float | None] = field(default_factory=dict)
    activities: dict[str, tuple[str, int]] = field(default_factory=dict)
    evidence: list[EvidenceAnswer | None] = field(default_factory=list)
    wins: str = ""
    risks: list[RiskAnswer | None] = field(default_factory=list)
    reflection: str = ""
    confidence: int | None = None
    closing: bool = False  # the page with wins, risks, reflection and confidence was answered
    confirmed: list[str] = field(default_factory=list)  # indicators ticked "no change"

    def merge(self, other: Answers) -> Answers:
        merged = Answers(
            values={**self.values, **other.values},
            activities={**self.activities, **other.activities},
            confirmed=[k for k in self.confirmed if k not in other.values] + other.confirmed,
        )
        closing = other if other.closing else self
        merged.evidence, merged.wins, merged.risks = closing.evidence, closing.wins, closing.risks
        merged.reflection, merged.confidence = closing.reflection, closing.confidence
        merged.closing = self.closing or other.closing
        return merged

    def to_json(self) -> dict[str, Any]:
        return {
            "values": self.values,
            "activities": {k: list(v) for k, v in self.activities.items()},
            "evidence": [None if e is None else vars(e) for e in self.evidence],
            "wins": self.wins,
            "risks": [None if r is None else vars(r) for r in self.risks],
            "reflection": self.reflection,
            "confidence": self.confidence,
            "closing": self.closing,
            "confirmed": self.confirmed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Answers:
        return cls(
            values={k: (None if v is None else float(v)) for k, v in data["values"].items()},
            activities={k: (str(v[0]), int(v[1])) for k, v in data["activities"].items()},
            evidence=[None if e is None else EvidenceAnswer(**e) for e in data["evidence"]],
            wins=data["wins"],
            risks=[None if r is None else RiskAnswer(**r) for r in data["risks"]],
            reflection=data["reflection"],
            confidence=data["confidence"],
            closing=data["closing"],
            confirmed=[str(k) for k in data.get("confirmed") or []],
        )


async def keep_page(
    *,
    sessions: SessionFactory,
    plan: Plan,
    user_id: str,
    page: int,
    answers: Answers,
    now: datetime,
) -> None:
    """Keep an earlier page's answers until the last page is submitted."""
    async with sessions() as session:
        draft = (
            await session.exec(
                select(CheckInDraft).where(
                    CheckInDraft.contract_id == plan.contract_id,
                    CheckInDraft.period_key == plan.period,
                    CheckInDraft.user_id == user_id,
                )
            )
        ).first()
        if draft is None:
            draft = CheckInDraft(
                contract_id=plan.contract_id, period_key=plan.period, user_id=user_id
            )
        pages = dict(draft.answers)
        pages[str(page)] = answers.to_json()
        draft.answers = {k: pages[k] for k in sorted(pages, key=int) if int(k) <= page}
        draft.updated_at = now
        session.add(draft)
        await session.commit()


async def kept_pages(
    *, sessions: SessionFactory, plan: Plan, user_id: str, before: int
) -> Answers | None:
    """The answers of pages 1 .. before-1 merged, or None if any of them is missing."""
    if before <= 1:
        return Answers()
    async with sessions() as session:
        draft = (
            await session.exec(
                select(CheckInDraft).where(
                    CheckInDraft.contract_id == plan.contract_id,
                    CheckInDraft.period_key == plan.period,
                    CheckInDraft.user_id == user_id,
                )
            )
        ).first()
    merged = Answers()
    for page in range(1, before):
        stored = draft.answers.get(str(page)) if draft is not None else None
        if stored is None:
            return None
        merged = merged.merge(Answers.from_json(stored))
    return merged


# --- saving -------------------------------------------------------------------------------


@dataclass
class Saved:
    checkin: CheckIn
    edited: bool
    help_risks: list[Risk]


def _checkin_state(plan: Plan) -> dict[str, Any]:
    c = plan.checkin
    return {
        "status": c.status if c else None,
        "confidence": c.confidence if c else None,
        "wins": c.wins if c else "",
        "reflection": c.reflection if c else "",
        "values": {
            i.indicator.key: i.answered.value for i in plan.indicators if i.answered is not None
        },
        "confirmed": [
            i.indicator.key for i in plan.indicators if i.answered and i.answered.confirmed
        ],
        "risks": [{"text": r.text, "needs_sponsor_help": r.needs_sponsor_help} for r in plan.risks],
        "evidence": [
            {"item": f"{e.item_type}:{e.item_key}", "url": e.url, "note": e.note}
            for e in plan.evidence
        ],
    }


async def save_checkin(
    *, sessions: SessionFactory, plan: Plan, answers: Answers, user_id: str, now: datetime
) -> Saved:
    """Save a check-in with its measurements, activity updates, evidence and risks at once.

    An edit keeps the check-in's row and updates what it recorded in place; its before
    and after go to the audit log.
    """
    for attempt in (1, 2):
        try:
            return await _save(sessions, plan, answers, user_id, now)
        except IntegrityError:
            # Two submissions raced to create the row: the loser saves again as an edit.
            if attempt == 2:
                raise
            async with sessions() as session:
                contract = await session.get(Contract, plan.contract_id)
                assert contract is not None
                plan = await load_plan(
                    session=session, contract=contract, period=plan.period, zone=plan.zone
                )
    raise AssertionError("unreachable")


async def _save(
    sessions: SessionFactory, plan: Plan, answers: Answers, user_id: str, now: datetime
) -> Saved:
    before = _checkin_state(plan)
    edited = plan.answered
    async with sessions() as session:
        checkin = (
            await session.exec(
                select(CheckIn).where(
                    CheckIn.contract_id == plan.contract_id, CheckIn.period_key == plan.period
                )
            )
        ).first() or CheckIn(contract_id=plan.contract_id, period_key=plan.period, created_at=now)
        checkin.status, checkin.skip_reason = ANSWERED, None
        checkin.confidence, checkin.wins = answers.confidence, answers.wins
        checkin.reflection, checkin.submitted_by = answers.reflection, user_id
        checkin.updated_at = now
        session.add(checkin)
        await session.flush()
        recorded = Recorded(session, plan, checkin.id or 0, user_id, now)
        await recorded.values(answers.values, confirmed=set(answers.confirmed))
        changed = await recorded.activities(answers.activities)
        await recorded.evidence(answers.evidence)
        help_risks = await recorded.risks(answers.risks)
        await session.exec(
            delete(CheckInDraft).where(
                col(CheckInDraft.contract_id) == plan.contract_id,
                col(CheckInDraft.period_key) == plan.period,
            )
        )
        await delivery.cancel(session=session, key=reminder_key(plan.contract, plan.period))
        detail: dict[str, Any] = {"period": plan.period, "after": _answers_state(answers)}
        if edited:
            detail["before"] = before
        if changed:
            detail["activities"] = changed
        audit(
            session,
            action="checkin.edited" if edited else "checkin.submitted",
            contract_id=plan.contract_id,
            actor_id=user_id,
            detail=detail,
            at=now,
        )
        await session.commit()
        return Saved(checkin=checkin, edited=edited, help_risks=help_risks)


def _answers_state(answers: Answers) -> dict[str, Any]:
    """What the audit log keeps of a submission (the same shape as `_checkin_state`)."""
    return {
        "status": ANSWERED,
        "confidence": answers.confidence,
        "wins": answers.wins,
        "reflection": answers.reflection,
        "values": {k: v for k, v in answers.values.items() if v is not None},
        "confirmed": [k for k in answers.confirmed if answers.values.get(k) is not None],
        "risks": [
            {"text": r.text, "needs_sponsor_help": r.needs_help}
            for r in answers.risks
            if r is not None
        ],
        "evidence": [
            {"item": f"{e.item_type}:{e.item_key}", "url": e.url, "note": e.note}
            for e in answers.evidence
            if e is not None
        ],
    }


@dataclass
class Recorded:
    """Writes one check-in's answers into its unit of work, updating an edit in place."""

    session: AsyncSession
    plan: Plan
    checkin_id: int
    user_id: str
    now: datetime

    @property
    def measured_at(self) -> datetime:
        """When a value answered now counts as measured: now, or for a late answer the
        period's last moment, so it belongs to the week (and month, quarter) it answers."""
        ends = period_ends_at(self.plan.period, self.plan.zone)
        return min(self.now, ends - timedelta(microseconds=1))

    async def values(
        self, values: dict[str, float | None], *, confirmed: set[str] | None = None
    ) -> None:
        """One measurement per indicator and check-in; an emptied value is removed.

        `confirmed`: the keys whose value is the last one, confirmed unchanged (flagged so)."""
        confirmed = confirmed or set()
        by_key = {i.indicator.key: i for i in self.plan.indicators}
        for key, value in values.items():
            ask = by_key.get(key)
            if ask is None:
                continue
            mine = (
                await self.session.exec(
                    select(Measurement).where(
                        Measurement.checkin_id == self.checkin_id,
                        Measurement.indicator_id == ask.indicator.id,
                    )
                )
            ).first()
            if value is None:
                if mine is not None:
                    await self.session.delete(mine)
            elif mine is None:
                self.session.add(
                    Measurement(
                        indicator_id=ask.indicator.id or 0,
                        value=value,
                        measured_at=self.measured_at,
                        source=CHECKIN_SOURCE,
                        recorded_by=self.user_id,
                        checkin_id=self.checkin_id,
                        created_at=self.now,
                        confirmed=key in confirmed,
                    )
                )
            elif (mine.value, mine.confirmed) != (value, key in confirmed):
                mine.value, mine.confirmed = value, key in confirmed
                self.session.add(mine)

    async def activities(self, answers: dict[str, tuple[str, int]]) -> dict[str, Any]:
        """Each activity's new status and progress; what changed, for the audit log."""
        changed: dict[str, Any] = {}
        for key, (status, progress) in answers.items():
            known = self.plan.activity(key)
            activity = await self.session.get(DevelopmentActivity, known.id) if known else None
            if activity is None or (activity.status, activity.progress) == (status, progress):
                continue
            changed[key] = {"from": [activity.status, activity.progress], "to": [status, progress]}
            activity.status, activity.progress, activity.updated_at = status, progress, self.now
            self.session.add(activity)
        return changed

    async def evidence(self, slots: list[EvidenceAnswer | None]) -> None:
        """Slot i of the modal is the check-in's i-th evidence; an emptied slot removes it."""
        existing = list(
            (
                await self.session.exec(
                    select(Evidence)
                    .where(Evidence.checkin_id == self.checkin_id)
                    .order_by(col(Evidence.id))
                )
            ).all()
        )
        for slot, given in enumerate(slots):
            row = existing[slot] if slot < len(existing) else None
            if given is None:
                if row is not None:
                    await self.session.delete(row)
                continue
            row = row or Evidence(
                contract_id=self.plan.contract_id,
                item_type=given.item_type,
                item_key=given.item_key,
                source="checkin",
                added_by=self.user_id,
                checkin_id=self.checkin_id,
                created_at=self.now,
            )
            row.item_type, row.item_key = given.item_type, given.item_key
            row.url, row.note = given.url, given.note
            self.session.add(row)

    async def risks(self, slots: list[RiskAnswer | None]) -> list[Risk]:
        """Slot i is the check-in's i-th risk; the risks that newly need the sponsor's help."""
        existing = list(
            (
                await self.session.exec(
                    select(Risk).where(Risk.checkin_id == self.checkin_id).order_by(col(Risk.id))
                )
            ).all()
        )
        newly: list[Risk] = []
        for slot, given in enumerate(slots):
            risk = existing[slot] if slot < len(existing) else None
            if given is None:
                if risk is not None:
                    await self.session.delete(risk)
                continue
            asks_now = given.needs_help and (risk is None or not risk.needs_sponsor_help)
            risk = risk or Risk(
                contract_id=self.plan.contract_id,
                checkin_id=self.checkin_id,
                raised_by=self.user_id,
                created_at=self.now,
            )
            risk.text, risk.needs_sponsor_help = given.text, given.needs_help
            self.session.add(risk)
            if asks_now:
                newly.append(risk)
        await self.session.flush()  # the new risks' ids name their sponsor DMs
        return newly


# --- skip and snooze ----------------------------------------------------------------------


async def skip(
    *, sessions: SessionFactory, plan: Plan, user_id: str, reason: str, now: datetime
) -> NotYours | CheckIn:
    """Mark the period skipped (and cancel its reminder); an answered one stays answered."""
    if reason not in SKIP_REASONS:
        shown = escape(truncate(reason, 40))
        return NotYours(f"“{shown}” is not a reason I know: use leave, sick or other.")
    if plan.answered:
        return NotYours(
            f"You already checked in for {period_label(plan.period)}; "
            "use “Edit check-in” to change it."
        )
    async with sessions() as session:
        checkin = (
            await session.exec(
                select(CheckIn).where(
                    CheckIn.contract_id == plan.contract_id, CheckIn.period_key == plan.period
                )
            )
        ).first() or CheckIn(contract_id=plan.contract_id, period_key=plan.period, created_at=now)
        checkin.status, checkin.skip_reason = SKIPPED, reason
        checkin.submitted_by, checkin.updated_at = user_id, now
        session.add(checkin)
        await delivery.cancel(session=session, key=reminder_key(plan.contract, plan.period))
        audit(
            session,
            action="checkin.skipped",
            contract_id=plan.contract_id,
            actor_id=user_id,
            detail={"period": plan.period, "reason": reason},
            at=now,
        )
        await session.commit()
    plan.checkin = checkin
    return checkin


async def snooze(
    *, sessions: SessionFactory, plan: Plan, user_id: str, now: datetime
) -> NotYours | datetime:
    """Move the reminder to this time tomorrow (local wall clock); when it will come."""
    if plan.answered or plan.skipped:
        return NotYours("This week's check-in is already done, so there is nothing to snooze.")
    local = now.astimezone(plan.zone)
    until = local_instant(local.date() + timedelta(days=1), f"{local:%H:%M}", plan.zone)
    if until >= (plan.open_until or period_ends_at(plan.period, plan.zone)):
        which = "Last week's" if plan.open_until else "This week's"
        return NotYours(
            f"{which} check-in closes at midnight, so I can't remind you tomorrow; "
            "answer or skip it today."
        )
    key = reminder_key(plan.contract, plan.period)
    async with sessions() as session:
        await delivery.schedule(session=session, key=key, due_at=until)
        row = await delivery.find(session=session, key=key)
        if row is None or row.status != DeliveryStatus.scheduled:
            await session.rollback()
            return NotYours(
                "I've already reminded you once this week, and I remind only once; "
                "the check-in stays open until Sunday night."
            )
        audit(
            session,
            action="checkin.snoozed",
            contract_id=plan.contract_id,
            actor_id=user_id,
            detail={"period": plan.period, "until": until.isoformat()},
            at=now,
        )
        await session.commit()
    return until


# --- history ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeriodStatus:
    period: str
    status: str  # answered, skipped, missed, open, upcoming
    confidence: int | None = None
    skip_reason: str | None = None


async def history(*, services: Services, leader_id: str) -> list[PeriodStatus] | NotYours:
    """The last `HISTORY_PERIODS` periods of the leader's active contract, newest first."""
    async with services.sessions() as session:
        contract = await active_contract_of(session=session, leader_id=leader_id)
        if contract is None:
            return NotYours(NO_ACTIVE_CONTRACT)
        zone = await zone_for(
            session=session, contract=contract, default=services.settings.default_timezone
        )
        rows = await session.exec(select(CheckIn).where(CheckIn.contract_id == contract.id))
        checkins = {c.period_key: c for c in rows.all()}
    now = services.clock.now()
    current = current_period(now, zone)
    periods: list[PeriodStatus] = []
    period = current
    while len(periods) < HISTORY_PERIODS and monday_of(period) >= _monday(contract.period_start):
        if in_contract(contract, period):
            found = checkins.get(period)
            if found is not None:
                periods.append(
                    PeriodStatus(period, found.status, found.confidence, found.skip_reason)
                )
            elif period != current and now >= answerable_until(period, zone):
                periods.append(PeriodStatus(period, "missed"))
            elif period != current:
                periods.append(PeriodStatus(period, "open"))  # late, still answerable
            else:
                due = now >= prompt_due_at(contract, period, zone)
                periods.append(PeriodStatus(period, "open" if due else "upcoming"))
        period = shift_period(period, -1)
    return periods


# --- deliveries ---------------------------------------------------------------------------


def prompt_key(contract: Contract, period: str) -> DeliveryKey:
    return DeliveryKey(PROMPT, contract.id or 0, contract.leader_id, period)


def reminder_key(contract: Contract, period: str) -> DeliveryKey:
    return DeliveryKey(REMINDER, contract.id or 0, contract.leader_id, period)


async def period_messages(*, session: AsyncSession, plan: Plan) -> list[Delivery]:
    """The prompt and reminder sent to the leader for this period (to update in place)."""
    rows = await session.exec(
        select(Delivery).where(
            col(Delivery.kind).in_([PROMPT, REMINDER]),
            Delivery.contract_id == plan.contract_id,
            Delivery.recipient_id == plan.contract.leader_id,
            Delivery.period_key == plan.period,
            Delivery.status == DeliveryStatus.sent,
        )
    )
    return [d for d in rows.all() if d.slack_channel and d.slack_ts]


def tell_owner(
    services: Services, queue: DeliveryQueue, contract: Contract, what: str
) -> delivery.OnUndeliverable:
    """When a leader can't be reached: tell the contract's owner, else its sponsor, once."""

    async def notify(failed: Delivery, error: str) -> None:
        from bot.checkin_blocks import build_undeliverable_notice

        candidates = [
            u
            for u in dict.fromkeys([contract.owner_id, contract.sponsor_id])
            if u and u != failed.recipient_id
        ]
        for recipient in candidates:
            message = build_undeliverable_notice(contract, failed.recipient_id, what, error)
            result = await queue.deliver(
                Outgoing(
                    key=DeliveryKey(
                        UNDELIVERABLE_NOTICE, contract.id or 0, recipient, failed.recipient_id
                    ),
                    build=delivery.fixed(message),
                    expires_at=services.clock.now() + delivery.NOTICE_USEFUL,
                )
            )
            if result.outcome != delivery.Outcome.undeliverable:
                return

    return notify


@dataclass(frozen=True, slots=True)
class DuePrompt:
    contract: Contract
    period: str
    zone: ZoneInfo
    due_at: datetime


async def due_prompts(
    *, services: Services, client: AsyncWebClient | None, now: datetime, force: bool = False
) -> list[DuePrompt]:
    """Active contracts whose prompt for their current period is due and not yet done, and
    those whose prompt for last week was missed while it can still be answered.

    Zones come from the database only. With a `client`, a leader Slack was never asked
    about is left for `send_prompts` to look up after the known prompts went out; without
    one, the default zone stands in. `force`: due regardless of the time of week (still
    once per period).
    """
    contracts = await _active_contracts(services)
    zones = await known_zones(services=services, contracts=contracts)
    default = ZoneInfo(services.settings.default_timezone)
    candidates: list[DuePrompt] = []
    for contract in contracts:
        zone = zones[contract.id or 0]
        if zone is None and client is not None:
            continue
        zone = zone or default
        current = current_period(now, zone)
        for period in (shift_period(current, -1), current):
            if not in_contract(contract, period):
                continue
            due_at = prompt_due_at(contract, period, zone)
            if period != current and (
                late_until(period, zone, now) is None or due_at < contract.created_at
            ):
                continue  # closed, or never owed: it fell due before the contract existed
            if force or now >= due_at:
                candidates.append(DuePrompt(contract, period, zone, due_at))
    if not candidates:
        return []
    periods = sorted({p.period for p in candidates})
    async with services.sessions() as session:
        done = await session.exec(
            select(Delivery.contract_id, Delivery.recipient_id, Delivery.period_key).where(
                Delivery.kind == PROMPT,
                col(Delivery.period_key).in_(periods),
                col(Delivery.status).in_(
                    [DeliveryStatus.sent, DeliveryStatus.undeliverable, DeliveryStatus.cancelled]
                ),
            )
        )
        delivered = set(done.all())
        answered = await session.exec(
            select(CheckIn.contract_id, CheckIn.period_key).where(
                col(CheckIn.period_key).in_(periods)
            )
        )
        settled = set(answered.all())
    return sorted(
        (
            p
            for p in candidates
            if (p.contract.id, p.contract.leader_id, p.period) not in delivered
            and (p.contract.id, p.period) not in settled
        ),
        key=lambda p: (p.due_at, p.contract.id or 0),
    )


async def _active_contracts(services: Services) -> list[Contract]:
    async with services.sessions() as session:
        rows = await session.exec(
            select(Contract)
            .where(Contract.status == ContractStatus.active)
            .order_by(col(Contract.id))
        )
        return list(rows.all())


def prompt_outgoing(
    services: Services, queue: DeliveryQueue, due: DuePrompt, plan: Plan | None = None
) -> Outgoing:
    """The prompt of `due`; `plan`, if given, was loaded just before (with its batch)."""
    contract, period = due.contract, due.period

    async def build(_: Delivery) -> Message | None:
        from bot.checkin_blocks import build_period_message

        now = services.clock.now()
        if now >= answerable_until(period, due.zone):
            return None  # it can no longer be answered
        await ensure_reachable(services=services, client=queue.client, user_id=contract.leader_id)
        current = plan
        if current is None:
            async with services.sessions() as session:
                fresh = await session.get(Contract, contract.id)
                if fresh is None or fresh.status != ContractStatus.active:
                    return None
                current = await load_plan(
                    session=session, contract=fresh, period=period, zone=due.zone
                )
        if current.skipped:
            return None
        current.open_until = late_until(period, due.zone, now)
        return build_period_message(current)

    async def after_sent(session: AsyncSession, sent: Delivery) -> None:
        if contract.reminder_hours > 0 and sent.sent_at is not None:
            await delivery.schedule(
                session=session,
                key=reminder_key(contract, period),
                due_at=sent.sent_at + timedelta(hours=contract.reminder_hours),
                expires_at=answerable_until(period, due.zone),
            )

    return Outgoing(
        key=prompt_key(contract, period),
        build=build,
        after_sent=after_sent,
        on_undeliverable=tell_owner(services, queue, contract, f"the check-in prompt for {period}"),
        expires_at=answerable_until(period, due.zone),
    )


async def send_prompts(
    *,
    services: Services,
    client: AsyncWebClient,
    force: bool = False,
    queue: DeliveryQueue | None = None,
    batch: int = PROMPT_BATCH,
) -> Report:
    """Send every due check-in prompt once, paced; what came of it.

    The prompts whose zone is known go first; then a few leaders whose Slack zone is not
    known (or is stale) are looked up, and whichever of theirs is due goes too. Prompts are
    claimed and their contents loaded `batch` at a time (each batch is sent within seconds,
    far inside the claim's lease); each is marked sent on its own.
    """
    now = services.clock.now()
    queue = queue or queue_of(services, client)

    async def batches(due: Sequence[DuePrompt]) -> AsyncIterator[list[Outgoing]]:
        start = 0
        while start < len(due) and not services.stopping.is_set():
            # What goes out well within a claim's lease, at the pace and measured call time.
            chunk = due[start : start + queue.batch_size(batch)]
            start += len(chunk)
            async with services.sessions() as session:
                plans = await load_plans(
                    session=session, wanted=[(d.contract, d.period, d.zone) for d in chunk]
                )
            yield [
                prompt_outgoing(services, queue, d, p) for d, p in zip(chunk, plans, strict=True)
            ]

    async def send(due: Sequence[DuePrompt]) -> None:
        await queue.deliver_batches(batches(due))

    try:
        await send(await due_prompts(services=services, client=client, now=now, force=force))
        implicit = [
            c.leader_id
            for c in await _active_contracts(services)
            if zone_named(c.checkin_timezone) is None
        ]
        if (
            queue.stopped is None
            and not services.stopping.is_set()
            and await refresh_zones(
                sessions=services.sessions, client=client, user_ids=implicit, now=now
            )
        ):
            await send(await due_prompts(services=services, client=client, now=now, force=force))
    finally:
        await queue.close()
    return queue.report


async def send_reminders(
    *,
    services: Services,
    client: AsyncWebClient,
    force: bool = False,
    queue: DeliveryQueue | None = None,
) -> Report:
    """Send every reminder whose time has come (`force`: every pending one), once each."""
    now = services.clock.now()
    horizon = now + timedelta(days=8) if force else now
    queue = queue or queue_of(services, client)
    try:
        for row in await delivery.due_scheduled(
            sessions=services.sessions, kind=REMINDER, now=horizon
        ):
            if services.stopping.is_set():
                break
            claimed = await delivery.claim_due(
                sessions=services.sessions, delivery_id=row.id or 0, now=horizon, owner=queue.owner
            )
            if claimed is not None:
                await queue.send_claimed(_reminder_outgoing(services, queue, claimed), claimed)
    finally:
        await queue.close()
    return queue.report


def _reminder_outgoing(services: Services, queue: DeliveryQueue, row: Delivery) -> Outgoing:
    key = DeliveryKey(row.kind, row.contract_id, row.recipient_id, row.period_key)

    async def build(_: Delivery) -> Message | None:
        from bot.checkin_blocks import build_reminder_message

        await ensure_reachable(services=services, client=queue.client, user_id=row.recipient_id)
        async with services.sessions() as session:
            contract = await session.get(Contract, row.contract_id)
            if contract is None or contract.status != ContractStatus.active:
                return None
            zone = await zone_for(
                session=session, contract=contract, default=services.settings.default_timezone
            )
            now = services.clock.now()
            if now >= answerable_until(row.period_key, zone):
                return None  # it can no longer be answered
            plan = await load_plan(
                session=session, contract=contract, period=row.period_key, zone=zone
            )
        if plan.checkin is not None:
            return None
        plan.open_until = late_until(row.period_key, zone, now)
        return build_reminder_message(plan)

    async def undeliverable(failed: Delivery, error: str) -> None:
        async with services.sessions() as session:
            contract = await session.get(Contract, row.contract_id)
        if contract is not None:
            what = f"the check-in reminder for {row.period_key}"
            await tell_owner(services, queue, contract, what)(failed, error)

    return Outgoing(key=key, build=build, on_undeliverable=undeliverable)


@job("checkins", every_seconds=60)
async def checkins_job(run: JobRun) -> Report:
    return await send_prompts(services=run.services, client=run.client, force=run.force)


@job("reminders", every_seconds=60)
async def reminders_job(run: JobRun) -> Report:
    return await send_reminders(services=run.services, client=run.client, force=run.force)


# --- after an answer, a skip or a snooze ---------------------------------------------------


async def reload_plan(*, services: Services, plan: Plan) -> Plan:
    async with services.sessions() as session:
        contract = await session.get(Contract, plan.contract_id)
        assert contract is not None
        fresh = await load_plan(
            session=session, contract=contract, period=plan.period, zone=plan.zone
        )
    fresh.open_until = late_until(plan.period, plan.zone, services.clock.now())
    return fresh


async def show_state(
    *, services: Services, client: AsyncWebClient, plan: Plan, notice: str | None = None
) -> int:
    """Bring the period's prompt and reminder up to date in place; how many were updated.

    An answered period with no message yet (answered from `/checkin` before its prompt)
    gets its message now, as the period's one prompt, so it has an "Edit" button too.
    After an answer (saved and committed) the contract's milestones are evaluated.
    """
    from bot.checkin_blocks import build_period_message, build_submitted

    plan = await reload_plan(services=services, plan=plan)
    queue = queue_of(services, client)
    async with services.sessions() as session:
        sent = await period_messages(session=session, plan=plan)
    updated = 0
    try:
        for row in sent:
            message = build_period_message(plan, notice=notice if row.kind == PROMPT else None)
            if await queue.update(row.slack_channel or "", row.slack_ts or "", message):
                updated += 1
        if plan.answered and not any(row.kind == PROMPT for row in sent):
            await queue.deliver(
                Outgoing(
                    key=prompt_key(plan.contract, plan.period),
                    build=delivery.fixed(build_submitted(plan)),
                    expires_at=answerable_until(plan.period, plan.zone),
                )
            )
    finally:
        await queue.close()
    if plan.answered:  # saved and committed: its values may meet (or settle) a milestone
        from bot.milestones import after_checkin

        await after_checkin(services=services, client=client, contract_id=plan.contract_id)
    return updated


async def ask_sponsor_for_help(
    *, services: Services, client: AsyncWebClient, plan: Plan, risks: Sequence[Risk]
) -> Report:
    """DM the sponsor at once about each risk that newly needs their help (once per risk)."""
    from bot.checkin_blocks import build_sponsor_help

    queue = queue_of(services, client)
    sponsor = plan.contract.sponsor_id
    try:
        for risk in risks:
            await queue.deliver(
                Outgoing(
                    key=DeliveryKey(SPONSOR_HELP, plan.contract_id, sponsor, f"risk:{risk.id}"),
                    build=delivery.fixed(build_sponsor_help(plan, risk.text)),
                    on_undeliverable=tell_owner(
                        services, queue, plan.contract, "a request for sponsor help"
                    ),
                    expires_at=services.clock.now() + delivery.NOTICE_USEFUL,
                )
            )
    finally:
        await queue.close()
    return queue.report
