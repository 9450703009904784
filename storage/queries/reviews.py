"""Data access for strategic-alignment reviews: one person's review of a period, the reviews
of a period, and those submitted since a moment."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AlignmentReview


async def reviews_of_period(
    *, session: AsyncSession, contract_id: int, period_key: str
) -> list[AlignmentReview]:
    """The reviews of one contract's review period, in the order they were submitted."""
    rows = await session.exec(
        select(AlignmentReview)
        .where(AlignmentReview.contract_id == contract_id, AlignmentReview.period_key == period_key)
        .order_by(col(AlignmentReview.submitted_at), col(AlignmentReview.id))
    )
    return list(rows.all())


async def reviews_between(
    *,
    session: AsyncSession,
    contract_ids: Sequence[int],
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AlignmentReview]:
    """The contracts' reviews submitted in [since, until), oldest first."""
    if not contract_ids:
        return []
    query = select(AlignmentReview).where(col(AlignmentReview.contract_id).in_(contract_ids))
    if since is not None:
        query = query.where(col(AlignmentReview.submitted_at) >= since)
    if until is not None:
        query = query.where(col(AlignmentReview.submitted_at) < until)
    rows = await session.exec(
        query.order_by(col(AlignmentReview.submitted_at), col(AlignmentReview.id))
    )
    return list(rows.all())
