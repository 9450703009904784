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
  on PostgreSQL the pause is recorded in `replica_state`, and every sender of every replica
  reads it before its first call and every `PAUSE_READ_EVERY` after, so all pause (a new
  leader too);
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
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.clock import Clock
from bot.core.lifecycle import Stopping
from bot.delivery.calls import NEVER_SENT, CallOutcome, Failed, Posted, bare_client, refusal
from bot.delivery.claims import claim_many, log_expired
from bot.delivery.model import (
    CLAIM_LEASE,
    DEFAULT_USEFUL,
    EVENT_TYPE,
    FAILED_RETRY_AFTER,
    PROCESS_OWNER,
    Fixed,
    Message,
    Outcome,
    Outgoing,
    Report,
    Result,
    Unreachable,
    key_of,
)
from bot.delivery.pacing import Pacer, RetryPolicy, Window, pacer_for
from bot.delivery.readback import Unreadable, read_back
from bot.settings import Settings
from storage.db import SessionFactory
from storage.models import Delivery, DeliveryStatus
from storage.queries import delivery as rows
from storage.queries import replicas as pause_state
from storage.queries.delivery import FINAL

if TYPE_CHECKING:
    from bot.services import Services

logger = logging.getLogger(__name__)

CONCURRENCY = 16
BATCHES_IN_FLIGHT = 3  # a slow post (a timeout) holds its batch open; the next ones go on
DATABASE_DOWN = "database unavailable"
SLACK_DOWN = "slack unavailable"
STOPPING = "stopping"
# How often a sender reads the pause other replicas recorded (a new queue reads it at once).
PAUSE_READ_EVERY = 0.5
# A follower's message handed to the leader: how long to wait for what came of it.
HAND_OVER_WAIT = 10.0
HAND_OVER_POLL = 0.2
HANDED_OVER = "on its way from the leading replica"


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
        leads: Callable[[], bool] | None = None,
    ) -> None:
        """`heartbeat`: real seconds between lease renewals while claims are held (a third
        of the lease by default); pacer waits renew too, on the queue's own clock.
        `timeout`: real seconds a call may take (the client's timeout by default).
        `leads`: whether this replica leads (None: it always does); a follower hands its
        fixed messages to the leader (`_hand_over`)."""
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
        self._window = Window(self.concurrency)
        self._building = asyncio.Semaphore(2 * self.concurrency)  # messages being built
        # The queue's own writes, one at a time: its senders never wait on each other inside
        # the database (SQLite's busy handler sleeps up to 100 ms a turn).
        self._writing = asyncio.Lock()
        self._unreadable_logged = False
        # Replicas share one database (PostgreSQL): a 429 one sees pauses all of them.
        self.shared_pause = _dialect(sessions) == "postgresql"
        self._pause_kept: datetime | None = None
        self._pause_read = float("-inf")  # when the shared pause was last read (pacer's clock)
        self.leads = leads

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
        if self.leads is not None and not self.leads() and all(map(_handed_over, items)):
            return await self._hand_over(items)
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
            await asyncio.shield(
                rows.release(sessions=self.sessions, owner=self.owner, delivery_ids=delivery_ids)
            )
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
                await rows.renew(
                    sessions=self.sessions, owner=self.owner, delivery_ids=list(self._held), now=now
                )
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
            if isinstance(outcome, Posted):
                self._window.widen()
                return await self._sent(item, delivery, outcome)
            if not outcome.slow:
                self._window.narrow()
            maybe_posted = maybe_posted or outcome.maybe_posted
            unposted = not maybe_posted
            if outcome.kind == "limited":
                limited += 1
                self.report.rate_limited += 1
                await self._pause_all(outcome.retry_after)
                if limited > self.policy.max_rate_limited:
                    return await self._put_back(item, delivery, "ratelimited", unposted=unposted)
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
    ) -> Posted | Failed:
        """One go at posting: a slot, a read-back if an earlier post may have landed, the
        claim re-checked, renewed and the attempt recorded, then the post."""
        async with self.pacer.channel(target):
            await self._slot(
                target, while_waiting=self._renew_held, chunk=self.lease.total_seconds() / 3
            )
            if self.stopped is not None or self._stopping():
                return Failed(self.stopped or STOPPING, "stop")
            if read_back:
                found = await self._read_back(delivery, target)
                if found is not None:
                    return found
            try:
                now = self.clock.now()
                if delivery.expires_at is not None and delivery.expires_at <= now:
                    return Failed("expired", "expired")
                if not await self._mark_attempt(delivery, now):
                    return Failed("claim lost", "lost")
            except Exception as error:
                return Failed(type(error).__name__, "db")
            self.report.calls += 1
            self._keep_alive()
            await self._after_pause()
            started = self.pacer.monotonic()
            try:
                response = await self.client.api_call("chat.postMessage", json=arguments)
            except SlackApiError as error:
                return self._refusal(error)
            except NEVER_SENT as error:
                return Failed(f"network: {type(error).__name__}", "transient")
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                return Failed(
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
            return Posted(str(channel) if channel else None, str(ts) if ts else None)

    def _refusal(self, error: SlackApiError) -> Failed:
        return refusal(error, default_retry_after=self.policy.default_retry_after)

    async def _mark_attempt(self, delivery: Delivery, now: datetime) -> bool:
        """The claim re-check before a post, in one statement: still ours and `claimed`;
        renews its lease and records the attempt. False: someone else holds it now."""
        assert delivery.id is not None
        values: dict[str, Any] = {"claimed_at": now}
        if delivery.attempted_at is None:
            values["attempted_at"] = now
        async with self._writing:
            mine = await rows.mark_attempt(
                sessions=self.sessions, delivery_id=delivery.id, owner=self.owner, values=values
            )
        if mine:
            delivery.claimed_at = now
            delivery.attempted_at = delivery.attempted_at or now
        return mine

    async def _read_back(self, delivery: Delivery, target: str) -> Posted | Failed | None:
        """Is the message of an earlier post already in its DM? `Posted` if so (or if the
        DM cannot be read: then it is not posted again), None if not, `Failed` if Slack
        would not say."""
        self.report.read_back += 1
        self._keep_alive()
        found = await read_back(
            self.client, delivery, target, default_retry_after=self.policy.default_retry_after
        )
        if isinstance(found, Unreadable):
            return self._unreadable(delivery, found.why)
        if isinstance(found, Posted):
            self.report.found += 1
        return found

    def _unreadable(self, delivery: Delivery, why: str) -> Posted:
        if not self._unreadable_logged:
            self._unreadable_logged = True
            logger.warning(
                "%s may have been posted and cannot be read back (%s): counted as sent, "
                "never posted twice",
                key_of(delivery),
                why,
            )
        return Posted(delivery.slack_channel, None, confirmed=False)

    async def _sent(self, item: Outgoing, delivery: Delivery, posted: Posted) -> Result:
        assert delivery.id is not None
        values: dict[str, Any] = {
            "status": DeliveryStatus.sent,
            "sent_at": self.clock.now(),
            "slack_channel": posted.channel,
            "slack_ts": posted.ts,
            "last_error": None if posted.confirmed else "unconfirmed",
            "retry_at": None,
            **forget_kept(delivery),
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
                mine = await rows.finish(
                    sessions=self.sessions,
                    delivery_id=delivery.id,
                    owner=self.owner,
                    values=values,
                    then=then,
                )
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
                await self._slot(channel)
                self._keep_alive()
                await self._after_pause()
                try:
                    response = await self.client.api_call(method, json=arguments)
                except SlackApiError as error:
                    refusal = self._refusal(error)
                except (aiohttp.ClientError, TimeoutError, OSError) as error:
                    refusal = Failed(f"network: {type(error).__name__}", "transient")
                else:
                    self.pacer.succeeded()
                    data = response.data if isinstance(response.data, dict) else {}
                    return CallOutcome(response=data)
            if refusal.kind == "limited":
                rate_limited += 1
                self.report.rate_limited += 1
                await self._pause_all(refusal.retry_after)
                if rate_limited > self.policy.max_rate_limited:
                    return CallOutcome(error="ratelimited")
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

    # -- a follower's messages, sent by the leader

    async def _hand_over(self, items: Sequence[Outgoing]) -> list[Result]:
        """Store `items` unclaimed (their message fixed), wake the leader's `deliveries` job
        and wait up to `HAND_OVER_WAIT` seconds for what came of each: only the leader
        sends, at the one pace. What is still on its way then is `held`."""
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
        ids = [row.id for row in got.values() if row.id is not None]
        await rows.release(sessions=self.sessions, owner=self.owner, delivery_ids=ids)
        if ids:
            await pause_state.wake_leader(sessions=self.sessions)
        found: dict[int, Delivery] = {}
        waited = 0.0
        while ids and waited < HAND_OVER_WAIT:
            await asyncio.sleep(HAND_OVER_POLL)
            waited += HAND_OVER_POLL
            found = await pause_state.deliveries_by_id(sessions=self.sessions, ids=ids)
            if all(row.status in FINAL for row in found.values()):
                break
        results = []
        for item in items:
            row = got.get(item.key)
            if row is None:
                results.append(self._done(Result(item.key, Outcome.taken)))
                continue
            now_row = found.get(row.id or 0, row)
            status = now_row.status
            if status == DeliveryStatus.sent:
                results.append(self._done(Result(item.key, Outcome.sent)))
            elif status == DeliveryStatus.undeliverable:
                error = now_row.last_error or ""
                results.append(self._done(Result(item.key, Outcome.undeliverable, error=error)))
                if item.on_undeliverable is not None:
                    try:
                        await item.on_undeliverable(now_row, error)
                    except Exception:
                        logger.exception(
                            "Telling someone that %s was undeliverable failed", item.key
                        )
            elif status in (DeliveryStatus.expired, DeliveryStatus.cancelled):
                results.append(self._done(Result(item.key, Outcome.expired)))
            else:
                results.append(self._done(Result(item.key, Outcome.held, error=HANDED_OVER)))
        return results

    # -- the pause every replica keeps

    async def _slot(self, channel: str, **kwargs: Any) -> None:
        """The pacer's slot for `channel`, and again after a pause another replica recorded
        (a 429 it saw) while this one waited."""
        while True:
            await self.pacer.slot(channel, **kwargs)
            if not await self._paused_elsewhere():
                return

    async def _after_pause(self) -> None:
        """Wait out a pause (a 429) that began after this call's slot was given, while its
        attempt was being recorded: no call goes inside a Retry-After; nor beyond the rate
        (`Pacer.sending`)."""
        await self.pacer.sending()

    async def _paused_elsewhere(self) -> bool:
        """Hold the pacer for a pause recorded by another sender and not yet kept here;
        whether there was one. Only where replicas share the database (PostgreSQL)."""
        if not self.shared_pause:
            return False
        now = self.pacer.monotonic()
        if now - self._pause_read < PAUSE_READ_EVERY:
            return False
        self._pause_read = now
        try:
            until = await pause_state.paused_until(sessions=self.sessions)
        except Exception:
            return False  # the post's own database write says what is wrong
        if until is None or until == self._pause_kept:
            return False
        self._pause_kept = until
        left = (until - self.clock.now()).total_seconds()
        if left <= 0:
            return False
        self.pacer.hold(left)
        return True

    async def _pause_all(self, seconds: float) -> None:
        """A 429: this process pauses for `seconds`, and so does every replica (recorded in
        the database, where a new leader finds it too)."""
        self.pacer.hold(seconds)
        if not self.shared_pause:
            return
        until = self.clock.now() + timedelta(seconds=seconds)
        try:
            await pause_state.pause_until(sessions=self.sessions, until=until)
        except Exception as error:
            logger.warning("Recording a Retry-After for every replica failed: %s", error)
            return
        self._pause_kept = max(until, self._pause_kept) if self._pause_kept else until

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
            values = {**values, **forget_kept(delivery)}
        try:
            async with self._writing:
                return await rows.finish(
                    sessions=self.sessions, delivery_id=delivery.id, owner=self.owner, values=values
                )
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
                await rows.release(
                    sessions=self.sessions,
                    owner=self.owner,
                    delivery_ids=[delivery.id],
                    error=code,
                    unposted=unposted,
                )
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
            log_expired(delivery)
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


def _handed_over(item: Outgoing) -> bool:
    """Whether a follower hands `item` to the leader: a fixed message to a person's DM with
    nothing to run once sent (the leader's `deliveries` job sends exactly that)."""
    return isinstance(item.build, Fixed) and item.after_sent is None and item.channel is None


def _dialect(sessions: SessionFactory) -> str:
    bind = sessions.kw.get("bind")
    return str(getattr(getattr(bind, "dialect", None), "name", "sqlite"))


def forget_kept(delivery: Delivery) -> dict[str, Any]:
    """A message kept to be sent again (`Fixed`) is no longer needed once the delivery is
    over: its text leaves the table with it."""
    if isinstance((delivery.payload or {}).get("message"), dict):
        return {"payload": None}
    return {}


def queue_for(
    *,
    sessions: SessionFactory,
    client: AsyncWebClient,
    clock: Clock,
    settings: Settings,
    stopping: Stopping | None = None,
    leads: Callable[[], bool] | None = None,
) -> DeliveryQueue:
    """A queue on this process's shared pacer for the workspace."""
    return DeliveryQueue(
        sessions=sessions,
        client=client,
        clock=clock,
        pacer=pacer_for(settings),
        stopping=stopping,
        leads=leads,
    )


def queue_of(services: Services, client: AsyncWebClient) -> DeliveryQueue:
    """`queue_for` a job's or listener's services."""
    return queue_for(
        sessions=services.sessions,
        client=client,
        clock=services.clock,
        settings=services.settings,
        stopping=services.stopping,
        leads=services.leads,
    )
