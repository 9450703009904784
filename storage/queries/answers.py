"""Data access for answers to check-ins: replies kept with a check-in, nudges of a missed week."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import CheckIn, CheckInNudge, CheckInReply, Risk


async def checkin_by_id(*, session: AsyncSession, checkin_id: int) -> CheckIn | None:
    return await session.get(CheckIn, checkin_id)


async def add_reply(*, session: AsyncSession, reply: CheckInReply) -> tuple[CheckInReply, bool]:
    """Keep `reply` (committed); (the row, True) or, when its request wrote one already,
    (that row, False)."""
    try:
        async with session.begin_nested():
            session.add(reply)
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


async def risk_texts(*, session: AsyncSession, risk_ids: Sequence[int]) -> dict[int, str]:
    """The text of each risk a reply answers, by risk id."""
    if not risk_ids:
        return {}
    rows = await session.exec(
        select(Risk.id, Risk.text).where(col(Risk.id).in_(sorted(set(risk_ids))))
    )
    return {risk_id: text for risk_id, text in rows.all() if risk_id is not None}


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
