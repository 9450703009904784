"""Data access for answers to check-ins: replies kept with a check-in, nudges of a missed week."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import CheckIn, CheckInNudge, CheckInReply, CheckInReplyRisk, Risk


async def checkin_by_id(*, session: AsyncSession, checkin_id: int) -> CheckIn | None:
    return await session.get(CheckIn, checkin_id)


async def add_reply(
    *, session: AsyncSession, reply: CheckInReply, risk_id: int | None = None
) -> tuple[CheckInReply, bool]:
    """Keep `reply` (committed), with the risk it answers if any; (the row, True) or, when
    its request wrote one already, (that row, False)."""
    try:
        async with session.begin_nested():
            session.add(reply)
            if risk_id is not None:
                await session.flush()
                session.add(CheckInReplyRisk(reply_id=reply.id or 0, risk_id=risk_id))
        await session.commit()
        return reply, True
    except IntegrityError:
        await session.rollback()
    found = (
        await session.exec(
            select(CheckInReply).where(CheckInReply.request_key == reply.request_key)
        )
    ).one()
    return found, False


async def replies_of(
    *, session: AsyncSession, checkin_ids: Sequence[int]
) -> dict[int, list[CheckInReply]]:
    """The replies to each check-in, oldest first."""
    found: dict[int, list[CheckInReply]] = {}
    if not checkin_ids:
        return found
    rows = await session.exec(
        select(CheckInReply)
        .where(col(CheckInReply.checkin_id).in_(list(checkin_ids)))
        .order_by(col(CheckInReply.created_at), col(CheckInReply.id))
    )
    for row in rows.all():
        found.setdefault(row.checkin_id, []).append(row)
    return found


async def answered_risks(*, session: AsyncSession, reply_ids: Sequence[int]) -> dict[int, str]:
    """The text of the risk each reply answers, by reply id (replies to the whole check-in
    have none)."""
    if not reply_ids:
        return {}
    rows = await session.exec(
        select(CheckInReplyRisk.reply_id, Risk.text)
        .join(Risk, col(Risk.id) == col(CheckInReplyRisk.risk_id))
        .where(col(CheckInReplyRisk.reply_id).in_(sorted(set(reply_ids))))
    )
    return dict(rows.all())


async def add_nudge(
    *, session: AsyncSession, contract_id: int, period_key: str, user_id: str, at: datetime
) -> tuple[CheckInNudge, bool]:
    """The week's nudge: (the new row, True), or (the one sent before, False). Committed."""
    row = CheckInNudge(contract_id=contract_id, period_key=period_key, nudged_by=user_id)
    row.created_at = at
    try:
        async with session.begin_nested():
            session.add(row)
        await session.commit()
        return row, True
    except IntegrityError:
        await session.rollback()
    found = (
        await session.exec(
            select(CheckInNudge).where(
                CheckInNudge.contract_id == contract_id, CheckInNudge.period_key == period_key
            )
        )
    ).one()
    return found, False


async def nudged_periods(
    *, session: AsyncSession, contract_ids: Sequence[int]
) -> dict[int, set[str]]:
    """The weeks already nudged, by contract."""
    found: dict[int, set[str]] = {}
    if not contract_ids:
        return found
    rows = await session.exec(
        select(CheckInNudge.contract_id, CheckInNudge.period_key).where(
            col(CheckInNudge.contract_id).in_(list(contract_ids))
        )
    )
    for contract_id, period in rows.all():
        found.setdefault(contract_id, set()).add(period)
    return found
