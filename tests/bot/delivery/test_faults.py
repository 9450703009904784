"""The delivery queue against the faults of real Slack and real servers: outages, timeouts,
a database that refuses a write, lost leases, kill -9, SIGTERM and cancellation.

Every test drives the real queue (and, where it says so, the real jobs) against the fake
Slack over HTTP, on SQLite and on PostgreSQL when TEST_DATABASE_URL is set. Minutes of
outage run on virtual time (the clock moves when the queue waits); a timeout, a stop and the
calls in flight are real, and short.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import event, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import delivery
from bot.checkins.model import PROMPT
from bot.cli.jobs import format_status
from bot.client import create_client
from bot.core.calendar import answerable_until
from bot.core.clock import ManualClock
from bot.core.lifecycle import Stopping
from bot.delivery import (
    CLAIM_LEASE,
    EVENT_TYPE,
    DeliveryKey,
    DeliveryQueue,
    Message,
    Outcome,
    Outgoing,
    Pacer,
)
from storage.db import SessionFactory, create_engine, session_factory, writing
from storage.models import Delivery
from tests.bench import faults
from tests.bot.checkins.test_support import (
    VirtualTime,
    add_contract,
    at,
    deliveries,
    on_virtual_time,
    posts_to,
    run_job,
    virtual_time,
)
from tests.bot.cli.test_main import northstar
from tests.fakes import FakeSlack
from tests.harness import Bot, make_settings, running_bot

T0 = datetime(2027, 3, 12, 14, 0, tzinfo=UTC)
LEADERS = ["U0LEAD001", "U0VP00001", "U0PEER001", "U0PEER002", "U0PEER003"]
FRIDAY = "2027-03-12 15:00"


def key(n: int, recipient: str = "U0LEAD001") -> DeliveryKey:
    return DeliveryKey("notice", n, recipient, "2027-W10")


def text(words: str = "Hello") -> delivery.Build:
    return delivery.fixed(Message(text=words))


# --- fixtures: an engine whose writes can be made to fail, queues closed after each test ----


class DatabaseFaults:
    """Make the next write whose SQL holds `marker` fail, as a full disk or a lost server."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.failing: dict[str, int] = {}
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)

    def fail(self, marker: str, times: int = 1) -> None:
        self.failing[marker] = times

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        for marker, left in list(self.failing.items()):
            if left and statement.lstrip().upper().startswith("UPDATE") and marker in statement:
                self.failing[marker] = left - 1
                raise OperationalError(statement[:40], None, Exception("disk I/O error"))


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def db_faults(engine: AsyncEngine) -> DatabaseFaults:
    return DatabaseFaults(engine)


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


@pytest_asyncio.fixture
async def queues() -> AsyncIterator[Callable[..., DeliveryQueue]]:
    """`make(sessions, fake, ...)`: a queue on virtual time (its clock and pacer), closed at
    the end of the test."""
    made: list[DeliveryQueue] = []

    def make(
        sessions: SessionFactory,
        fake: FakeSlack,
        *,
        owner: str = "a",
        time: VirtualTime | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> DeliveryQueue:
        time = time or VirtualTime(ManualClock(T0))
        on_virtual_time(fake, time)
        fake.wall_clock = lambda: time.clock.now().timestamp()
        queue = DeliveryQueue(
            sessions=sessions,
            client=create_client(make_settings(api_url=fake.api_url, database_url="")),
            clock=time.clock,
            pacer=time.pacer(per_minute=600),
            owner=owner,
            timeout=timeout,
            **kwargs,
        )
        made.append(queue)
        return queue

    yield make
    for queue in made:
        await queue.close()


@pytest_asyncio.fixture
async def app(fake_slack: FakeSlack, database_url: str) -> AsyncIterator[Bot]:
    async with running_bot(fake_slack, database_url) as bot:
        yield bot


def dm_messages(fake: FakeSlack, user: str) -> list[dict[str, Any]]:
    return [
        m
        for m in fake.messages.get(fake.dm_id(user), [])
        if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE
    ]


# --- outages delay, never lose --------------------------------------------------------------


async def test_a_30_minute_outage_delays_every_prompt_and_loses_none(app: Bot) -> None:
    time = virtual_time(app.services)
    on_virtual_time(app.fake, time)
    for leader in LEADERS:
        await add_contract(app.sessions, leader=leader)
    app.clock.set(at(FRIDAY, "Europe/Berlin"))
    outage_ends = app.fake.clock() + 30 * 60
    app.fake.outage(seconds=30 * 60, status=503)
    while app.clock.now() < at(FRIDAY, "Europe/Berlin") + timedelta(minutes=40):
        await run_job(app, "checkins")
        await run_job(app, "deliveries")
        app.clock.advance(timedelta(minutes=1))
    for leader in LEADERS:
        assert len(posts_to(app.fake, leader)) == 1, leader
    prompts = await deliveries(app.sessions, PROMPT)
    assert {p.status for p in prompts} == {"sent"} and len(prompts) == len(LEADERS)
    posts = app.fake.calls_to("chat.postMessage")
    assert min(c.at for c in posts if c.status == 200) >= outage_ends
    # Slack down: each run sends one probe (and holds the rest), it does not hammer.
    assert len([c for c in posts if c.status == 503]) <= 2 * 31


async def test_given_up_only_once_useless_logged_once_and_listed_for_the_operator(
    app: Bot, database_url: str, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    time = virtual_time(app.services)
    on_virtual_time(app.fake, time)
    app.fake.outage(seconds=3_600, status=503)
    queue = delivery.queue_of(app.services, app.app.client)
    notice = DeliveryKey("amendment_request", 3, "U0SPON001", "amendment-9")
    until = app.clock.now() + timedelta(minutes=10)
    async with queue:
        result = await queue.deliver(Outgoing(notice, text("Please approve"), expires_at=until))
    assert result.outcome == Outcome.failed
    with caplog.at_level(logging.WARNING, logger="bot.delivery"):
        for _ in range(20):  # twenty minutes of the `deliveries` job, once a minute
            app.clock.advance(timedelta(minutes=1))
            await run_job(app, "deliveries")
    (row,) = await deliveries(app.sessions, "amendment_request")
    assert (row.status, row.payload) == ("expired", None)  # its text left with it
    # Retried while it was useful (after the first 503, each try reads the DM back first).
    assert len([c for c in app.fake.calls if c.status == 503]) >= 10
    gave_up = [r for r in caplog.records if "Gave up" in r.getMessage()]
    assert len(gave_up) == 1 and gave_up[0].levelno == logging.WARNING

    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    if not database_url.startswith("sqlite"):
        env["FEEDBACK_HASH_KEY"] = "a-configured-feedback-key-for-postgresql-tests"
    run = await northstar("jobs", "status", cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    assert "amendment_request to U0SPON001 for amendment-9" in run.out
    given_up = run.out.split("Given up", 1)[1]
    assert "amendment-9" in given_up and "fatal_error" in given_up


def test_the_status_lists_counts_the_oldest_pending_and_the_given_up() -> None:
    pending = Delivery(
        id=1,
        kind="checkin_prompt",
        contract_id=4,
        recipient_id="U1",
        period_key="2027-W10",
        status="failed",
        claimed_at=T0,
        attempted_at=T0 - timedelta(minutes=20),
        expires_at=T0 + timedelta(days=4),
        last_error="fatal_error",
    )
    status = delivery.QueueStatus(
        counts={("checkin_prompt", "failed"): 1, ("checkin_prompt", "sent"): 40},
        oldest=[pending],
        given_up=[],
        given_up_total=0,
    )
    shown = format_status(status)
    assert "checkin_prompt" in shown and "40" in shown
    assert "failed since 2027-03-12 13:40 UTC" in shown and "last error: fatal_error" in shown
    assert shown.rstrip().endswith("none")


def test_a_prompt_is_useful_until_the_end_of_the_tuesday_after_its_week() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    until = answerable_until("2027-W10", berlin)  # 8 to 14 March
    assert until == datetime(2027, 3, 17, 0, 0, tzinfo=berlin).astimezone(UTC)


# --- a timeout never doubles -----------------------------------------------------------------


async def test_a_post_that_timed_out_is_read_back_not_posted_again(
    sessions: SessionFactory, fake_slack: FakeSlack, queues: Callable[..., DeliveryQueue]
) -> None:
    queue = queues(sessions, fake_slack, timeout=0.2)
    fake_slack.stall_after_accepting(seconds=0.6)  # accepted, then slower than the client
    result = await queue.deliver(Outgoing(key(1), text()))
    assert result.outcome == Outcome.sent
    (message,) = dm_messages(fake_slack, "U0LEAD001")
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    (row,) = await deliveries(sessions)
    assert (row.status, row.slack_ts, row.slack_channel) == (
        "sent",
        message["ts"],
        fake_slack.dm_id("U0LEAD001"),
    )
    assert message["metadata"]["event_payload"]["delivery_id"] == row.id
    (history,) = fake_slack.calls_to("conversations.history")
    assert history.args["include_all_metadata"] == "true"
    assert row.attempted_at is not None
    assert float(history.args["oldest"]) <= row.attempted_at.timestamp()
    assert queue.report.found == 1 and queue.report.calls == 1


async def test_a_post_slack_took_whose_record_the_database_refused_is_not_posted_again(
    sessions: SessionFactory,
    fake_slack: FakeSlack,
    queues: Callable[..., DeliveryQueue],
    db_faults: DatabaseFaults,
) -> None:
    time = VirtualTime(ManualClock(T0))
    first = queues(sessions, fake_slack, owner="a", time=time)
    db_faults.fail("sent_at")  # the `sent` mark, after Slack took the message
    assert (await first.deliver(Outgoing(key(1), text()))).outcome == Outcome.sent
    (row,) = await deliveries(sessions)
    assert row.status == "claimed" and row.attempted_at is not None

    time.clock.advance(CLAIM_LEASE + timedelta(seconds=1))  # the first sender is gone
    second = queues(sessions, fake_slack, owner="b", time=time)
    assert (await second.deliver(Outgoing(key(1), text()))).outcome == Outcome.sent
    assert len(dm_messages(fake_slack, "U0LEAD001")) == 1
    assert second.report.calls == 0 and second.report.found == 1
    assert [r.status for r in await deliveries(sessions)] == ["sent"]


async def test_nothing_is_posted_when_the_attempt_cannot_be_recorded(
    sessions: SessionFactory,
    fake_slack: FakeSlack,
    queues: Callable[..., DeliveryQueue],
    db_faults: DatabaseFaults,
) -> None:
    time = VirtualTime(ManualClock(T0))
    queue = queues(sessions, fake_slack, time=time)
    db_faults.fail("attempted_at")  # the disk is full when the attempt is to be recorded
    result = await queue.deliver(Outgoing(key(1), text()))
    assert result.outcome == Outcome.held
    assert fake_slack.calls_to("chat.postMessage") == []
    time.clock.advance(CLAIM_LEASE + timedelta(seconds=1))
    again = queues(sessions, fake_slack, owner="b", time=time)
    assert (await again.deliver(Outgoing(key(1), text()))).outcome == Outcome.sent
    assert len(dm_messages(fake_slack, "U0LEAD001")) == 1


# --- leases of seconds, renewed --------------------------------------------------------------


async def test_a_sender_that_lost_its_claim_does_not_post(
    sessions: SessionFactory, fake_slack: FakeSlack, queues: Callable[..., DeliveryQueue]
) -> None:
    queue = queues(sessions, fake_slack, owner="a")

    async def build(row: Delivery) -> Message:
        async with sessions() as session:  # another sender takes it over meanwhile
            await writing(session)
            await session.exec(
                update(Delivery).where(Delivery.id == row.id).values(claimed_by="b")  # type: ignore[arg-type]
            )
            await session.commit()
        return Message(text="late")

    assert (await queue.deliver(Outgoing(key(1), build))).outcome == Outcome.taken
    assert fake_slack.calls_to("chat.postMessage") == []
    (row,) = await deliveries(sessions)
    assert (row.status, row.claimed_by) == ("claimed", "b")


async def test_claims_stay_renewed_through_a_long_retry_after(
    sessions: SessionFactory, fake_slack: FakeSlack, queues: Callable[..., DeliveryQueue]
) -> None:
    users = ["U0LEAD001", "U0SPON001", "U0HRBP001"]
    items = [Outgoing(key(n, u), text()) for n, u in enumerate(users)]
    stolen: list[DeliveryKey] = []

    class Watched(VirtualTime):
        async def sleep(self, seconds: float) -> None:
            await super().sleep(seconds)
            got = await delivery.claim_many(
                sessions=sessions, keys=[i.key for i in items], now=self.clock.now(), owner="b"
            )
            stolen.extend(got)

    time = Watched(ManualClock(T0))
    queue = queues(sessions, fake_slack, time=time, concurrency=1)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=300)
    report = await queue.deliver_all(items)
    assert report.count(Outcome.sent) == 3 and time.clock.now() - T0 >= timedelta(seconds=300)
    assert stolen == []  # five minutes of waiting, and no claim ever looked abandoned
    assert sorted(c.args["channel"] for c in fake_slack.calls_to("chat.postMessage")[1:]) == sorted(
        users
    )


async def test_kill_9_mid_fan_out_another_process_takes_over_and_nothing_doubles(
    database_url: str,
) -> None:
    row = await faults.measure_fault("kill -9", n=24, rate=120, scale=100, url=database_url)
    assert (row.lost, row.doubled) == (0, 0)
    assert row.takeover is not None


# --- several calls in flight ----------------------------------------------------------------


async def test_posts_overlap_but_never_two_at_once_in_one_channel(
    sessions: SessionFactory, fake_slack: FakeSlack
) -> None:
    people = [f"U0MANY{n:03d}" for n in range(20)]
    for person in people:
        fake_slack.add_user(person, name=person.lower())
    fake_slack.set_latency(0.05)
    queue = DeliveryQueue(
        sessions=sessions,
        client=create_client(make_settings(api_url=fake_slack.api_url, database_url="")),
        clock=ManualClock(T0),
        pacer=Pacer(per_minute=60_000, per_channel=0.01),
    )
    items = [Outgoing(key(1, p), text()) for p in people]
    items += [Outgoing(key(n, f"C{n}"), text(), channel="C0GENERAL1") for n in range(2, 6)]
    async with queue:
        report = await queue.deliver_all(items)
    assert report.count(Outcome.sent) == len(items)
    assert 2 <= fake_slack.most_in_flight["chat.postMessage"] <= delivery.CONCURRENCY
    assert fake_slack.most_in_flight_per_channel == 1
    general = [m for m in fake_slack.messages["C0GENERAL1"] if m.get("metadata")]
    assert len(general) == 4


def test_the_batch_follows_the_measured_call_time() -> None:
    queue = DeliveryQueue(
        sessions=session_factory(create_engine("sqlite+aiosqlite:///:memory:")),
        client=create_client(make_settings(api_url="http://127.0.0.1:9/api/", database_url="")),
        clock=ManualClock(T0),
        pacer=Pacer(per_minute=120),
    )
    assert queue.batch_size(50) == 40  # 20 s (a third of the lease) at 2 a second
    queue.pacer.observe(14.0)  # slow Slack: 16 in flight post 16/14 a second
    assert queue.batch_size(50) == int(20 * 16 / 14)
    queue.pacer.observe(14.0)
    assert queue.batch_size(10) == 10


# --- stop cleanly ---------------------------------------------------------------------------


async def test_a_stop_claims_nothing_more_and_gives_back_what_it_holds(
    sessions: SessionFactory,
    fake_slack: FakeSlack,
    queues: Callable[..., DeliveryQueue],
    caplog: pytest.LogCaptureFixture,
) -> None:
    people = [f"U0STOP{n:03d}" for n in range(12)]
    for person in people:
        fake_slack.add_user(person, name=person.lower())
    fake_slack.set_latency(0.05)
    stopping = Stopping()
    queue = queues(sessions, fake_slack, stopping=stopping, concurrency=1)
    with caplog.at_level(logging.INFO):
        sending = asyncio.create_task(
            queue.deliver_many([Outgoing(key(1, p), text()) for p in people])
        )
        await fake_slack.wait_for("chat.postMessage", count=2)
        stopping.set()
        results = await sending
    sent = [r for r in results if r.outcome == Outcome.sent]
    assert 2 <= len(sent) < len(people)
    assert {r.outcome for r in results} == {Outcome.sent, Outcome.held}
    rows = await deliveries(sessions)
    unsent = [r for r in rows if r.status != "sent"]
    assert unsent and {(r.status, r.claimed_by) for r in unsent} == {("claimed", None)}
    later = await queue.deliver_many([Outgoing(key(2, p), text()) for p in people])
    assert {r.outcome for r in later} == {Outcome.held}
    assert len(await deliveries(sessions)) == len(rows)  # nothing more claimed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_cancelled_fan_out_gives_back_its_claims_without_a_traceback(
    sessions: SessionFactory,
    fake_slack: FakeSlack,
    queues: Callable[..., DeliveryQueue],
    caplog: pytest.LogCaptureFixture,
) -> None:
    people = [f"U0CANC{n:03d}" for n in range(12)]
    for person in people:
        fake_slack.add_user(person, name=person.lower())
    fake_slack.set_latency(0.2)
    time = VirtualTime(ManualClock(T0))
    queue = queues(sessions, fake_slack, time=time)
    with caplog.at_level(logging.INFO):
        sending = asyncio.create_task(
            queue.deliver_many([Outgoing(key(1, p), text()) for p in people])
        )
        await fake_slack.wait_for("chat.postMessage", count=3)
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
    rows = await deliveries(sessions)
    assert {r.claimed_by for r in rows if r.status != "sent"} == {None}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    # Another process takes them at once; a post cut off mid-flight is read back, not doubled.
    await asyncio.sleep(0.3)  # the calls cut off reach the fake
    other = queues(sessions, fake_slack, owner="b", time=time)
    fake_slack.set_latency(None)
    await other.deliver_many([Outgoing(key(1, p), text()) for p in people])
    assert all(len(dm_messages(fake_slack, p)) == 1 for p in people)
