"""Data access for digests: which were sent, what reached the sponsor's attention since."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Delivery, DeliveryStatus, Feedback


async def digests_settled(
    *, session: AsyncSession, kind: str, periods: Sequence[str], final: Sequence[str]
) -> set[tuple[str, str]]:
    """(recipient, period) of each digest of `periods` settled for good (`final`)."""
    rows = await session.exec(
        select(Delivery.recipient_id, Delivery.period_key).where(
            Delivery.kind == kind,
            Delivery.contract_id == 0,
            col(Delivery.period_key).in_(periods),
            col(Delivery.status).in_(final),
        )
    )
    return set(rows.all())


async def last_digest_sent(
    *, session: AsyncSession, kind: str, recipient: str, before: str
) -> datetime | None:
    """When the recipient's last digest of another period than `before` was sent."""
    found = await session.exec(
        select(func.max(col(Delivery.sent_at))).where(
            Delivery.kind == kind,
            Delivery.contract_id == 0,
            Delivery.recipient_id == recipient,
            Delivery.status == DeliveryStatus.sent,
            Delivery.period_key != before,
        )
    )
    value = found.one()
    return value if isinstance(value, datetime) else None


async def feedback_counts(
    *, session: AsyncSession, contract_ids: Sequence[int], since: datetime
) -> dict[int, dict[bool, int]]:
    """Per contract, named entries given since `since` (False) and anonymous ones released
    since then (True): counts only."""
    rows = await session.exec(
        select(Feedback.contract_id, Feedback.anonymous, func.count(col(Feedback.id)))
        .where(
            col(Feedback.contract_id).in_(list(contract_ids)),
            or_(
                and_(col(Feedback.anonymous).is_(False), col(Feedback.created_at) >= since),
                and_(col(Feedback.anonymous).is_(True), col(Feedback.released_at) >= since),
            ),
        )
        .group_by(col(Feedback.contract_id), col(Feedback.anonymous))
    )
    counts: dict[int, dict[bool, int]] = {}
    for contract_id, anonymous, count in rows.all():
        counts.setdefault(contract_id, {})[bool(anonymous)] = int(count)
    return counts


async def parts_to_send(*, session: AsyncSession, kind: str, now: datetime) -> list[Delivery]:
    """Later parts of digests to send now: scheduled and due, or claimed (by a sender that
    may have crashed) or failed; by id, so the parts of a digest go in order."""
    rows = await session.exec(
        select(Delivery)
        .where(
            Delivery.kind == kind,
            or_(
                and_(
                    col(Delivery.status) == DeliveryStatus.scheduled,
                    col(Delivery.due_at) <= now,
                ),
                col(Delivery.status).in_([DeliveryStatus.claimed, DeliveryStatus.failed]),
            ),
        )
        .order_by(col(Delivery.id))
    )
    return list(rows.all())
