"""Data access for check-ins: what a period holds, drafts of its pages, its prompts' state."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, delete, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
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
    Risk,
    SuccessIndicator,
)
from storage.queries.delivery import settled_for
from storage.queries.measurements import latest_ids

LATEST_VALUES = 2

# The values a check-in shows of each indicator: its own and the latest other, so the two
# latest and the check-in's own, however long the history. Built once: only lists change.
_INDICATORS = col(Measurement.indicator_id).in_(bindparam("indicators", expanding=True))
SHOWN_VALUES = (
    select(Measurement)
    .where(
        or_(
            col(Measurement.id).in_(latest_ids(_INDICATORS, keep=LATEST_VALUES)),
            and_(
                _INDICATORS, col(Measurement.checkin_id).in_(bindparam("checkins", expanding=True))
            ),
        )
    )
    .order_by(col(Measurement.measured_at), col(Measurement.id))
)


@dataclass
class PeriodRows:
    """What the check-ins of some contracts hold, each list by contract (or check-in) id."""

    indicators: dict[int, list[SuccessIndicator]] = field(default_factory=dict)
    activities: dict[int, list[DevelopmentActivity]] = field(default_factory=dict)
    expectations: dict[int, list[Expectation]] = field(default_factory=dict)
    milestones: dict[int, list[Milestone]] = field(default_factory=dict)
    checkins: dict[tuple[int, str], CheckIn] = field(default_factory=dict)
    # By indicator id, oldest first: its `LATEST_VALUES` latest values and those of `checkins`.
    series: dict[int, list[Measurement]] = field(default_factory=dict)
    risks: dict[int, list[Risk]] = field(default_factory=dict)  # by check-in id
    evidence: dict[int, list[Evidence]] = field(default_factory=dict)  # by check-in id


async def period_rows(
    *, session: AsyncSession, contract_ids: Sequence[int], periods: Collection[str]
) -> PeriodRows:
    """The items, check-ins (of `periods`), values, risks and evidence of many contracts,
    with one query per table."""
    found = PeriodRows()

    async def by_contract(model: Any, *order: Any) -> dict[int, list[Any]]:
        grouped: dict[int, list[Any]] = {}
        result = await session.exec(
            select(model).where(col(model.contract_id).in_(contract_ids)).order_by(*order, model.id)
        )
        for row in result.all():
            grouped.setdefault(row.contract_id, []).append(row)
        return grouped

    found.indicators = await by_contract(SuccessIndicator, col(SuccessIndicator.position))
    found.activities = await by_contract(DevelopmentActivity, col(DevelopmentActivity.position))
    found.expectations = await by_contract(Expectation, col(Expectation.position))
    found.milestones = await by_contract(Milestone, col(Milestone.due))
    found.checkins = {
        (c.contract_id, c.period_key): c
        for c in (
            await session.exec(
                select(CheckIn).where(
                    col(CheckIn.contract_id).in_(contract_ids),
                    col(CheckIn.period_key).in_(periods),
                )
            )
        ).all()
    }
    indicator_ids = [i.id for rows in found.indicators.values() for i in rows]
    checkin_ids = [c.id for c in found.checkins.values()]
    if indicator_ids:
        result = await session.exec(
            SHOWN_VALUES, params={"indicators": indicator_ids, "checkins": checkin_ids}
        )
        for m in result.all():
            found.series.setdefault(m.indicator_id, []).append(m)
    if checkin_ids:
        for risk in (
            await session.exec(
                select(Risk).where(col(Risk.checkin_id).in_(checkin_ids)).order_by(col(Risk.id))
            )
        ).all():
            found.risks.setdefault(risk.checkin_id or 0, []).append(risk)
        for item in (
            await session.exec(
                select(Evidence)
                .where(col(Evidence.checkin_id).in_(checkin_ids))
                .order_by(col(Evidence.id))
            )
        ).all():
            found.evidence.setdefault(item.checkin_id or 0, []).append(item)
    return found


async def active_contract_of(*, session: AsyncSession, leader_id: str) -> Contract | None:
    """The leader's active contract (there is at most one), the latest changed first."""
    rows = await session.exec(
        select(Contract)
        .where(Contract.leader_id == leader_id, Contract.status == ContractStatus.active)
        .order_by(col(Contract.updated_at).desc(), col(Contract.id).desc())
    )
    return rows.first()


async def find_checkin(*, session: AsyncSession, contract_id: int, period: str) -> CheckIn | None:
    rows = await session.exec(
        select(CheckIn).where(CheckIn.contract_id == contract_id, CheckIn.period_key == period)
    )
    return rows.first()


async def checkins_of(*, session: AsyncSession, contract_id: int | None) -> list[CheckIn]:
    rows = await session.exec(select(CheckIn).where(CheckIn.contract_id == contract_id))
    return list(rows.all())


async def find_draft(
    *, session: AsyncSession, contract_id: int, period: str, user_id: str
) -> CheckInDraft | None:
    """The pages a person kept of one period's check-in, if any."""
    rows = await session.exec(
        select(CheckInDraft).where(
            CheckInDraft.contract_id == contract_id,
            CheckInDraft.period_key == period,
            CheckInDraft.user_id == user_id,
        )
    )
    return rows.first()


async def delete_drafts(*, session: AsyncSession, contract_id: int, period: str) -> None:
    """Forget the kept pages of a period's check-in (the caller commits)."""
    await session.exec(
        delete(CheckInDraft).where(
            col(CheckInDraft.contract_id) == contract_id,
            col(CheckInDraft.period_key) == period,
        )
    )


async def checkin_value(
    *, session: AsyncSession, checkin_id: int, indicator_id: int | None
) -> Measurement | None:
    """The value one check-in recorded for one indicator."""
    rows = await session.exec(
        select(Measurement).where(
            Measurement.checkin_id == checkin_id, Measurement.indicator_id == indicator_id
        )
    )
    return rows.first()


async def checkin_evidence(*, session: AsyncSession, checkin_id: int) -> list[Evidence]:
    rows = await session.exec(
        select(Evidence).where(Evidence.checkin_id == checkin_id).order_by(col(Evidence.id))
    )
    return list(rows.all())


async def checkin_risks(*, session: AsyncSession, checkin_id: int) -> list[Risk]:
    rows = await session.exec(
        select(Risk).where(Risk.checkin_id == checkin_id).order_by(col(Risk.id))
    )
    return list(rows.all())


async def sent_to_leader(
    *, session: AsyncSession, kinds: Sequence[str], contract_id: int, leader_id: str, period: str
) -> list[Delivery]:
    """The messages of `kinds` sent to the leader about one period, to update in place, and
    those being sent (claimed: posted, perhaps, and not yet recorded)."""
    rows = await session.exec(
        select(Delivery)
        .where(
            col(Delivery.kind).in_(kinds),
            Delivery.contract_id == contract_id,
            Delivery.recipient_id == leader_id,
            Delivery.period_key == period,
            col(Delivery.status).in_([DeliveryStatus.sent, DeliveryStatus.claimed]),
        )
        .order_by(col(Delivery.id))
    )
    return [
        d
        for d in rows.all()
        if d.status == DeliveryStatus.claimed or (d.slack_channel and d.slack_ts)
    ]


async def prompted(
    *, session: AsyncSession, kind: str, periods: Sequence[str], contract_ids: Sequence[int]
) -> set[tuple[int, str, str]]:
    """(contract, recipient, period) of each prompt of `periods` to `contract_ids` settled
    for good: sent, undeliverable or cancelled."""
    return await settled_for(
        session=session,
        kind=kind,
        periods=periods,
        contract_ids=contract_ids,
        statuses=[DeliveryStatus.sent, DeliveryStatus.undeliverable, DeliveryStatus.cancelled],
    )


async def checked_in(
    *, session: AsyncSession, periods: Sequence[str], contract_ids: Sequence[int]
) -> set[tuple[int, str]]:
    """(contract, period) of each check-in of `contract_ids` in `periods`, answered or
    skipped."""
    rows = await session.exec(
        select(CheckIn.contract_id, CheckIn.period_key).where(
            col(CheckIn.period_key).in_(periods), col(CheckIn.contract_id).in_(contract_ids)
        )
    )
    return set(rows.all())


async def scheduled_of(*, session: AsyncSession, kind: str, contract_id: int) -> list[Delivery]:
    """The contract's deliveries of `kind` still waiting for their time (the caller may move
    or cancel them and commits)."""
    rows = await session.exec(
        select(Delivery).where(
            Delivery.kind == kind,
            Delivery.contract_id == contract_id,
            Delivery.status == DeliveryStatus.scheduled,
        )
    )
    return list(rows.all())
