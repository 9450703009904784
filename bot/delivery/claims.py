"""The queue's rows as the bot uses them: claims for this process (`PROCESS_OWNER`) with the
queue's lease, deliveries due, what is given up, and the queue at a glance. The statements
are storage's (`storage/queries/delivery.py`); this adds the bot's defaults and its log."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.delivery.model import (
    CLAIM_LEASE,
    PROCESS_OWNER,
    DeliveryKey,
    QueueStatus,
    key_of,
    waiting_since,
)
from storage.db import SessionFactory
from storage.models import Delivery, DeliveryStatus
from storage.queries import delivery as rows

logger = logging.getLogger(__name__)


async def claim_many(
    *,
    sessions: SessionFactory,
    keys: Sequence[DeliveryKey],
    now: datetime,
    owner: str = PROCESS_OWNER,
    lease: timedelta = CLAIM_LEASE,
    expires: Mapping[DeliveryKey, datetime] | None = None,
    payloads: Mapping[DeliveryKey, dict[str, Any]] | None = None,
) -> dict[DeliveryKey, Delivery]:
    """Claim each of `keys` for `owner` in one transaction; the ones this call got.

    A key is not got when it was sent, given up, is claimed by someone alive, or failed and
    is not due again yet. A new row gets its `expires` and `payloads` entry.
    """
    return await rows.claim_many(
        sessions=sessions,
        keys=keys,
        now=now,
        owner=owner,
        lease=lease,
        expires=expires,
        payloads=payloads,
    )


async def claim(
    *,
    sessions: SessionFactory,
    key: DeliveryKey,
    now: datetime,
    owner: str = PROCESS_OWNER,
    lease: timedelta = CLAIM_LEASE,
    expires_at: datetime | None = None,
) -> Delivery | None:
    """Claim one key (see `claim_many`); None when this call did not get it."""
    got = await claim_many(
        sessions=sessions,
        keys=[key],
        now=now,
        owner=owner,
        lease=lease,
        expires={key: expires_at} if expires_at is not None else None,
    )
    return got.get(key)


async def due_scheduled(
    *,
    sessions: SessionFactory,
    kind: str,
    now: datetime,
    limit: int = 10_000,
    lease: timedelta = CLAIM_LEASE,
) -> list[Delivery]:
    """Deliveries of `kind` to send now, oldest first: scheduled ones whose time has come,
    and those whose last try failed (due again) or whose sender died (lease lapsed)."""
    return await rows.due_scheduled(sessions=sessions, kind=kind, now=now, limit=limit, lease=lease)


async def claim_due(
    *,
    sessions: SessionFactory,
    delivery_id: int,
    now: datetime,
    owner: str = PROCESS_OWNER,
    lease: timedelta = CLAIM_LEASE,
) -> Delivery | None:
    """Claim one delivery `due_scheduled` found; None if another process was first."""
    return await rows.claim_due(
        sessions=sessions, delivery_id=delivery_id, now=now, owner=owner, lease=lease
    )


async def expire_overdue(
    *, sessions: SessionFactory, now: datetime, lease: timedelta = CLAIM_LEASE
) -> list[Delivery]:
    """Give up every delivery whose useful time has passed while it failed, or while its
    claim lapsed (its sender died); each is logged once. (A scheduled one is left to the job
    that sends it: its `build` may well find it has no point any more, a cancellation.)"""
    expired = await rows.expire_overdue(sessions=sessions, now=now, lease=lease)
    for row in expired:
        log_expired(row)
    return expired


def log_expired(row: Delivery) -> None:
    logger.warning(
        "Gave up %s: still not sent when it stopped being useful at %s (last error: %s)",
        key_of(row),
        row.expires_at.isoformat() if row.expires_at else "?",
        row.last_error or "none",
    )


async def queue_status(*, session: AsyncSession, now: datetime, limit: int = 10) -> QueueStatus:
    counts = await rows.counts_by_kind_and_status(session=session)
    pending = await rows.pending_now(session=session, now=now)
    oldest = sorted(pending, key=lambda r: (waiting_since(r), r.id or 0))[:limit]
    given_up = await rows.given_up(session=session, limit=limit)
    total = sum(n for (_, status), n in counts.items() if status == DeliveryStatus.expired)
    return QueueStatus(counts, oldest, given_up, total)
