"""Messages the bot sends on its own (prompts, reminders, digests, notices): once, paced, kept.

A delivery is one message of one `kind` to one recipient about one contract (0 for none)
for one period. It is *claimed* in the `delivery` table (unique on those four) before it is
sent and *marked sent* with its Slack channel and ts after, so a job that runs twice, late
or on two replicas sends it once, and a later edit can `chat.update` it in place. A claim
left unsent by a crash is taken over once its lease has run out.

Sending is paced by one `Pacer` per process and workspace: a global rate
(`DELIVERY_RATE_PER_MINUTE`) and about one message a second per channel. The queue owns
Slack's errors instead of slack_sdk's retry handlers, so one clock decides every wait:

- 429: everything this process sends pauses for `Retry-After`, then the message goes again;
- 5xx and network errors: the message is retried with exponential back-off;
- `user_not_found`, `cannot_dm_bot` and kin: the delivery is marked undeliverable and
  the caller's `on_undeliverable` runs (the check-ins tell the contract's owner), no retry;
  so does a `build` that raises `Unreachable` (a deactivated account, which Slack accepts);
- `account_inactive`, `invalid_auth`, `token_revoked` and kin are about the bot's own token,
  not the recipient: the queue stops, logs it once at CRITICAL, and leaves the delivery (and
  all the rest) pending for a later run, as if never tried;
- anything else (a bug such as `invalid_blocks`): marked failed, retried on a later run.

One call is in flight per queue, so no call is ever made while a `Retry-After` runs.
The window between Slack accepting a message and the `sent` mark being committed (a crash
exactly there) is the one place a message can still go twice; it is milliseconds wide.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import and_, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.clock import Clock
from bot.settings import Settings
from storage.db import SessionFactory
from storage.models import Delivery, DeliveryStatus

if TYPE_CHECKING:
    from bot.services import Services

logger = logging.getLogger(__name__)

PROCESS_OWNER = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
CLAIM_LEASE = timedelta(minutes=10)
FAILED_RETRY_AFTER = timedelta(minutes=5)
MAX_CLAIMS = 5
LEASE_RENEWAL = CLAIM_LEASE.total_seconds() / 3
PER_CHANNEL_SECONDS = 1.0
CLOCK_TOLERANCE = 1e-6  # below a microsecond a wait is no wait (and clocks tick in µs)

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

Sleep = Callable[[float], Awaitable[None]]
Monotonic = Callable[[], float]


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


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


async def find(*, session: AsyncSession, key: DeliveryKey) -> Delivery | None:
    return (await session.exec(select(Delivery).where(key.where()))).first()


def _row(key: DeliveryKey, now: datetime, owner: str) -> dict[str, Any]:
    return {
        "kind": key.kind,
        "contract_id": key.contract_id,
        "recipient_id": key.recipient_id,
        "period_key": key.period_key,
        "status": DeliveryStatus.claimed,
        "attempts": 1,
        "claimed_by": owner,
        "claimed_at": now,
    }


def _key_of(row: Any) -> DeliveryKey:
    return DeliveryKey(row.kind, row.contract_id, row.recipient_id, row.period_key)


async def claim_many(
    *,
    sessions: SessionFactory,
    keys: Sequence[DeliveryKey],
    now: datetime,
    owner: str = PROCESS_OWNER,
    lease: timedelta = CLAIM_LEASE,
) -> dict[DeliveryKey, Delivery]:
    """Claim each of `keys` for `owner` in one transaction; the ones this call got.

    A key is not got when it was sent, is claimed by someone alive, or was given up.
    A claim older than `lease` (its sender crashed) is taken over, and so is a failed
    attempt after `FAILED_RETRY_AFTER`, at most `MAX_CLAIMS` times. Claim only what you
    will send well within the lease.
    """
    if not keys:
        return {}
    columns = list(Delivery.__table__.columns)  # type: ignore[attr-defined]
    got: dict[DeliveryKey, Delivery] = {}
    async with sessions() as session:
        inserted = await session.exec(
            _insert(session)(Delivery)
            .values([_row(key, now, owner) for key in keys])
            .on_conflict_do_nothing(
                index_elements=["kind", "contract_id", "recipient_id", "period_key"]
            )
            .returning(*columns)
        )
        for row in inserted.all():
            got[_key_of(row)] = Delivery(**row._mapping)
        for key in keys:
            if key in got:
                continue
            taken = await session.exec(
                update(Delivery)
                .where(
                    key.where(),
                    or_(
                        and_(
                            col(Delivery.status) == DeliveryStatus.claimed,
                            col(Delivery.claimed_at) < now - lease,
                        ),
                        and_(
                            col(Delivery.status) == DeliveryStatus.failed,
                            col(Delivery.claimed_at) < now - FAILED_RETRY_AFTER,
                            col(Delivery.attempts) < MAX_CLAIMS,
                        ),
                    ),
                )
                .values(
                    status=DeliveryStatus.claimed,
                    claimed_by=owner,
                    claimed_at=now,
                    attempts=col(Delivery.attempts) + 1,
                )
                .returning(*columns)
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
) -> Delivery | None:
    """Claim one key (see `claim_many`); None when this call did not get it."""
    got = await claim_many(sessions=sessions, keys=[key], now=now, owner=owner, lease=lease)
    return got.get(key)


async def schedule(
    *,
    session: AsyncSession,
    key: DeliveryKey,
    due_at: datetime,
    payload: dict[str, Any] | None = None,
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
    )
    await session.exec(
        statement.on_conflict_do_update(
            index_elements=["kind", "contract_id", "recipient_id", "period_key"],
            set_={"due_at": due_at},
            where=col(Delivery.status) == DeliveryStatus.scheduled,
        )
    )


async def cancel(*, session: AsyncSession, key: DeliveryKey) -> bool:
    """Cancel a scheduled delivery that has not started; True if there was one. Caller commits."""
    result = await session.exec(
        update(Delivery)
        .where(key.where(), col(Delivery.status) == DeliveryStatus.scheduled)
        .values(status=DeliveryStatus.cancelled)
        .returning(col(Delivery.id))
    )
    return result.scalar_one_or_none() is not None


async def due_scheduled(
    *, sessions: SessionFactory, kind: str, now: datetime, limit: int = 10_000
) -> list[Delivery]:
    """Scheduled deliveries of `kind` whose time has come, oldest first."""
    async with sessions() as session:
        rows = await session.exec(
            select(Delivery)
            .where(
                col(Delivery.kind) == kind,
                col(Delivery.status) == DeliveryStatus.scheduled,
                col(Delivery.due_at) <= now,
            )
            .order_by(col(Delivery.due_at), col(Delivery.id))
            .limit(limit)
        )
        return list(rows.all())


async def claim_due(
    *, sessions: SessionFactory, delivery_id: int, now: datetime, owner: str = PROCESS_OWNER
) -> Delivery | None:
    """Claim one scheduled delivery whose time has come; None if another process was first."""
    async with sessions() as session:
        taken = await session.exec(
            update(Delivery)
            .where(
                col(Delivery.id) == delivery_id,
                col(Delivery.status) == DeliveryStatus.scheduled,
                col(Delivery.due_at) <= now,
            )
            .values(
                status=DeliveryStatus.claimed,
                claimed_by=owner,
                claimed_at=now,
                attempts=col(Delivery.attempts) + 1,
            )
            .returning(col(Delivery.id))
        )
        found = taken.scalar_one_or_none()
        await session.commit()
        return None if found is None else await session.get(Delivery, found)


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


async def _touch(sessions: SessionFactory, delivery_id: int, owner: str, now: datetime) -> None:
    """Renew our claim's lease before a long wait, so nobody takes over a live sender."""
    async with sessions() as session:
        await session.exec(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id, col(Delivery.claimed_by) == owner)
            .values(claimed_at=now)
        )
        await session.commit()


# --- pacing -------------------------------------------------------------------------------


class Pacer:
    """One sender's pace: `per_minute` overall, `per_channel` seconds apart in one channel.

    Slots are handed out in order under a lock; a 429 `hold`s every slot until its
    `Retry-After` has passed. `sleep` and `monotonic` are injectable, so tests never wait.
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
        self._lock = asyncio.Lock()
        self.waited = 0.0
        self.token_refused: str | None = None  # the token error last seen, until a call works

    async def slot(self, channel: str) -> None:
        """Wait until a message to `channel` may go, and take that slot."""
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
                self.waited += at - now
                await self.sleep(at - now)
            self._next = now + self.interval
            self._channels[channel] = now
            if len(self._channels) > 10_000:
                self._forget(now)

    @property
    def per_minute(self) -> float:
        return 60.0 / self.interval

    def hold(self, seconds: float) -> None:
        """Make no call for `seconds` from now (Slack's Retry-After)."""
        self._held_until = max(self._held_until, self.monotonic() + seconds)

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


Build = Callable[[Delivery], Awaitable[Message | None]]
AfterSent = Callable[[AsyncSession, Delivery], Awaitable[None]]
OnUndeliverable = Callable[[Delivery, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One delivery to make.

    `build` runs after the claim, so it sees the state at sending time; returning None
    cancels the delivery. `channel` defaults to the recipient's DM with the bot.
    `after_sent` runs in the transaction that marks it sent (e.g. to schedule a reminder);
    `on_undeliverable` runs once the recipient turned out unreachable.
    """

    key: DeliveryKey
    build: Build
    channel: str | None = None
    after_sent: AfterSent | None = None
    on_undeliverable: OnUndeliverable | None = None


class Outcome(StrEnum):
    sent = "sent"
    taken = "taken"  # already sent, or being sent by someone else
    cancelled = "cancelled"
    undeliverable = "undeliverable"
    failed = "failed"
    held = "held"  # Slack refused the bot's token: left pending, nothing sent


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
    calls: int = 0

    def add(self, result: Result) -> None:
        self.outcomes[result.outcome] = self.outcomes.get(result.outcome, 0) + 1

    def count(self, outcome: Outcome) -> int:
        return self.outcomes.get(outcome, 0)

    def __str__(self) -> str:
        parts = [f"{self.count(o)} {o}" for o in Outcome if self.count(o)]
        parts += [f"{self.rate_limited} rate-limited", f"{self.retried} retried"]
        return ", ".join(parts if self.outcomes else ["nothing due", *parts[-2:]])


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """A Web API call's response, or the error it ended with."""

    response: dict[str, Any] | None = None
    error: str | None = None
    undeliverable: bool = False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one message: back-off for 5xx and network errors, a cap on 429s."""

    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_rate_limited: int = 20
    default_retry_after: float = 1.0

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))


def bare_client(client: AsyncWebClient) -> AsyncWebClient:
    """The same workspace without slack_sdk's retry handlers: the queue owns every retry."""
    return AsyncWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        session=client.session,
        retry_handlers=[],
    )


class DeliveryQueue:
    """Claims, sends and records deliveries one at a time, at the pacer's pace."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        client: AsyncWebClient,
        clock: Clock,
        pacer: Pacer,
        policy: RetryPolicy | None = None,
        owner: str = PROCESS_OWNER,
    ) -> None:
        self.sessions = sessions
        self.client = bare_client(client)
        self.clock = clock
        self.pacer = pacer
        self.policy = policy or RetryPolicy()
        self.owner = owner
        self.report = Report()
        self.stopped: str | None = None  # a token error: nothing more is sent by this queue
        self._http: aiohttp.ClientSession | None = None

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
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.client.timeout)
            )
            self.client.session = self._http

    async def deliver(self, item: Outgoing) -> Result:
        """Claim `item`, build it and send it; what came of it."""
        if self.stopped is not None:
            return self._done(Result(item.key, Outcome.held, error=self.stopped))
        delivery = await claim(
            sessions=self.sessions, key=item.key, now=self.clock.now(), owner=self.owner
        )
        if delivery is None:
            return self._done(Result(item.key, Outcome.taken))
        return await self.send_claimed(item, delivery)

    async def deliver_all(self, items: Iterable[Outgoing], *, batch: int = 1) -> Report:
        """Deliver `items` in order, claiming `batch` of them per transaction."""
        chunk: list[Outgoing] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= batch:
                await self.deliver_many(chunk)
                chunk = []
        await self.deliver_many(chunk)
        return self.report

    async def deliver_many(self, items: Sequence[Outgoing]) -> list[Result]:
        """Claim all of `items` (distinct keys) at once, then send them one by one."""
        if len(items) == 1:
            return [await self.deliver(items[0])]
        got = await claim_many(
            sessions=self.sessions,
            keys=[item.key for item in items],
            now=self.clock.now(),
            owner=self.owner,
        )
        results = []
        for item in items:
            claimed = got.get(item.key)
            if claimed is None:
                results.append(self._done(Result(item.key, Outcome.taken)))
            else:
                results.append(await self.send_claimed(item, claimed))
        return results

    async def send_claimed(self, item: Outgoing, delivery: Delivery) -> Result:
        """Send a delivery this process has claimed (by `claim` or `claim_due`)."""
        assert delivery.id is not None
        if self.stopped is not None:
            return await self._hold(item, delivery, self.stopped)
        try:
            message = await item.build(delivery)
        except Unreachable as unreachable:
            return await self._undeliverable(item, delivery, unreachable.code)
        except Exception:
            logger.exception("Building %s failed", item.key)
            await self._fail(delivery.id, "build_failed")
            return self._done(Result(item.key, Outcome.failed, error="build_failed"))
        if message is None:
            await _finish(
                self.sessions, delivery.id, self.owner, {"status": DeliveryStatus.cancelled}
            )
            return self._done(Result(item.key, Outcome.cancelled))

        target = item.channel or item.key.recipient_id

        async def renew() -> None:
            await _touch(self.sessions, delivery.id or 0, self.owner, self.clock.now())

        outcome = await self.call(
            "chat.postMessage", target, {"channel": target, **message.arguments()}, renew=renew
        )
        if outcome.error is not None:
            if self.stopped is not None:
                return await self._hold(item, delivery, outcome.error)
            if outcome.undeliverable:
                return await self._undeliverable(item, delivery, outcome.error)
            return await self._give_up(item, delivery.id, outcome.error)
        assert outcome.response is not None
        channel, ts = str(outcome.response["channel"]), str(outcome.response["ts"])
        sent = {
            "status": DeliveryStatus.sent,
            "sent_at": self.clock.now(),
            "slack_channel": channel,
            "slack_ts": ts,
            "last_error": None,
        }
        for name, value in sent.items():
            setattr(delivery, name, value)
        after_sent = item.after_sent

        async def then(session: AsyncSession) -> None:
            if after_sent is not None:
                await after_sent(session, delivery)

        mine = await _finish(self.sessions, delivery.id, self.owner, sent, then=then)
        if not mine:
            logger.warning("%s was taken over while it was being sent", item.key)
        return self._done(Result(item.key, Outcome.sent, channel=channel, ts=ts))

    async def update(self, channel: str, ts: str, message: Message) -> bool:
        """`chat.update` a message the bot sent, with the same pacing and retries."""
        outcome = await self.call(
            "chat.update", channel, {"channel": channel, "ts": ts, **message.arguments()}
        )
        if outcome.error is not None:
            logger.warning("Updating message %s in %s failed: %s", ts, channel, outcome.error)
        return outcome.error is None

    async def call(
        self,
        method: str,
        channel: str,
        arguments: dict[str, Any],
        *,
        renew: Callable[[], Awaitable[None]] | None = None,
    ) -> CallOutcome:
        """One Web API call about `channel`, paced and retried; `renew` runs before long waits."""
        attempt = rate_limited = 0
        while True:
            if self.stopped is not None:
                return CallOutcome(error=self.stopped)
            before = self.pacer.monotonic()
            await self.pacer.slot(channel)
            if renew is not None and self.pacer.monotonic() - before > LEASE_RENEWAL:
                await renew()
            self.report.calls += 1
            self._keep_alive()
            try:
                response = await self.client.api_call(method, json=arguments)
            except SlackApiError as error:
                status = error.response.status_code
                code = str(error.response.get("error") or f"http_{status}")
                if status == 429:
                    rate_limited += 1
                    self.report.rate_limited += 1
                    if rate_limited > self.policy.max_rate_limited:
                        return CallOutcome(error="ratelimited")
                    self.pacer.hold(self._retry_after(error))
                    continue
                if code in TOKEN_ERRORS:
                    self._stop(code)
                    return CallOutcome(error=code)
                if code in UNDELIVERABLE_ERRORS:
                    return CallOutcome(error=code, undeliverable=True)
                if status < 500 and code not in TRANSIENT_ERRORS:
                    return CallOutcome(error=code)
                failure = code
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                failure = f"network: {type(error).__name__}"
            else:
                self.pacer.token_refused = None
                return CallOutcome(
                    response=response.data if isinstance(response.data, dict) else {}
                )
            attempt += 1
            if attempt >= self.policy.max_attempts:
                return CallOutcome(error=failure)
            self.report.retried += 1
            logger.warning("%s to %s failed (%s); retry %d", method, channel, failure, attempt)
            await self.pacer.sleep(self.policy.backoff(attempt))
            if renew is not None:
                await renew()

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

    async def _hold(self, item: Outgoing, delivery: Delivery, code: str) -> Result:
        """Give the claim back as if it was never tried, so a later run sends it."""
        assert delivery.id is not None
        values: dict[str, Any] = {
            "attempts": max(0, delivery.attempts - 1),
            "last_error": code[:200],
        }
        if delivery.due_at is not None:  # a scheduled one waits for its time again
            values |= {"status": DeliveryStatus.scheduled, "claimed_at": delivery.due_at}
        else:  # a claim whose lease has already run out: the next claim takes it over
            values["claimed_at"] = delivery.claimed_at - CLAIM_LEASE - timedelta(seconds=1)
        await _finish(self.sessions, delivery.id, self.owner, values)
        return self._done(Result(item.key, Outcome.held, error=code))

    async def _undeliverable(self, item: Outgoing, delivery: Delivery, code: str) -> Result:
        assert delivery.id is not None
        await _finish(
            self.sessions,
            delivery.id,
            self.owner,
            {"status": DeliveryStatus.undeliverable, "last_error": code[:200]},
        )
        logger.info("%s is undeliverable: %s", item.key, code)
        if item.on_undeliverable is not None:
            try:
                await item.on_undeliverable(delivery, code)
            except Exception:
                logger.exception("Telling someone that %s was undeliverable failed", item.key)
        return self._done(Result(item.key, Outcome.undeliverable, error=code))

    async def _give_up(self, item: Outgoing, delivery_id: int, code: str) -> Result:
        logger.warning("Giving up on %s for now: %s", item.key, code)
        await self._fail(delivery_id, code)
        return self._done(Result(item.key, Outcome.failed, error=code))

    async def _fail(self, delivery_id: int, code: str) -> None:
        await _finish(
            self.sessions,
            delivery_id,
            self.owner,
            {
                "status": DeliveryStatus.failed,
                "last_error": code[:200],
                "claimed_at": self.clock.now(),
            },
        )

    def _done(self, result: Result) -> Result:
        self.report.add(result)
        return result


def fixed(message: Message) -> Build:
    """A delivery's message decided before it was claimed."""

    async def build(_: Delivery) -> Message:
        return message

    return build


def queue_for(
    *, sessions: SessionFactory, client: AsyncWebClient, clock: Clock, settings: Settings
) -> DeliveryQueue:
    """A queue on this process's shared pacer for the workspace."""
    return DeliveryQueue(sessions=sessions, client=client, clock=clock, pacer=pacer_for(settings))


def queue_of(services: Services, client: AsyncWebClient) -> DeliveryQueue:
    """`queue_for` a job's or listener's services."""
    return queue_for(
        sessions=services.sessions, client=client, clock=services.clock, settings=services.settings
    )
