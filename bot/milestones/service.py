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

Telling (`bot.milestones.jobs`). Every notice of a decision is a delivery (`bot.delivery`)
keyed by its kind, the contract, the recipient and the decision (`M1:met:2027-03-12`,
`M1:missed2`), so it goes once whatever runs twice; a notice that failed is tried again by
later runs for `NOTICE_WINDOW`. Met: the leader's recognition DM, a note to the sponsor, and
a post in the contract's recognition channel when it has one (a channel the bot cannot post
in is logged and skipped). Missed: the leader's recalibration DM with "Propose a new date or
target" and "Ask my sponsor for support" (handlers/milestones.py), a note to the sponsor,
and from the second miss a DM to each escalation contact. Old news is recorded but not
announced (`worth_telling`): a milestone already over when its contract was imported, or
decided weeks after its due day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import delivery
from bot.core.calendar import local_instant
from bot.delivery import DeliveryKey
from bot.milestones.model import (
    ESCALATE_AT,
    ESCALATION,
    MET,
    MET_NOTE,
    MET_POST,
    MISSED,
    MISSED_NOTE,
    NOTICE_WINDOW,
    SUPPORT,
    Basis,
    Decided,
    threshold_of,
)
from bot.people.service import zones_of
from bot.services import Services
from storage.db import read_only, writing
from storage.models import (
    ActivityStatus,
    Contract,
    DeliveryStatus,
    Milestone,
    MilestoneStatus,
    SuccessIndicator,
)
from storage.queries.contracts import active_contract_ids, active_contracts, audit
from storage.queries.milestones import (
    decide,
    decided_since,
    escalation_contacts,
    milestone_bases,
    pending_milestones,
)


def due_ends_at(milestone: Milestone, zone: ZoneInfo) -> datetime:
    """The instant the milestone's due day ends on the leader's wall clock."""
    return local_instant(milestone.due + timedelta(days=1), "00:00", zone)


def decreasing(indicator: SuccessIndicator) -> bool:
    if indicator.direction in ("increase", "decrease"):
        return indicator.direction == "decrease"
    return indicator.target < indicator.baseline


def reaches(indicator: SuccessIndicator, threshold: float, value: float) -> bool:
    """Whether `value` is at or past `threshold` in the indicator's direction."""
    return value <= threshold if decreasing(indicator) else value >= threshold


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


async def _active(session: AsyncSession, contract_ids: Sequence[int]) -> dict[int, Contract]:
    found = await active_contracts(session=session, contract_ids=contract_ids)
    return {c.id or 0: c for c in found}


async def _bases(
    session: AsyncSession, milestones: Sequence[Milestone], *, since: datetime | None = None
) -> dict[int, Basis]:
    """Each milestone's indicator with its values (from the latest before `since` on, when
    given: no value will be asked as of an earlier instant), or its activity."""
    rows = await milestone_bases(session=session, milestones=milestones, since=since)
    found = {}
    for m in milestones:
        indicator = rows.indicators.get((m.contract_id, m.indicator_key or ""))
        found[m.id or 0] = Basis(
            indicator=indicator,
            values=rows.series.get(indicator.id or 0, []) if indicator is not None else [],
            activity=rows.activities.get((m.contract_id, m.activity_key or "")),
        )
    return found


# Contracts decided at a time: the hourly run over a whole organisation holds this many
# contracts, with their pending milestones and values, at most.
DECIDE_BATCH = 500


async def decide_milestones(
    *,
    services: Services,
    client: AsyncWebClient | None = None,
    contract_ids: Sequence[int] | None = None,
) -> list[int]:
    """Decide every pending milestone of the active contracts (or of `contract_ids`) that can
    be decided now, `DECIDE_BATCH` contracts at a time; the ids of those this call decided."""
    if contract_ids is None:
        async with services.sessions() as session:
            await read_only(session)
            contract_ids = await active_contract_ids(session=session)
    decided: list[int] = []
    for start in range(0, len(contract_ids), DECIDE_BATCH):
        batch = contract_ids[start : start + DECIDE_BATCH]
        decided += await _decide(services=services, client=client, contract_ids=batch)
    return decided


async def _decide(
    *, services: Services, client: AsyncWebClient | None, contract_ids: Sequence[int]
) -> list[int]:
    now = services.clock.now()
    async with services.sessions() as session:
        await read_only(session)
        contracts = await _active(session, contract_ids)
        pending = await pending_milestones(session=session, contract_ids=list(contracts))
        if not pending:
            return []
        # A pending milestone is decided as of now, or of the end of its due day in its
        # leader's zone: never before its due date's midnight less a day in any zone.
        earliest = min(datetime.combine(m.due, time(0), tzinfo=UTC) for m in pending)
        bases = await _bases(session, pending, since=min(now, earliest - timedelta(days=2)))
    zones = await zones_of(
        services=services,
        client=client,
        contracts=[contracts[cid] for cid in sorted({m.contract_id for m in pending})],
        now=now,
    )
    decided: list[int] = []
    async with services.sessions() as session:
        await writing(session)
        for m in pending:
            outcome = decision(m, bases[m.id or 0], now=now, zone=zones[m.contract_id])
            if outcome is None:
                continue
            count = await decide(session=session, milestone=m, outcome=outcome, now=now)
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
    found = await decided_since(session=session, since=since, contract_ids=contract_ids)
    contracts = {contract.id or 0: contract for _, contract in found}
    return await _decided(session, [milestone for milestone, _ in found], contracts)


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
    # each decided milestone's value is asked as of its decision, and only then
    since = min((m.decided_at for m in rows if m.decided_at is not None), default=None)
    bases = await _bases(session, rows, since=since)
    escalation = await escalation_contacts(
        session=session, contract_ids={m.contract_id for m in rows}
    )
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
    not announced. A milestone an amendment moved into the past is news from the moment it was
    moved (`due_set_at`). Days are read in UTC here: a window of a week needs no finer clock."""
    m = decided.milestone
    if m.decided_at is None:
        return False
    ended = datetime.combine(m.due + timedelta(days=1), time(), tzinfo=UTC)
    if m.due_set_at is not None and ended <= m.due_set_at:
        return m.decided_at - m.due_set_at <= NOTICE_WINDOW
    if m.status == MilestoneStatus.missed and ended <= decided.contract.created_at:
        return False
    return m.decided_at - ended <= NOTICE_WINDOW


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


async def support_asked(*, services: Services, decided: Decided, miss: int) -> bool:
    async with services.sessions() as session:
        row = await delivery.find(session=session, key=support_key(decided, miss))
    return row is not None and row.status == DeliveryStatus.sent
