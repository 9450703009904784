"""The `checkins` and `reminders` jobs against a real database and the fake Slack.

Time is the harness's manual clock; pacing runs on it too, so nothing here sleeps.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.checkins.jobs import send_prompts
from bot.checkins.model import PROMPT, REMINDER, UNDELIVERABLE_NOTICE
from bot.core.calendar import current_period, prompt_due_at
from bot.core.clock import ManualClock
from bot.delivery import Outcome, Report
from bot.delivery.queue import BATCHES_IN_FLIGHT
from bot.people.model import DEACTIVATED
from bot.people.service import LOOKUPS_PER_RUN
from storage.db import create_engine, session_factory, writing
from storage.models import CheckIn, Contract, ContractStatus, SlackUser
from storage.queries import contracts as contract_queries
from tests.bot.checkins.test_support import (
    add_contract,
    at,
    deliveries,
    posts_to,
    run_job,
    set_status,
    virtual_time,
)
from tests.conftest import ReplicaQueue
from tests.fakes import FakeSlack
from tests.harness import Bot
from tests.scale import counting_statements

LEADER, SPONSOR, OWNER = "U0LEAD001", "U0SPON001", "U0HRBP001"
VP, RAJ = "U0VP00001", "U0PEER002"  # America/New_York and Asia/Kolkata in the fake


async def test_prompts_go_out_at_each_leaders_local_time(bot: Bot) -> None:
    virtual_time(bot.services)
    await add_contract(bot.sessions, leader=LEADER, timezone="Europe/Berlin")
    await add_contract(bot.sessions, leader=VP, timezone=None)  # from Slack: New York
    await add_contract(bot.sessions, leader=RAJ, timezone="Asia/Kolkata")
    expected = {
        RAJ: at("2027-03-12 15:00", "Asia/Kolkata"),  # 09:30 UTC
        LEADER: at("2027-03-12 15:00", "Europe/Berlin"),  # 14:00 UTC
        VP: at("2027-03-12 15:00", "America/New_York"),  # 20:00 UTC
    }
    for user, due in sorted(expected.items(), key=lambda item: item[1]):
        bot.clock.set(due - timedelta(minutes=1))
        await run_job(bot, "checkins")
        assert posts_to(bot.fake, user) == [], f"{user} was prompted early"
        bot.clock.set(due)
        await run_job(bot, "checkins")
        assert len(posts_to(bot.fake, user)) == 1
    assert len(bot.fake.calls_to("chat.postMessage")) == 3
    prompts = await deliveries(bot.sessions, PROMPT)
    assert {(d.recipient_id, d.period_key, d.status) for d in prompts} == {
        (u, "2027-W10", "sent") for u in expected
    }
    assert all(d.slack_channel and d.slack_ts for d in prompts)


DST_CONTRACTS = [
    (LEADER, "Europe/Berlin", 6, "02:30"),  # Sunday, in the spring gap / twice in autumn
    (VP, "America/New_York", 6, "02:30"),
    (RAJ, "America/New_York", 6, "01:30"),  # happens twice on the New York fall-back night
    ("U0PEER001", "Europe/Berlin", 4, "15:00"),
    ("U0PEER003", "Asia/Kolkata", 6, "02:30"),
]


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (at("2027-03-12 00:00"), at("2027-03-30 00:00")),  # New York 14 Mar, Berlin 28 Mar
        (at("2027-10-29 00:00"), at("2027-11-09 00:00")),  # Berlin 31 Oct, New York 7 Nov
    ],
    ids=["spring-forward", "fall-back"],
)
async def test_dst_weeks_never_skip_or_double_a_prompt(
    bot: Bot, first: datetime, last: datetime
) -> None:
    """Run both jobs every 47 minutes across the DST weeks: one prompt per week, on time."""
    virtual_time(bot.services)
    contracts = {}
    for leader, name, weekday, clock_time in DST_CONTRACTS:
        cid = await add_contract(
            bot.sessions, leader=leader, timezone=name, weekday=weekday, clock_time=clock_time
        )
        contracts[cid] = ZoneInfo(name)
    step = timedelta(minutes=47)
    bot.clock.set(first)
    while bot.clock.now() < last:
        await run_job(bot, "checkins")
        await run_job(bot, "reminders")
        bot.clock.advance(step)

    prompts = await deliveries(bot.sessions, PROMPT)
    per_period = Counter((d.contract_id, d.period_key) for d in prompts)
    assert set(per_period.values()) == {1}
    async with bot.sessions() as session:
        rows = {c.id: c for c in (await session.exec(select(Contract))).all()}
    for cid, zone in contracts.items():
        weeks = {p for c, p in per_period if c == cid}
        expected_weeks = set()
        moment = first
        while moment < last:
            period = current_period(moment, zone)
            if prompt_due_at(rows[cid], period, zone) < last - step:
                expected_weeks.add(period)
            moment += timedelta(days=1)
        assert expected_weeks <= weeks, f"contract {cid} skipped {expected_weeks - weeks}"
    for d in prompts:
        due = prompt_due_at(rows[d.contract_id], d.period_key, contracts[d.contract_id])
        assert d.sent_at is not None
        if due < first:  # the week was already due when the clock started: caught up at once
            assert d.sent_at == first
        else:
            assert due <= d.sent_at < due + step
    reminders = Counter(
        (d.contract_id, d.period_key) for d in await deliveries(bot.sessions, REMINDER)
    )
    assert set(reminders.values()) <= {1}
    assert len(bot.fake.calls_to("chat.postMessage")) == len(prompts) + sum(
        1 for d in await deliveries(bot.sessions, REMINDER) if d.status == "sent"
    )


async def test_a_prompt_missed_while_down_goes_out_once_when_back(bot: Bot) -> None:
    virtual_time(bot.services)
    await add_contract(bot.sessions, leader=LEADER)
    bot.clock.set(at("2027-03-13 11:00", "Europe/Berlin"))  # down since Thursday
    await run_job(bot, "checkins")
    await run_job(bot, "checkins")
    assert len(posts_to(bot.fake, LEADER)) == 1
    # Down from Friday morning to Monday: that week's prompt goes late, for last week, once.
    bot.clock.set(at("2027-03-22 08:00", "Europe/Berlin"))
    await run_job(bot, "checkins")
    await run_job(bot, "checkins")
    assert len(posts_to(bot.fake, LEADER)) == 2
    assert "for last week" in posts_to(bot.fake, LEADER)[-1].args["text"]
    bot.clock.set(at("2027-03-26 15:00", "Europe/Berlin"))
    await run_job(bot, "checkins")
    assert [d.period_key for d in await deliveries(bot.sessions, PROMPT)] == [
        "2027-W10",
        "2027-W11",
        "2027-W12",
    ]


async def test_now_makes_every_active_contract_due_but_still_once(bot: Bot) -> None:
    virtual_time(bot.services)
    await add_contract(bot.sessions, leader=LEADER)
    await add_contract(bot.sessions, leader=VP, status="draft")
    await add_contract(bot.sessions, leader=RAJ, end=at("2027-03-01").date())  # over
    report = await run_job(bot, "checkins", force=True)  # a Wednesday
    assert str(report).startswith("1 sent")
    report = await run_job(bot, "checkins", force=True)
    assert str(report).startswith("nothing due")
    assert len(bot.fake.calls_to("chat.postMessage")) == 1


async def test_a_whole_organisation_is_prompted_a_page_of_contracts_at_a_time(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job reads the active contracts `ACTIVE_PAGE` at a time and checks each page's
    prompts and check-ins: in pages of two, each due leader is prompted once, neither the
    answered week nor the closed contract is, and the next run sends nothing."""
    virtual_time(bot.services)
    monkeypatch.setattr(contract_queries, "ACTIVE_PAGE", 2)
    due = [LEADER, "U0PEER001", "U0PEER003"]
    for leader in (LEADER, VP, RAJ, *due[1:]):
        cid = await add_contract(bot.sessions, leader=leader)
        if leader == VP:
            await set_status(bot.sessions, cid, ContractStatus.closed)
        if leader == RAJ:
            async with bot.sessions() as session:
                await writing(session)
                session.add(CheckIn(contract_id=cid, period_key="2027-W10", confidence=4))
                await session.commit()
    bot.clock.set(at("2027-03-12 16:00", "Europe/Berlin"))
    with counting_statements() as statements:
        report = await run_job(bot, "checkins")
    assert str(report).startswith("3 sent")
    assert [u for u in (LEADER, VP, RAJ, *due[1:]) if posts_to(bot.fake, u)] == due
    pages = [s for s, _ in statements.seen if "FROM contract" in s and "LIMIT" in s]
    assert len(pages) == 3  # 2 + 2 active contracts, then none
    assert str(await run_job(bot, "checkins")).startswith("nothing due")
    assert len(bot.fake.calls_to("chat.postMessage")) == 3


async def test_a_contract_closed_while_the_prompts_go_out_is_not_prompted(bot: Bot) -> None:
    """The prompts due are found first, their contracts read a batch of sends at a time: one
    closed after it was found due, before its batch, gets no prompt (the others do)."""
    virtual_time(bot.services)
    # One more than the batches of one prompt each read before the first is sent.
    leaders = [LEADER, "U0PEER001", "U0PEER003", "U0OUTSIDE"][: BATCHES_IN_FLIGHT + 1]
    assert len(leaders) == BATCHES_IN_FLIGHT + 1
    ids = [await add_contract(bot.sessions, leader=leader) for leader in leaders]
    bot.clock.set(at("2027-03-12 16:00", "Europe/Berlin"))
    bot.fake.set_latency(0.3)  # each call answered after 0.3 s, for real
    try:
        sending = asyncio.create_task(
            send_prompts(services=bot.services, client=bot.app.client, batch=1)
        )
        # The first post is under way: the batches in flight are read, the last is not yet.
        await bot.fake.wait_for("chat.postMessage", count=1, timeout=10)
        await set_status(bot.sessions, ids[-1], ContractStatus.closed)
        report = await asyncio.wait_for(sending, timeout=30)
    finally:
        bot.fake.set_latency(None)
    assert str(report).startswith(f"{BATCHES_IN_FLIGHT} sent"), report
    assert [u for u in leaders if posts_to(bot.fake, u)] == leaders[:-1]


async def test_no_prompt_for_a_week_already_answered_or_skipped(bot: Bot) -> None:
    virtual_time(bot.services)
    answered = await add_contract(bot.sessions, leader=LEADER)
    skipped = await add_contract(bot.sessions, leader=VP, timezone="Europe/Berlin")
    async with bot.sessions() as session:
        await writing(session)
        session.add(CheckIn(contract_id=answered, period_key="2027-W10", confidence=4))
        session.add(
            CheckIn(
                contract_id=skipped, period_key="2027-W10", status="skipped", skip_reason="sick"
            )
        )
        await session.commit()
    bot.clock.set(at("2027-03-12 16:00", "Europe/Berlin"))
    await run_job(bot, "checkins")
    assert bot.fake.calls_to("chat.postMessage") == []


async def test_the_leaders_slack_time_zone_is_cached_and_refreshed(bot: Bot) -> None:
    virtual_time(bot.services)
    await add_contract(bot.sessions, leader=VP, timezone=None)
    await run_job(bot, "checkins")
    await run_job(bot, "checkins")
    assert len(bot.fake.calls_to("users.info")) == 1
    async with bot.sessions() as session:
        cached = await session.get(SlackUser, VP)
    assert cached is not None and cached.tz == "America/New_York"
    # They move to Kolkata; a day later the cache is refreshed and the prompt follows them.
    bot.fake.users[VP]["tz"] = "Asia/Kolkata"
    bot.clock.set(at("2027-03-12 15:00", "Asia/Kolkata"))
    await run_job(bot, "checkins")
    assert len(bot.fake.calls_to("users.info")) == 2
    assert len(posts_to(bot.fake, VP)) == 1


async def test_many_unknown_zones_are_looked_up_a_few_a_run_never_with_users_list(
    bot: Bot,
) -> None:
    virtual_time(bot.services, per_minute=100_000)
    for n in range(60):
        user = f"U0MANY{n:03d}"
        bot.fake.add_user(user, name=f"m{n}", tz="Asia/Kolkata" if n % 2 else "Europe/Berlin")
        await add_contract(bot.sessions, leader=user, timezone=None, owner=None)
    bot.clock.set(at("2027-03-12 15:00", "Asia/Kolkata"))
    await run_job(bot, "checkins")
    assert len(bot.fake.calls_to("users.info")) == LOOKUPS_PER_RUN
    assert len(bot.fake.calls_to("chat.postMessage")) == LOOKUPS_PER_RUN // 2
    await run_job(bot, "checkins")
    assert len(bot.fake.calls_to("users.info")) == 60  # each once, then cached
    assert len(bot.fake.calls_to("chat.postMessage")) == 30  # the Kolkata half
    assert bot.fake.calls_to("users.list") == []


async def test_one_reminder_a_day_later_unless_answered(bot: Bot) -> None:
    virtual_time(bot.services)
    await add_contract(bot.sessions, leader=LEADER)
    quiet = await add_contract(bot.sessions, leader=VP, timezone="Europe/Berlin", reminder_hours=6)
    answered = await add_contract(bot.sessions, leader=RAJ, timezone="Europe/Berlin")
    bot.clock.set(at("2027-03-12 15:00", "Europe/Berlin"))
    await run_job(bot, "checkins")
    async with bot.sessions() as session:
        await writing(session)
        session.add(CheckIn(contract_id=answered, period_key="2027-W10", confidence=3))
        await session.commit()
    bot.clock.set(at("2027-03-12 20:59", "Europe/Berlin"))
    await run_job(bot, "reminders")
    assert len(posts_to(bot.fake, VP)) == 1
    bot.clock.set(at("2027-03-12 21:01", "Europe/Berlin"))
    await run_job(bot, "reminders")
    assert len(posts_to(bot.fake, VP)) == 2  # after its own 6 hours
    bot.clock.set(at("2027-03-13 15:00", "Europe/Berlin"))
    await run_job(bot, "reminders")
    await run_job(bot, "reminders")
    bot.clock.set(at("2027-03-14 23:00", "Europe/Berlin"))
    await run_job(bot, "reminders")
    assert len(posts_to(bot.fake, LEADER)) == 2
    assert len(posts_to(bot.fake, VP)) == 2
    assert len(posts_to(bot.fake, RAJ)) == 1  # answered: no reminder
    reminder = posts_to(bot.fake, LEADER)[-1]
    assert "Reminder" in reminder.args["text"]
    statuses = {d.contract_id: d.status for d in await deliveries(bot.sessions, REMINDER)}
    assert statuses[quiet] == "sent" and statuses[answered] == "cancelled"


async def test_no_reminder_when_turned_off_or_once_the_week_closed(bot: Bot) -> None:
    virtual_time(bot.services)
    await add_contract(bot.sessions, leader=LEADER, reminder_hours=0)
    await add_contract(bot.sessions, leader=VP, timezone="Europe/Berlin", weekday=6)
    bot.clock.set(at("2027-03-14 15:00", "Europe/Berlin"))  # Sunday: both prompted
    await run_job(bot, "checkins")
    # VP's reminder was due Monday 15:00, and the bot was down until Wednesday: the week
    # can no longer be answered, so no reminder.
    bot.clock.set(at("2027-03-17 00:00", "Europe/Berlin"))
    await run_job(bot, "reminders")
    assert len(bot.fake.calls_to("chat.postMessage")) == 2
    assert [d.status for d in await deliveries(bot.sessions, REMINDER)] == ["cancelled"]


async def test_an_unreachable_leader_is_marked_and_the_owner_told_once(bot: Bot) -> None:
    virtual_time(bot.services)
    bot.fake.users[LEADER]["deleted"] = True
    await add_contract(bot.sessions, leader=LEADER, title="Head of Platform")
    bot.clock.set(at("2027-03-12 15:00", "Europe/Berlin"))
    report = await run_job(bot, "checkins")
    assert "1 undeliverable" in str(report)
    await run_job(bot, "checkins")
    bot.clock.set(at("2027-03-19 15:00", "Europe/Berlin"))
    await run_job(bot, "checkins")  # next week: tried again, owner not told twice
    prompts = await deliveries(bot.sessions, PROMPT)
    assert [(d.status, d.last_error) for d in prompts] == [("undeliverable", DEACTIVATED)] * 2
    assert posts_to(bot.fake, LEADER) == []  # Slack would take it; nobody would read it
    notices = posts_to(bot.fake, OWNER)
    assert len(notices) == 1
    assert (
        "deactivated" in notices[0].args["text"] and "Head of Platform" in notices[0].args["text"]
    )
    assert [d.kind for d in await deliveries(bot.sessions, UNDELIVERABLE_NOTICE)] == [
        UNDELIVERABLE_NOTICE
    ]
    assert await deliveries(bot.sessions, REMINDER) == []


async def test_without_an_owner_the_sponsor_is_told(bot: Bot) -> None:
    virtual_time(bot.services)
    del bot.fake.users[LEADER]
    await add_contract(bot.sessions, leader=LEADER, owner=None)
    await run_job(bot, "checkins", force=True)
    assert len(posts_to(bot.fake, SPONSOR)) == 1
    assert "user_not_found" in posts_to(bot.fake, SPONSOR)[0].args["text"]


@pytest.mark.postgres
async def test_two_replicas_on_postgresql_prompt_each_leader_once(
    postgres_url: str, fake_slack: FakeSlack, replica_queue: ReplicaQueue
) -> None:
    """Two `northstar run` processes, each with its own event loop, engine, client and pacer."""
    leaders = [f"U0REPL{n:03d}" for n in range(40)]
    for user in leaders:
        fake_slack.add_user(user, name=user.lower(), tz="Europe/Berlin")
    clock = ManualClock(at("2027-03-12 15:30", "Europe/Berlin"))
    engine = create_engine(postgres_url)
    setup = session_factory(engine)
    for user in leaders:
        await add_contract(setup, leader=user, owner=None)

    async def replica(name: str) -> Report:
        async with replica_queue(name, clock) as r:
            return await send_prompts(services=r.services, client=r.client, queue=r.queue)

    reports = await asyncio.gather(
        *(asyncio.to_thread(asyncio.run, replica(name)) for name in ("a", "b"))
    )
    sent = Counter(
        c.args["channel"] for c in fake_slack.calls_to("chat.postMessage") if c.response.get("ok")
    )
    assert sorted(sent) == sorted(leaders)
    assert set(sent.values()) == {1}
    assert sum(r.count(Outcome.sent) for r in reports) == 40
    rows = await deliveries(setup, PROMPT)
    assert len(rows) == 40 and {r.status for r in rows} == {"sent"}
    assert {r.claimed_by for r in rows} <= {"replica-a", "replica-b"}
    await engine.dispose()
