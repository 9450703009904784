"""The delivery machinery: claims and leases, pacing, and Slack's 429, 5xx and dead accounts.

Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set; the pacer runs on a
manual clock, so a Retry-After of 30 s costs nothing.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot import delivery
from bot.client import create_client
from bot.core.clock import ManualClock
from bot.delivery import (
    CLAIM_LEASE,
    FAILED_RETRY_AFTER,
    DeliveryKey,
    DeliveryQueue,
    Message,
    Outcome,
    Outgoing,
    RetryPolicy,
)
from bot.delivery.pacing import CATCH_UP_SECONDS, WINDOW_SECONDS, Pacer
from bot.settings import SettingsError, load_settings
from storage.db import SessionFactory, writing
from storage.models import Delivery
from storage.queries.delivery import finish
from tests.bot.checkins.test_support import VirtualTime, deliveries, on_virtual_time
from tests.fakes import FakeSlack
from tests.fakes.slack_api import _Reply
from tests.harness import make_settings

T0 = datetime(2027, 3, 12, 14, 0, tzinfo=UTC)
KEY = DeliveryKey("checkin_prompt", 7, "U0LEAD001", "2027-W10")


def key(n: int, recipient: str = "U0LEAD001") -> DeliveryKey:
    return DeliveryKey("notice", n, recipient, "2027-W10")


# --- claims -------------------------------------------------------------------------------


async def test_a_key_is_claimed_once(sessions: SessionFactory) -> None:
    first = await delivery.claim(sessions=sessions, key=KEY, now=T0, owner="a")
    assert first is not None and first.status == "claimed" and first.claimed_by == "a"
    assert await delivery.claim(sessions=sessions, key=KEY, now=T0, owner="b") is None


async def test_concurrent_claims_have_one_winner(sessions: SessionFactory) -> None:
    won = await asyncio.gather(
        *(delivery.claim(sessions=sessions, key=KEY, now=T0, owner=f"w{n}") for n in range(20))
    )
    assert len([w for w in won if w is not None]) == 1
    assert len(await deliveries(sessions)) == 1


async def test_a_stale_claim_is_taken_over_after_its_lease(sessions: SessionFactory) -> None:
    await delivery.claim(sessions=sessions, key=KEY, now=T0, owner="crashed")
    almost = T0 + CLAIM_LEASE - timedelta(seconds=1)
    assert await delivery.claim(sessions=sessions, key=KEY, now=almost, owner="b") is None
    later = T0 + CLAIM_LEASE + timedelta(seconds=1)
    taken = await delivery.claim(sessions=sessions, key=KEY, now=later, owner="b")
    assert taken is not None and taken.claimed_by == "b" and taken.attempts == 2
    assert await delivery.claim(sessions=sessions, key=KEY, now=later, owner="c") is None


async def test_sent_and_undeliverable_are_never_claimed_again(sessions: SessionFactory) -> None:
    for status, n in (("sent", 1), ("undeliverable", 2), ("cancelled", 3)):
        claimed = await delivery.claim(sessions=sessions, key=key(n), now=T0, owner="a")
        assert claimed is not None
        await finish(
            sessions=sessions, delivery_id=claimed.id or 0, owner="a", values={"status": status}
        )
        far = T0 + timedelta(days=30)
        assert await delivery.claim(sessions=sessions, key=key(n), now=far, owner="b") is None


async def test_a_failed_delivery_is_retried_from_its_retry_time_until_it_expires(
    sessions: SessionFactory,
) -> None:
    until = T0 + timedelta(hours=2)
    now, attempt = T0, 0
    while now < until:  # no cap on claims (24 here): only its useful time ends it
        attempt += 1
        claimed = await delivery.claim(
            sessions=sessions, key=KEY, now=now, owner="a", expires_at=until
        )
        assert claimed is not None and claimed.attempts == attempt
        assert claimed.expires_at == until
        retry_at = now + FAILED_RETRY_AFTER
        await finish(
            sessions=sessions,
            delivery_id=claimed.id or 0,
            owner="a",
            values={"status": "failed", "retry_at": retry_at},
        )
        almost = retry_at - timedelta(seconds=1)
        assert await delivery.claim(sessions=sessions, key=KEY, now=almost, owner="a") is None
        now = retry_at
    assert attempt == 24
    assert await delivery.claim(sessions=sessions, key=KEY, now=now, owner="a") is None


async def test_finishing_someone_elses_claim_changes_nothing(sessions: SessionFactory) -> None:
    claimed = await delivery.claim(sessions=sessions, key=KEY, now=T0, owner="a")
    assert claimed is not None
    assert not await finish(
        sessions=sessions, delivery_id=claimed.id or 0, owner="b", values={"status": "sent"}
    )
    assert (await deliveries(sessions))[0].status == "claimed"


async def test_scheduled_deliveries_move_cancel_and_claim_once(sessions: SessionFactory) -> None:
    reminder = DeliveryKey("checkin_reminder", 7, "U0LEAD001", "2027-W10")
    async with sessions() as session:
        await writing(session)
        await delivery.schedule(session=session, key=reminder, due_at=T0 + timedelta(hours=24))
        await delivery.schedule(session=session, key=reminder, due_at=T0 + timedelta(hours=30))
        await session.commit()
    assert await delivery.due_scheduled(sessions=sessions, kind=reminder.kind, now=T0) == []
    due_time = T0 + timedelta(hours=30)
    (row,) = await delivery.due_scheduled(sessions=sessions, kind=reminder.kind, now=due_time)
    claims = await asyncio.gather(
        *(
            delivery.claim_due(sessions=sessions, delivery_id=row.id or 0, now=due_time, owner=o)
            for o in ("a", "b", "c")
        )
    )
    assert len([c for c in claims if c is not None]) == 1
    async with sessions() as session:  # too late to move or cancel: it is being sent
        await writing(session)
        await delivery.schedule(session=session, key=reminder, due_at=T0)
        assert not await delivery.cancel(session=session, key=reminder)
        await session.commit()
    (stored,) = await deliveries(sessions)
    assert (stored.status, stored.due_at) == ("claimed", due_time)

    other = DeliveryKey("checkin_reminder", 8, "U0LEAD001", "2027-W10")
    async with sessions() as session:
        await writing(session)
        await delivery.schedule(session=session, key=other, due_at=T0)
        assert await delivery.cancel(session=session, key=other)
        await session.commit()
    assert await delivery.due_scheduled(sessions=sessions, kind=other.kind, now=due_time) == []


# --- pacing -------------------------------------------------------------------------------


async def test_the_pacer_keeps_a_global_rate_and_a_second_per_channel() -> None:
    time = VirtualTime(ManualClock(T0))
    pacer = time.pacer(per_minute=120)  # one every 0.5 s
    granted = []
    for channel in ["A", "B", "C", "A", "A"]:
        await pacer.slot(channel)
        granted.append(round(time.monotonic() - T0.timestamp(), 3))
    assert granted == [0.0, 0.5, 1.0, 1.5, 2.5]


def most_within(times: list[float], window: float) -> int:
    start, most = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window - 1e-9:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_time_a_busy_process_loses_is_made_up_within_the_rate() -> None:
    """Waking late on every slot, or a stall before one, does not stretch the pace: the
    calls after it catch up, at most twice as fast, and no window holds more than the
    rate's share."""
    time = VirtualTime(ManualClock(T0))
    late = 0.004  # every wake-up 4 ms after the slot it slept for; the interval is 50 ms

    async def oversleep(seconds: float) -> None:
        await time.sleep(seconds + late)

    pacer = Pacer(per_minute=1_200, per_channel=0, monotonic=time.monotonic, sleep=oversleep)
    granted = []
    for n in range(600):
        if n in (100, 300):
            await time.sleep(0.8)  # the loop was busy elsewhere for 0.8 s
        await pacer.slot(f"C{n}")
        await pacer.sending()
        granted.append(time.monotonic())
    assert granted[-1] - granted[0] == pytest.approx(599 * 0.05, abs=0.06)
    assert most_within(granted, WINDOW_SECONDS) <= 1_200 * WINDOW_SECONDS / 60
    assert min(b - a for a, b in itertools.pairwise(granted)) >= 0.025 - 1e-3


async def test_a_long_pause_is_not_made_up_and_an_idle_pacer_starts_at_the_pace() -> None:
    time = VirtualTime(ManualClock(T0))
    pacer = time.pacer(per_minute=1_200)
    for n in range(10):
        await pacer.slot(f"A{n}")
        await pacer.sending()
    await time.sleep(60)  # nothing to send for a minute
    first = time.monotonic()
    for n in range(10):
        await pacer.slot(f"B{n}")
        await pacer.sending()
    assert time.monotonic() - first == pytest.approx(9 * 0.05, abs=1e-3)

    await time.sleep(5.0)  # a stall longer than CATCH_UP_SECONDS, in the middle of sending
    stalled = time.monotonic()
    for n in range(100):
        await pacer.slot(f"C{n}")
        await pacer.sending()
    caught_up = time.monotonic() - stalled
    assert caught_up >= 99 * 0.05 - CATCH_UP_SECONDS - 1e-3


async def test_a_hold_stops_every_slot_until_it_ends() -> None:
    time = VirtualTime(ManualClock(T0))
    pacer = time.pacer(per_minute=60_000)
    await pacer.slot("A")
    pacer.hold(30)
    await pacer.slot("B")
    assert time.monotonic() - T0.timestamp() == pytest.approx(30)


def test_the_global_rate_is_a_setting() -> None:
    assert load_settings({}, env_file=None).delivery_rate_per_minute == 120
    assert (
        load_settings({"DELIVERY_RATE_PER_MINUTE": "600"}, env_file=None).delivery_rate_per_minute
        == 600
    )
    for bad in ("0", "-5", "fast", "100001"):
        with pytest.raises(SettingsError, match="DELIVERY_RATE_PER_MINUTE must be a whole number"):
            load_settings({"DELIVERY_RATE_PER_MINUTE": bad}, env_file=None)


def test_the_queue_owns_retries_and_the_app_client_keeps_its_own() -> None:
    app_client = create_client(make_settings(api_url="http://127.0.0.1:9/api/", database_url=""))
    assert len(app_client.retry_handlers) == 3
    bare = delivery.bare_client(app_client)
    assert bare.retry_handlers == [] and bare.base_url == app_client.base_url
    assert bare.token == app_client.token


# --- sending ------------------------------------------------------------------------------


def fixed(text: str = "Hello") -> delivery.Build:
    async def build(_: Delivery) -> Message:
        return Message(text=text)

    return build


OPENED: list[DeliveryQueue] = []


@pytest.fixture(autouse=True)
async def close_queues() -> AsyncIterator[None]:
    """Close the HTTP sessions the queues of a test kept alive."""
    yield
    while OPENED:
        await OPENED.pop().close()


def make_queue(
    sessions: SessionFactory,
    fake: FakeSlack,
    *,
    per_minute: float = 60,
    policy: RetryPolicy | None = None,
    client: AsyncWebClient | None = None,
    concurrency: int = 1,
) -> tuple[DeliveryQueue, VirtualTime]:
    """A queue on virtual time. One call in flight by default: the fake stamps a call with
    the virtual time it arrives at, which is when the pacer let it go only while no other
    sender moves the clock meanwhile (tests/bot/test_delivery_faults.py runs several)."""
    clock = ManualClock(T0)
    time = VirtualTime(clock)
    on_virtual_time(fake, time)
    settings = make_settings(api_url=fake.api_url, database_url="")
    queue = DeliveryQueue(
        sessions=sessions,
        client=client or create_client(settings),
        clock=clock,
        pacer=time.pacer(per_minute),
        policy=policy,
        owner="test",
        concurrency=concurrency,
    )
    OPENED.append(queue)
    return queue, time


async def test_messages_go_out_paced_and_are_recorded(
    sessions: SessionFactory, fake_slack: FakeSlack
) -> None:
    queue, time = make_queue(sessions, fake_slack, per_minute=60)
    people = ["U0LEAD001", "U0SPON001", "U0HRBP001", "U0VP00001"]
    report = await queue.deliver_all(Outgoing(key(n, u), fixed()) for n, u in enumerate(people))
    assert report.count(Outcome.sent) == 4
    calls = fake_slack.calls_to("chat.postMessage")
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert all(gap >= 1.0 - 1e-6 for gap in gaps)
    assert time.clock.now() - T0 >= timedelta(seconds=3)
    rows = await deliveries(sessions)
    assert {(r.status, r.slack_channel) for r in rows} == {
        ("sent", fake_slack.dm_id(u)) for u in people
    }
    assert all(r.slack_ts for r in rows)


async def test_a_429_waits_out_retry_after_then_goes_on(
    sessions: SessionFactory, fake_slack: FakeSlack, retry_after_in_body: None
) -> None:
    queue, _ = make_queue(sessions, fake_slack, per_minute=60_000)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=30, times=2)
    users = ["U0LEAD001", "U0SPON001", "U0HRBP001"]
    report = await queue.deliver_all(Outgoing(key(n, u), fixed()) for n, u in enumerate(users))
    assert report.count(Outcome.sent) == 3 and report.rate_limited == 2
    calls = fake_slack.calls_to("chat.postMessage")
    assert [c.status for c in calls] == [429, 429, 200, 200, 200]
    assert early_calls(calls) == 0
    assert calls[2].at - calls[0].at >= 60 - 1e-6
    assert [r.status for r in await deliveries(sessions)] == ["sent"] * 3


def early_calls(calls: list) -> int:
    """Calls made while an earlier 429's Retry-After was still running."""
    early, until = 0, float("-inf")
    for call in calls:
        if call.at < until - 1e-6:
            early += 1
        if call.status == 429:
            until = max(until, call.at + float(call.response.get("retry_after", 0) or 0))
    return early


@pytest.fixture
def retry_after_in_body(fake_slack: FakeSlack) -> None:
    """Record each 429's Retry-After in the recorded response, for `early_calls`."""
    original = fake_slack._take_failure

    def take(method: str):
        reply = original(method)
        if reply is not None and reply.status == 429:
            reply.body["retry_after"] = reply.headers["Retry-After"]
        return reply

    fake_slack._take_failure = take  # type: ignore[method-assign]


async def test_no_call_is_made_before_retry_after_has_passed(
    sessions: SessionFactory, fake_slack: FakeSlack, retry_after_in_body: None
) -> None:
    queue, _ = make_queue(sessions, fake_slack, per_minute=60_000)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=7, times=1)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=3, times=1)
    users = [u for u in fake_slack.users if u != fake_slack.bot_user_id][:6]
    report = await queue.deliver_all(Outgoing(key(n, u), fixed()) for n, u in enumerate(users))
    calls = fake_slack.calls_to("chat.postMessage")
    assert report.rate_limited == 2 and report.count(Outcome.sent) == 6
    assert early_calls(calls) == 0
    assert calls[1].at - calls[0].at == pytest.approx(7, abs=1e-3)
    assert calls[2].at - calls[1].at == pytest.approx(3, abs=1e-3)


async def test_5xx_is_retried_with_back_off(
    sessions: SessionFactory, fake_slack: FakeSlack
) -> None:
    queue, time = make_queue(sessions, fake_slack)
    fake_slack.fail_next("chat.postMessage", status=503, times=2)
    fake_slack.fail_next("chat.postMessage", status=200, error="internal_error")
    result = await queue.deliver(Outgoing(KEY, fixed()))
    assert result.outcome == Outcome.sent
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [503, 503, 200, 200]
    assert time.sleeps[:3] == [1.0, 2.0, 4.0]
    assert queue.report.retried == 3


async def test_endless_5xx_puts_it_back_for_now_and_a_later_run_sends_it(
    sessions: SessionFactory, fake_slack: FakeSlack
) -> None:
    queue, time = make_queue(sessions, fake_slack, policy=RetryPolicy(outage_after=10))
    fake_slack.fail_next("chat.postMessage", status=500, times=50)
    result = await queue.deliver(Outgoing(KEY, fixed()))
    assert result.outcome == Outcome.failed  # every call failed for 10 s: Slack is down
    (row,) = await deliveries(sessions)
    assert (row.status, row.last_error, row.claimed_by) == ("failed", "fatal_error", None)
    assert row.retry_at is not None and row.retry_at > time.clock.now()
    assert (await queue.deliver(Outgoing(KEY, fixed()))).outcome == Outcome.taken
    fake_slack.reset()  # Slack is back
    time.clock.set(row.retry_at)
    again, _ = make_queue(sessions, fake_slack)
    again.clock = time.clock
    assert (await again.deliver(Outgoing(KEY, fixed()))).outcome == Outcome.sent
    assert len([c for c in fake_slack.calls_to("chat.postMessage") if c.status == 200]) == 1


async def test_a_message_failing_alone_is_put_back_after_a_few_tries(
    sessions: SessionFactory, fake_slack: FakeSlack
) -> None:
    queue, _ = make_queue(sessions, fake_slack, policy=RetryPolicy(max_attempts=2))
    original = fake_slack._dispatch

    def poisoned(method: str, args: dict[str, Any], token: str | None) -> _Reply:
        if method == "chat.postMessage" and args.get("channel") == "U0LEAD001":
            return _Reply(200, {"ok": False, "error": "internal_error"})
        return original(method, args, token)

    fake_slack._dispatch = poisoned  # type: ignore[method-assign]
    users = ["U0LEAD001", "U0SPON001", "U0HRBP001"]
    report = await queue.deliver_all(Outgoing(key(n, u), fixed()) for n, u in enumerate(users))
    assert report.count(Outcome.sent) == 2 and report.count(Outcome.failed) == 1
    failed = [r for r in await deliveries(sessions) if r.status == "failed"]
    assert [(r.recipient_id, r.last_error) for r in failed] == [("U0LEAD001", "internal_error")]


async def test_network_errors_are_retried_then_put_back(sessions: SessionFactory) -> None:
    clock = ManualClock(T0)
    time = VirtualTime(clock)
    unreachable = create_client(make_settings(api_url="http://127.0.0.1:9/api/", database_url=""))
    queue = DeliveryQueue(
        sessions=sessions,
        client=unreachable,
        clock=clock,
        pacer=time.pacer(),
        policy=RetryPolicy(outage_after=5),
    )
    OPENED.append(queue)
    result = await queue.deliver(Outgoing(KEY, fixed()))
    assert result.outcome == Outcome.failed and (result.error or "").startswith("network: ")
    assert time.sleeps == [1.0, 2.0, 4.0]  # every sender paused, longer each time
    assert queue.report.calls == 4 and queue.report.read_back == 0  # nothing reached Slack
    (row,) = await deliveries(sessions)
    assert row.status == "failed" and row.attempted_at is None


@pytest.mark.parametrize("error", ["user_not_found", "cannot_dm_bot"])
async def test_an_unreachable_person_is_marked_and_not_retried(
    sessions: SessionFactory, fake_slack: FakeSlack, error: str
) -> None:
    queue, _ = make_queue(sessions, fake_slack)
    fake_slack.fail_next("chat.postMessage", status=200, error=error)
    told: list[tuple[str, str]] = []

    async def tell(failed: Delivery, code: str) -> None:
        told.append((failed.recipient_id, code))

    result = await queue.deliver(Outgoing(KEY, fixed(), on_undeliverable=tell))
    assert result.outcome == Outcome.undeliverable
    assert told == [("U0LEAD001", error)]
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    (row,) = await deliveries(sessions)
    assert (row.status, row.last_error) == ("undeliverable", error)
    assert (await queue.deliver(Outgoing(KEY, fixed(), on_undeliverable=tell))).outcome == "taken"


async def test_a_build_that_returns_nothing_cancels(
    sessions: SessionFactory, fake_slack: FakeSlack
) -> None:
    queue, _ = make_queue(sessions, fake_slack)

    async def nothing(_: Delivery) -> None:
        return None

    assert (await queue.deliver(Outgoing(KEY, nothing))).outcome == Outcome.cancelled
    assert fake_slack.calls_to("chat.postMessage") == []
    assert [r.status for r in await deliveries(sessions)] == ["cancelled"]


class Crash(BaseException):
    """Something below the queue blows up (kill -9 is tests/bot/test_delivery_faults.py's)."""


async def test_a_fan_out_that_blows_up_gives_back_what_it_had_not_sent(
    sessions: SessionFactory, fake_slack: FakeSlack
) -> None:
    users = [f"U0FAN{n:04d}" for n in range(10)]
    for user in users:
        fake_slack.add_user(user, name=user.lower())
    queue, time = make_queue(sessions, fake_slack, per_minute=6_000)
    crash_on = {"U0FAN0004"}

    def items() -> list[Outgoing]:
        def build_for(user: str) -> delivery.Build:
            async def build(_: Delivery) -> Message:
                if user in crash_on:
                    raise Crash
                return Message(text=f"hi {user}")

            return build

        return [Outgoing(key(1, u), build_for(u)) for u in users]

    with pytest.raises(Crash):
        await queue.deliver_all(items())
    before = len(fake_slack.calls_to("chat.postMessage"))
    rows = await deliveries(sessions)
    assert len([r for r in rows if r.status == "sent"]) == before < len(users)
    left = [r for r in rows if r.status != "sent"]
    assert {(r.status, r.claimed_by) for r in left} == {("claimed", None)}  # given back at once
    crash_on.clear()

    restarted, _ = make_queue(sessions, fake_slack, per_minute=6_000)
    restarted.owner = "restarted"
    restarted.clock = time.clock
    report = await restarted.deliver_all(items())
    assert report.count(Outcome.sent) == len(users) - before
    assert report.count(Outcome.taken) == before
    posted = [c.args["channel"] for c in fake_slack.calls_to("chat.postMessage")]
    assert sorted(posted) == sorted(users)
    assert {r.status for r in await deliveries(sessions)} == {"sent"}


async def test_updates_in_place_survive_429_and_5xx(
    sessions: SessionFactory, fake_slack: FakeSlack
) -> None:
    queue, time = make_queue(sessions, fake_slack)
    await queue.deliver(Outgoing(KEY, fixed("before")))
    (row,) = await deliveries(sessions)
    fake_slack.fail_next("chat.update", status=429, retry_after=5)
    fake_slack.fail_next("chat.update", status=502)
    ok = await queue.update(row.slack_channel or "", row.slack_ts or "", Message(text="after"))
    assert ok
    assert fake_slack.messages[row.slack_channel or ""][0]["text"] == "after"
    assert [c.status for c in fake_slack.calls_to("chat.update")] == [429, 502, 200]
    assert 5 <= time.clock.now().timestamp() - T0.timestamp() < 60
    assert not await queue.update(row.slack_channel or "", "1.000", Message(text="x"))


async def test_calls_that_bunch_up_after_their_slots_go_out_spread() -> None:
    """Slots given on time, then held up together (a slow database write), still go out
    half an interval apart and within the window's share."""
    time = VirtualTime(ManualClock(T0))
    pacer = time.pacer(per_minute=1_200)
    slots = []
    for n in range(300):
        await pacer.slot(f"C{n}")
        slots.append(n)
    await time.sleep(1.0)  # all of them held up before their call
    sent = []
    for _ in slots:
        await pacer.sending()
        sent.append(time.monotonic())
    assert min(b - a for a, b in itertools.pairwise(sent)) >= 0.025 - 1e-3
    assert most_within(sent, WINDOW_SECONDS) <= 1_200 * WINDOW_SECONDS / 60
