"""Data access for privacy: what a person wrote, every row that names them, and erasing it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, ColumnElement, Table, Text, cast, delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Agreement, AuditEvent, Contract, Evidence, Feedback

CHANGE_REQUESTED = "contract.change_requested"  # the audit event of a party's change request


async def contract_ids(*, session: AsyncSession) -> list[int]:
    return [cid for cid in (await session.exec(select(Contract.id))).all() if cid]


async def feedback_hashed(*, session: AsyncSession, hashes: Sequence[str]) -> list[Feedback]:
    """The entries whose author hash is one of `hashes`."""
    rows = await session.exec(select(Feedback).where(col(Feedback.author_hash).in_(list(hashes))))
    return list(rows.all())


async def feedback_by(*, session: AsyncSession, user: str, hashes: Sequence[str]) -> list[Feedback]:
    """The entries `user` wrote: attributed to them, or anonymous under one of `hashes`."""
    condition = col(Feedback.author_id) == user
    if hashes:
        condition = or_(condition, col(Feedback.author_hash).in_(list(hashes)))
    rows = await session.exec(
        select(Feedback).where(condition).order_by(col(Feedback.created_at), col(Feedback.id))
    )
    return list(rows.all())


async def feedback_readable_in(
    *, session: AsyncSession, contract_ids: Sequence[int | None]
) -> list[Feedback]:
    """The entries on the contracts that their leader may read: named, or released."""
    rows = await session.exec(
        select(Feedback).where(
            col(Feedback.contract_id).in_(contract_ids),
            or_(col(Feedback.anonymous).is_(False), col(Feedback.released_at).is_not(None)),
        )
    )
    return list(rows.all())


async def led_or_sponsored(*, session: AsyncSession, user: str) -> list[Contract]:
    rows = await session.exec(
        select(Contract).where(
            or_(col(Contract.leader_id) == user, col(Contract.sponsor_id) == user)
        )
    )
    return list(rows.all())


async def erasures(*, session: AsyncSession) -> list[AuditEvent]:
    """Every erasure's audit event (they name no contract)."""
    rows = await session.exec(
        select(AuditEvent).where(
            AuditEvent.action == "privacy.erased", col(AuditEvent.contract_id).is_(None)
        )
    )
    return list(rows.all())


async def evidence_added_by(*, session: AsyncSession, user: str) -> list[Evidence]:
    rows = await session.exec(select(Evidence).where(Evidence.added_by == user))
    return list(rows.all())


async def rows_containing(
    *, session: AsyncSession, table: Table, columns: Sequence[Column[Any]], text: str
) -> list[dict[str, Any]]:
    """The rows of `table` with `text` somewhere in one of `columns` (read as text)."""
    query = table.select().where(
        or_(*(cast(column, Text).contains(text, autoescape=True) for column in columns))
    )
    connection = await session.connection()
    return [dict(mapping) for mapping in (await connection.execute(query)).mappings()]


async def delete_row(
    *, session: AsyncSession, table: Table, key: Sequence[ColumnElement[bool]]
) -> None:
    """Delete the row of `table` that `key` (its primary key's columns) names."""
    connection = await session.connection()
    await connection.execute(delete(table).where(*key))


async def update_row(
    *,
    session: AsyncSession,
    table: Table,
    key: Sequence[ColumnElement[bool]],
    values: dict[str, Any],
) -> None:
    """Set `values` in the row of `table` that `key` names."""
    connection = await session.connection()
    await connection.execute(update(table).where(*key).values(**values))


async def agreements_by(*, session: AsyncSession, user: str) -> list[Agreement]:
    """Every agreement `user` gave to a contract's terms, oldest first."""
    rows = await session.exec(
        select(Agreement).where(Agreement.user_id == user).order_by(col(Agreement.id))
    )
    return list(rows.all())


async def change_requests_by(*, session: AsyncSession, user: str) -> list[AuditEvent]:
    """The changes `user` asked for to a draft out for agreement, with their comments."""
    rows = await session.exec(
        select(AuditEvent)
        .where(AuditEvent.action == CHANGE_REQUESTED, AuditEvent.actor_id == user)
        .order_by(col(AuditEvent.id))
    )
    return list(rows.all())
