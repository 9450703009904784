"""Data access for the period report: a contract's amendments, its versions by import, the
lessons shared from it, and the contracts a person may ask the report of."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    Amendment,
    Contract,
    ContractPerson,
    ContractStatus,
    ContractVersion,
    Lesson,
    Role,
)


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


async def named_lessons_between(
    *, session: AsyncSession, contract_id: int | None, start: datetime, end: datetime
) -> list[Lesson]:
    """The lessons the contract's leader shared by name from `start` up to `end`."""
    rows = await session.exec(
        select(Lesson)
        .where(
            Lesson.contract_id == contract_id,
            col(Lesson.named),
            col(Lesson.created_at) >= start,
            col(Lesson.created_at) < end,
        )
        .order_by(col(Lesson.created_at), col(Lesson.id))
    )
    return list(rows.all())


async def contracts_reported_to(*, session: AsyncSession, user_id: str) -> list[Contract]:
    """The contracts (not drafts) `user_id` owns or reads the report of, by title."""
    readers = select(ContractPerson.contract_id).where(
        ContractPerson.role == Role.report_reader, ContractPerson.user_id == user_id
    )
    rows = await session.exec(
        select(Contract)
        .where(
            Contract.status != ContractStatus.draft,
            or_(Contract.owner_id == user_id, col(Contract.id).in_(readers)),
        )
        .order_by(col(Contract.title), col(Contract.id))
    )
    return list(rows.all())


async def contracts_with_report_cadence(*, session: AsyncSession) -> list[Contract]:
    """The contracts (not drafts) whose governance sends the report on a cadence."""
    rows = await session.exec(
        select(Contract)
        .where(Contract.status != ContractStatus.draft, col(Contract.report_cadence).is_not(None))
        .order_by(col(Contract.id))
    )
    return list(rows.all())


async def report_readers(*, session: AsyncSession, contract_ids: list[int]) -> dict[int, list[str]]:
    """Each contract's report readers, in the order the governance names them."""
    if not contract_ids:
        return {}
    rows = await session.exec(
        select(ContractPerson)
        .where(
            col(ContractPerson.contract_id).in_(contract_ids),
            ContractPerson.role == Role.report_reader,
        )
        .order_by(col(ContractPerson.contract_id), col(ContractPerson.position))
    )
    found: dict[int, list[str]] = {}
    for person in rows.all():
        found.setdefault(person.contract_id, []).append(person.user_id)
    return found


async def report_owners(*, session: AsyncSession, contract_ids: Sequence[int]) -> list[str]:
    """Who answers for these contracts' reports: each one's owner, or its sponsor where it
    has none; each person once."""
    if not contract_ids:
        return []
    rows = await session.exec(
        select(Contract.owner_id, Contract.sponsor_id)
        .where(col(Contract.id).in_(contract_ids))
        .order_by(col(Contract.id))
    )
    return list(dict.fromkeys(owner or sponsor for owner, sponsor in rows.all()))
