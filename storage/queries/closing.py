"""Data access for closing a contract: what stops with it (its unsent messages, its pending
amendments, its open feedback requests). The caller commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Amendment, Contract, ContractStatus, Delivery, DeliveryStatus
from storage.models import FeedbackRequest as Request


async def cancel_deliveries_of(*, session: AsyncSession, contract_id: int) -> int:
    """Cancel every message about the contract that has not started going out (scheduled,
    waiting to be tried again, or a claim given back); how many."""
    result = await session.exec(
        update(Delivery)
        .where(
            col(Delivery.contract_id) == contract_id,
            or_(
                col(Delivery.status).in_([DeliveryStatus.scheduled, DeliveryStatus.failed]),
                and_(
                    col(Delivery.status) == DeliveryStatus.claimed,
                    col(Delivery.claimed_by).is_(None),
                ),
            ),
        )
        .values(status=DeliveryStatus.cancelled)
        .returning(col(Delivery.id))
    )
    return len(result.all())


async def close_pending_amendments(
    *, session: AsyncSession, contract_id: int, status: str, reason: str, now: datetime
) -> list[int]:
    """Give every pending amendment of the contract `status` and `reason`; their ids."""
    result = await session.exec(
        update(Amendment)
        .where(col(Amendment.contract_id) == contract_id, col(Amendment.status) == "pending")
        .values(status=status, decision_reason=reason, decided_at=now)
        .returning(col(Amendment.id))
    )
    return [row[0] for row in result.all()]


async def close_open_requests(
    *, session: AsyncSession, contract_id: int, status: str, now: datetime
) -> int:
    """Close the contract's open feedback requests with `status`; how many."""
    result = await session.exec(
        update(Request)
        .where(col(Request.contract_id) == contract_id, col(Request.status) == "open")
        .values(status=status, closed_at=now)
        .returning(col(Request.id))
    )
    return len(result.all())


async def ended_active_contracts(*, session: AsyncSession, before: datetime) -> list[Contract]:
    """Active contracts whose period ended on a day before `before`'s (UTC) date, or just on
    it: the job decides by each contract's zone."""
    rows = await session.exec(
        select(Contract)
        .where(
            Contract.status == ContractStatus.active,
            col(Contract.period_end) <= before.date(),
        )
        .order_by(col(Contract.id))
    )
    return list(rows.all())


async def renewal_of(*, session: AsyncSession, contract_id: int) -> Contract | None:
    """The draft or contract that renews `contract_id`, if one was made."""
    rows = await session.exec(
        select(Contract)
        .where(col(Contract.replaces_contract_id) == contract_id)
        .order_by(col(Contract.id))
    )
    return rows.first()
