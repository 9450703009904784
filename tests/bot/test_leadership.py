"""Replicas share one pace: one leader (a PostgreSQL advisory lock) runs the jobs and sends,
a killed leader is replaced within a few polls and its fan-out goes on with nothing lost or
doubled, and a 429 one sender sees pauses every sender. On SQLite the process always leads.

The replicas here share the test's event loop, each with its own engine and lock
connection; tests/bot/test_replicas_processes.py runs them as real `northstar run`
processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import asyncpg
import pytest

from bot.checkins.jobs import send_prompts
from bot.checkins.model import PROMPT
from bot.client import create_client
from bot.core.clock import ManualClock, SystemClock
from bot.delivery import (
    DeliveryKey,
    DeliveryQueue,
    Message,
    Outcome,
    Outgoing,
    Pacer,
    RetryPolicy,
    fixed,
)
from bot.delivery.jobs import deliveries_job
from bot.delivery.queue import queue_of
from bot.leadership import Leadership, Role, leader_status
from bot.scheduler import Job, JobRun, Scheduler
from bot.services import Services
from storage.db import SessionFactory, create_engine, session_factory
from storage.queries import replicas as replica_rows
from tests.bot.checkins.test_support import VirtualTime, add_contract, at, deliveries
from tests.conftest import ReplicaQueue
from tests.fakes import FakeSlack
from tests.harness import make_settings

POLL = 0.2
WAIT = 30.0  # the most any wait for a leader or the last post may take: a failure past it


@dataclass
class Member:
    """A replica: its leadership, its scheduler and what its job did."""

    name: str
    leadership: Leadership
    sessions: SessionFactory
    runs: list[str] = field(default_factory=list)
    scheduler: Scheduler | None = None
    changes: list[Role] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.leadership.on_change(self.changes.append)


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(int(WAIT / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    assert condition(), what


@contextlib.asynccontextmanager
async def members(url: str, names: list[str]) -> AsyncIterator[list[Member]]:
    engines = [create_engine(url) for _ in names]
    group = [
        Member(
            name=name,
            sessions=session_factory(engine),
            leadership=Leadership(
                url=url,
                sessions=session_factory(engine),
                clock=ManualClock(at("2027-03-12 15:30", "Europe/Berlin")),
                poll_seconds=POLL,
                owner=f"replica-{name}",
            ),
        )
        for name, engine in zip(names, engines, strict=True)
    ]
    try:
        yield group
    finally:
        for member in group:
            if member.scheduler is not None:
                await member.scheduler.stop(1.0)
            await member.leadership.stop()
        for engine in engines:
            await engine.dispose()


def leaders(group: list[Member]) -> list[Member]:
    return [m for m in group if m.leadership.is_leader]


async def kill_lock_connection(url: str) -> int:
    """End the leader's lock connection from outside, as a dead process or network does."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            pid = await replica_rows.lock_holder_pid(session=session)
    finally:
        await engine.dispose()
    assert pid is not None
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    return pid


async def test_on_sqlite_the_process_always_leads(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        leadership = Leadership(
            url=sqlite_url,
            sessions=session_factory(engine),
            clock=ManualClock(at("2027-03-12 15:30")),
            poll_seconds=POLL,
        )
        await leadership.start()
        assert leadership.role == Role.leader and leadership.elected.is_set()
        async with session_factory(engine)() as session:
            status = await leader_status(session=session, now=at("2027-03-12 15:30"))
        assert "always the leader" in status
        await leadership.stop()
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_three_replicas_elect_one_leader_and_replace_it_when_it_dies(
    postgres_url: str,
) -> None:
    async with members(postgres_url, ["a", "b", "c"]) as group:
        for member in group:
            await member.leadership.start()
        (first,) = leaders(group)
        async with group[0].sessions() as session:
            status = await leader_status(session=session, now=at("2027-03-12 15:30"))
        assert f"leader replica-{first.name}" in status, status

        killed = await kill_lock_connection(postgres_url)
        await until(lambda: Role.follower in first.changes, "the old leader steps down")
        await until(lambda: len(leaders(group)) == 1, "a replica takes over")
        (second,) = leaders(group)
        async with group[0].sessions() as session:
            state = await replica_rows.state(session=session)
            holder = await replica_rows.lock_holder_pid(session=session)
        assert state is not None and state.leader == f"replica-{second.name}"
        assert holder is not None and holder != killed  # a new connection holds the lock
        # The others try again every poll; the lock stays where it is.
        await asyncio.sleep(3 * POLL)
        assert leaders(group) == [second]


async def fan_out(
    postgres_url: str,
    fake_slack: FakeSlack,
    replica_queue: ReplicaQueue,
    *,
    per_minute: float,
    kill_after: int | None,
) -> tuple[list[Member], list[str]]:
    """Three replicas, each with its scheduler and a `checkins` job that sends the prompts
    through its own queue (owner `replica-<name>`); the leader's lock connection is ended
    after `kill_after` posts. The replicas and the leaders."""
    people = [f"U0FAN{n:04d}" for n in range(60)]
    for user in people:
        fake_slack.add_user(user, name=user.lower(), tz="Europe/Berlin")
    clock = ManualClock(at("2027-03-12 15:30", "Europe/Berlin"))
    fake_slack.wall_clock = lambda: clock.now().timestamp()  # messages dated as the bot sees
    engine = create_engine(postgres_url)
    for user in people:
        await add_contract(session_factory(engine), leader=user, owner=None)
    await engine.dispose()

    def sent() -> int:
        return sum(1 for c in fake_slack.calls_to("chat.postMessage") if c.response.get("ok"))

    async with contextlib.AsyncExitStack() as stack:
        group = await stack.enter_async_context(members(postgres_url, ["a", "b", "c"]))
        for member in group:
            replica = await stack.enter_async_context(replica_queue(member.name, clock))

            def job(member: Member = member, queue: DeliveryQueue = replica.queue) -> Job:
                async def run(run: JobRun) -> object:
                    member.runs.append("run")
                    # A pace of its own on real time: slow enough to be killed mid-batch.
                    queue.pacer = Pacer(per_minute=per_minute, per_channel=0)
                    queue.stopped = None
                    return await send_prompts(services=run.services, client=run.client, queue=queue)

                return Job("checkins", run, every_seconds=3600)

            scheduler = Scheduler(
                replica.services,
                replica.client,
                [job()],
                leads=member.leadership.leads,
            )
            member.scheduler = scheduler
            member.leadership.on_change(scheduler.follow)
        for member in group:
            await member.leadership.start()
            assert member.scheduler is not None
            member.scheduler.start()
        if kill_after is not None:
            await until(lambda: sent() >= kill_after, "the first leader sends")
            (first,) = leaders(group)
            await kill_lock_connection(postgres_url)
            await until(lambda: Role.follower in first.changes, "the old leader steps down")
        await until(lambda: sent() >= len(people), "every prompt goes out")
        await asyncio.sleep(5 * POLL)  # nothing more comes
    return group, people


@pytest.mark.postgres
async def test_only_the_leader_sends(
    postgres_url: str, fake_slack: FakeSlack, replica_queue: ReplicaQueue
) -> None:
    group, people = await fan_out(
        postgres_url, fake_slack, replica_queue, per_minute=60_000, kill_after=None
    )
    ran = [m for m in group if m.runs]
    assert len(ran) == 1  # the followers never ran the job
    sent = Counter(
        c.args["channel"] for c in fake_slack.calls_to("chat.postMessage") if c.response.get("ok")
    )
    assert sorted(sent) == sorted(people) and set(sent.values()) == {1}
    engine = create_engine(postgres_url)
    rows = await deliveries(session_factory(engine), PROMPT)
    await engine.dispose()
    assert {r.claimed_by for r in rows} == {f"replica-{ran[0].name}"}


@pytest.mark.postgres
async def test_a_leader_killed_mid_fan_out_is_replaced_and_nothing_is_lost_or_doubled(
    postgres_url: str, fake_slack: FakeSlack, replica_queue: ReplicaQueue
) -> None:
    group, people = await fan_out(
        postgres_url, fake_slack, replica_queue, per_minute=1_200, kill_after=15
    )
    # The job ran again on the next leader (any replica, the old one too: it lost only its
    # connection, and tries again like the others).
    assert sum(len(m.runs) for m in group) >= 2
    sent = Counter(
        c.args["channel"] for c in fake_slack.calls_to("chat.postMessage") if c.response.get("ok")
    )
    assert sorted(sent) == sorted(people), "lost"
    assert set(sent.values()) == {1}, "doubled"
    engine = create_engine(postgres_url)
    rows = await deliveries(session_factory(engine), PROMPT)
    await engine.dispose()
    assert len(rows) == len(people) and {r.status for r in rows} == {"sent"}


@pytest.mark.postgres
async def test_a_429_one_replica_sees_pauses_every_replica_and_the_next_leader(
    postgres_url: str, fake_slack: FakeSlack, replica_queue: ReplicaQueue
) -> None:
    people = [f"U0LIM{n:04d}" for n in range(3)]
    for user in people:
        fake_slack.add_user(user, name=user.lower(), tz="Europe/Berlin")
    clock = ManualClock(at("2027-03-12 15:30", "Europe/Berlin"))
    time = VirtualTime(clock)
    fake_slack.clock = time.monotonic
    engine = create_engine(postgres_url)
    for user in people:
        await add_contract(session_factory(engine), leader=user, owner=None)
    await engine.dispose()
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=30)

    async with (
        replica_queue(
            "a", clock, pacer=time.pacer(60_000), policy=RetryPolicy(max_rate_limited=0)
        ) as a,
        replica_queue("b", clock, pacer=time.pacer(60_000)) as b,
    ):
        # Replica a's one notice meets the 429 (and is put back); then b, its pacer never
        # told, sends every prompt: as another replica, or the leader after a.
        notice = Outgoing(
            key=DeliveryKey("test_notice", 0, people[0], "once"), build=fixed(Message(text="hi"))
        )
        assert (await a.queue.deliver(notice)).outcome == Outcome.failed
        await send_prompts(services=b.services, client=b.client, queue=b.queue)

    calls = fake_slack.calls_to("chat.postMessage")
    (limited,) = [c for c in calls if c.status == 429]
    inside = [c for c in calls if c is not limited and limited.at <= c.at < limited.at + 30]
    assert inside == []  # 0 calls inside the Retry-After window, whichever replica
    sent = Counter(c.args["channel"] for c in calls if c.response.get("ok"))
    assert sorted(sent) == sorted(people) and set(sent.values()) == {1}
    assert b.queue.pacer.waited >= 30 - 1e-3
    engine = create_engine(postgres_url)
    async with session_factory(engine)() as session:
        state = await replica_rows.state(session=session)
    await engine.dispose()
    assert state is not None and state.paused_until is not None


@pytest.mark.postgres
async def test_a_followers_message_is_sent_by_the_leader(
    postgres_url: str, fake_slack: FakeSlack
) -> None:
    """A DM a request handler asks for on a follower is stored, the leader's `deliveries`
    job is woken (NOTIFY) and sends it; the follower hears what came of it."""
    settings = make_settings(api_url=fake_slack.api_url, database_url=postgres_url)
    async with members(postgres_url, ["a", "b"]) as group:
        for member in group:
            await member.leadership.start()
        (leader,) = leaders(group)
        (follower,) = [m for m in group if m is not leader]
        ran: list[str] = []

        async def deliveries(run: JobRun) -> object:
            ran.append("run")
            return await deliveries_job(run)

        leader_services = Services(
            settings=settings,
            sessions=leader.sessions,
            clock=SystemClock(),
            leads=leader.leadership.leads,
        )
        scheduler = Scheduler(
            leader_services,
            create_client(settings),
            [Job("deliveries", deliveries, every_seconds=3600)],
            leads=leader.leadership.leads,
        )
        leader.scheduler = scheduler
        leader.leadership.on_wake(lambda: scheduler.run_now("deliveries"))
        scheduler.start()
        await until(lambda: len(ran) == 1, "the leader's first run")

        services = Services(
            settings=settings,
            sessions=follower.sessions,
            clock=SystemClock(),
            leads=follower.leadership.leads,
        )
        notice = Outgoing(
            key=DeliveryKey("test_notice", 0, "U0LEAD001", "once"),
            build=fixed(Message(text="Your sponsor approved the change.")),
        )
        async with queue_of(services, create_client(settings)) as queue:
            result = await queue.deliver(notice)

    assert result.outcome == Outcome.sent
    assert queue.report.calls == 0  # the follower made no call to Slack
    assert len(ran) >= 2  # woken
    (post,) = fake_slack.calls_to("chat.postMessage")
    assert post.args["text"] == "Your sponsor approved the change."
