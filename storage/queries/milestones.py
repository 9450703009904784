"""Data access for milestones: what they are decided on, deciding one once, who hears of it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    Contract,
    ContractPerson,
    ContractStatus,
    Delivery,
    DevelopmentActivity,
    Measurement,
    Milestone,
    MilestoneStatus,
    Role,
    SuccessIndicator,
)
from storage.queries.measurements import latest_ids


@dataclass
class MilestoneBases:
    """The indicators and activities of some contracts, and the values of some indicators."""

    indicators: dict[tuple[int, str], SuccessIndicator] = field(default_factory=dict)
    activities: dict[tuple[int, str], DevelopmentActivity] = field(default_factory=dict)
    series: dict[int, list[Measurement]] = field(default_factory=dict)  # by indicator id


async def milestone_bases(
    *, session: AsyncSession, milestones: Sequence[Milestone], since: datetime | None = None
) -> MilestoneBases:
    """What `milestones` are decided on: their contracts' indicators (by contract and key)
    with the values of those the milestones name, and their activities; three queries.

    `since`: the earliest instant a value will be asked "as of": of the values before it
    only each indicator's latest is loaded (a window function), so an hourly run reads a few
    rows per indicator, not years of them."""
    ids = sorted({m.contract_id for m in milestones})
    found = MilestoneBases()
    found.indicators = {
        (i.contract_id, i.key): i
        for i in (
            await session.exec(
                select(SuccessIndicator).where(col(SuccessIndicator.contract_id).in_(ids))
            )
        ).all()
    }
    found.activities = {
        (a.contract_id, a.key): a
        for a in (
            await session.exec(
                select(DevelopmentActivity).where(col(DevelopmentActivity.contract_id).in_(ids))
            )
        ).all()
    }
    wanted = sorted(
        found.indicators[(m.contract_id, m.indicator_key)].id or 0
        for m in milestones
        if m.indicator_key and (m.contract_id, m.indicator_key) in found.indicators
    )
    if wanted:
        of_wanted = col(Measurement.indicator_id).in_(wanted)
        query = select(Measurement).where(of_wanted)
        if since is not None:
            latest_before = latest_ids(of_wanted, col(Measurement.measured_at) < since, keep=1)
            query = select(Measurement).where(
                or_(
                    and_(of_wanted, col(Measurement.measured_at) >= since),
                    col(Measurement.id).in_(latest_before),
                )
            )
        for value in (
            await session.exec(query.order_by(col(Measurement.measured_at), col(Measurement.id)))
        ).all():
            found.series.setdefault(value.indicator_id, []).append(value)
    return found


async def pending_milestones(
    *, session: AsyncSession, contract_ids: Collection[int]
) -> list[Milestone]:
    """The pending milestones of the contracts, by contract and due date."""
    rows = await session.exec(
        select(Milestone)
        .where(
            col(Milestone.contract_id).in_(list(contract_ids)),
            Milestone.status == MilestoneStatus.pending,
        )
        .order_by(col(Milestone.contract_id), col(Milestone.due), col(Milestone.id))
    )
    return list(rows.all())


async def decided_since(
    *, session: AsyncSession, since: datetime, contract_ids: Collection[int] | None = None
) -> list[tuple[Milestone, Contract]]:
    """The milestones of active contracts (of `contract_ids`, when given) decided (met or
    missed) since `since`, in that order, each with its contract: only the contracts with a
    recent decision are read, however many are active."""
    query = (
        select(Milestone, Contract)
        .join(Contract, col(Contract.id) == col(Milestone.contract_id))
        .where(
            Contract.status == ContractStatus.active,
            col(Milestone.status).in_([MilestoneStatus.met, MilestoneStatus.missed]),
            col(Milestone.decided_at) >= since,
        )
    )
    if contract_ids is not None:
        query = query.where(col(Milestone.contract_id).in_(list(contract_ids)))
    rows = await session.exec(query.order_by(col(Milestone.decided_at), col(Milestone.id)))
    return [(milestone, contract) for milestone, contract in rows.all()]


async def decide(
    *, session: AsyncSession, milestone: Milestone, outcome: MilestoneStatus, now: datetime
) -> int | None:
    """Mark a pending milestone met or missed, unless it was decided, or recalibrated by an
    amendment, since it was read: its missed count then, or None when it was not this call's
    to decide. The caller commits."""
    same_threshold = (
        col(Milestone.threshold).is_(None)
        if milestone.threshold is None
        else col(Milestone.threshold) == milestone.threshold
    )
    missed = outcome == MilestoneStatus.missed
    changed = await session.exec(
        update(Milestone)
        .where(
            col(Milestone.id) == milestone.id,
            col(Milestone.status) == MilestoneStatus.pending,
            col(Milestone.due) == milestone.due,
            same_threshold,
        )
        .values(
            status=outcome,
            decided_at=now,
            missed_count=col(Milestone.missed_count) + (1 if missed else 0),
        )
        .returning(col(Milestone.missed_count))
    )
    count: int | None = changed.scalar_one_or_none()
    return count


async def escalation_contacts(
    *, session: AsyncSession, contract_ids: Collection[int]
) -> dict[int, list[str]]:
    """Each contract's escalation contacts, in their order."""
    people = await session.exec(
        select(ContractPerson)
        .where(
            col(ContractPerson.contract_id).in_(sorted(contract_ids)),
            ContractPerson.role == Role.escalation,
        )
        .order_by(col(ContractPerson.position), col(ContractPerson.id))
    )
    found: dict[int, list[str]] = {}
    for person in people.all():
        found.setdefault(person.contract_id, []).append(person.user_id)
    return found


async def notices_given(
    *,
    session: AsyncSession,
    kinds: Sequence[str],
    contract_ids: Collection[int],
    final: Sequence[str],
) -> set[tuple[str, int, str, str]]:
    """(kind, contract, recipient, period) of each notice of `kinds` about the contracts whose
    delivery is settled (`final`)."""
    rows = await session.exec(
        select(
            Delivery.kind, Delivery.contract_id, Delivery.recipient_id, Delivery.period_key
        ).where(
            col(Delivery.kind).in_(kinds),
            col(Delivery.contract_id).in_(sorted(contract_ids)),
            col(Delivery.status).in_(final),
        )
    )
    return set(rows.all())
