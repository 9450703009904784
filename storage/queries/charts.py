"""Data access for uploaded charts: the Slack file of a chart's data, and keeping a new one;
the number of a contract's history and the charts drawn at it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import SessionFactory, read_only, writing
from storage.models import ChartFile, ChartSet, ContractHistory
from storage.queries import in_chunks, insert_for
from storage.types import utcnow


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


async def history_versions(*, session: AsyncSession, contract_ids: Sequence[int]) -> dict[int, int]:
    """The number of each contract's history (0 until a trigger first bumps it)."""
    found = dict.fromkeys(contract_ids, 0)
    for chunk in in_chunks(list(found)):
        rows = await session.exec(
            select(ContractHistory.contract_id, ContractHistory.version).where(
                col(ContractHistory.contract_id).in_(chunk)
            )
        )
        found.update(rows.all())
    return found


def _number_now(contract_id: Any) -> Any:
    return func.coalesce(
        select(ContractHistory.version)
        .where(col(ContractHistory.contract_id) == contract_id)
        .scalar_subquery(),
        0,
    )


async def chart_sets(
    *, session: AsyncSession, contract_ids: Sequence[int], drawing: int
) -> dict[int, list[dict[str, str]]]:
    """The charts drawn of each contract at the number of its history now (read in the same
    statement) and at that drawing version, of those for which any were."""
    found: dict[int, list[dict[str, str]]] = {}
    for chunk in in_chunks(list(dict.fromkeys(contract_ids))):
        rows = await session.exec(
            select(ChartSet.contract_id, ChartSet.charts).where(
                col(ChartSet.contract_id).in_(chunk),
                ChartSet.drawing == drawing,
                col(ChartSet.history) == _number_now(ChartSet.contract_id),
            )
        )
        found.update((contract_id, list(charts)) for contract_id, charts in rows.all())
    return found


@dataclass(frozen=True, slots=True)
class DrawnSet:
    """The charts drawn of a contract at a number of its history."""

    contract_id: int
    history: int
    charts: list[dict[str, str]]


async def keep_chart_sets(
    *, sessions: SessionFactory, drawing: int, drawn: Sequence[DrawnSet]
) -> None:
    """Keep the charts drawn at those histories, in one transaction; a set kept first by
    someone else stays (the same history draws the same charts). The sets of the histories
    those contracts have left are let go. When one of the contracts was deleted meanwhile
    none is kept (the charts are shown all the same; the next reading keeps the others)."""
    if not drawn:
        return
    try:
        await _keep_chart_sets(sessions, drawing, drawn)
    except IntegrityError:
        return


async def _keep_chart_sets(
    sessions: SessionFactory, drawing: int, drawn: Sequence[DrawnSet]
) -> None:
    async with sessions() as session:
        await writing(session)
        connection = await session.connection()
        ids = sorted({d.contract_id for d in drawn})
        await connection.execute(
            delete(ChartSet).where(
                col(ChartSet.contract_id).in_(ids),
                col(ChartSet.history) < _number_now(ChartSet.contract_id),
            )
        )
        await connection.execute(
            insert_for(session)(ChartSet)
            .values(
                [
                    {
                        "contract_id": d.contract_id,
                        "history": d.history,
                        "drawing": drawing,
                        "charts": d.charts,
                        "created_at": utcnow(),
                    }
                    for d in drawn
                ]
            )
            .on_conflict_do_nothing(index_elements=["contract_id", "history", "drawing"])
        )
        await session.commit()
