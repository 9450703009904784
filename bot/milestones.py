"""Milestones: decided met or missed from what the contract records, and everyone told once.

Deciding. A pending milestone is *met* when its indicator's latest value reaches the threshold
in the indicator's direction (a `decrease` indicator at or below it), or when its activity is
done, by the end of its due day on the leader's wall clock (the check-in zone: the contract's,
else the leader's Slack zone, else `DEFAULT_TIMEZONE`). Once that day has ended without it, the
milestone is *missed*. Only values recorded (and an activity done) before that end count, so a
job that runs late decides as an on-time one would have.

Evaluation runs after a check-in saves values or activity changes (`after_checkin`, called once
the check-in is committed) and hourly from the `milestones` job, which also finds the misses.
A decision is a conditional UPDATE of a row that is still pending, so the job, a check-in and a
second replica racing decide a milestone once. `missed_count` counts misses across
recalibrations: an amendment that moves a missed milestone's date makes it pending again, and
its next miss is the second, which the escalation contacts hear about.

Telling. Every notice of a decision is a delivery (bot/delivery.py) keyed by its kind, the
contract, the recipient and the decision (`M1:met:2027-03-12`, `M1:missed2`), so it goes once
whatever runs twice; a notice that failed is tried again by later runs for `NOTICE_WINDOW`.
Met: the leader's recognition DM, a note to the sponsor, and a post in the contract's
recognition channel when it has one (a channel the bot cannot post in is logged and skipped).
Missed: the leader's recalibration DM with "Propose a new date or target" and "Ask my sponsor
for support" (handlers/milestones.py), a note to the sponsor, and from the second miss a DM to
each escalation contact. Old news is recorded but not announced (`worth_telling`): a milestone
already over when its contract was imported, or decided weeks after its due day.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import delivery
from bot.checkins import local_instant, zones_of
from bot.delivery import DeliveryKey, DeliveryQueue, Message, Outgoing, Report, queue_of
from bot.scheduler import JobRun, job
from bot.services import Services
from storage.models import (
    ActivityStatus,
    Contract,
    ContractPerson,
    ContractStatus,
    Delivery,
    DeliveryStatus,
    DevelopmentActivity,
    Measurement,
    Milestone,
    MilestoneStatus,
    Role,
    SuccessIndicator,
)
from storage.queries import audit

logger = logging.getLogger(__name__)

MET = "milestone_met"  # the leader's recognition DM
MET_NOTE = "milestone_met_note"  # the sponsor's note
MET_POST = "milestone_met_post"  # the recognition channel's post (recipient: the channel)
MISSED = "milestone_missed"  # the leader's recalibration DM
MISSED_NOTE = "milestone_missed_note"  # the sponsor's note
ESCALATION = "milestone_escalation"  # each escalation contact, from the second miss on
SUPPORT = "milestone_support"  # the leader asked the sponsor for support, once per miss
NOTICE_KINDS = (MET, MET_NOTE, MET_POST, MISSED, MISSED_NOTE, ESCALATION)
NOTICE_WINDOW = timedelta(days=7)
ESCALATE_AT = 2
FINAL = (DeliveryStatus.sent, DeliveryStatus.undeliverable, DeliveryStatus.cancelled)


# --- deciding -------------------------------------------------------------------------------


def due_ends_at(milestone: Milestone, zone: ZoneInfo) -> datetime:
    """The instant the milestone's due day ends on the leader's wall clock."""
    return local_instant(milestone.due + timedelta(days=1), "00:00", zone)


def threshold_of(milestone: Milestone, indicator: SuccessIndicator) -> float:
    return milestone.threshold if milestone.threshold is not None else indicator.target


def decreasing(indicator: SuccessIndicator) -> bool:
    if indicator.direction in ("increase", "decrease"):
        return indicator.direction == "decrease"
    return indicator.target < indicator.baseline


def reaches(indicator: SuccessIndicator, threshold: float, value: float) -> bool:
    """Whether `value` is at or past `threshold` in the indicator's direction."""
    return value <= threshold if decreasing(indicator) else value >= threshold


@dataclass(frozen=True, slots=True)
class Basis:
    """What one milestone is decided on: its indicator and values, or its activity."""

    indicator: SuccessIndicator | None = None
    values: Sequence[Measurement] = ()
    activity: DevelopmentActivity | None = None

    def latest(self, until: datetime) -> float | None:
        """The latest value measured at or before `until`."""
        kept = [m for m in self.values if m.measured_at <= until]
        return kept[-1].value if kept else None


def is_reached(milestone: Milestone, basis: Basis, until: datetime) -> bool:
    """Met as of `until`: the indicator's latest value reaches the threshold, or it's done."""
    if milestone.indicator_key and basis.indicator is not None:
        value = basis.latest(until)
        if value is not None and reaches(
            basis.indicator, threshold_of(milestone, basis.indicator), value
        ):
            return True
    activity = basis.activity
    return bool(
        milestone.activity_key
        and activity is not None
        and activity.status == ActivityStatus.done
        and activity.updated_at <= until
    )


def decision(
    milestone: Milestone, basis: Basis, *, now: datetime, zone: ZoneInfo
) -> MilestoneStatus | None:
    """`met`, `missed`, or None while the milestone stays pending."""
    if milestone.status != MilestoneStatus.pending:
        return None
    deadline = due_ends_at(milestone, zone)
    if is_reached(milestone, basis, min(now, deadline)):
        return MilestoneStatus.met
    return MilestoneStatus.missed if now >= deadline else None


async def _active(session: AsyncSession, contract_ids: Sequence[int] | None) -> dict[int, Contract]:
    query = select(Contract).where(Contract.status == ContractStatus.active)
    if contract_ids is not None:
        query = query.where(col(Contract.id).in_(list(contract_ids)))
    return {c.id or 0: c for c in (await session.exec(query.order_by(col(Contract.id)))).all()}


async def _bases(session: AsyncSession, milestones: Sequence[Milestone]) -> dict[int, Basis]:
    """Each milestone's indicator with its values, or its activity, in three queries."""
    ids = sorted({m.contract_id for m in milestones})
    indicators = {
        (i.contract_id, i.key): i
        for i in (
            await session.exec(
                select(SuccessIndicator).where(col(SuccessIndicator.contract_id).in_(ids))
            )
        ).all()
    }
    activities = {
        (a.contract_id, a.key): a
        for a in (
            await session.exec(
                select(DevelopmentActivity).where(col(DevelopmentActivity.contract_id).in_(ids))
            )
        ).all()
    }
    wanted = {
        indicators[(m.contract_id, m.indicator_key)].id
        for m in milestones
        if m.indicator_key and (m.contract_id, m.indicator_key) in indicators
    }
    series: dict[int, list[Measurement]] = {}
    if wanted:
        for value in (
            await session.exec(
                select(Measurement)
                .where(col(Measurement.indicator_id).in_(wanted))
                .order_by(col(Measurement.measured_at), col(Measurement.id))
            )
        ).all():
            series.setdefault(value.indicator_id, []).append(value)
    found = {}
    for m in milestones:
        indicator = indicators.get((m.contract_id, m.indicator_key or ""))
        found[m.id or 0] = Basis(
            indicator=indicator,
            values=series.get(indicator.id or 0, []) if indicator is not None else [],
            activity=activities.get((m.contract_id, m.activity_key or "")),
        )
    return found


async def decide_milestones(
    *,
    services: Services,
    client: AsyncWebClient | None = None,
    contract_ids: Sequence[int] | None = None,
) -> list[int]:
    """Decide every pending milestone of the active contracts (or of `contract_ids`) that can
    be decided now; the ids of those this call decided."""
    now = services.clock.now()
    async with services.sessions() as session:
        contracts = await _active(session, contract_ids)
        pending = list(
            (
                await session.exec(
                    select(Milestone)
                    .where(
                        col(Milestone.contract_id).in_(list(contracts)),
                        Milestone.status == MilestoneStatus.pending,
                    )
                    .order_by(col(Milestone.contract_id), col(Milestone.due), col(Milestone.id))
                )
            ).all()
        )
        if not pending:
            return []
        bases = await _bases(session, pending)
    zones = await zones_of(
        services=services,
        client=client,
        contracts=[contracts[cid] for cid in sorted({m.contract_id for m in pending})],
        now=now,
    )
    decided: list[int] = []
    async with services.sessions() as session:
        for m in pending:
            outcome = decision(m, bases[m.id or 0], now=now, zone=zones[m.contract_id])
            if outcome is None:
                continue
            missed = outcome == MilestoneStatus.missed
            same_threshold = (
                col(Milestone.threshold).is_(None)
                if m.threshold is None
                else col(Milestone.threshold) == m.threshold
            )
            changed = await session.exec(
                update(Milestone)
                .where(
                    col(Milestone.id) == m.id,
                    col(Milestone.status) == MilestoneStatus.pending,
                    # not recalibrated by an amendment since it was read
                    col(Milestone.due) == m.due,
                    same_threshold,
                )
                .values(
                    status=outcome,
                    decided_at=now,
                    missed_count=col(Milestone.missed_count) + (1 if missed else 0),
                )
                .returning(col(Milestone.missed_count))
            )
            count = changed.scalar_one_or_none()
            if count is None:
                continue  # decided, or recalibrated, by someone else meanwhile
            until = min(now, due_ends_at(m, zones[m.contract_id]))
            value = bases[m.id or 0].latest(until)
            audit(
                session,
                action=f"milestone.{outcome}",
                contract_id=m.contract_id,
                actor_id=None,
                detail={
                    "milestone": m.key,
                    "due": m.due.isoformat(),
                    "value": value,
                    "missed_count": count,
                },
                at=now,
            )
            decided.append(m.id or 0)
        await session.commit()
    return decided


# --- telling --------------------------------------------------------------------------------


def decision_period(milestone: Milestone) -> str:
    """What names a decision in its deliveries: `M1:met:2027-03-12`, `M1:missed2`."""
    if milestone.status == MilestoneStatus.met:
        decided = milestone.decided_at.date() if milestone.decided_at else date.min
        return f"{milestone.key}:met:{decided.isoformat()}"
    return f"{milestone.key}:missed{milestone.missed_count}"


@dataclass
class Decided:
    """A decided milestone with what its notices show."""

    contract: Contract
    milestone: Milestone
    indicator: SuccessIndicator | None
    value: float | None
    activity: DevelopmentActivity | None
    escalation: list[str]

    @property
    def period(self) -> str:
        return decision_period(self.milestone)

    @property
    def met(self) -> bool:
        return self.milestone.status == MilestoneStatus.met


def notices_of(decided: Decided) -> list[tuple[str, str, str | None]]:
    """(kind, recipient, channel) of every notice a decision calls for."""
    c = decided.contract
    if decided.met:
        found: list[tuple[str, str, str | None]] = [
            (MET, c.leader_id, None),
            (MET_NOTE, c.sponsor_id, None),
        ]
        if c.recognition_channel:
            found.append((MET_POST, c.recognition_channel, c.recognition_channel))
    else:
        found = [(MISSED, c.leader_id, None), (MISSED_NOTE, c.sponsor_id, None)]
        if decided.milestone.missed_count >= ESCALATE_AT:
            found += [(ESCALATION, user, None) for user in decided.escalation]
    seen: set[tuple[str, str]] = set()
    unique = []
    for kind, recipient, channel in found:
        if recipient and (kind, recipient) not in seen:
            seen.add((kind, recipient))
            unique.append((kind, recipient, channel))
    return unique


async def load_decided(
    *, session: AsyncSession, since: datetime, contract_ids: Sequence[int] | None = None
) -> list[Decided]:
    """Milestones of active contracts decided since `since`, with what their notices show."""
    contracts = await _active(session, contract_ids)
    rows = list(
        (
            await session.exec(
                select(Milestone)
                .where(
                    col(Milestone.contract_id).in_(list(contracts)),
                    col(Milestone.status).in_([MilestoneStatus.met, MilestoneStatus.missed]),
                    col(Milestone.decided_at) >= since,
                )
                .order_by(col(Milestone.decided_at), col(Milestone.id))
            )
        ).all()
    )
    return await _decided(session, rows, contracts)


async def decided_one(*, session: AsyncSession, milestone_id: int) -> Decided | None:
    """One milestone as its notices show it, whatever its contract's status."""
    milestone = await session.get(Milestone, milestone_id)
    contract = await session.get(Contract, milestone.contract_id) if milestone else None
    if milestone is None or contract is None:
        return None
    found = await _decided(session, [milestone], {contract.id or 0: contract})
    return found[0]


async def _decided(
    session: AsyncSession, rows: Sequence[Milestone], contracts: dict[int, Contract]
) -> list[Decided]:
    if not rows:
        return []
    bases = await _bases(session, rows)
    people = (
        await session.exec(
            select(ContractPerson)
            .where(
                col(ContractPerson.contract_id).in_(sorted({m.contract_id for m in rows})),
                ContractPerson.role == Role.escalation,
            )
            .order_by(col(ContractPerson.position), col(ContractPerson.id))
        )
    ).all()
    escalation: dict[int, list[str]] = {}
    for person in people:
        escalation.setdefault(person.contract_id, []).append(person.user_id)
    found = []
    for m in rows:
        basis = bases[m.id or 0]
        found.append(
            Decided(
                contract=contracts[m.contract_id],
                milestone=m,
                indicator=basis.indicator,
                value=basis.latest(m.decided_at) if m.decided_at else None,
                activity=basis.activity,
                escalation=escalation.get(m.contract_id, []),
            )
        )
    return found


def worth_telling(decided: Decided) -> bool:
    """Whether a decision is news. A milestone whose due day was over before its contract came
    to North Star (an import in mid-year), or one decided more than `NOTICE_WINDOW` after its
    due day (a bot that was down for weeks), is recorded, shown in summaries and digests, but
    not announced. Days are read in UTC here: a window of a week needs no finer clock."""
    m = decided.milestone
    if m.decided_at is None:
        return False
    ended = datetime.combine(m.due + timedelta(days=1), time(), tzinfo=UTC)
    if m.status == MilestoneStatus.missed and ended <= decided.contract.created_at:
        return False
    return m.decided_at - ended <= NOTICE_WINDOW


def _still(services: Services, decided: Decided, message: Message) -> delivery.Build:
    """The notice, unless the decision it tells of has been undone (a recalibration) since."""
    expected = (decided.milestone.status, decided.milestone.missed_count)

    async def build(_: Delivery) -> Message | None:
        async with services.sessions() as session:
            now = await session.get(Milestone, decided.milestone.id)
        if now is None or (now.status, now.missed_count) != expected:
            return None
        return message

    return build


def _logged(what: str) -> delivery.OnUndeliverable:
    async def log(failed: Delivery, error: str) -> None:
        logger.warning("Could not deliver %s to %s: %s", what, failed.recipient_id, error)

    return log


def outgoing(services: Services, decided: Decided, kind: str, recipient: str) -> Outgoing:
    """One notice of a decision as a delivery."""
    from bot.milestone_blocks import build_notice

    channel = decided.contract.recognition_channel if kind == MET_POST else None
    return Outgoing(
        key=DeliveryKey(kind, decided.contract.id or 0, recipient, decided.period),
        build=_still(services, decided, build_notice(kind, decided, recipient=recipient)),
        channel=channel,
        on_undeliverable=_logged(
            f"the {kind.replace('_', ' ')} notice of {decided.milestone.key} "
            f"(contract {decided.contract.id})"
        ),
        # As long as a decision is announced at all (`worth_telling`).
        expires_at=(decided.milestone.decided_at or services.clock.now()) + NOTICE_WINDOW,
    )


async def notify(
    *,
    services: Services,
    client: AsyncWebClient,
    contract_ids: Sequence[int] | None = None,
    queue: DeliveryQueue | None = None,
) -> Report:
    """Send every notice of the recent decisions that has not gone yet, once each."""
    now = services.clock.now()
    own = queue is None
    queue = queue or queue_of(services, client)
    try:
        async with services.sessions() as session:
            decided = [
                d
                for d in await load_decided(
                    session=session, since=now - NOTICE_WINDOW, contract_ids=contract_ids
                )
                if worth_telling(d)
            ]
            if not decided:
                return queue.report
            done = set(
                (
                    await session.exec(
                        select(
                            Delivery.kind,
                            Delivery.contract_id,
                            Delivery.recipient_id,
                            Delivery.period_key,
                        ).where(
                            col(Delivery.kind).in_(NOTICE_KINDS),
                            col(Delivery.contract_id).in_(
                                sorted({d.contract.id or 0 for d in decided})
                            ),
                            col(Delivery.status).in_(FINAL),
                        )
                    )
                ).all()
            )
        for item in decided:
            for kind, recipient, _ in notices_of(item):
                if services.stopping.is_set():
                    return queue.report
                if (kind, item.contract.id, recipient, item.period) in done:
                    continue
                await queue.deliver(outgoing(services, item, kind, recipient))
    finally:
        if own:
            await queue.close()
    return queue.report


async def evaluate(
    *,
    services: Services,
    client: AsyncWebClient,
    contract_ids: Sequence[int] | None = None,
    refresh_zones: bool = False,
) -> Report:
    """Decide what can be decided, then tell everyone concerned what has not been told."""
    await decide_milestones(
        services=services, client=client if refresh_zones else None, contract_ids=contract_ids
    )
    return await notify(services=services, client=client, contract_ids=contract_ids)


async def after_checkin(*, services: Services, client: AsyncWebClient, contract_id: int) -> None:
    """A check-in saved values or activity changes: evaluate its contract's milestones.

    Never fails the check-in: a problem is logged, and the hourly job decides it anyway.
    """
    try:
        await evaluate(services=services, client=client, contract_ids=[contract_id])
    except Exception:
        logger.exception("Evaluating the milestones of contract %s failed", contract_id)


@job("milestones", every_seconds=3600)
async def milestones_job(run: JobRun) -> Report:
    """Hourly, so a milestone whose due day ended in any zone is decided within the hour."""
    return await evaluate(services=run.services, client=run.client, refresh_zones=True)


# --- support from the sponsor ---------------------------------------------------------------


def miss_period(milestone: Milestone, miss: int) -> str:
    return f"{milestone.key}:missed{miss}"


def support_key(decided: Decided, miss: int) -> DeliveryKey:
    """The sponsor's support request for one miss: asked for once."""
    c = decided.contract
    return DeliveryKey(SUPPORT, c.id or 0, c.sponsor_id, miss_period(decided.milestone, miss))


def missed_key(decided: Decided, miss: int) -> DeliveryKey:
    """The leader's recalibration DM for one miss (updated in place once support is asked)."""
    c = decided.contract
    return DeliveryKey(MISSED, c.id or 0, c.leader_id, miss_period(decided.milestone, miss))


async def ask_sponsor(
    *, services: Services, client: AsyncWebClient, decided: Decided, miss: int, user: str
) -> delivery.Result:
    """DM the sponsor the leader's request for support with a missed milestone, once."""
    from bot.milestone_blocks import build_recalibration, build_support_request

    queue = queue_of(services, client)
    try:
        result = await queue.deliver(
            Outgoing(
                key=support_key(decided, miss),
                build=delivery.fixed(build_support_request(decided)),
                on_undeliverable=_logged(f"the support request on {decided.milestone.key}"),
                expires_at=services.clock.now() + delivery.NOTICE_USEFUL,
            )
        )
        if result.outcome == delivery.Outcome.sent:
            async with services.sessions() as session:
                audit(
                    session,
                    action="milestone.support_requested",
                    contract_id=decided.contract.id,
                    actor_id=user,
                    detail={"milestone": decided.milestone.key, "missed_count": miss},
                    at=services.clock.now(),
                )
                await session.commit()
        async with services.sessions() as session:
            shown = await delivery.find(session=session, key=missed_key(decided, miss))
        if shown is not None and shown.slack_channel and shown.slack_ts:
            asked = await support_asked(services=services, decided=decided, miss=miss)
            await queue.update(
                shown.slack_channel,
                shown.slack_ts,
                build_recalibration(decided, asked=asked),
            )
    finally:
        await queue.close()
    return result


async def support_asked(*, services: Services, decided: Decided, miss: int) -> bool:
    async with services.sessions() as session:
        row = await delivery.find(session=session, key=support_key(decided, miss))
    return row is not None and row.status == DeliveryStatus.sent
