"""Closing a contract: its loops stop (they run only for active contracts), its history stays."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Contract, ContractStatus
from storage.queries.contracts import audit


async def close_contract(
    session: AsyncSession,
    *,
    contract: Contract,
    by: str | None,
    now: datetime,
    reason: str,
    superseded_by: int | None = None,
) -> Contract:
    """Mark `contract` closed, with an audit event naming who closed it and why (the caller
    commits). Everything it held stays: its versions, measurements, feedback and audit log
    remain readable by the people who could read it."""
    contract.status = ContractStatus.closed
    contract.updated_at = now
    session.add(contract)
    detail: dict[str, object] = {"reason": reason}
    if superseded_by is not None:
        detail["superseded_by"] = superseded_by
    audit(
        session,
        action="contract.closed",
        contract_id=contract.id,
        actor_id=by,
        detail=detail,
        at=now,
    )
    await session.flush()
    return contract
