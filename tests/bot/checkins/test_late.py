"""A prompt missed while the bot was down is sent once, for last week, while the leader can
still answer for that week (until the end of the Tuesday after it, in their zone); never
after, never twice, not even across a restart. The answer is stored against that week.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlmodel import col, select

from bot.checkins.blocks import SNOOZE, START
from bot.checkins.model import PROMPT, REMINDER
from bot.checkins.service import history
from bot.client import create_client
from bot.core.calendar import answerable_until, late_until
from bot.core.clock import ManualClock
from bot.services import Services
from storage.db import create_engine, session_factory, writing
from storage.models import CheckIn, Contract, Measurement
from tests.bot.checkins.test_support import (
    add_contract,
    at,
    deliveries,
    posts_to,
    run_job,
    run_job_with,
    virtual_time,
)
from tests.conftest import response_texts
from tests.fakes import FakeSlack
from tests.harness import Bot, filled_modal, modal_says, running_bot

LEADER = "U0LEAD001"


@pytest_asyncio.fixture
async def any_bot(fake_slack: FakeSlack, database_url: str) -> AsyncIterator[Bot]:
    """The real app on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set."""
    async with running_bot(fake_slack, database_url) as bot:
        yield bot


# --- the window, in one function ----------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "zone", "closes"),
    [
        ("2027-W10", "Europe/Berlin", "2027-03-17 00:00"),
        ("2027-W12", "Europe/Berlin", "2027-03-31 00:00"),  # summer time began on its Sunday
        ("2027-W43", "Europe/Berlin", "2027-11-03 00:00"),  # winter time began on its Sunday
        ("2027-W13", "Pacific/Auckland", "2027-04-07 00:00"),  # NZ summer time ended then
        ("2027-W10", "America/Los_Angeles", "2027-03-17 00:00"),
        ("2026-W53", "UTC", "2027-01-06 00:00"),  # a 53-week year's last week
    ],
)
def test_a_week_can_be_answered_until_the_end_of_the_tuesday_after_it(
    period: str, zone: str, closes: str
) -> None:
    until = answerable_until(period, ZoneInfo(zone))
    assert until == at(closes, zone)
    assert until.astimezone(ZoneInfo(zone)).strftime("%A %H:%M") == "Wednesday 00:00"
    assert late_until(period, ZoneInfo(zone), until - timedelta(microseconds=1)) == until
    assert late_until(period, ZoneInfo(zone), until) is None


# --- the job, after an outage ---------------------------------------------------------------

OUTAGES = [
    # zone, weekday, time, last run before the outage, back (local), the week, sent?
    ("Europe/Berlin", 4, "15:00", "2027-03-12 14:57", "2027-03-15 15:00", "2027-W10", True),
    ("Europe/Berlin", 6, "23:30", "2027-03-14 23:28", "2027-03-15 00:30", "2027-W10", True),
    ("Europe/Berlin", 6, "02:30", "2027-03-27 12:00", "2027-03-29 08:00", "2027-W12", True),
    ("Europe/Berlin", 6, "02:30", "2027-10-30 12:00", "2027-11-02 23:59", "2027-W43", True),
    ("Europe/Berlin", 6, "02:30", "2027-10-30 12:00", "2027-11-03 00:00", "2027-W43", False),
    ("Pacific/Auckland", 4, "15:00", "2027-04-02 14:57", "2027-04-05 10:00", "2027-W13", True),
    ("Pacific/Auckland", 4, "15:00", "2027-04-02 14:57", "2027-04-07 00:00", "2027-W13", False),
    ("America/Los_Angeles", 6, "23:30", "2027-03-14 23:28", "2027-03-16 23:59", "2027-W10", True),
    ("America/Los_Angeles", 6, "23:30", "2027-03-14 23:28", "2027-03-17 00:00", "2027-W10", False),
]


@pytest.mark.parametrize(
    ("zone", "weekday", "clock_time", "down_at", "back_at", "period", "sent"),
    OUTAGES,
    ids=[
        "friday-to-monday",
        "over-a-sunday-night-prompt",
        "spring-forward-sunday",
        "fall-back-sunday-tuesday-night",
        "fall-back-sunday-wednesday",
        "auckland-monday",
        "auckland-wednesday",
        "los-angeles-tuesday-night",
        "los-angeles-wednesday",
    ],
)
async def test_a_prompt_missed_while_down_goes_once_while_the_week_can_be_answered(
    bot: Bot,
    zone: str,
    weekday: int,
    clock_time: str,
    down_at: str,
    back_at: str,
    period: str,
    sent: bool,
) -> None:
    virtual_time(bot.services)
    await add_contract(
        bot.sessions, leader=LEADER, timezone=zone, weekday=weekday, clock_time=clock_time
    )
    bot.clock.set(at(down_at, zone))
    await run_job(bot, "checkins")
    assert posts_to(bot.fake, LEADER) == []  # not due yet when the bot went down
    bot.clock.set(at(back_at, zone))
    await run_job(bot, "checkins")
    await run_job(bot, "checkins")
    posts = posts_to(bot.fake, LEADER)
    prompts = await deliveries(bot.sessions, PROMPT)
    if not sent:
        assert posts == [] and prompts == []
        return
    assert len(posts) == 1
    assert [(d.period_key, d.status) for d in prompts] == [(period, "sent")]
    text = posts[0].args["text"]
    assert text.startswith("Your check-in for last week (") and text.endswith(
        "is still open until Tuesday."
    )
    header = posts[0].args["blocks"][0]["text"]["text"]
    assert header.startswith("Last week's check-in · week ")


async def test_the_examples_words_and_never_twice_across_a_restart(any_bot: Bot) -> None:
    bot = any_bot
    virtual_time(bot.services)
    await add_contract(bot.sessions, leader=LEADER)  # Fridays 15:00, Berlin
    bot.clock.set(at("2027-03-12 14:57", "Europe/Berlin"))
    await run_job(bot, "checkins")
    bot.clock.set(at("2027-03-15 15:00", "Europe/Berlin"))  # back on Monday
    await run_job(bot, "checkins")
    (post,) = posts_to(bot.fake, LEADER)
    assert (
        post.args["text"] == "Your check-in for last week (8–14 Mar) is still open until Tuesday."
    )
    # The process restarts (a new engine, services and client on the same database): the
    # delivery row of that leader and week says it went.
    engine = create_engine(bot.services.settings.database_url)
    try:
        later = ManualClock(at("2027-03-16 09:00", "Europe/Berlin"))
        restarted = Services(
            settings=bot.services.settings, sessions=session_factory(engine), clock=later
        )
        virtual_time(restarted)
        report = await run_job_with(restarted, create_client(restarted.settings), "checkins")
        assert str(report).startswith("nothing due"), report
    finally:
        await engine.dispose()
    assert len(posts_to(bot.fake, LEADER)) == 1
    assert [d.period_key for d in await deliveries(bot.sessions, PROMPT)] == ["2027-W10"]


async def test_a_week_before_the_contract_existed_is_not_owed(bot: Bot) -> None:
    virtual_time(bot.services)
    cid = await add_contract(bot.sessions, leader=LEADER)
    async with bot.sessions() as session:
        await writing(session)
        contract = await session.get(Contract, cid)
        assert contract is not None
        contract.created_at = at("2027-03-13 10:00", "Europe/Berlin")  # after Friday's prompt
        session.add(contract)
        await session.commit()
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))
    await run_job(bot, "checkins")
    assert posts_to(bot.fake, LEADER) == []


async def test_the_late_prompts_reminder_says_tuesday_and_history_says_open(bot: Bot) -> None:
    virtual_time(bot.services)
    await add_contract(bot.sessions, leader=LEADER, reminder_hours=24)
    bot.clock.set(at("2027-03-15 15:00", "Europe/Berlin"))
    await run_job(bot, "checkins")
    periods = await history(services=bot.services, leader_id=LEADER)
    assert isinstance(periods, list)
    assert [(p.period, p.status) for p in periods][:3] == [
        ("2027-W11", "upcoming"),
        ("2027-W10", "open"),
        ("2027-W09", "missed"),
    ]
    bot.clock.set(at("2027-03-16 15:00", "Europe/Berlin"))
    await run_job(bot, "reminders")
    reminder = posts_to(bot.fake, LEADER)[-1]
    assert (
        reminder.args["text"]
        == "Reminder: your check-in for week 10 (8–14 Mar 2027) is still open."
    )
    assert "it closes on Tuesday night" in str(reminder.args["blocks"])
    assert [d.status for d in await deliveries(bot.sessions, REMINDER)] == ["sent"]


# --- answering for last week through the real app -------------------------------------------


async def late_prompt(bot: Bot) -> dict[str, object]:
    virtual_time(bot.services)
    await add_contract(bot.sessions, leader=LEADER)
    bot.clock.set(at("2027-03-15 15:00", "Europe/Berlin"))  # Monday: last week's went late
    await run_job(bot, "checkins")
    return bot.fake.messages[bot.fake.dm_id(LEADER)][-1]


async def test_an_answer_for_last_week_within_the_window_is_stored_for_last_week(
    any_bot: Bot,
) -> None:
    bot = any_bot
    message = await late_prompt(bot)
    await bot.driver.block_action(user=LEADER, action_id=START, message=message)
    (opened,) = await bot.fake.wait_for("views.open")
    assert opened.response["ok"]
    modal = await filled_modal(bot.fake, LEADER)
    assert '"period": "2027-W10"' in modal["private_metadata"]
    assert "last week's, open until the end of Tuesday" in str(modal["blocks"][0])
    bot.clock.set(at("2027-03-16 21:00", "Europe/Berlin"))  # Tuesday evening
    response = await bot.driver.submit_view(modal, {"ind:I1": "66", "confidence": "4"}, user=LEADER)
    assert response.status == 200 and response.json == {"response_action": "clear"}
    async with bot.sessions() as session:
        (checkin,) = (await session.exec(select(CheckIn))).all()
        (value,) = (await session.exec(select(Measurement).order_by(col(Measurement.id)))).all()
    assert (checkin.period_key, checkin.confidence) == ("2027-W10", 4)
    assert checkin.created_at == at("2027-03-16 21:00", "Europe/Berlin")
    # The value counts for the week it answers: measured within week 10, not on Tuesday.
    assert value.value == 66
    assert value.measured_at.astimezone(ZoneInfo("Europe/Berlin")).date() == date(2027, 3, 14)
    updated = await bot.fake.wait_for("chat.update")  # the prompt, after the answer
    assert "Check-in for week 10 (8–14 Mar 2027) submitted" in str(updated[-1].args["blocks"])


async def test_an_answer_for_last_week_after_the_window_is_refused_clearly(bot: Bot) -> None:
    message = await late_prompt(bot)
    await bot.driver.block_action(user=LEADER, action_id=START, message=message)
    await bot.fake.wait_for("views.open")
    modal = await filled_modal(bot.fake, LEADER)
    bot.clock.set(at("2027-03-17 00:00", "Europe/Berlin"))  # Wednesday: closed
    response = await bot.driver.submit_view(modal, {"confidence": "4"}, user=LEADER)
    assert response.json["response_action"] == "errors"
    assert list(response.json["errors"].values()) == [
        "The check-in for week 10 (8–14 Mar 2027) closed at the end of Tuesday 16 Mar; "
        "`/checkin` opens this week's."
    ]
    async with bot.sessions() as session:
        assert (await session.exec(select(CheckIn))).all() == []
    await bot.driver.block_action(user=LEADER, action_id=START, message=message)
    assert (await modal_says(bot.fake, LEADER, opened=2)).startswith(
        "The check-in for week 10 (8–14 Mar 2027) closed"
    )


async def test_a_late_weeks_snooze_stops_at_its_window(bot: Bot) -> None:
    message = await late_prompt(bot)
    bot.clock.set(at("2027-03-16 10:00", "Europe/Berlin"))  # Tuesday: tomorrow is too late
    await bot.driver.block_action(user=LEADER, action_id=SNOOZE, message=message)
    await bot.fake.wait_for("response_url")
    assert response_texts(bot.fake) == [
        "Last week's check-in closes at midnight, so I can't remind you tomorrow; "
        "answer or skip it today."
    ]
    (reminder,) = await deliveries(bot.sessions, REMINDER)
    assert reminder.due_at == at("2027-03-16 15:00", "Europe/Berlin")  # where it was
