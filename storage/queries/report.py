"""Data access for the period report: a contract's amendments and its versions by import."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Amendment, ContractVersion


async def amendments_of(*, session: AsyncSession, contract_id: int | None) -> list[Amendment]:
    """Every amendment proposed to the contract, whatever became of it."""
    rows = await session.exec(select(Amendment).where(Amendment.contract_id == contract_id))
    return list(rows.all())


async def versions_made(
    *, session: AsyncSession, contract_id: int | None, reason: str
) -> list[datetime]:
    """When each of the contract's versions made for `reason` was written."""
    rows = await session.exec(
        select(ContractVersion.created_at).where(
            ContractVersion.contract_id == contract_id, ContractVersion.reason == reason
        )
    )
    return list(rows.all())
