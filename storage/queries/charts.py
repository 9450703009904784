"""Data access for uploaded charts: the Slack file of a chart's data, and keeping a new one;
the number of a contract's history and the charts drawn at it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import SessionFactory, read_only, writing
from storage.models import ChartFile, ChartSet, ContractHistory


async def chart_file_id(
    *, session: AsyncSession, contract_id: int, subject: str, data_hash: str
) -> str | None:
    """The Slack file already uploaded for this chart's data, if any."""
    row = await session.exec(
        select(ChartFile.file_id).where(
            ChartFile.contract_id == contract_id,
            ChartFile.subject == subject,
            ChartFile.data_hash == data_hash,
        )
    )
    return row.first()


async def cached_file_ids(
    *, sessions: SessionFactory, keys: list[tuple[int, str, str]]
) -> dict[tuple[int, str, str], str]:
    """The Slack files of those (contract, subject, hash) already uploaded: one statement
    however many charts (the rows of those contracts and hashes, matched here by whole key)."""
    if not keys:
        return {}
    wanted = set(keys)
    async with sessions() as session:
        await read_only(session)
        rows = await session.exec(
            select(ChartFile.contract_id, ChartFile.subject, ChartFile.data_hash, ChartFile.file_id)
            .where(col(ChartFile.contract_id).in_(sorted({k[0] for k in wanted})))
            .where(col(ChartFile.data_hash).in_(sorted({k[2] for k in wanted})))
        )
        return {
            (contract_id, subject, data_hash): file_id
            for contract_id, subject, data_hash, file_id in rows.all()
            if (contract_id, subject, data_hash) in wanted
        }


async def keep_chart_file(
    *, sessions: SessionFactory, contract_id: int, subject: str, data_hash: str, file_id: str
) -> str:
    """Keep `file_id` for this chart's data; the file kept, which is another one when someone
    else kept theirs first (the unique constraint decides, the winner is read back)."""
    try:
        async with sessions() as session:
            await writing(session)
            session.add(
                ChartFile(
                    contract_id=contract_id, subject=subject, data_hash=data_hash, file_id=file_id
                )
            )
            await session.commit()
        return file_id
    except IntegrityError:
        async with sessions() as session:
            await read_only(session)
            kept = await chart_file_id(
                session=session, contract_id=contract_id, subject=subject, data_hash=data_hash
            )
        return kept or file_id


async def forget_chart_files(*, sessions: SessionFactory, file_ids: list[str]) -> None:
    """Forget uploaded charts Slack no longer shows (a file deleted in the workspace), so
    they are drawn and uploaded again."""
    if not file_ids:
        return
    async with sessions() as session:
        await writing(session)
        connection = await session.connection()
        await connection.execute(delete(ChartFile).where(col(ChartFile.file_id).in_(file_ids)))
        await session.commit()


async def history_version(*, session: AsyncSession, contract_id: int) -> int:
    """The number of the contract's history (0 until a trigger first bumps it)."""
    row = await session.exec(
        select(ContractHistory.version).where(ContractHistory.contract_id == contract_id)
    )
    return row.first() or 0


async def chart_set(
    *, session: AsyncSession, contract_id: int, drawing: int, history: int | None = None
) -> list[dict[str, str]] | None:
    """The charts drawn of the contract at that history (by default its number now, read in
    the same statement) and drawing version, if any were."""
    number: Any = history
    if number is None:
        number = func.coalesce(
            select(ContractHistory.version)
            .where(ContractHistory.contract_id == contract_id)
            .scalar_subquery(),
            0,
        )
    row = await session.exec(
        select(ChartSet.charts).where(
            ChartSet.contract_id == contract_id,
            ChartSet.drawing == drawing,
            col(ChartSet.history) == number,
        )
    )
    found = row.first()
    return None if found is None else list(found)


async def keep_chart_set(
    *,
    sessions: SessionFactory,
    contract_id: int,
    history: int,
    drawing: int,
    charts: list[dict[str, str]],
) -> None:
    """Keep the charts drawn at that history; a set kept first by someone else stays (the
    same history draws the same charts). The sets of older histories are let go."""
    try:
        async with sessions() as session:
            await writing(session)
            connection = await session.connection()
            await connection.execute(
                delete(ChartSet).where(
                    col(ChartSet.contract_id) == contract_id, col(ChartSet.history) < history
                )
            )
            session.add(
                ChartSet(contract_id=contract_id, history=history, drawing=drawing, charts=charts)
            )
            await session.commit()
    except IntegrityError:
        return
