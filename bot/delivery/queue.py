"""Messages the bot sends on its own (prompts, reminders, digests, notices): once, paced, kept.

A delivery is one message of one `kind` to one recipient about one contract (0 for none)
for one period. It is *claimed* in the `delivery` table (unique on those four) before it is
sent and *marked sent* with its Slack channel and ts after, so a job that runs twice, late
or on two replicas sends it once, and a later edit can `chat.update` it in place.

Leases. A claim is a lease of `CLAIM_LEASE` (a minute), renewed while its owner lives: by
each post, and by a heartbeat while a batch is in progress. Immediately before each post the
sender re-checks its claim with one conditional UPDATE (its own, still `claimed`) that also
renews it and records the attempt; a sender whose claim was taken over skips. A process that
dies (kill -9) leaves its claims to lapse, and the next run of any replica takes them over
within about a lease. A process that is asked to stop (`services.stopping`) or is cancelled
claims nothing more and gives back every claim it has not posted, so another takes them at
once. How many are claimed at a time follows the measured call time (`batch_size`).

At most one copy. Each post carries message `metadata` (`event_type` `northstar_delivery`,
the delivery's id and key in `event_payload`), and its attempt is recorded *before* the post
(`attempted_at`; when that write fails, nothing is posted). A post whose answer never came
(a timeout, a 5xx, a crash, or a `sent` mark the database refused) may have been delivered:
before posting such a delivery again, its DM is read back (`conversations.history` with
`include_all_metadata`, from the first attempt on) and, when the message is there, it is
marked sent instead. A post to a channel cannot be read back without reading the channel
(a scope the app does not ask for): it is then counted as sent, never posted twice.

At least one delivery. Slack's errors are the queue's, not slack_sdk's retry handlers, so
one clock decides every wait:

- 429: everything this process sends pauses for `Retry-After`, then the message goes again;
- 5xx, `internal_error` and kin, network errors and timeouts: every sender of this process
  pauses, longer with each failure in a row (1 s doubling to a minute), and the message is
  tried again. It is put back as `failed` with a `retry_at` (30 s doubling to 5 minutes),
  for any later run to claim, after `max_attempts` if it fails while others get through, or
  once every call has failed for `outage_after` (Slack is down): then each run sends one
  probe and leaves the rest where they are;
- `user_not_found`, `cannot_dm_bot` and kin: the delivery is marked undeliverable and the
  caller's `on_undeliverable` runs (the check-ins tell the contract's owner), no retry; so
  does a `build` that raises `Unreachable` (a deactivated account, which Slack accepts);
- `account_inactive`, `invalid_auth`, `token_revoked` and kin are about the bot's own token,
  not the recipient: the queue stops, logs it once at CRITICAL, and leaves the delivery (and
  all the rest) pending for a later run, as if never tried;
- anything else (a bug such as `invalid_blocks`): `failed`, tried again `FAILED_RETRY_AFTER`
  later.

A delivery is retried as long as it is useful: each has an `expires_at` its producer sets
(`Outgoing.expires_at`; `DEFAULT_USEFUL` when it sets none). Once that has passed unsent it
is given up: marked `expired`, logged once at WARNING, and listed by `northstar jobs status`.
The `deliveries` job does that, and sends again the one-off messages whose text was fixed
when they were asked for (`fixed`): its producer (a click, a command) never comes back.

Several posts are in flight at once (up to `CONCURRENCY`: one at first, doubling with each
success, halved by each failure), messages are built beside them, and the next batch is
claimed while the last posts of the one before are under way, while the `Pacer` keeps the
global pace (`DELIVERY_RATE_PER_MINUTE`), about one message a second per channel and never
two at once in one channel, and every `Retry-After`. The queue's own writes take turns.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import and_, func, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.clock import Clock
from bot.core.lifecycle import Stopping
from bot.scheduler import JobRun
from bot.settings import Settings
from storage.db import SessionFactory
from storage.models import Delivery, DeliveryStatus

if TYPE_CHECKING:
    from bot.services import Services

logger = logging.getLogger(__name__)

PROCESS_OWNER = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
CLAIM_LEASE = timedelta(seconds=60)
DEFAULT_USEFUL = timedelta(days=1)
# A one-off notice (a request for help, an approval to give, feedback received): still worth a
# DM for a week; by then the weekly digest and App Home carry what it was about.
NOTICE_USEFUL = timedelta(days=7)
FAILED_RETRY_AFTER = timedelta(minutes=5)
PER_CHANNEL_SECONDS = 1.0
CONCURRENCY = 16
BATCHES_IN_FLIGHT = 3  # a slow post (a timeout) holds its batch open; the next ones go on
CLOCK_TOLERANCE = 1e-6  # below a microsecond a wait is no wait (and clocks tick in µs)
EVENT_TYPE = "northstar_delivery"
READ_BACK_SKEW = timedelta(minutes=2)  # our clock against Slack's, when reading back a DM
READ_BACK_PAGES = 5
REDELIVER_LIMIT = 500

# Errors that mean the person cannot be reached at all: retrying changes nothing.
UNDELIVERABLE_ERRORS = frozenset(
    {
        "user_not_found",
        "users_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "channel_not_found",
        "is_archived",
        "not_in_channel",
    }
)
# Errors about the bot's own token (`account_inactive`: its user or workspace is deleted):
# every call would fail alike, so they stop the queue instead of condemning the recipient.
TOKEN_ERRORS = frozenset(
    {"account_inactive", "invalid_auth", "token_revoked", "token_expired", "not_authed"}
)
# Errors Slack answers with a 200 that are worth another try.
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
# Why a message's DM cannot be read back: then a post whose answer was lost is not repeated.
UNREADABLE_ERRORS = frozenset({"missing_scope", "not_in_channel", "channel_not_found"})
# Ways a request can fail before Slack saw it: nothing can have been posted.
NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
DATABASE_DOWN = "database unavailable"
SLACK_DOWN = "slack unavailable"
STOPPING = "stopping"

PENDING = (DeliveryStatus.scheduled, DeliveryStatus.claimed, DeliveryStatus.failed)

Sleep = Callable[[float], Awaitable[None]]
Monotonic = Callable[[], float]
Renew = Callable[[], Awaitable[None]]


# --- keys and rows ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryKey:
    """What makes a delivery unique: one `kind` to one recipient per contract and period."""

    kind: str
    contract_id: int
    recipient_id: str
    period_key: str

    def where(self) -> Any:
        return and_(
            col(Delivery.kind) == self.kind,
            col(Delivery.contract_id) == self.contract_id,
            col(Delivery.recipient_id) == self.recipient_id,
            col(Delivery.period_key) == self.period_key,
        )

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient_id} for {self.period_key}"


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


def _columns() -> list[Any]:
    return list(Delivery.__table__.columns)  # type: ignore[attr-defined]


async def find(*, session: AsyncSession, key: DeliveryKey) -> Delivery | None:
    return (await session.exec(select(Delivery).where(key.where()))).first()


def _key_of(row: Any) -> DeliveryKey:
    return DeliveryKey(row.kind, row.contract_id, row.recipient_id, row.period_key)


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
    if not keys:
        return {}
    expires = expires or {}
    payloads = payloads or {}
    got: dict[DeliveryKey, Delivery] = {}
    async with sessions() as session:
        inserted = await session.exec(
            _insert(session)(Delivery)
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
            .on_conflict_do_nothing(
                index_elements=["kind", "contract_id", "recipient_id", "period_key"]
            )
            .returning(*_columns())
        )
        for row in inserted.all():
            got[_key_of(row)] = Delivery(**row._mapping)
        for key in keys:
            if key in got:
                continue
            taken = await session.exec(
                update(Delivery)
                .where(key.where(), _open(now, lease))
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


async def schedule(
    *,
    session: AsyncSession,
    key: DeliveryKey,
    due_at: datetime,
    payload: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
) -> None:
    """Have `key` sent at `due_at` (by whoever calls `claim_due`); moves a pending one.

    Does nothing once it was sent, cancelled or is being sent. The caller commits.
    """
    statement = _insert(session)(Delivery).values(
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
            index_elements=["kind", "contract_id", "recipient_id", "period_key"],
            set_=moved,
            where=col(Delivery.status) == DeliveryStatus.scheduled,
        )
    )


async def cancel(*, session: AsyncSession, key: DeliveryKey) -> bool:
    """Cancel a delivery that has not started (scheduled, or failed and waiting to be tried
    again); True if there was one. The caller commits."""
    result = await session.exec(
        update(Delivery)
        .where(
            key.where(),
            col(Delivery.status).in_([DeliveryStatus.scheduled, DeliveryStatus.failed]),
        )
        .values(status=DeliveryStatus.cancelled)
        .returning(col(Delivery.id))
    )
    return result.scalar_one_or_none() is not None


def _due(now: datetime, lease: timedelta) -> Any:
    """Scheduled and due (its `build` decides whether it still has a point), or `_open`."""
    return or_(
        and_(col(Delivery.status) == DeliveryStatus.scheduled, col(Delivery.due_at) <= now),
        _open(now, lease),
    )


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
    async with sessions() as session:
        rows = await session.exec(
            select(Delivery)
            .where(col(Delivery.kind) == kind, _due(now, lease))
            .order_by(col(Delivery.due_at), col(Delivery.id))
            .limit(limit)
        )
        return list(rows.all())


async def claim_due(
    *,
    sessions: SessionFactory,
    delivery_id: int,
    now: datetime,
    owner: str = PROCESS_OWNER,
    lease: timedelta = CLAIM_LEASE,
) -> Delivery | None:
    """Claim one delivery `due_scheduled` found; None if another process was first."""
    async with sessions() as session:
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


async def _finish(
    sessions: SessionFactory,
    delivery_id: int,
    owner: str,
    values: dict[str, Any],
    then: Callable[[AsyncSession], Awaitable[None]] | None = None,
) -> bool:
    """Move our own claim on; False (and nothing written) if another process took it over."""
    async with sessions() as session:
        result = await session.exec(
            update(Delivery)
            .where(
                col(Delivery.id) == delivery_id,
                col(Delivery.claimed_by) == owner,
                col(Delivery.status) == DeliveryStatus.claimed,
            )
            .values(**values)
            .returning(col(Delivery.id))
        )
        mine = result.scalar_one_or_none() is not None
        if mine and then is not None:
            await then(session)
        await session.commit()
        return mine


async def _renew(
    sessions: SessionFactory, owner: str, delivery_ids: Iterable[int], now: datetime
) -> None:
    """Renew the lease of the claims `owner` still holds among `delivery_ids`."""
    ids = sorted(delivery_ids)
    if not ids:
        return
    async with sessions() as session:
        await session.exec(
            update(Delivery)
            .where(
                col(Delivery.id).in_(ids),
                col(Delivery.claimed_by) == owner,
                col(Delivery.status) == DeliveryStatus.claimed,
            )
            .values(claimed_at=now)
        )
        await session.commit()


async def _release(
    sessions: SessionFactory,
    owner: str,
    delivery_ids: Iterable[int],
    error: str | None = None,
    *,
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
        mine = and_(
            col(Delivery.id).in_(ids),
            col(Delivery.claimed_by) == owner,
            col(Delivery.status) == DeliveryStatus.claimed,
        )
        await session.exec(
            update(Delivery)
            .where(mine, col(Delivery.due_at).is_not(None))
            .values(**values, status=DeliveryStatus.scheduled)
        )
        await session.exec(update(Delivery).where(mine).values(**values))
        await session.commit()


async def expire_overdue(
    *, sessions: SessionFactory, now: datetime, lease: timedelta = CLAIM_LEASE
) -> list[Delivery]:
    """Give up every delivery whose useful time has passed while it failed, or while its
    claim lapsed (its sender died); each is logged once. (A scheduled one is left to the job
    that sends it: its `build` may well find it has no point any more, a cancellation.)"""
    async with sessions() as session:
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
    for row in expired:
        _log_expired(row)
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


def _log_expired(row: Delivery) -> None:
    logger.warning(
        "Gave up %s: still not sent when it stopped being useful at %s (last error: %s)",
        _key_of(row),
        row.expires_at.isoformat() if row.expires_at else "?",
        row.last_error or "none",
    )


# --- what an operator sees ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """The delivery table at a glance: counts per kind and status, the oldest pending
    deliveries, and the ones given up."""

    counts: dict[tuple[str, str], int]
    oldest: list[Delivery]
    given_up: list[Delivery]
    given_up_total: int


def waiting_since(row: Delivery) -> datetime:
    """Since when a pending delivery has waited to go out."""
    return row.attempted_at or row.due_at or row.claimed_at


async def queue_status(*, session: AsyncSession, now: datetime, limit: int = 10) -> QueueStatus:
    counted = await session.exec(
        select(Delivery.kind, Delivery.status, func.count())
        .group_by(col(Delivery.kind), col(Delivery.status))
        .order_by(col(Delivery.kind), col(Delivery.status))
    )
    counts = {(kind, status): int(n) for kind, status, n in counted.all()}
    pending = await session.exec(
        select(Delivery).where(
            col(Delivery.status).in_(PENDING),
            or_(col(Delivery.status) != DeliveryStatus.scheduled, col(Delivery.due_at) <= now),
        )
    )
    oldest = sorted(pending.all(), key=lambda r: (waiting_since(r), r.id or 0))[:limit]
    given_up = await session.exec(
        select(Delivery)
        .where(col(Delivery.status) == DeliveryStatus.expired)
        .order_by(col(Delivery.expires_at).desc(), col(Delivery.id).desc())
        .limit(limit)
    )
    total = sum(n for (_, status), n in counts.items() if status == DeliveryStatus.expired)
    return QueueStatus(counts, oldest, list(given_up.all()), total)


# --- pacing -------------------------------------------------------------------------------


class Pacer:
    """One process's pace towards one workspace: `per_minute` overall, `per_channel` seconds
    apart in one channel (and one call at a time there), every sender paused by a 429's
    `Retry-After` and by Slack failing (`failed`, longer each time in a row).

    Slots are handed out in order under a lock. `sleep` and `monotonic` are injectable, so
    tests never wait; the pacer also keeps the measured time of a call, for batch sizes.
    """

    def __init__(
        self,
        *,
        per_minute: float,
        per_channel: float = PER_CHANNEL_SECONDS,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self.per_channel = per_channel
        self.monotonic = monotonic
        self.sleep = sleep
        self._next = float("-inf")
        self._held_until = float("-inf")
        self._channels: dict[str, float] = {}
        self._busy: dict[str, tuple[asyncio.Lock, int]] = {}
        self._lock = asyncio.Lock()
        self.waited = 0.0
        self.token_refused: str | None = None  # the token error last seen, until a call works
        self.failures = 0  # transient failures in a row
        self.failing_since: float | None = None
        self._failure_pause_until = float("-inf")
        self.call_time = 0.0  # a moving average of how long a post takes, in seconds

    async def slot(
        self, channel: str, *, while_waiting: Renew | None = None, chunk: float = math.inf
    ) -> None:
        """Wait until a message to `channel` may go, and take that slot.

        A long wait is slept in pieces of at most `chunk` seconds, `while_waiting` after each.
        """
        async with self._lock:
            while True:
                now = self.monotonic()
                at = max(
                    self._next,
                    self._held_until,
                    self._channels.get(channel, float("-inf")) + self.per_channel,
                )
                if at <= now + CLOCK_TOLERANCE:
                    break
                wait = min(at - now, chunk)
                self.waited += wait
                await self.sleep(wait)
                if while_waiting is not None:
                    await while_waiting()
            self._next = now + self.interval
            self._channels[channel] = now
            if len(self._channels) > 10_000:
                self._forget(now)

    @asynccontextmanager
    async def channel(self, channel: str) -> AsyncIterator[None]:
        """Hold `channel` for one call: no two calls are in flight in one channel."""
        lock, users = self._busy.get(channel, (asyncio.Lock(), 0))
        self._busy[channel] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._busy[channel]
            if users <= 1:
                del self._busy[channel]
            else:
                self._busy[channel] = (lock, users - 1)

    @property
    def per_minute(self) -> float:
        return 60.0 / self.interval

    def hold(self, seconds: float) -> None:
        """Make no call for `seconds` from now (Slack's Retry-After)."""
        self._held_until = max(self._held_until, self.monotonic() + seconds)

    def held_for(self) -> float:
        return max(0.0, self._held_until - self.monotonic())

    def failed(self, backoff: Callable[[int], float]) -> float:
        """A call failed as when Slack is down: every sender pauses for `backoff(n)`, n the
        failures in a row (calls already in flight when the pause began count once)."""
        now = self.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        if now + CLOCK_TOLERANCE >= self._failure_pause_until:
            self.failures += 1
            pause = backoff(self.failures)
            self._failure_pause_until = now + pause
            self.hold(pause)
        return self.held_for()

    def succeeded(self) -> None:
        self.failures = 0
        self.failing_since = None
        self.token_refused = None

    def failing_for(self) -> float:
        """For how long every call has failed (0 while the last one worked)."""
        return 0.0 if self.failing_since is None else self.monotonic() - self.failing_since

    def observe(self, seconds: float) -> None:
        self.call_time = seconds if self.call_time == 0 else 0.8 * self.call_time + 0.2 * seconds

    def _forget(self, now: float) -> None:
        self._channels = {c: t for c, t in self._channels.items() if now - t < self.per_channel}


_PACERS: dict[tuple[str, str | None], Pacer] = {}


def pacer_for(settings: Settings) -> Pacer:
    """The process-wide pacer of this workspace, so every job and listener shares one pace."""
    key = (settings.slack_api_url, settings.slack_bot_token)
    pacer = _PACERS.get(key)
    if pacer is None:
        pacer = _PACERS[key] = Pacer(per_minute=settings.delivery_rate_per_minute)
    return pacer


def install_pacer(settings: Settings, pacer: Pacer) -> None:
    """Use `pacer` for this workspace from now on (tests and benchmarks bring their own clock)."""
    _PACERS[(settings.slack_api_url, settings.slack_bot_token)] = pacer


# --- sending ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """What to post: the notification `text` and, usually, Block Kit `blocks`."""

    text: str
    blocks: Sequence[Block] | None = None

    def arguments(self) -> dict[str, Any]:
        args: dict[str, Any] = {"text": self.text}
        if self.blocks is not None:
            args["blocks"] = [b.to_dict() for b in self.blocks]
        return args

    def stored(self) -> dict[str, Any]:
        """As JSON, for a delivery's payload; `restored` reads it back."""
        return {"text": self.text, "blocks": [b.to_dict() for b in self.blocks or []]}

    @staticmethod
    def restored(data: dict[str, Any]) -> Message:
        blocks = [Block.parse(b) for b in data.get("blocks") or []]
        return Message(
            text=str(data.get("text") or ""), blocks=[b for b in blocks if b is not None]
        )


Build = Callable[[Delivery], Awaitable[Message | None]]
AfterSent = Callable[[AsyncSession, Delivery], Awaitable[None]]
OnUndeliverable = Callable[[Delivery, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Fixed:
    """A `Build` whose message was decided when it was asked for: kept in the delivery's
    payload, so the `deliveries` job can send it again after a failure or a crash."""

    message: Message

    async def __call__(self, _: Delivery) -> Message:
        return self.message


def fixed(message: Message) -> Build:
    """A delivery's message decided before it was claimed."""
    return Fixed(message)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One delivery to make.

    `build` runs after the claim, so it sees the state at sending time; returning None
    cancels the delivery. `channel` defaults to the recipient's DM with the bot.
    `after_sent` runs in the transaction that marks it sent (e.g. to schedule a reminder);
    `on_undeliverable` runs once the recipient turned out unreachable. `expires_at`: until
    when the message is worth sending (default: `DEFAULT_USEFUL` after its first claim).
    """

    key: DeliveryKey
    build: Build
    channel: str | None = None
    after_sent: AfterSent | None = None
    on_undeliverable: OnUndeliverable | None = None
    expires_at: datetime | None = None


class Outcome(StrEnum):
    sent = "sent"
    taken = "taken"  # already sent, being sent by someone else, or not due again yet
    cancelled = "cancelled"
    undeliverable = "undeliverable"
    failed = "failed"  # put back to be tried again (`retry_at`)
    expired = "expired"  # given up: no longer useful
    held = "held"  # left pending, nothing sent: a refused token, a stop, Slack or the database down


class Unreachable(Exception):
    """Raised by a `build`: the recipient cannot be reached (`code` says why), no call made."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Result:
    key: DeliveryKey
    outcome: Outcome
    channel: str | None = None
    ts: str | None = None
    error: str | None = None


@dataclass
class Report:
    """What a batch of deliveries came to, and how Slack treated us on the way."""

    outcomes: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    retried: int = 0
    calls: int = 0  # posts made
    read_back: int = 0  # DMs read back before posting again
    found: int = 0  # of those, messages already there: marked sent, not posted again

    def add(self, result: Result) -> None:
        self.outcomes[result.outcome] = self.outcomes.get(result.outcome, 0) + 1

    def count(self, outcome: Outcome) -> int:
        return self.outcomes.get(outcome, 0)

    def __str__(self) -> str:
        parts = [f"{self.count(o)} {o}" for o in Outcome if self.count(o)]
        parts += [f"{self.rate_limited} rate-limited", f"{self.retried} retried"]
        if self.found:
            parts.append(f"{self.found} found already sent")
        return ", ".join(parts if self.outcomes else ["nothing due", *parts[-2:]])


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """A Web API call's response, or the error it ended with."""

    response: dict[str, Any] | None = None
    error: str | None = None
    undeliverable: bool = False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: the pause after failures in a row, attempts per message in one run,
    when failing calls mean Slack is down, and when a message put back is tried again."""

    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_rate_limited: int = 20
    default_retry_after: float = 1.0
    outage_after: float = 120.0  # seconds of nothing but failures: Slack is down
    retry_base: float = 30.0
    retry_max: float = 300.0

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))

    def retry_in(self, claims: int) -> float:
        """How long a message put back waits, after its `claims`-th claim."""
        return min(self.retry_max, self.retry_base * 2 ** max(0, claims - 1))


def bare_client(client: AsyncWebClient) -> AsyncWebClient:
    """The same workspace without slack_sdk's retry handlers: the queue owns every retry."""
    return AsyncWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        session=client.session,
        retry_handlers=[],
    )


# What one attempt at a post came to.
@dataclass(frozen=True, slots=True)
class _Posted:
    channel: str | None
    ts: str | None
    found: bool = False  # read back: it was already there
    confirmed: bool = True  # False: its answer was lost and it cannot be read back


@dataclass(frozen=True, slots=True)
class _Failed:
    error: str
    kind: str  # "transient", "limited", "token", "undeliverable", "refused", "lost", "db", "stop"
    maybe_posted: bool = False
    retry_after: float = 0.0
    slow: bool = False  # a timeout: this call was slow, which says little about the others


class _Window:
    """At most `size` posts at once: 1 to begin with, doubling with each success up to
    `most`, halved by each failure, so a dead Slack or token costs one call, not many, and a
    slow call here and there costs little."""

    def __init__(self, most: int) -> None:
        self.most = max(1, most)
        self.size = 1
        self.busy = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def one(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: self.busy < self.size)
            self.busy += 1
        try:
            yield
        finally:
            async with self._changed:
                self.busy -= 1
                self._changed.notify_all()

    def widen(self) -> None:
        self.size = min(self.most, self.size * 2)

    def narrow(self) -> None:
        self.size = max(1, self.size // 2)


class DeliveryQueue:
    """Claims, sends and records deliveries, several at a time, at the pacer's pace."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        client: AsyncWebClient,
        clock: Clock,
        pacer: Pacer,
        policy: RetryPolicy | None = None,
        owner: str = PROCESS_OWNER,
        stopping: Stopping | None = None,
        concurrency: int = CONCURRENCY,
        lease: timedelta = CLAIM_LEASE,
        heartbeat: float | None = None,
        timeout: float | None = None,
    ) -> None:
        """`heartbeat`: real seconds between lease renewals while claims are held (a third
        of the lease by default); pacer waits renew too, on the queue's own clock.
        `timeout`: real seconds a call may take (the client's timeout by default)."""
        self.sessions = sessions
        self.client = bare_client(client)
        self.clock = clock
        self.pacer = pacer
        self.policy = policy or RetryPolicy()
        self.owner = owner
        self.stopping = stopping
        self.concurrency = max(1, concurrency)
        self.lease = lease
        self.heartbeat = lease.total_seconds() / 3 if heartbeat is None else heartbeat
        self.timeout = float(self.client.timeout) if timeout is None else timeout
        self.report = Report()
        self.stopped: str | None = None  # a token error: nothing more is sent by this queue
        self._http: aiohttp.ClientSession | None = None
        self._held: dict[int, Delivery] = {}
        self._holders = 0
        self._heartbeat: asyncio.Task[None] | None = None
        self._renewed = clock.now()
        self.probed = False  # while Slack is down: this queue has sent its one probe
        self._window = _Window(self.concurrency)
        self._building = asyncio.Semaphore(2 * self.concurrency)  # messages being built
        # The queue's own writes, one at a time: its senders never wait on each other inside
        # the database (SQLite's busy handler sleeps up to 100 ms a turn).
        self._writing = asyncio.Lock()
        self._unreadable_logged = False

    async def __aenter__(self) -> DeliveryQueue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the kept-alive HTTP session, if this queue opened one (`async with` does)."""
        if self._http is not None:
            await self._http.close()
            self._http = None
            self.client.session = None

    def _keep_alive(self) -> None:
        """One HTTP session for all of this queue's calls, instead of a connection each."""
        if self.client.session is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self.client.session = self._http

    # -- state

    def _stopping(self) -> bool:
        return self.stopping is not None and self.stopping.is_set()

    def slack_down(self) -> bool:
        """Every call has failed for `outage_after`: Slack is down, as far as we can tell."""
        return self.pacer.failing_for() >= self.policy.outage_after

    def batch_size(self, wanted: int) -> int:
        """How many to claim at a time: what can be posted in a third of a lease at the pace and the
        measured call time (calls in flight together), at most `wanted`; one while Slack is down."""
        if self.slack_down():
            return 1
        per_second = 1.0 / self.pacer.interval
        if self.pacer.call_time > 0:
            per_second = min(per_second, self.concurrency / self.pacer.call_time)
        fits = int(self.lease.total_seconds() / BATCHES_IN_FLIGHT * per_second)
        return max(1, min(wanted, fits))

    # -- delivering

    async def deliver(self, item: Outgoing) -> Result:
        """Claim `item`, build it and send it; what came of it."""
        (result,) = await self.deliver_many([item])
        return result

    async def deliver_all(self, items: Iterable[Outgoing], *, batch: int = 50) -> Report:
        """Deliver `items` in order, claiming up to `batch` of them at a time."""
        pending = list(items)
        start = 0
        while start < len(pending):
            size = self.batch_size(batch)
            await self.deliver_many(pending[start : start + size])
            start += size
        return self.report

    async def deliver_batches(self, batches: AsyncIterable[Sequence[Outgoing]]) -> Report:
        """Deliver batch after batch (each as `deliver_many`), the next one claimed and built
        while the last posts of the one before are under way, so the pace never waits for a
        batch to drain: `BATCHES_IN_FLIGHT` at a time, so with `batch_size` no more is claimed
        than can be posted within a lease."""
        running: list[asyncio.Task[list[Result]]] = []
        try:
            async for items in batches:
                running.append(asyncio.create_task(self.deliver_many(items)))
                if len(running) == BATCHES_IN_FLIGHT:
                    await running.pop(0)
                if self.stopped is not None or self._stopping():
                    break
            while running:
                await running.pop(0)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        return self.report

    async def deliver_many(self, items: Sequence[Outgoing]) -> list[Result]:
        """Claim all of `items` (distinct keys) at once, then send them, several at a time.

        Claims nothing once the process is stopping or the token was refused; while Slack
        is down, claims one (a probe) per queue and holds the rest for a later run.
        """
        if not items:
            return []
        if self.stopped is not None or self._stopping():
            reason = self.stopped or STOPPING
            return [self._done(Result(item.key, Outcome.held, error=reason)) for item in items]
        held: list[Outgoing] = []
        if self.slack_down():
            if not self.probe():
                return [self._done(Result(i.key, Outcome.held, error=SLACK_DOWN)) for i in items]
            items, held = items[:1], list(items[1:])
        now = self.clock.now()
        got = await claim_many(
            sessions=self.sessions,
            keys=[item.key for item in items],
            now=now,
            owner=self.owner,
            lease=self.lease,
            expires={item.key: item.expires_at or now + DEFAULT_USEFUL for item in items},
            payloads={
                item.key: {"message": item.build.message.stored()}
                for item in items
                if isinstance(item.build, Fixed)
            },
        )
        pairs = [(item, got.get(item.key)) for item in items]
        async with self._holding([row for _, row in pairs if row is not None]):
            results = await self._send_all(pairs)
        results += [self._done(Result(i.key, Outcome.held, error=SLACK_DOWN)) for i in held]
        return results

    async def send_claimed(self, item: Outgoing, delivery: Delivery) -> Result:
        """Send a delivery this process has claimed (by `claim` or `claim_due`); given back
        unsent (held) while Slack is down and this queue has sent its probe."""
        if self.slack_down() and not self.probe():
            return await self._hold(item, delivery, SLACK_DOWN)
        async with self._holding([delivery]):
            (result,) = await self._send_all([(item, delivery)])
        return result

    def probe(self) -> bool:
        """While Slack is down: whether this queue may still try one delivery (once)."""
        if self.probed:
            return False
        self.probed = True
        return True

    async def _send_all(self, pairs: Sequence[tuple[Outgoing, Delivery | None]]) -> list[Result]:
        async def one(item: Outgoing, row: Delivery | None) -> Result:
            if row is None:
                return self._done(Result(item.key, Outcome.taken))
            async with self._building:
                built = await self._build(item, row)
            if isinstance(built, Result):
                result = built
            else:
                async with self._window.one():
                    result = await self._post(item, row, built)
            if result.outcome == Outcome.undeliverable and item.on_undeliverable is not None:
                # Outside the window: telling someone is a delivery of its own.
                try:
                    await item.on_undeliverable(row, result.error or "")
                except Exception:
                    logger.exception("Telling someone that %s was undeliverable failed", item.key)
            return result

        if len(pairs) == 1:
            return [await one(*pairs[0])]
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(item, row)) for item, row in pairs]
        except BaseExceptionGroup as failed:
            first = failed.exceptions[0]
            raise first from (None if len(failed.exceptions) == 1 else failed)
        return [task.result() for task in tasks]

    @asynccontextmanager
    async def _holding(self, rows: Sequence[Delivery]) -> AsyncIterator[None]:
        """Hold `rows`' claims while the block runs: renewed on a heartbeat, and given back
        at the end unless they were dealt with (stop, cancellation, an error)."""
        for row in rows:
            if row.id is not None:
                self._held[row.id] = row
        self._holders += 1
        if self._heartbeat is None and self.heartbeat > 0:
            self._heartbeat = asyncio.create_task(self._beat())
        try:
            yield
        finally:
            self._holders -= 1
            if self._holders == 0 and self._heartbeat is not None:
                self._heartbeat.cancel()
                self._heartbeat = None
            left = [row.id for row in rows if row.id is not None and row.id in self._held]
            for delivery_id in left:
                self._held.pop(delivery_id, None)
            if left:
                await self._give_back(left)

    async def _give_back(self, delivery_ids: list[int]) -> None:
        try:
            await asyncio.shield(_release(self.sessions, self.owner, delivery_ids))
        except (Exception, asyncio.CancelledError) as error:
            logger.warning(
                "Could not give back %d claim(s) (%s); they are taken over once their lease "
                "of %d s has run out",
                len(delivery_ids),
                type(error).__name__,
                self.lease.total_seconds(),
            )
        else:
            logger.info("Gave back %d claim(s) not sent", len(delivery_ids))

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            await self._renew_held(force=True)

    async def _renew_held(self, *, force: bool = False) -> None:
        """Renew the lease of every claim held, if a third of it has passed (or `force`)."""
        now = self.clock.now()
        if not self._held or (not force and now - self._renewed < self.lease / 3):
            return
        self._renewed = now
        try:
            async with self._writing:
                await _renew(self.sessions, self.owner, list(self._held), now)
        except Exception as error:
            logger.warning(
                "Renewing %d claim(s) failed (%s)", len(self._held), type(error).__name__
            )

    def _let_go(self, delivery: Delivery) -> None:
        """This claim is dealt with (sent, put back, given up): no renewing or giving back."""
        if delivery.id is not None:
            self._held.pop(delivery.id, None)

    async def _build(self, item: Outgoing, delivery: Delivery) -> Result | dict[str, Any]:
        """The post's arguments, or what came of the delivery if there is nothing to post."""
        assert delivery.id is not None
        if self.stopped is not None or self._stopping():
            return await self._hold(item, delivery, self.stopped or STOPPING)
        try:
            message = await item.build(delivery)
        except Unreachable as unreachable:
            return await self._undeliverable(item, delivery, unreachable.code)
        except Exception:
            logger.exception("Building %s failed", item.key)
            return await self._put_back(item, delivery, "build_failed", FAILED_RETRY_AFTER)
        if message is None:
            await self._record(item, delivery, {"status": DeliveryStatus.cancelled})
            return self._done(Result(item.key, Outcome.cancelled))
        if delivery.expires_at is not None and delivery.expires_at <= self.clock.now():
            return await self._expire(item, delivery)

        return {
            "channel": item.channel or item.key.recipient_id,
            **message.arguments(),
            "metadata": {
                "event_type": EVENT_TYPE,
                "event_payload": {
                    "delivery_id": delivery.id,
                    "kind": item.key.kind,
                    "period": item.key.period_key,
                },
            },
        }

    async def _post(self, item: Outgoing, delivery: Delivery, arguments: dict[str, Any]) -> Result:
        """Post until it is sent, put back, given up or held (see the module doc)."""
        target = str(arguments["channel"])
        maybe_posted = delivery.attempted_at is not None
        attempts = limited = 0
        while True:
            if self.stopped is not None or self._stopping():
                return await self._hold(item, delivery, self.stopped or STOPPING)
            outcome = await self._attempt(delivery, target, arguments, read_back=maybe_posted)
            if isinstance(outcome, _Posted):
                self._window.widen()
                return await self._sent(item, delivery, outcome)
            if not outcome.slow:
                self._window.narrow()
            maybe_posted = maybe_posted or outcome.maybe_posted
            unposted = not maybe_posted
            if outcome.kind == "limited":
                limited += 1
                self.report.rate_limited += 1
                if limited > self.policy.max_rate_limited:
                    return await self._put_back(item, delivery, "ratelimited", unposted=unposted)
                self.pacer.hold(outcome.retry_after)
                continue
            if outcome.kind == "transient":
                attempts += 1
                self.pacer.failed(self.policy.backoff)
                # While every call fails (a burst), it is Slack, not this message: it waits
                # with everyone until Slack looks down. Failing alone, it is put back sooner.
                alone = self.pacer.failures < attempts
                if (alone and attempts >= self.policy.max_attempts) or self.slack_down():
                    return await self._put_back(item, delivery, outcome.error, unposted=unposted)
                self.report.retried += 1
                logger.warning(
                    "Posting %s failed (%s); retry %d", item.key, outcome.error, attempts
                )
                continue
            if outcome.kind == "token":
                self._stop(outcome.error)
                return await self._hold(item, delivery, outcome.error, unposted=unposted)
            if outcome.kind == "undeliverable":
                return await self._undeliverable(item, delivery, outcome.error)
            if outcome.kind == "stop":
                return await self._hold(item, delivery, STOPPING)
            if outcome.kind == "lost":
                self._let_go(delivery)
                logger.warning("%s was taken over by another sender; not posted here", item.key)
                return self._done(Result(item.key, Outcome.taken))
            if outcome.kind == "expired":
                return await self._expire(item, delivery)
            if outcome.kind == "db":
                self._let_go(delivery)
                logger.warning(
                    "Recording the attempt of %s failed (%s): not posted; taken over once its "
                    "lease has run out",
                    item.key,
                    outcome.error,
                )
                return self._done(Result(item.key, Outcome.held, error=DATABASE_DOWN))
            logger.warning("Slack refused %s: %s", item.key, outcome.error)
            return await self._put_back(
                item, delivery, outcome.error, FAILED_RETRY_AFTER, unposted=unposted
            )

    async def _attempt(
        self, delivery: Delivery, target: str, arguments: dict[str, Any], *, read_back: bool
    ) -> _Posted | _Failed:
        """One go at posting: a slot, a read-back if an earlier post may have landed, the
        claim re-checked, renewed and the attempt recorded, then the post."""
        async with self.pacer.channel(target):
            await self.pacer.slot(
                target, while_waiting=self._renew_held, chunk=self.lease.total_seconds() / 3
            )
            if self.stopped is not None or self._stopping():
                return _Failed(self.stopped or STOPPING, "stop")
            if read_back:
                found = await self._read_back(delivery, target)
                if found is not None:
                    return found
            try:
                now = self.clock.now()
                if delivery.expires_at is not None and delivery.expires_at <= now:
                    return _Failed("expired", "expired")
                if not await self._mark_attempt(delivery, now):
                    return _Failed("claim lost", "lost")
            except Exception as error:
                return _Failed(type(error).__name__, "db")
            self.report.calls += 1
            self._keep_alive()
            started = self.pacer.monotonic()
            try:
                response = await self.client.api_call("chat.postMessage", json=arguments)
            except SlackApiError as error:
                return self._refusal(error)
            except NEVER_SENT as error:
                return _Failed(f"network: {type(error).__name__}", "transient")
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                return _Failed(
                    f"network: {type(error).__name__}",
                    "transient",
                    maybe_posted=True,
                    slow=isinstance(error, TimeoutError),
                )
            finally:
                self.pacer.observe(self.pacer.monotonic() - started)
            self.pacer.succeeded()
            data = response.data if isinstance(response.data, dict) else {}
            channel, ts = data.get("channel"), data.get("ts")
            return _Posted(str(channel) if channel else None, str(ts) if ts else None)

    def _refusal(self, error: SlackApiError) -> _Failed:
        status = error.response.status_code
        code = str(error.response.get("error") or f"http_{status}")
        if status == 429 or code == "ratelimited":
            return _Failed(code, "limited", retry_after=self._retry_after(error))
        if code in TOKEN_ERRORS:
            return _Failed(code, "token")
        if code in UNDELIVERABLE_ERRORS:
            return _Failed(code, "undeliverable")
        if status >= 500 or code in TRANSIENT_ERRORS:
            return _Failed(code, "transient", maybe_posted=True)
        return _Failed(code, "refused")

    async def _mark_attempt(self, delivery: Delivery, now: datetime) -> bool:
        """The claim re-check before a post, in one statement: still ours and `claimed`;
        renews its lease and records the attempt. False: someone else holds it now."""
        assert delivery.id is not None
        values: dict[str, Any] = {"claimed_at": now}
        if delivery.attempted_at is None:
            values["attempted_at"] = now
        async with self._writing, self.sessions() as session:
            result = await session.exec(
                update(Delivery)
                .where(
                    col(Delivery.id) == delivery.id,
                    col(Delivery.claimed_by) == self.owner,
                    col(Delivery.status) == DeliveryStatus.claimed,
                )
                .values(**values)
                .returning(col(Delivery.id))
            )
            mine = result.scalar_one_or_none() is not None
            await session.commit()
        if mine:
            delivery.claimed_at = now
            delivery.attempted_at = delivery.attempted_at or now
        return mine

    async def _read_back(self, delivery: Delivery, target: str) -> _Posted | _Failed | None:
        """Is the message of an earlier post already in its DM? `_Posted` if so (or if the
        DM cannot be read: then it is not posted again), None if not, `_Failed` if Slack
        would not say."""
        assert delivery.attempted_at is not None
        self.report.read_back += 1
        self._keep_alive()
        try:
            channel = delivery.slack_channel
            if channel is None and target[:1] in ("U", "W"):
                opened = await self.client.api_call("conversations.open", json={"users": target})
                channel = str((opened.get("channel") or {}).get("id") or "") or None
            elif channel is None and target[:1] == "D":
                channel = target
            if channel is None:
                return self._unreadable(delivery, "a channel")
            oldest = (delivery.attempted_at - READ_BACK_SKEW).timestamp()
            cursor: str | None = None
            for _ in range(READ_BACK_PAGES):
                params: dict[str, Any] = {
                    "channel": channel,
                    "oldest": f"{oldest:.6f}",
                    "include_all_metadata": "true",
                    "limit": 100,
                }
                if cursor:
                    params["cursor"] = cursor
                page = await self.client.api_call(
                    "conversations.history", http_verb="GET", params=params
                )
                for message in page.get("messages") or []:
                    if _is_delivery(message, delivery):
                        self.report.found += 1
                        logger.info(
                            "%s was already posted; marked sent, not posted again",
                            _key_of(delivery),
                        )
                        return _Posted(channel, str(message.get("ts")), found=True)
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    return None
            return None
        except SlackApiError as error:
            refusal = self._refusal(error)
            if refusal.error in UNREADABLE_ERRORS or refusal.kind == "undeliverable":
                return self._unreadable(delivery, refusal.error)
            if refusal.kind == "refused":
                return _Failed(refusal.error, "transient")
            return _Failed(refusal.error, refusal.kind, retry_after=refusal.retry_after)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return _Failed(f"network: {type(error).__name__}", "transient")

    def _unreadable(self, delivery: Delivery, why: str) -> _Posted:
        if not self._unreadable_logged:
            self._unreadable_logged = True
            logger.warning(
                "%s may have been posted and cannot be read back (%s): counted as sent, "
                "never posted twice",
                _key_of(delivery),
                why,
            )
        return _Posted(delivery.slack_channel, None, confirmed=False)

    async def _sent(self, item: Outgoing, delivery: Delivery, posted: _Posted) -> Result:
        assert delivery.id is not None
        values: dict[str, Any] = {
            "status": DeliveryStatus.sent,
            "sent_at": self.clock.now(),
            "slack_channel": posted.channel,
            "slack_ts": posted.ts,
            "last_error": None if posted.confirmed else "unconfirmed",
            "retry_at": None,
            **_forget_kept(delivery),
        }
        for name, value in values.items():
            setattr(delivery, name, value)
        after_sent = item.after_sent

        async def then(session: AsyncSession) -> None:
            if after_sent is not None:
                await after_sent(session, delivery)

        self._let_go(delivery)
        try:
            async with self._writing:
                mine = await _finish(self.sessions, delivery.id, self.owner, values, then=then)
        except Exception as error:
            logger.warning(
                "%s was posted but recording it failed (%s); it is read back from Slack "
                "before any new post, so it never goes twice",
                item.key,
                type(error).__name__,
            )
        else:
            if not mine:
                logger.warning("%s was taken over while it was being sent", item.key)
        return self._done(Result(item.key, Outcome.sent, channel=posted.channel, ts=posted.ts))

    async def update(self, channel: str, ts: str, message: Message) -> bool:
        """`chat.update` a message the bot sent, with the same pacing and retries."""
        outcome = await self.call(
            "chat.update", channel, {"channel": channel, "ts": ts, **message.arguments()}
        )
        if outcome.error is not None:
            logger.warning("Updating message %s in %s failed: %s", ts, channel, outcome.error)
        return outcome.error is None

    async def call(self, method: str, channel: str, arguments: dict[str, Any]) -> CallOutcome:
        """One Web API call about `channel` (not a post: those go through `deliver`), paced
        and retried."""
        attempt = rate_limited = 0
        while True:
            if self.stopped is not None:
                return CallOutcome(error=self.stopped)
            async with self.pacer.channel(channel):
                await self.pacer.slot(channel)
                self._keep_alive()
                try:
                    response = await self.client.api_call(method, json=arguments)
                except SlackApiError as error:
                    refusal = self._refusal(error)
                except (aiohttp.ClientError, TimeoutError, OSError) as error:
                    refusal = _Failed(f"network: {type(error).__name__}", "transient")
                else:
                    self.pacer.succeeded()
                    data = response.data if isinstance(response.data, dict) else {}
                    return CallOutcome(response=data)
            if refusal.kind == "limited":
                rate_limited += 1
                self.report.rate_limited += 1
                if rate_limited > self.policy.max_rate_limited:
                    return CallOutcome(error="ratelimited")
                self.pacer.hold(refusal.retry_after)
                continue
            if refusal.kind == "token":
                self._stop(refusal.error)
                return CallOutcome(error=refusal.error)
            if refusal.kind != "transient":
                return CallOutcome(
                    error=refusal.error, undeliverable=refusal.kind == "undeliverable"
                )
            attempt += 1
            if attempt >= self.policy.max_attempts:
                return CallOutcome(error=refusal.error)
            self.report.retried += 1
            logger.warning(
                "%s to %s failed (%s); retry %d", method, channel, refusal.error, attempt
            )
            self.pacer.failed(self.policy.backoff)

    def _retry_after(self, error: SlackApiError) -> float:
        raw = error.response.headers.get("Retry-After") or error.response.headers.get("retry-after")
        try:
            return max(0.0, float(raw)) if raw is not None else self.policy.default_retry_after
        except ValueError:
            return self.policy.default_retry_after

    def _stop(self, code: str) -> None:
        """Slack refused the token: send nothing more, and say so once per process."""
        self.stopped = code
        if self.pacer.token_refused != code:
            self.pacer.token_refused = code
            logger.critical(
                "Slack refused the bot token (%s): nothing is sent until SLACK_BOT_TOKEN works "
                "again; the messages stay pending and go out then",
                code,
            )

    # -- recording what came of it

    async def _record(self, item: Outgoing, delivery: Delivery, values: dict[str, Any]) -> bool:
        assert delivery.id is not None
        self._let_go(delivery)
        if values.get("status") in FINAL:
            values = {**values, **_forget_kept(delivery)}
        try:
            async with self._writing:
                return await _finish(self.sessions, delivery.id, self.owner, values)
        except Exception as error:
            logger.warning("Recording %s failed (%s)", item.key, type(error).__name__)
            return False

    async def _hold(
        self, item: Outgoing, delivery: Delivery, code: str, *, unposted: bool = False
    ) -> Result:
        """Give the claim back as if it was never tried, so a later run (or another process)
        sends it."""
        assert delivery.id is not None
        self._let_go(delivery)
        try:
            async with self._writing:
                await _release(self.sessions, self.owner, [delivery.id], code, unposted=unposted)
        except Exception as error:
            logger.warning("Could not give back a claim (%s)", type(error).__name__)
        return self._done(Result(item.key, Outcome.held, error=code))

    async def _put_back(
        self,
        item: Outgoing,
        delivery: Delivery,
        code: str,
        wait: timedelta | None = None,
        *,
        unposted: bool = False,
    ) -> Result:
        """Not sent this time: `failed` until `retry_at`, when any run claims it again."""
        delay = wait or timedelta(
            seconds=max(self.policy.retry_in(delivery.attempts), self.pacer.held_for())
        )
        retry_at = self.clock.now() + delay
        logger.warning("%s not sent (%s); tried again from %s", item.key, code, retry_at)
        values: dict[str, Any] = {
            "status": DeliveryStatus.failed,
            "last_error": code[:200],
            "retry_at": retry_at,
            "claimed_by": None,
        }
        if unposted:
            values["attempted_at"] = None
        await self._record(item, delivery, values)
        return self._done(Result(item.key, Outcome.failed, error=code))

    async def _expire(self, item: Outgoing, delivery: Delivery) -> Result:
        if await self._record(
            item, delivery, {"status": DeliveryStatus.expired, "claimed_by": None}
        ):
            _log_expired(delivery)
        return self._done(Result(item.key, Outcome.expired, error=delivery.last_error))

    async def _undeliverable(self, item: Outgoing, delivery: Delivery, code: str) -> Result:
        await self._record(
            item, delivery, {"status": DeliveryStatus.undeliverable, "last_error": code[:200]}
        )
        logger.info("%s is undeliverable: %s", item.key, code)
        return self._done(Result(item.key, Outcome.undeliverable, error=code))

    def _done(self, result: Result) -> Result:
        self.report.add(result)
        return result


FINAL = (
    DeliveryStatus.sent,
    DeliveryStatus.undeliverable,
    DeliveryStatus.cancelled,
    DeliveryStatus.expired,
)


def _forget_kept(delivery: Delivery) -> dict[str, Any]:
    """A message kept to be sent again (`Fixed`) is no longer needed once the delivery is
    over: its text leaves the table with it."""
    if isinstance((delivery.payload or {}).get("message"), dict):
        return {"payload": None}
    return {}


def _is_delivery(message: dict[str, Any], delivery: Delivery) -> bool:
    """Whether a message read back carries this delivery's metadata."""
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    return (
        isinstance(payload, dict)
        and payload.get("delivery_id") == delivery.id
        and payload.get("kind") == delivery.kind
        and payload.get("period") == delivery.period_key
    )


def queue_for(
    *,
    sessions: SessionFactory,
    client: AsyncWebClient,
    clock: Clock,
    settings: Settings,
    stopping: Stopping | None = None,
) -> DeliveryQueue:
    """A queue on this process's shared pacer for the workspace."""
    return DeliveryQueue(
        sessions=sessions,
        client=client,
        clock=clock,
        pacer=pacer_for(settings),
        stopping=stopping,
    )


def queue_of(services: Services, client: AsyncWebClient) -> DeliveryQueue:
    """`queue_for` a job's or listener's services."""
    return queue_for(
        sessions=services.sessions,
        client=client,
        clock=services.clock,
        settings=services.settings,
        stopping=services.stopping,
    )


# --- the `deliveries` job -------------------------------------------------------------------


async def redeliver(*, services: Services, client: AsyncWebClient) -> Report:
    """Give up what is no longer useful; send again the fixed messages a failure or a crash
    left unsent (their producer, a click or a command, never comes back for them)."""
    now = services.clock.now()
    async with queue_of(services, client) as queue:
        for row in await expire_overdue(sessions=services.sessions, now=now, lease=queue.lease):
            queue.report.add(Result(_key_of(row), Outcome.expired, error=row.last_error))
        async with services.sessions() as session:
            rows = await session.exec(
                select(Delivery)
                .where(_open(now, queue.lease), col(Delivery.payload).is_not(None))
                .order_by(col(Delivery.id))
                .limit(REDELIVER_LIMIT)
            )
            stored = [r for r in rows.all() if isinstance((r.payload or {}).get("message"), dict)]
        for row in stored:
            if queue.stopped is not None or services.stopping.is_set():
                break
            if queue.slack_down() and queue.probed:
                break
            claimed = await claim_due(
                sessions=services.sessions,
                delivery_id=row.id or 0,
                now=now,
                owner=queue.owner,
                lease=queue.lease,
            )
            if claimed is not None:
                message = Message.restored((claimed.payload or {})["message"])
                await queue.send_claimed(Outgoing(_key_of(claimed), Fixed(message)), claimed)
    return queue.report


async def deliveries_job(run: JobRun) -> Report:
    return await redeliver(services=run.services, client=run.client)
