"""Data access for evidence: the contracts a person may add to, and the messages of "Add as
evidence" shortcuts, kept on the server until their modal is submitted."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Contract, ContractStatus, EvidenceSource

EVIDENCE_SOURCE_TTL = timedelta(days=1)


async def evidence_contracts(
    *, session: AsyncSession, user: str, limit: int | None = None
) -> list[Contract]:
    """Active contracts `user` leads, sponsors or owns: their own first, then by title (the
    first `limit` of them, when given)."""
    rows = await session.exec(
        select(Contract)
        .where(
            Contract.status == ContractStatus.active,
            or_(
                col(Contract.leader_id) == user,
                col(Contract.sponsor_id) == user,
                col(Contract.owner_id) == user,
            ),
        )
        .order_by(col(Contract.leader_id) != user, col(Contract.title), col(Contract.id))
        .limit(limit)
    )
    return list(rows.all())


async def add_evidence_source(
    *,
    session: AsyncSession,
    token: str,
    user_id: str,
    channel: str,
    message_ts: str,
    excerpt: str,
    now: datetime,
) -> None:
    """Keep a shortcut's message under `token`; forget those older than a day."""
    await session.exec(
        delete(EvidenceSource).where(col(EvidenceSource.created_at) < now - EVIDENCE_SOURCE_TTL)
    )
    session.add(
        EvidenceSource(
            token=token,
            user_id=user_id,
            channel=channel,
            message_ts=message_ts,
            excerpt=excerpt,
            created_at=now,
        )
    )
    await session.commit()


async def find_evidence_source(
    *, session: AsyncSession, token: str, user_id: str, now: datetime
) -> EvidenceSource | None:
    """The unused message `user_id`'s shortcut kept under `token`, if it is not too old."""
    found = await session.exec(
        select(EvidenceSource).where(
            EvidenceSource.token == token,
            EvidenceSource.user_id == user_id,
            col(EvidenceSource.used_at).is_(None),
            col(EvidenceSource.created_at) >= now - EVIDENCE_SOURCE_TTL,
        )
    )
    return found.first()


async def set_evidence_source_permalink(*, session: AsyncSession, token: str, url: str) -> None:
    await session.exec(
        update(EvidenceSource).where(col(EvidenceSource.token) == token).values(permalink=url)
    )
    await session.commit()


async def claim_evidence_source(*, session: AsyncSession, source_id: int, now: datetime) -> bool:
    """Mark the message used, in the caller's transaction; False if it was used already."""
    claimed = await session.exec(
        update(EvidenceSource)
        .where(col(EvidenceSource.id) == source_id, col(EvidenceSource.used_at).is_(None))
        .values(used_at=now)
    )
    return bool(claimed.rowcount)
