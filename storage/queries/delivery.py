"""Data access for the delivery queue: claims and their leases, schedules, the marks of what
came of a message, giving up, and what an operator sees (`bot/delivery/` says when each is
used).

A delivery is named by its key: one `kind` to one recipient about one contract for one period
(unique together). The functions take any object with those four attributes (`Keyed`), and
those that claim return the rows under the caller's own keys.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import and_, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import SessionFactory, writing
from storage.models import Delivery, DeliveryStatus
from storage.queries import insert_for

# Not done yet: waiting for its time, being sent, or put back to be tried again.
PENDING = (DeliveryStatus.scheduled, DeliveryStatus.claimed, DeliveryStatus.failed)
# Done for good.
FINAL = (
    DeliveryStatus.sent,
    DeliveryStatus.undeliverable,
    DeliveryStatus.cancelled,
    DeliveryStatus.expired,
)
KEY_COLUMNS = ["kind", "contract_id", "recipient_id", "period_key"]


class Keyed(Protocol):
    """What names a delivery (`bot.delivery.DeliveryKey`)."""

    @property
    def kind(self) -> str: ...
    @property
    def contract_id(self) -> int: ...
    @property
    def recipient_id(self) -> str: ...
    @property
    def period_key(self) -> str: ...


K = TypeVar("K", bound=Keyed)


def _named(key: Keyed) -> Any:
    return and_(
        col(Delivery.kind) == key.kind,
        col(Delivery.contract_id) == key.contract_id,
        col(Delivery.recipient_id) == key.recipient_id,
        col(Delivery.period_key) == key.period_key,
    )


def _as_tuple(row: Any) -> tuple[str, int, str, str]:
    return (row.kind, row.contract_id, row.recipient_id, row.period_key)


def _columns() -> list[Any]:
    return list(Delivery.__table__.columns)  # type: ignore[attr-defined]


def _useful(now: datetime) -> Any:
    return or_(col(Delivery.expires_at).is_(None), col(Delivery.expires_at) > now)


def _open(now: datetime, lease: timedelta) -> Any:
    """Claimable again: a claim given back or lapsed (its owner died), or a failure due again."""
    return and_(
        or_(
            and_(
                col(Delivery.status) == DeliveryStatus.claimed,
                or_(col(Delivery.claimed_by).is_(None), col(Delivery.claimed_at) < now - lease),
            ),
            and_(
                col(Delivery.status) == DeliveryStatus.failed,
                or_(col(Delivery.retry_at).is_(None), col(Delivery.retry_at) <= now),
            ),
        ),
        _useful(now),
    )


def _due(now: datetime, lease: timedelta) -> Any:
    """Scheduled and due (its `build` decides whether it still has a point), or `_open`."""
    return or_(
        and_(col(Delivery.status) == DeliveryStatus.scheduled, col(Delivery.due_at) <= now),
        _open(now, lease),
    )


def _mine(owner: str) -> Any:
    return and_(
        col(Delivery.claimed_by) == owner,
        col(Delivery.status) == DeliveryStatus.claimed,
    )


async def settled_for(
    *,
    session: AsyncSession,
    kind: str,
    periods: Sequence[str],
    contract_ids: Sequence[int],
    statuses: Sequence[str] = FINAL,
) -> set[tuple[int, str, str]]:
    """(contract, recipient, period) of each delivery of `kind` for `periods` and
    `contract_ids` whose status is one of `statuses` (settled for good, by default)."""
    rows = await session.exec(
        select(Delivery.contract_id, Delivery.recipient_id, Delivery.period_key).where(
            Delivery.kind == kind,
            col(Delivery.period_key).in_(periods),
            col(Delivery.contract_id).in_(contract_ids),
            col(Delivery.status).in_(statuses),
        )
    )
    return set(rows.all())


async def find(*, session: AsyncSession, key: Keyed) -> Delivery | None:
    return (await session.exec(select(Delivery).where(_named(key)))).first()


async def claim_many(
    *,
    sessions: SessionFactory,
    keys: Sequence[K],
    now: datetime,
    owner: str,
    lease: timedelta,
    expires: Mapping[K, datetime] | None = None,
    payloads: Mapping[K, dict[str, Any]] | None = None,
) -> dict[K, Delivery]:
    """Claim each of `keys` for `owner` in one transaction; the ones this call got.

    A key is not got when it was sent, given up, is claimed by someone alive, or failed and
    is not due again yet. A new row gets its `expires` and `payloads` entry.
    """
    if not keys:
        return {}
    expires = expires or {}
    payloads = payloads or {}
    by_tuple = {_as_tuple(key): key for key in keys}
    got: dict[K, Delivery] = {}
    async with sessions() as session:
        await writing(session)
        inserted = await session.exec(
            insert_for(session)(Delivery)
            .values(
                [
                    {
                        "kind": key.kind,
                        "contract_id": key.contract_id,
                        "recipient_id": key.recipient_id,
                        "period_key": key.period_key,
                        "status": DeliveryStatus.claimed,
                        "attempts": 1,
                        "claimed_by": owner,
                        "claimed_at": now,
                        "expires_at": expires.get(key),
                        "payload": payloads.get(key),
                    }
                    for key in keys
                ]
            )
            .on_conflict_do_nothing(index_elements=KEY_COLUMNS)
            .returning(*_columns())
        )
        for row in inserted.all():
            got[by_tuple[_as_tuple(row)]] = Delivery(**row._mapping)
        for key in keys:
            if key in got:
                continue
            taken = await session.exec(
                update(Delivery)
                .where(_named(key), _open(now, lease))
                .values(
                    status=DeliveryStatus.claimed,
                    claimed_by=owner,
                    claimed_at=now,
                    attempts=col(Delivery.attempts) + 1,
                )
                .returning(*_columns())
            )
            row = taken.first()
            if row is not None:
                got[key] = Delivery(**row._mapping)
        await session.commit()
    return got


async def schedule(
    *,
    session: AsyncSession,
    key: Keyed,
    due_at: datetime,
    payload: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
) -> None:
    """Have `key` sent at `due_at` (by whoever calls `claim_due`); moves a pending one.

    Does nothing once it was sent, cancelled or is being sent. The caller commits.
    """
    statement = insert_for(session)(Delivery).values(
        kind=key.kind,
        contract_id=key.contract_id,
        recipient_id=key.recipient_id,
        period_key=key.period_key,
        status=DeliveryStatus.scheduled,
        attempts=0,
        claimed_at=due_at,
        due_at=due_at,
        payload=payload,
        expires_at=expires_at,
    )
    moved: dict[str, Any] = {"due_at": due_at}
    if expires_at is not None:
        moved["expires_at"] = expires_at
    await session.exec(
        statement.on_conflict_do_update(
            index_elements=KEY_COLUMNS,
            set_=moved,
            where=col(Delivery.status) == DeliveryStatus.scheduled,
        )
    )


async def cancel(*, session: AsyncSession, key: Keyed) -> bool:
    """Cancel a delivery that has not started (scheduled, or failed and waiting to be tried
    again); True if there was one. The caller commits."""
    result = await session.exec(
        update(Delivery)
        .where(
            _named(key),
            col(Delivery.status).in_([DeliveryStatus.scheduled, DeliveryStatus.failed]),
        )
        .values(status=DeliveryStatus.cancelled)
        .returning(col(Delivery.id))
    )
    return result.scalar_one_or_none() is not None


async def due_scheduled(
    *, sessions: SessionFactory, kind: str, now: datetime, limit: int, lease: timedelta
) -> list[Delivery]:
    """Deliveries of `kind` to send now, oldest first: scheduled ones whose time has come,
    and those whose last try failed (due again) or whose sender died (lease lapsed)."""
    async with sessions() as session:
        rows = await session.exec(
            select(Delivery)
            .where(col(Delivery.kind) == kind, _due(now, lease))
            .order_by(col(Delivery.due_at), col(Delivery.id))
            .limit(limit)
        )
        return list(rows.all())


async def claim_due(
    *, sessions: SessionFactory, delivery_id: int, now: datetime, owner: str, lease: timedelta
) -> Delivery | None:
    """Claim one delivery `due_scheduled` found; None if another process was first."""
    async with sessions() as session:
        await writing(session)
        taken = await session.exec(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id, _due(now, lease))
            .values(
                status=DeliveryStatus.claimed,
                claimed_by=owner,
                claimed_at=now,
                attempts=col(Delivery.attempts) + 1,
            )
            .returning(*_columns())
        )
        row = taken.first()
        await session.commit()
        return None if row is None else Delivery(**row._mapping)


async def stored_to_resend(
    *, sessions: SessionFactory, now: datetime, lease: timedelta, limit: int
) -> list[Delivery]:
    """Claimable deliveries that keep their payload (oldest first): the ones to send again."""
    async with sessions() as session:
        rows = await session.exec(
            select(Delivery)
            .where(_open(now, lease), col(Delivery.payload).is_not(None))
            .order_by(col(Delivery.id))
            .limit(limit)
        )
        return list(rows.all())


async def finish(
    *,
    sessions: SessionFactory,
    delivery_id: int,
    owner: str,
    values: dict[str, Any],
    then: Callable[[AsyncSession], Awaitable[None]] | None = None,
) -> bool:
    """Move our own claim on (`then` in the same transaction); False (and nothing written)
    if another process took it over."""
    async with sessions() as session:
        await writing(session)
        result = await session.exec(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id, _mine(owner))
            .values(**values)
            .returning(col(Delivery.id))
        )
        mine = result.scalar_one_or_none() is not None
        if mine and then is not None:
            await then(session)
        await session.commit()
        return mine


async def mark_attempt(
    *, sessions: SessionFactory, delivery_id: int, owner: str, values: dict[str, Any]
) -> bool:
    """The claim re-check before a post, in one statement: still `owner`'s and `claimed`;
    writes `values` (the renewed lease, the attempt). False: someone else holds it now."""
    async with sessions() as session:
        await writing(session)
        result = await session.exec(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id, _mine(owner))
            .values(**values)
            .returning(col(Delivery.id))
        )
        mine = result.scalar_one_or_none() is not None
        await session.commit()
        return mine


async def renew(
    *, sessions: SessionFactory, owner: str, delivery_ids: Iterable[int], now: datetime
) -> None:
    """Renew the lease of the claims `owner` still holds among `delivery_ids`."""
    ids = sorted(delivery_ids)
    if not ids:
        return
    async with sessions() as session:
        await writing(session)
        await session.exec(
            update(Delivery).where(col(Delivery.id).in_(ids), _mine(owner)).values(claimed_at=now)
        )
        await session.commit()


async def release(
    *,
    sessions: SessionFactory,
    owner: str,
    delivery_ids: Iterable[int],
    error: str | None = None,
    unposted: bool = False,
) -> None:
    """Give back claims not sent: no owner, so any process claims them at once.

    A scheduled one goes back to waiting for its time (which has come). The claim is not
    counted as an attempt. `unposted`: every post of it was refused, so nothing needs to be
    read back before the next one.
    """
    ids = sorted(delivery_ids)
    if not ids:
        return
    values: dict[str, Any] = {"claimed_by": None, "attempts": col(Delivery.attempts) - 1}
    if error is not None:
        values["last_error"] = error[:200]
    if unposted:
        values["attempted_at"] = None
    async with sessions() as session:
        await writing(session)
        mine = and_(col(Delivery.id).in_(ids), _mine(owner))
        await session.exec(
            update(Delivery)
            .where(mine, col(Delivery.due_at).is_not(None))
            .values(**values, status=DeliveryStatus.scheduled)
        )
        await session.exec(update(Delivery).where(mine).values(**values))
        await session.commit()


async def expire_overdue(
    *, sessions: SessionFactory, now: datetime, lease: timedelta
) -> list[Delivery]:
    """Give up every delivery whose useful time has passed while it failed, or while its
    claim lapsed (its sender died); the rows given up. (A scheduled one is left to the job
    that sends it: its `build` may well find it has no point any more, a cancellation.)"""
    async with sessions() as session:
        await writing(session)
        result = await session.exec(
            update(Delivery)
            .where(
                col(Delivery.expires_at) <= now,
                or_(
                    col(Delivery.status) == DeliveryStatus.failed,
                    and_(
                        col(Delivery.status) == DeliveryStatus.claimed,
                        or_(
                            col(Delivery.claimed_by).is_(None),
                            col(Delivery.claimed_at) < now - lease,
                        ),
                    ),
                ),
            )
            .values(status=DeliveryStatus.expired, claimed_by=None, payload=None)
            .returning(*_columns())
        )
        expired = [Delivery(**row._mapping) for row in result.all()]
        await session.commit()
    return expired


async def cancel_naming(*, session: AsyncSession, user: str) -> int:
    """Cancel every unsent message kept for sending again (`fixed`) that names `user`, and
    drop its text: what a person's erasure must not let go out later. The caller commits."""
    rows = await session.exec(
        select(Delivery).where(
            col(Delivery.status).in_(PENDING), col(Delivery.payload).is_not(None)
        )
    )
    naming = [
        row.id
        for row in rows.all()
        if isinstance((row.payload or {}).get("message"), dict) and user in json.dumps(row.payload)
    ]
    if naming:
        await session.exec(
            update(Delivery)
            .where(col(Delivery.id).in_(naming))
            .values(status=DeliveryStatus.cancelled, payload=None, claimed_by=None)
        )
    return len(naming)


# --- what an operator sees ------------------------------------------------------------------


async def counts_by_kind_and_status(*, session: AsyncSession) -> dict[tuple[str, str], int]:
    counted = await session.exec(
        select(Delivery.kind, Delivery.status, func.count())
        .group_by(col(Delivery.kind), col(Delivery.status))
        .order_by(col(Delivery.kind), col(Delivery.status))
    )
    return {(kind, status): int(n) for kind, status, n in counted.all()}


async def pending_now(*, session: AsyncSession, now: datetime) -> list[Delivery]:
    """Every delivery not sent yet whose time has come."""
    rows = await session.exec(
        select(Delivery).where(
            col(Delivery.status).in_(PENDING),
            or_(col(Delivery.status) != DeliveryStatus.scheduled, col(Delivery.due_at) <= now),
        )
    )
    return list(rows.all())


async def given_up(*, session: AsyncSession, limit: int) -> list[Delivery]:
    """The latest deliveries given up (`expired`), newest first."""
    rows = await session.exec(
        select(Delivery)
        .where(col(Delivery.status) == DeliveryStatus.expired)
        .order_by(col(Delivery.expires_at).desc(), col(Delivery.id).desc())
        .limit(limit)
    )
    return list(rows.all())
