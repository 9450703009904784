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

Content, exception-first (bot/digest_blocks.py): what needs the recipient (missed milestones,
missed check-ins, risks that ask for the sponsor's help, pending amendments with Approve and
Reject for those who approve, indicators that moved the wrong way), then progress since the last
digest (milestones met, indicators moved from baseline to latest to target with bar and trend,
activities completed, feedback volume as counts, anonymous entries only once released).

Size. A large portfolio shows the exceptions of its first contracts in full, a line for each
further one, the progress of a few and counts the rest, with a link to App Home, in a few
messages at most (bot/digest_blocks.py). A deactivated recipient gets none; the owners of their
contracts are told once.

Splitting. The digest is built when its delivery (kind `digest`) is claimed. When it needs
more than one message (50 blocks and `MESSAGE_TEXT_BUDGET` characters of block text each:
Slack refuses more text with `msg_blocks_too_long`), the rest is stored with the first one's
`sent` mark, in the same transaction, as a `digest_part` delivery (`<period>#2`) carrying the
remaining messages; each part schedules the next as it is marked sent. So the parts go in order, and
after a crash the next run resumes with the part that had not gone, never rebuilding (so never
doubling or losing) what the first part began. A message Slack still refuses as too long is
cut smaller on each later try, never sent again as it was. Sending goes through the delivery
queue, paced with the check-ins.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import delivery
from bot.amendments import AmendmentState, pending_states
from bot.blocks import MESSAGE_BLOCKS, MESSAGE_TEXT_BUDGET, split_messages
from bot.checkins import (
    answerable_until,
    cached_zones,
    current_period,
    ensure_reachable,
    in_contract,
    local_instant,
    prompt_due_at,
    refresh_zones,
    shift_period,
    tell_owner,
    zone_of,
    zones_of,
)
from bot.delivery import DeliveryKey, DeliveryQueue, Message, Outgoing, Report, queue_of
from bot.periods import period_key
from bot.progress import IndicatorProgress, indicator_progress, progress
from bot.scheduler import JobRun, job
from bot.services import Services
from bot.summary import headline
from storage.db import read_only
from storage.models import (
    ActivityStatus,
    Contract,
    ContractStatus,
    Delivery,
    DeliveryStatus,
    DevelopmentActivity,
    Feedback,
    Milestone,
    MilestoneStatus,
    Risk,
    SuccessIndicator,
)
from storage.queries import ContractBundle, load_bundle

logger = logging.getLogger(__name__)

DIGEST = "digest"
DIGEST_PART = "digest_part"
CADENCES = ("weekly", "biweekly", "monthly")  # most frequent first
FINAL = (DeliveryStatus.sent, DeliveryStatus.undeliverable, DeliveryStatus.cancelled)
MAX_PARTS_PER_RUN = 500
MAX_WEEKS_BACK = 60
TOO_LONG = "msg_blocks_too_long"
MIN_TEXT_BUDGET = 1_000


# --- cadence and periods --------------------------------------------------------------------


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def cadence_of(contract: Contract) -> str:
    return contract.digest_cadence if contract.digest_cadence in CADENCES else "monthly"


@dataclass(frozen=True, slots=True)
class Schedule:
    """When one recipient's digests fall: cadence, weekday (0 = Monday), time, biweekly start."""

    cadence: str
    weekday: int
    time: str
    anchor: date  # the Monday biweekly periods are counted from


def schedule_of(contracts: Sequence[Contract]) -> Schedule:
    """The recipient's schedule: the most frequent cadence wins, from its first contract."""
    governing = min(contracts, key=lambda c: (CADENCES.index(cadence_of(c)), c.id or 0))
    return Schedule(
        cadence=cadence_of(governing),
        weekday=governing.digest_weekday % 7,
        time=governing.digest_time,
        anchor=monday(governing.period_start),
    )


@dataclass(frozen=True, slots=True)
class Period:
    """One digest period: `start` to `end` (exclusive), its key, and the day it is due."""

    key: str
    start: date
    end: date
    due_day: date


def period_of(schedule: Schedule, day: date) -> Period:
    """The digest period `day` falls in."""
    if schedule.cadence == "weekly":
        first = monday(day)
        return Period(
            f"weekly:{period_key(first)}",
            first,
            first + timedelta(days=7),
            first + timedelta(days=schedule.weekday),
        )
    if schedule.cadence == "biweekly":
        weeks = (monday(day) - schedule.anchor).days // 7
        first = monday(day) - timedelta(weeks=weeks % 2)
        return Period(
            f"biweekly:{period_key(first)}",
            first,
            first + timedelta(days=14),
            first + timedelta(days=schedule.weekday),
        )
    first = day.replace(day=1)
    after = (first + timedelta(days=32)).replace(day=1)
    return Period(
        f"monthly:{first:%Y-%m}",
        first,
        after,
        first + timedelta(days=(schedule.weekday - first.weekday()) % 7),
    )


def is_digest_day(cadence: str, day: date, period_start: date) -> bool:
    """Whether the digest of a contract with this cadence and start goes on `day`, a digest
    weekday (the sandbox's clock reads the cadence with this, so it stops where the job sends)."""
    schedule = Schedule(cadence, day.weekday(), "00:00", monday(period_start))
    return period_of(schedule, day).due_day == day


def previous_start(schedule: Schedule, period: Period) -> date:
    """The first day of the period before `period` (what a first digest reaches back to)."""
    return period_of(schedule, period.start - timedelta(days=1)).start


def due_at(schedule: Schedule, period: Period, zone: ZoneInfo) -> datetime:
    return local_instant(period.due_day, schedule.time, zone)


# --- who is due -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueDigest:
    recipient: str
    contract_ids: tuple[int, ...]
    schedule: Schedule
    period: Period
    zone: ZoneInfo
    due_at: datetime

    @property
    def key(self) -> DeliveryKey:
        return DeliveryKey(DIGEST, 0, self.recipient, self.period.key)


def recipients_of(contracts: Sequence[Contract]) -> dict[str, list[Contract]]:
    """Each sponsor and owner with the active contracts they sponsor or own, by id."""
    found: dict[str, list[Contract]] = {}
    for c in sorted(contracts, key=lambda c: c.id or 0):
        for user in dict.fromkeys([c.sponsor_id, c.owner_id]):
            if user:
                found.setdefault(user, []).append(c)
    return found


async def active_contracts(session: AsyncSession) -> list[Contract]:
    rows = await session.exec(
        select(Contract).where(Contract.status == ContractStatus.active).order_by(col(Contract.id))
    )
    return list(rows.all())


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
    async with services.sessions() as session:
        contracts = await active_contracts(session)
    recipients = recipients_of(contracts)
    zones = await recipient_zones(services=services, users=list(recipients))
    default = ZoneInfo(services.settings.default_timezone)
    candidates = []
    for user, theirs in recipients.items():
        if zones[user] is None and client is not None:
            continue
        schedule = schedule_of(theirs)
        zone = zones[user] or default
        period = period_of(schedule, now.astimezone(zone).date())
        when = due_at(schedule, period, zone)
        if force or now >= when:
            ids = tuple(c.id or 0 for c in theirs)
            candidates.append(DueDigest(user, ids, schedule, period, zone, when))
    if not candidates:
        return []
    async with services.sessions() as session:
        done = set(
            (
                await session.exec(
                    select(Delivery.recipient_id, Delivery.period_key).where(
                        Delivery.kind == DIGEST,
                        Delivery.contract_id == 0,
                        col(Delivery.period_key).in_(sorted({d.period.key for d in candidates})),
                        col(Delivery.status).in_(FINAL),
                    )
                )
            ).all()
        )
    return sorted(
        (d for d in candidates if (d.recipient, d.period.key) not in done),
        key=lambda d: (d.due_at, d.recipient),
    )


# --- what a digest holds --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Move:
    """An indicator that got values since the last digest: where it was, where it is."""

    indicator: SuccessIndicator
    before: float | None  # its last value before the window, if any
    latest: float
    overall: IndicatorProgress  # from baseline toward target, for the bar

    @property
    def reference(self) -> float:
        return self.indicator.baseline if self.before is None else self.before

    @property
    def wrong_way(self) -> bool:
        """Moved away from the target since the last digest (or from the baseline)."""
        i = self.indicator
        return progress(i.baseline, i.target, self.latest) < progress(
            i.baseline, i.target, self.reference
        )


@dataclass(frozen=True, slots=True)
class FeedbackVolume:
    """Feedback that reached the leader since the last digest: counts, never content."""

    named: int = 0
    anonymous: int = 0  # released anonymous entries (held ones are not counted)

    @property
    def total(self) -> int:
        return self.named + self.anonymous


@dataclass
class ContractDigest:
    """One contract's part of a digest."""

    bundle: ContractBundle
    headline: str
    missed_milestones: list[Milestone] = field(default_factory=list)
    missed_checkins: list[str] = field(default_factory=list)  # period keys, oldest first
    help_risks: list[Risk] = field(default_factory=list)
    pending: list[AmendmentState] = field(default_factory=list)
    wrong_way: list[Move] = field(default_factory=list)
    met: list[Milestone] = field(default_factory=list)
    moved: list[Move] = field(default_factory=list)
    completed: list[DevelopmentActivity] = field(default_factory=list)
    feedback: FeedbackVolume = field(default_factory=FeedbackVolume)

    @property
    def contract(self) -> Contract:
        return self.bundle.contract

    @property
    def needs_attention(self) -> bool:
        return bool(
            self.missed_milestones
            or self.missed_checkins
            or self.help_risks
            or self.pending
            or self.wrong_way
        )

    @property
    def has_progress(self) -> bool:
        return bool(self.met or self.moved or self.completed or self.feedback.total)


@dataclass
class Digest:
    recipient: str
    schedule: Schedule
    period: Period
    zone: ZoneInfo
    since: datetime
    now: datetime
    contracts: list[ContractDigest]

    @property
    def today(self) -> date:
        return self.now.astimezone(self.zone).date()

    @property
    def since_day(self) -> date:
        return self.since.astimezone(self.zone).date()


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
    risks: Sequence[Risk],
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
    found.help_risks = list(risks)
    found.pending = list(pending)
    for move in moves(bundle, since):
        (found.wrong_way if move.wrong_way else found.moved).append(move)
    found.completed = [
        a for a in bundle.activities if a.status == ActivityStatus.done and a.updated_at >= since
    ]
    found.feedback = feedback
    return found


async def last_sent(*, session: AsyncSession, recipient: str, before: str) -> datetime | None:
    """When the recipient's last digest (of another period) was sent."""
    found = await session.exec(
        select(func.max(col(Delivery.sent_at))).where(
            Delivery.kind == DIGEST,
            Delivery.contract_id == 0,
            Delivery.recipient_id == recipient,
            Delivery.status == DeliveryStatus.sent,
            Delivery.period_key != before,
        )
    )
    value = found.one()
    return value if isinstance(value, datetime) else None


async def load_digest(*, services: Services, due: DueDigest) -> Digest:
    """The digest of `due` as things stand now."""
    now = services.clock.now()
    async with services.sessions() as session:
        await read_only(session)
        since = await last_sent(
            session=session, recipient=due.recipient, before=due.period.key
        ) or local_instant(previous_start(due.schedule, due.period), "00:00", due.zone)
        bundles = []
        for cid in due.contract_ids:
            bundle = await load_bundle(session=session, contract_id=cid)
            if bundle is not None and bundle.contract.status == ContractStatus.active:
                bundles.append(bundle)
        ids = [b.contract.id or 0 for b in bundles]
        pending = {
            b.contract.id or 0: await pending_states(session=session, contract=b.contract)
            for b in bundles
        }
        risks: dict[int, list[Risk]] = {}
        for risk in (
            await session.exec(
                select(Risk)
                .where(
                    col(Risk.contract_id).in_(ids),
                    col(Risk.needs_sponsor_help).is_(True),
                    Risk.status == "open",
                    col(Risk.created_at) >= since,
                )
                .order_by(col(Risk.created_at), col(Risk.id))
            )
        ).all():
            risks.setdefault(risk.contract_id, []).append(risk)
        volume = await feedback_volume(session=session, contract_ids=ids, since=since)
    zones = await zones_of(
        services=services, client=None, contracts=[b.contract for b in bundles], now=now
    )
    contracts = [
        contract_digest(
            b,
            pending=pending[b.contract.id or 0],
            risks=risks.get(b.contract.id or 0, []),
            feedback=volume.get(b.contract.id or 0, FeedbackVolume()),
            since=since,
            now=now,
            zone=zones[b.contract.id or 0],
        )
        for b in bundles
    ]
    contracts.sort(key=lambda d: (d.contract.title.lower(), d.contract.id or 0))
    return Digest(due.recipient, due.schedule, due.period, due.zone, since, now, contracts)


async def feedback_volume(
    *, session: AsyncSession, contract_ids: Sequence[int], since: datetime
) -> dict[int, FeedbackVolume]:
    """Named entries given since `since`, and anonymous ones released since then: counts."""
    if not contract_ids:
        return {}
    rows = await session.exec(
        select(Feedback.contract_id, Feedback.anonymous, func.count(col(Feedback.id)))
        .where(
            col(Feedback.contract_id).in_(list(contract_ids)),
            or_(
                and_(col(Feedback.anonymous).is_(False), col(Feedback.created_at) >= since),
                and_(col(Feedback.anonymous).is_(True), col(Feedback.released_at) >= since),
            ),
        )
        .group_by(col(Feedback.contract_id), col(Feedback.anonymous))
    )
    counts: dict[int, dict[bool, int]] = {}
    for contract_id, anonymous, count in rows.all():
        counts.setdefault(contract_id, {})[bool(anonymous)] = int(count)
    return {
        cid: FeedbackVolume(named=found.get(False, 0), anonymous=found.get(True, 0))
        for cid, found in counts.items()
    }


# --- sending ------------------------------------------------------------------------------


def part_key(recipient: str, period: str, number: int) -> DeliveryKey:
    return DeliveryKey(DIGEST_PART, 0, recipient, f"{period}#{number}")


def _rest_after(
    recipient: str, period: str, number: int, rest: Sequence[dict[str, Any]]
) -> delivery.AfterSent:
    """An `after_sent` that schedules part `number` carrying `rest`, when there is any."""

    async def after_sent(session: AsyncSession, sent: Delivery) -> None:
        if rest:
            await delivery.schedule(
                session=session,
                key=part_key(recipient, period, number),
                due_at=sent.sent_at or sent.claimed_at,
                payload={"parts": list(rest), "number": number},
                expires_at=sent.expires_at,  # the parts are useful as long as the first
            )

    return after_sent


def _undeliverable(what: str) -> delivery.OnUndeliverable:
    async def log(failed: Delivery, error: str) -> None:
        logger.warning("Could not deliver %s to %s: %s", what, failed.recipient_id, error)

    return log


def _tell_owners(
    services: Services, queue: DeliveryQueue, due: DueDigest
) -> delivery.OnUndeliverable:
    """A recipient who can't be reached: each of their contracts' owner is told, once."""

    async def notify(failed: Delivery, error: str) -> None:
        await _undeliverable(f"the digest {due.period.key}")(failed, error)
        async with services.sessions() as session:
            contracts = [await session.get(Contract, cid) for cid in due.contract_ids]
        for contract in contracts:
            if contract is not None:
                await tell_owner(services, queue, contract, "the sponsor's digest")(failed, error)

    return notify


def text_budget(row: Delivery) -> int:
    """The block text a message may carry: less each time Slack refused it as too long,
    so a refused message is never sent again as it was."""
    if row.last_error != TOO_LONG:
        return MESSAGE_TEXT_BUDGET
    return max(MIN_TEXT_BUDGET, MESSAGE_TEXT_BUDGET >> max(1, row.attempts - 1))


def digest_outgoing(
    services: Services, due: DueDigest, queue: DeliveryQueue, *, home: str | None = None
) -> Outgoing:
    """The digest's first message; building it stores the rest for after it is sent."""
    from bot.digest_blocks import build_digest

    rest: list[dict[str, Any]] = []

    async def build(row: Delivery) -> Message | None:
        await ensure_reachable(services=services, client=queue.client, user_id=due.recipient)
        digest = await load_digest(services=services, due=due)
        if not digest.contracts:
            return None
        messages = build_digest(digest, home=home, text_budget=text_budget(row))
        rest[:] = [m.stored() for m in messages[1:]]
        return messages[0]

    async def after_sent(session: AsyncSession, sent: Delivery) -> None:
        await _rest_after(due.recipient, due.period.key, 2, rest)(session, sent)

    return Outgoing(
        key=due.key,
        build=build,
        after_sent=after_sent,
        on_undeliverable=_tell_owners(services, queue, due),
        # Useful until its period ends: then the next digest is due, and its progress
        # reaches back to the last digest sent, so it covers this one's period too.
        expires_at=local_instant(due.period.end, "00:00", due.zone),
    )


def part_outgoing(row: Delivery) -> Outgoing:
    """A stored later part of a digest: sent as stored, then the next one is scheduled.

    A part Slack refused as too long is cut smaller when it is tried again; the pieces
    after the first go ahead of the parts still to come.
    """
    payload = row.payload or {}
    parts = list(payload.get("parts") or [])
    number = int(payload.get("number") or 2)
    period = row.period_key.rsplit("#", 1)[0]
    rest = parts[1:]

    async def build(claimed: Delivery) -> Message | None:
        if not parts:
            return None
        message = Message.restored(parts[0])
        if claimed.last_error == TOO_LONG:
            pieces = split_messages(
                list(message.blocks or []), MESSAGE_BLOCKS, text_budget(claimed)
            )
            rest[:0] = [Message(message.text, piece).stored() for piece in pieces[1:]]
            message = Message(message.text, pieces[0] if pieces else [])
        return message

    return Outgoing(
        key=DeliveryKey(row.kind, row.contract_id, row.recipient_id, row.period_key),
        build=build,
        after_sent=_rest_after(row.recipient_id, period, number + 1, rest),
        on_undeliverable=_undeliverable(f"part {number} of the digest {period}"),
    )


async def send_parts(*, services: Services, queue: DeliveryQueue) -> int:
    """Send every later part of a digest that is due, in order; how many were sent.

    A part whose sender crashed (claimed, lease over) or that failed is taken over as
    `claim` allows.
    """
    sent = 0
    for _ in range(MAX_PARTS_PER_RUN):
        if services.stopping.is_set():
            break
        now = services.clock.now()
        async with services.sessions() as session:
            rows = list(
                (
                    await session.exec(
                        select(Delivery)
                        .where(
                            Delivery.kind == DIGEST_PART,
                            or_(
                                and_(
                                    col(Delivery.status) == DeliveryStatus.scheduled,
                                    col(Delivery.due_at) <= now,
                                ),
                                col(Delivery.status).in_(
                                    [DeliveryStatus.claimed, DeliveryStatus.failed]
                                ),
                            ),
                        )
                        .order_by(col(Delivery.id))
                    )
                ).all()
            )
        progressed = False
        for row in rows:
            if services.stopping.is_set():
                break
            if row.status == DeliveryStatus.scheduled:
                claimed = await delivery.claim_due(
                    sessions=services.sessions, delivery_id=row.id or 0, now=now, owner=queue.owner
                )
            else:
                claimed = await delivery.claim(
                    sessions=services.sessions,
                    key=DeliveryKey(row.kind, row.contract_id, row.recipient_id, row.period_key),
                    now=now,
                    owner=queue.owner,
                )
            if claimed is None:
                continue
            result = await queue.send_claimed(part_outgoing(claimed), claimed)
            if result.outcome == delivery.Outcome.sent:
                sent += 1
                progressed = True
        if not progressed:
            break
    return sent


async def send_digests(
    *,
    services: Services,
    client: AsyncWebClient,
    force: bool = False,
    queue: DeliveryQueue | None = None,
) -> Report:
    """Send every due digest once (and any part still to go), paced; what came of it.

    The digests of recipients whose zone is known go first; then a few recipients Slack
    was not asked about yet (or long ago) are looked up, and theirs go if due.
    """
    now = services.clock.now()
    queue = queue or queue_of(services, client)

    async def send() -> None:
        due = await due_digests(services=services, client=client, now=now, force=force)
        home = await app_home_link(queue.client) if due else None
        for one in due:
            if services.stopping.is_set():
                return
            await queue.deliver(digest_outgoing(services, one, queue, home=home))
            await send_parts(services=services, queue=queue)

    try:
        await send()
        async with services.sessions() as session:
            recipients = list(recipients_of(await active_contracts(session)))
        if (
            queue.stopped is None
            and not services.stopping.is_set()
            and await refresh_zones(
                sessions=services.sessions, client=client, user_ids=recipients, now=now
            )
        ):
            await send()
        await send_parts(services=services, queue=queue)
    finally:
        await queue.close()
    return queue.report


_HOME_LINKS: dict[tuple[str, str | None], str] = {}


async def app_home_link(client: AsyncWebClient) -> str | None:
    """`slack://app?team=…&id=…&tab=home`, which opens the bot's App Home; the team and app
    ids come from `auth.test` and `bots.info` once per process. None if Slack won't say."""
    key = (client.base_url, client.token)
    if key not in _HOME_LINKS:
        try:
            me = await client.auth_test()
            bot = (await client.bots_info(bot=str(me.get("bot_id") or ""))).get("bot") or {}
        except Exception:
            logger.warning("Could not learn the app's id for its App Home link", exc_info=True)
            return None
        team, app = me.get("team_id"), bot.get("app_id")
        if not team or not app:
            return None
        _HOME_LINKS[key] = f"slack://app?team={team}&id={app}&tab=home"
    return _HOME_LINKS[key]


@job("digests", every_seconds=60)
async def digests_job(run: JobRun) -> Report:
    return await send_digests(services=run.services, client=run.client, force=run.force)
