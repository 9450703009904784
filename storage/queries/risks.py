"""Data access for risks: open ones by contract, one by id, escalation candidates, and the
values the bot computes for `north-star:` indicators."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Contract, ContractStatus, Measurement, Risk, SuccessIndicator
from storage.queries import in_chunks

RESOLVED = "resolved"


async def open_risks(
    *, session: AsyncSession, contract_ids: Sequence[int]
) -> dict[int, list[Risk]]:
    """Every risk not yet resolved, by contract, oldest first."""
    found: dict[int, list[Risk]] = {}
    if not contract_ids:
        return found
    rows = await session.exec(
        select(Risk)
        .where(col(Risk.contract_id).in_(contract_ids), Risk.status != RESOLVED)
        .order_by(col(Risk.created_at), col(Risk.id))
    )
    for risk in rows.all():
        found.setdefault(risk.contract_id, []).append(risk)
    return found


async def risks_of(*, session: AsyncSession, contract_id: int) -> list[Risk]:
    """Every risk of one contract, oldest first."""
    rows = await session.exec(
        select(Risk)
        .where(Risk.contract_id == contract_id)
        .order_by(col(Risk.created_at), col(Risk.id))
    )
    return list(rows.all())


async def find_risk(*, session: AsyncSession, risk_id: int) -> Risk | None:
    return await session.get(Risk, risk_id)


async def needing_help(
    *, session: AsyncSession, raised_before: datetime
) -> list[tuple[Risk, Contract]]:
    """Open risks that ask for help, raised before `raised_before`, of active contracts."""
    rows = await session.exec(
        select(Risk, Contract)
        .join(Contract, col(Contract.id) == col(Risk.contract_id))
        .where(
            Contract.status == ContractStatus.active,
            Risk.status != RESOLVED,
            col(Risk.needs_sponsor_help).is_(True),
            col(Risk.created_at) < raised_before,
        )
        .order_by(col(Risk.created_at), col(Risk.id))
    )
    return [(risk, contract) for risk, contract in rows.all()]


async def computed_indicators(
    *, session: AsyncSession, contract_ids: Sequence[int], sources: Sequence[str]
) -> list[SuccessIndicator]:
    """The indicators of `contract_ids` whose source is one the bot computes."""
    found: list[SuccessIndicator] = []
    for ids in in_chunks(contract_ids):
        rows = await session.exec(
            select(SuccessIndicator).where(
                col(SuccessIndicator.contract_id).in_(ids),
                col(SuccessIndicator.source).in_(sources),
            )
        )
        found += rows.all()
    return found


async def record_computed(
    *,
    session: AsyncSession,
    indicator_id: int,
    period: str,
    value: float,
    measured_at: datetime,
    source: str,
    recorded_by: str,
) -> bool:
    """Record the period's computed value once; False when it was recorded already. Runs in a
    savepoint, so a race lost to another replica leaves the caller's unit of work intact."""
    existing = await session.exec(
        select(Measurement.id).where(
            Measurement.indicator_id == indicator_id, Measurement.computed_period == period
        )
    )
    if existing.first() is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(
                Measurement(
                    indicator_id=indicator_id,
                    value=value,
                    measured_at=measured_at,
                    source=source,
                    recorded_by=recorded_by,
                    created_at=measured_at,
                    computed_period=period,
                )
            )
    except IntegrityError:
        return False
    return True
