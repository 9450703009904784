"""The sponsor's digest: one per recipient and period, covering all their contracts.

Who. Every sponsor and every contract owner of an active contract gets one digest per period
covering all the active contracts they sponsor or own (its delivery's `contract_id` is 0).

Cadence. A recipient's contracts may ask for different cadences: the most frequent wins
(weekly, then biweekly, then monthly), so no contract waits longer than it asked; the weekday
and time are those of the first contract (by id) with that cadence, and so is the start its
biweekly periods count from. The periods, and their keys in the delivery table:

- weekly: the ISO week, `weekly:2027-W10`; due on its digest weekday;
- biweekly: two weeks counted from the Monday of that contract's first week,
  `biweekly:2027-W10` (its first week); due on the digest weekday of its first week;
- monthly: the calendar month, `monthly:2027-03`; due on its first digest weekday.

Time. The digest is due at the digest time on the *recipient's* wall clock (their Slack `tz`
or `tz_offset` from `users.info`, cached and refreshed as for check-ins; else
`DEFAULT_TIMEZONE`), and stays
sendable until its period ends: after downtime it goes once the bot is back, once. A period the
bot slept through entirely is not sent late; the next digest covers it, since its "progress"
reaches back to the last digest sent (the first one reaches back one period).

Content, exception-first (bot/digest/blocks.py): what needs the recipient (missed milestones,
missed check-ins, risks that ask for the sponsor's help, pending amendments with Approve and
Reject for those who approve, indicators that moved the wrong way), then progress since the last
digest (milestones met, indicators moved from baseline to latest to target with bar and trend,
activities completed, feedback volume as counts, anonymous entries only once released).

Size. A large portfolio shows the exceptions of its first contracts in full, a line for each
further one, the progress of a few and counts the rest, with a link to App Home, in a few
messages at most (bot/digest/blocks.py). A deactivated recipient gets none; the owners of their
contracts are told once.

Splitting (`bot.digest.jobs`). The digest is built when its delivery (kind `digest`) is
claimed. When it needs more than one message (50 blocks and `MESSAGE_TEXT_BUDGET` characters
of block text each: Slack refuses more text with `msg_blocks_too_long`), the rest is stored
with the first one's `sent` mark, in the same transaction, as a `digest_part` delivery
(`<period>#2`) carrying the remaining messages; each part schedules the next as it is marked
sent. So the parts go in order, and after a crash the next run resumes with the part that
had not gone, never rebuilding (so never doubling or losing) what the first part began. A
message Slack still refuses as too long is cut smaller on each later try, never sent again
as it was. Sending goes through the delivery queue, paced with the check-ins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.amendments.model import AmendmentState
from bot.amendments.service import pending_states_of
from bot.core.calendar import (
    CadencePeriod,
    answerable_until,
    cadence_period,
    current_period,
    in_contract,
    local_instant,
    monday,
    prompt_due_at,
    shift_period,
    zone_of,
)
from bot.core.progress import indicator_progress
from bot.digest.model import (
    CADENCES,
    DIGEST,
    FINAL,
    MAX_WEEKS_BACK,
    ContractDigest,
    Digest,
    DueDigest,
    FeedbackVolume,
    Move,
    Schedule,
    briefed,
)
from bot.people.service import cached_zones, zones_of
from bot.risks.model import Resilience, is_open
from bot.risks.service import figures
from bot.services import Services
from bot.summary.blocks import headline
from bot.summary.reflection import answered, confidence_trend
from storage.db import read_only
from storage.models import (
    ActivityStatus,
    AlignmentReview,
    CheckIn,
    Contract,
    ContractStatus,
    Lesson,
    MilestoneStatus,
    Risk,
)
from storage.queries.answers import nudged_periods
from storage.queries.contracts import (
    ContractBundle,
    active_contract_pages,
    active_contract_people,
    load_bundles,
)
from storage.queries.digest import (
    digests_settled,
    feedback_counts,
    last_digest_sent,
)
from storage.queries.lessons import named_lessons_since
from storage.queries.reviews import reviews_between


def cadence_of(contract: Contract) -> str:
    return contract.digest_cadence if contract.digest_cadence in CADENCES else "monthly"


def _governs(contract: Contract) -> tuple[int, int]:
    """Which of a recipient's contracts sets their schedule: the most frequent cadence,
    then the first contract."""
    return CADENCES.index(cadence_of(contract)), contract.id or 0


def schedule_of(contracts: Sequence[Contract]) -> Schedule:
    """The recipient's schedule: the most frequent cadence wins, from its first contract."""
    governing = min(contracts, key=_governs)
    return Schedule(
        cadence=cadence_of(governing),
        weekday=governing.digest_weekday % 7,
        time=governing.digest_time,
        anchor=monday(governing.period_start),
    )


def period_of(schedule: Schedule, day: date) -> CadencePeriod:
    """The digest period `day` falls in (biweekly counted from the schedule's anchor)."""
    return cadence_period(schedule.cadence, day, weekday=schedule.weekday, anchor=schedule.anchor)


def is_digest_day(cadence: str, day: date, period_start: date) -> bool:
    """Whether the digest of a contract with this cadence and start goes on `day`, a digest
    weekday (the sandbox's clock reads the cadence with this, so it stops where the job sends)."""
    schedule = Schedule(cadence, day.weekday(), "00:00", monday(period_start))
    return period_of(schedule, day).due_day == day


def previous_start(schedule: Schedule, period: CadencePeriod) -> date:
    """The first day of the period before `period` (what a first digest reaches back to)."""
    return period_of(schedule, period.start - timedelta(days=1)).start


def due_at(schedule: Schedule, period: CadencePeriod, zone: ZoneInfo) -> datetime:
    return local_instant(period.due_day, schedule.time, zone)


async def all_recipients(services: Services) -> list[str]:
    """Everyone who gets a digest: each sponsor and owner of an active contract."""
    async with services.sessions() as session:
        await read_only(session)
        found = await active_contract_people(session=session)
    return list(dict.fromkeys(u for _, sponsor, owner in found for u in (sponsor, owner) if u))


async def recipient_zones(
    *, services: Services, users: Sequence[str]
) -> dict[str, ZoneInfo | None]:
    """Each recipient's zone as cached from Slack (its `tz`, else its `tz_offset`), else the
    default; None for someone Slack was never asked about."""
    async with services.sessions() as session:
        cached = await cached_zones(session=session, user_ids=users)
    default = ZoneInfo(services.settings.default_timezone)
    return {u: (zone_of(cached[u]) or default) if u in cached else None for u in users}


async def due_digests(
    *, services: Services, client: AsyncWebClient | None, now: datetime, force: bool = False
) -> list[DueDigest]:
    """Recipients whose digest for their current period is due and not yet done.

    Zones come from the database only: with a `client`, a recipient Slack was never asked
    about waits for `send_digests` to look them up; without one, the default stands in.
    `force`: due regardless of the day and time (still once per period).
    """
    # Read a page of contracts at a time, keeping of each recipient only their contracts'
    # ids and the one contract that sets their schedule.
    governing: dict[str, Contract] = {}
    theirs: dict[str, list[int]] = {}
    async for page in active_contract_pages(sessions=services.sessions):
        for c in page:
            for user in dict.fromkeys([c.sponsor_id, c.owner_id]):
                if user:
                    theirs.setdefault(user, []).append(c.id or 0)
                    held = governing.get(user)
                    governing[user] = c if held is None else min(held, c, key=_governs)
    zones = await recipient_zones(services=services, users=list(theirs))
    default = ZoneInfo(services.settings.default_timezone)
    candidates = []
    for user, ids in theirs.items():
        if zones[user] is None and client is not None:
            continue
        schedule = schedule_of([governing[user]])
        zone = zones[user] or default
        period = period_of(schedule, now.astimezone(zone).date())
        when = due_at(schedule, period, zone)
        if force or now >= when:
            candidates.append(DueDigest(user, tuple(ids), schedule, period, zone, when))
    if not candidates:
        return []
    async with services.sessions() as session:
        done = await digests_settled(
            session=session,
            kind=DIGEST,
            periods=sorted({d.period.key for d in candidates}),
            final=FINAL,
        )
    return sorted(
        (d for d in candidates if (d.recipient, d.period.key) not in done),
        key=lambda d: (d.due_at, d.recipient),
    )


def moves(bundle: ContractBundle, since: datetime) -> list[Move]:
    """Indicators with a value since `since`, each against its last value before it."""
    found = []
    for indicator in bundle.indicators:
        series = bundle.measurements.get(indicator.id or 0, [])
        recent = [m for m in series if m.measured_at >= since]
        if not recent:
            continue
        before = [m for m in series if m.measured_at < since]
        found.append(
            Move(
                indicator=indicator,
                before=before[-1].value if before else None,
                latest=series[-1].value,
                overall=indicator_progress(
                    indicator.baseline, indicator.target, [m.value for m in series]
                ),
            )
        )
    return found


def missed_checkins(
    contract: Contract, answered: set[str], *, zone: ZoneInfo, since: datetime, now: datetime
) -> list[str]:
    """Check-in weeks that closed since `since` with neither an answer nor a skip (a week
    closes once it can no longer be answered, `answerable_until`)."""
    found = []
    period = shift_period(current_period(since, zone), -1)
    for _ in range(MAX_WEEKS_BACK):
        ends = answerable_until(period, zone)
        if ends > now:
            break
        if (
            ends > since
            and in_contract(contract, period)
            and period not in answered
            and prompt_due_at(contract, period, zone) >= contract.created_at
        ):
            found.append(period)
        period = shift_period(period, 1)
    return found


def contract_digest(
    bundle: ContractBundle,
    *,
    pending: Sequence[AmendmentState],
    feedback: FeedbackVolume,
    since: datetime,
    now: datetime,
    zone: ZoneInfo,
) -> ContractDigest:
    """What one contract contributes to a digest; `zone` is its leader's."""
    today = now.astimezone(zone).date()
    found = ContractDigest(bundle=bundle, headline=headline(bundle, today=today))
    for m in sorted(bundle.milestones, key=lambda m: (m.due, m.position)):
        if m.status == MilestoneStatus.missed or (
            m.status == MilestoneStatus.pending and m.due < today
        ):
            found.missed_milestones.append(m)
        elif m.status == MilestoneStatus.met and m.decided_at and m.decided_at >= since:
            found.met.append(m)
    found.missed_checkins = missed_checkins(
        bundle.contract,
        {k.period_key for k in bundle.checkins},
        zone=zone,
        since=since,
        now=now,
    )
    found.open_risks, found.resilience = open_risks_of(bundle, zone, now)
    found.pending = list(pending)
    for move in moves(bundle, since):
        (found.wrong_way if move.wrong_way else found.moved).append(move)
    found.completed = [
        a for a in bundle.activities if a.status == ActivityStatus.done and a.updated_at >= since
    ]
    found.feedback = feedback
    found.checkins, found.trend = checkins_since(bundle, since)
    return found


def checkins_since(bundle: ContractBundle, since: datetime) -> tuple[list[CheckIn], str | None]:
    """The check-ins answered (or edited) since the last digest, oldest first, and the
    contract's confidence trend."""
    fresh = [c for c in answered(bundle.checkins) if c.updated_at >= since]
    return fresh, confidence_trend(bundle.checkins)


# --- open risks and resilience -------------------------------------------------------------


def open_risks_of(
    bundle: ContractBundle, zone: ZoneInfo, now: datetime
) -> tuple[list[Risk], Resilience]:
    """Every risk not yet resolved (shown until it is), and the contract's resilience."""
    return [r for r in bundle.risks if is_open(r)], figures(bundle, zone, until=now)


async def last_sent(*, session: AsyncSession, recipient: str, before: str) -> datetime | None:
    """When the recipient's last digest (of another period) was sent."""
    return await last_digest_sent(session=session, kind=DIGEST, recipient=recipient, before=before)


# Contracts read and weighed at a time: a digest of thousands holds this many whole
# contracts at most, besides those it shows in full (`briefed`).
DIGEST_BATCH = 500


@dataclass
class _Batch:
    """What a digest reads of some of its contracts, in one read-only transaction."""

    bundles: list[ContractBundle]
    pending: dict[int, list[AmendmentState]]
    volume: dict[int, FeedbackVolume]
    reviews: list[AlignmentReview]
    nudged: dict[int, set[str]]
    lessons: dict[int, list[Lesson]]


async def load_digest(*, services: Services, due: DueDigest) -> Digest:
    """The digest of `due` as things stand now: its contracts read `DIGEST_BATCH` at a time,
    each batch weighed and let go but for what the digest shows in full."""
    now = services.clock.now()
    since: datetime | None = None
    contracts: list[ContractDigest] = []
    ids = due.contract_ids
    for start in range(0, max(len(ids), 1), DIGEST_BATCH):
        async with services.sessions() as session:
            await read_only(session)
            if since is None:
                since = await last_sent(
                    session=session, recipient=due.recipient, before=due.period.key
                ) or local_instant(previous_start(due.schedule, due.period), "00:00", due.zone)
            batch = await _read_batch(
                session=session, contract_ids=ids[start : start + DIGEST_BATCH], since=since
            )
        weighed = await _weigh(services, batch, since=since, now=now)
        contracts = briefed(sorted([*contracts, *weighed], key=_in_order))
    assert since is not None
    return Digest(due.recipient, due.schedule, due.period, due.zone, since, now, contracts)


def _in_order(item: ContractDigest) -> tuple[str, int]:
    return (item.contract.title.lower(), item.contract.id or 0)


async def _read_batch(
    *, session: AsyncSession, contract_ids: Sequence[int], since: datetime
) -> _Batch:
    bundles = [
        b
        for b in await load_bundles(session=session, contracts=contract_ids)
        if b.contract.status == ContractStatus.active
    ]
    ids = [b.contract.id or 0 for b in bundles]
    return _Batch(
        bundles=bundles,
        pending=await pending_states_of(session=session, contracts=[b.contract for b in bundles]),
        volume=await feedback_volume(session=session, contract_ids=ids, since=since),
        reviews=await reviews_between(session=session, contract_ids=ids, since=since),
        nudged=await nudged_periods(session=session, contract_ids=ids),
        lessons=await named_lessons_since(session=session, contract_ids=ids, since=since),
    )


async def _weigh(
    services: Services, batch: _Batch, *, since: datetime, now: datetime
) -> list[ContractDigest]:
    zones = await zones_of(
        services=services, client=None, contracts=[b.contract for b in batch.bundles], now=now
    )
    contracts = []
    for b in batch.bundles:
        cid = b.contract.id or 0
        item = contract_digest(
            b,
            pending=batch.pending[cid],
            feedback=batch.volume.get(cid, FeedbackVolume()),
            since=since,
            now=now,
            zone=zones[cid],
        )
        item.reviews = [r for r in batch.reviews if r.contract_id == cid]
        item.nudged = batch.nudged.get(cid, set())
        item.lessons = batch.lessons.get(cid, [])
        contracts.append(item)
    return contracts


async def feedback_volume(
    *, session: AsyncSession, contract_ids: Sequence[int], since: datetime
) -> dict[int, FeedbackVolume]:
    """Named entries given since `since`, and anonymous ones released since then: counts."""
    if not contract_ids:
        return {}
    counts = await feedback_counts(session=session, contract_ids=contract_ids, since=since)
    return {
        cid: FeedbackVolume(named=found.get(False, 0), anonymous=found.get(True, 0))
        for cid, found in counts.items()
    }
