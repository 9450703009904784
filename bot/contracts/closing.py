"""Closing a contract: its record (when, by whom, why), and every loop of it stopped.

A closed contract keeps everything it held and stays readable; it takes no more check-ins,
feedback, evidence or amendments (each of those checks the status), its unsent messages are
cancelled, its pending amendments closed with the reason, its open feedback requests closed.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.text import truncate
from storage.models import Contract, ContractStatus
from storage.queries.closing import (
    cancel_deliveries_of,
    close_open_requests,
    close_pending_amendments,
)
from storage.queries.contracts import audit, lock_contract

REASON_MAX = 500
# What a pending amendment and an open feedback request become when their contract closes.
AMENDMENT_CLOSED = "stale"
REQUEST_CLOSED = "expired"


async def close_contract(
    session: AsyncSession,
    *,
    contract: Contract,
    by: str | None,
    now: datetime,
    reason: str,
    superseded_by: int | None = None,
) -> None:
    """Close `contract` in the caller's unit of work (the caller commits).

    A contract closed already is left as it is: a second click, a replay or a job that runs
    twice writes nothing more. `by` is None for the bot itself or an operator's CLI.
    """
    row = await lock_contract(session=session, contract_id=contract.id or 0)
    if row is None or row.status == ContractStatus.closed:
        return
    reason = truncate(reason.strip(), REASON_MAX)
    was = row.status
    row.status = ContractStatus.closed
    row.closed_at = now
    row.closed_by = by
    row.close_reason = reason or None
    if superseded_by is not None:
        row.superseded_by = superseded_by
    row.updated_at = now
    session.add(row)
    contract_id = row.id or 0
    cancelled = await cancel_deliveries_of(session=session, contract_id=contract_id)
    amendments = await close_pending_amendments(
        session=session,
        contract_id=contract_id,
        status=AMENDMENT_CLOSED,
        reason=f"The contract was closed on {now.date().isoformat()}.",
        now=now,
    )
    requests = await close_open_requests(
        session=session, contract_id=contract_id, status=REQUEST_CLOSED, now=now
    )
    audit(
        session,
        action="contract.closed",
        contract_id=contract_id,
        actor_id=by,
        detail={
            "summary": closed_in_words(
                by=by, reason=reason, superseded_by=superseded_by, was=str(was)
            ),
            "reason": reason,
            "superseded_by": superseded_by,
            "messages_cancelled": cancelled,
            "amendments_closed": amendments,
            "feedback_requests_closed": requests,
        },
        at=now,
    )


def closed_in_words(
    *, by: str | None, reason: str, superseded_by: int | None, was: str = "active"
) -> str:
    """The audit log's line for a close: who, why, what replaced it."""
    who = f"<@{by}>" if by else "North Star (an operator or the end of its period)"
    words = f"Closed by {who}"
    if was == ContractStatus.draft:
        words = f"Draft discarded by {who}"
    if superseded_by is not None:
        words += f", superseded by contract {superseded_by}"
    if reason:
        words += f": {reason}"
    return words + "."
