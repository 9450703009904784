"""Data access for amendments: pending ones, their approvers and approvals, versions, locks."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    Amendment,
    AmendmentApproval,
    ContractPerson,
    ContractVersion,
    Delivery,
    Role,
)

PENDING = "pending"


async def pending_amendments(
    *, session: AsyncSession, contract_id: int | None, item_type: str | None = None
) -> list[Amendment]:
    """The contract's pending amendments (of one kind of item, when given), oldest first."""
    query = select(Amendment).where(
        Amendment.contract_id == contract_id, Amendment.status == PENDING
    )
    if item_type is not None:
        query = query.where(Amendment.item_type == item_type)
    rows = await session.exec(query.order_by(col(Amendment.created_at), col(Amendment.id)))
    return list(rows.all())


async def deciding_people(
    *, session: AsyncSession, contract_id: int | None
) -> list[tuple[str, str]]:
    """(role, user) of the contract's approvers and escalation contacts, in their order."""
    rows = await session.exec(
        select(ContractPerson.role, ContractPerson.user_id)
        .where(
            ContractPerson.contract_id == contract_id,
            col(ContractPerson.role).in_([Role.approver, Role.escalation]),
        )
        .order_by(col(ContractPerson.position), col(ContractPerson.id))
    )
    return list(rows.all())


async def pending_amendments_of(
    *, session: AsyncSession, contract_ids: Sequence[int]
) -> list[Amendment]:
    """The pending amendments of many contracts, oldest first, in one statement."""
    if not contract_ids:
        return []
    rows = await session.exec(
        select(Amendment)
        .where(col(Amendment.contract_id).in_(contract_ids), Amendment.status == PENDING)
        .order_by(col(Amendment.created_at), col(Amendment.id))
    )
    return list(rows.all())


async def deciding_people_of(
    *, session: AsyncSession, contract_ids: Sequence[int]
) -> dict[int, list[tuple[str, str]]]:
    """`deciding_people` of many contracts in one statement, by contract id."""
    found: dict[int, list[tuple[str, str]]] = {cid: [] for cid in contract_ids}
    if not contract_ids:
        return found
    rows = await session.exec(
        select(ContractPerson.contract_id, ContractPerson.role, ContractPerson.user_id)
        .where(
            col(ContractPerson.contract_id).in_(contract_ids),
            col(ContractPerson.role).in_([Role.approver, Role.escalation]),
        )
        .order_by(col(ContractPerson.position), col(ContractPerson.id))
    )
    for cid, role, user in rows.all():
        found.setdefault(cid, []).append((role, user))
    return found


async def approvals_of(
    *, session: AsyncSession, amendment_ids: Sequence[int]
) -> list[AmendmentApproval]:
    """The decisions taken on the amendments, in the order they were taken."""
    if not amendment_ids:
        return []
    rows = await session.exec(
        select(AmendmentApproval)
        .where(col(AmendmentApproval.amendment_id).in_(amendment_ids))
        .order_by(col(AmendmentApproval.decided_at), col(AmendmentApproval.id))
    )
    return list(rows.all())


async def approval_by(
    *, session: AsyncSession, amendment_id: int, approver_id: str
) -> AmendmentApproval | None:
    rows = await session.exec(
        select(AmendmentApproval).where(
            AmendmentApproval.amendment_id == amendment_id,
            AmendmentApproval.approver_id == approver_id,
        )
    )
    return rows.first()


async def version_made_by(*, session: AsyncSession, amendment_id: int) -> int | None:
    """The contract version an applied amendment made."""
    rows = await session.exec(
        select(ContractVersion.version).where(ContractVersion.amendment_id == amendment_id)
    )
    return rows.first()


async def lock_amendment(*, session: AsyncSession, amendment_id: int) -> Amendment | None:
    """The amendment's row, locked until the transaction ends, read afresh."""
    rows = await session.exec(
        select(Amendment)
        .where(col(Amendment.id) == amendment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return rows.first()


async def versions_of(*, session: AsyncSession, contract_id: int | None) -> list[ContractVersion]:
    """The contract's versions, newest first."""
    rows = await session.exec(
        select(ContractVersion)
        .where(ContractVersion.contract_id == contract_id)
        .order_by(col(ContractVersion.version).desc())
    )
    return list(rows.all())


async def amendments_by_id(*, session: AsyncSession, ids: Sequence[int]) -> dict[int, Amendment]:
    if not ids:
        return {}
    rows = await session.exec(select(Amendment).where(col(Amendment.id).in_(ids)))
    return {a.id or 0: a for a in rows.all()}


async def find_version(
    *, session: AsyncSession, contract_id: int | None, version: int
) -> ContractVersion | None:
    rows = await session.exec(
        select(ContractVersion).where(
            ContractVersion.contract_id == contract_id, ContractVersion.version == version
        )
    )
    return rows.first()


async def version_numbers(*, session: AsyncSession, contract_id: int | None) -> list[int]:
    rows = await session.exec(
        select(ContractVersion.version)
        .where(ContractVersion.contract_id == contract_id)
        .order_by(col(ContractVersion.version))
    )
    return list(rows.all())


async def request_messages(*, session: AsyncSession, kind: str, period: str) -> list[Delivery]:
    """The approvers' DMs about one amendment (`period` names it)."""
    rows = await session.exec(
        select(Delivery).where(Delivery.kind == kind, Delivery.period_key == period)
    )
    return list(rows.all())
