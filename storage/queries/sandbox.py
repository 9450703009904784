"""Data access for the sandbox's demo history: a seeded contract's indicators and activities."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import DevelopmentActivity, SuccessIndicator


async def indicators_of(*, session: AsyncSession, contract_id: int) -> list[SuccessIndicator]:
    rows = await session.exec(
        select(SuccessIndicator).where(SuccessIndicator.contract_id == contract_id)
    )
    return list(rows.all())


async def activities_of(*, session: AsyncSession, contract_id: int) -> list[DevelopmentActivity]:
    rows = await session.exec(
        select(DevelopmentActivity).where(DevelopmentActivity.contract_id == contract_id)
    )
    return list(rows.all())
