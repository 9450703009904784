"""Data access for health checks: whether the database answers at all."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession


async def database_answers(*, session: AsyncSession) -> None:
    """Ask the database the least question there is; raises whatever keeps it from answering."""
    await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
