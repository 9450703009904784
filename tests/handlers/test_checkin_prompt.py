"""The check-in prompt's buttons and `/checkin skip|history`, through signed requests.

Each scenario starts from a prompt the `checkins` job really sent to the fake Slack.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from bot.checkins.blocks import EDIT, SKIP, SNOOZE, START
from bot.summary.home import OPEN_SUMMARY
from storage.db import writing
from storage.models import AuditEvent, CheckIn, Delivery
from tests.bot.checkins.test_support import at, deliveries, posts_to, run_job, virtual_time
from tests.conftest import response_texts
from tests.handlers.test_feedback_support import not_yet_recorded
from tests.harness import Bot, filled_modal, modal_says

LEADER, SPONSOR = "U0LEAD001", "U0SPON001"
FRIDAY = at("2027-03-12 15:00", "Europe/Berlin")


async def prompt(bot: Bot) -> dict[str, Any]:
    """Send this week's prompt with the job; the message as the leader sees it."""
    virtual_time(bot.services)
    bot.clock.set(FRIDAY)
    report = await run_job(bot, "checkins")
    assert str(report).startswith("1 sent"), report
    return latest(bot)


def latest(bot: Bot) -> dict[str, Any]:
    return bot.fake.messages[bot.fake.dm_id(LEADER)][-1]


def said(bot: Bot) -> list[str]:
    return response_texts(bot.fake)


async def checkins(bot: Bot) -> list[CheckIn]:
    async with bot.sessions() as session:
        return list((await session.exec(select(CheckIn).order_by(col(CheckIn.id)))).all())


async def test_the_prompt_shows_what_is_due_and_its_buttons(
    bot: Bot, example_contract: int
) -> None:
    message = await prompt(bot)
    text = json.dumps(message["blocks"], ensure_ascii=False)
    assert "Weekly check-in · week 10 (8–14 Mar 2027)" in text
    assert "Indicators due this week" in text and "Median project cycle time" in text
    actions = [e.get("action_id") for b in message["blocks"] for e in b.get("elements") or []]
    assert [a for a in actions if a and a.startswith("checkin_")] == [START, SNOOZE, SKIP]


async def test_start_opens_the_modal_and_submitting_updates_the_prompt_in_place(
    bot: Bot, example_contract: int
) -> None:
    message = await prompt(bot)
    await bot.driver.block_action(user=LEADER, action_id=START, message=message)
    await bot.fake.wait_for("views.open")
    modal = await filled_modal(bot.fake, LEADER)
    await bot.driver.submit_view(modal, {"ind:I2": "40", "confidence": "4"}, user=LEADER)
    (update,) = await bot.fake.wait_for("chat.update")
    assert update.args["ts"] == message["ts"]
    after = latest(bot)
    assert after["ts"] == message["ts"] and "submitted" in after["text"]
    buttons = [e.get("action_id") for b in after["blocks"] for e in b.get("elements") or []]
    assert EDIT in buttons and OPEN_SUMMARY in buttons
    assert len(posts_to(bot.fake, LEADER)) == 1  # no second message
    statuses = {d.kind: d.status for d in await deliveries(bot.sessions)}
    assert statuses == {"checkin_prompt": "sent", "checkin_reminder": "cancelled"}
    bot.clock.advance(timedelta(days=1, hours=1))
    await run_job(bot, "reminders")
    assert len(posts_to(bot.fake, LEADER)) == 1

    await bot.driver.block_action(user=LEADER, action_id=OPEN_SUMMARY, message=after)
    opened = await bot.fake.wait_for("views.open", count=2)
    assert opened[-1].response["ok"]
    assert "Median project cycle time" in json.dumps(
        (await filled_modal(bot.fake, LEADER))["blocks"]
    )


async def test_snooze_moves_the_one_reminder_to_tomorrow(bot: Bot, example_contract: int) -> None:
    message = await prompt(bot)
    bot.clock.set(at("2027-03-12 17:30", "Europe/Berlin"))
    await bot.driver.block_action(user=LEADER, action_id=SNOOZE, message=message)
    await bot.fake.wait_for("chat.update")
    notice = json.dumps(latest(bot)["blocks"], ensure_ascii=False)
    assert "Snoozed: I'll remind you Saturday at 17:30" in notice
    bot.clock.set(at("2027-03-13 15:30", "Europe/Berlin"))  # the original 24 h have passed
    await run_job(bot, "reminders")
    assert len(posts_to(bot.fake, LEADER)) == 1
    bot.clock.set(at("2027-03-13 17:30", "Europe/Berlin"))
    await run_job(bot, "reminders")
    reminders = posts_to(bot.fake, LEADER)[1:]
    assert len(reminders) == 1 and "Reminder" in reminders[0].args["text"]
    # One reminder only: a second snooze is refused in a sentence.
    await bot.driver.block_action(user=LEADER, action_id=SNOOZE, message=message)
    await bot.fake.wait_for("response_url")
    assert "already reminded you once" in said(bot)[-1]
    assert [e.action for e in await audit(bot)] == ["checkin.snoozed"]


async def test_snoozing_on_sunday_says_why_it_cannot(bot: Bot, example_contract: int) -> None:
    message = await prompt(bot)
    bot.clock.set(at("2027-03-14 12:00", "Europe/Berlin"))
    await bot.driver.block_action(user=LEADER, action_id=SNOOZE, message=message)
    await bot.fake.wait_for("response_url")
    assert "closes at midnight" in said(bot)[-1]


async def test_skip_with_a_reason_from_the_prompt(bot: Bot, example_contract: int) -> None:
    message = await prompt(bot)
    await bot.driver.block_action(user=LEADER, action_id=SKIP, value="leave", message=message)
    await bot.fake.wait_for("chat.update")
    (checkin,) = await checkins(bot)
    assert (checkin.status, checkin.skip_reason) == ("skipped", "leave")
    assert "Skipped week 10" in latest(bot)["text"]
    await bot.fake.wait_for("response_url")
    assert said(bot) == ["Skipped week 10 (8–14 Mar 2027) (leave). See you next week."]
    bot.clock.advance(timedelta(days=2))
    await run_job(bot, "reminders")
    assert len(posts_to(bot.fake, LEADER)) == 1
    assert [d.status for d in await deliveries(bot.sessions, "checkin_reminder")] == ["cancelled"]


async def test_checkin_skip_command(bot: Bot, example_contract: int) -> None:
    message = await prompt(bot)
    await bot.driver.command("/checkin", "skip sick", user=LEADER)
    await bot.fake.wait_for("chat.update")
    assert [(c.status, c.skip_reason) for c in await checkins(bot)] == [("skipped", "sick")]
    assert latest(bot)["ts"] == message["ts"] and "Skipped" in latest(bot)["text"]


async def test_an_unknown_skip_reason_is_refused(bot: Bot, example_contract: int) -> None:
    await bot.driver.command("/checkin", "skip vacation", user=LEADER)
    await bot.fake.wait_for("response_url")
    assert said(bot) == [
        "“vacation” is not a reason I know: use `/checkin skip leave`, "
        "`/checkin skip sick` or `/checkin skip other`."
    ]
    assert await checkins(bot) == []


async def test_an_answered_week_cannot_be_skipped(bot: Bot, example_contract: int) -> None:
    async with bot.sessions() as session:
        await writing(session)
        session.add(CheckIn(contract_id=example_contract, period_key="2027-W10", confidence=3))
        await session.commit()
    await bot.driver.command("/checkin", "skip", user=LEADER)
    await bot.fake.wait_for("response_url")
    assert "already checked in" in said(bot)[0]
    assert [c.status for c in await checkins(bot)] == ["answered"]


async def test_a_skipped_week_can_still_be_answered(bot: Bot, example_contract: int) -> None:
    message = await prompt(bot)
    await bot.driver.block_action(user=LEADER, action_id=SKIP, value="other", message=message)
    await bot.fake.wait_for("chat.update")
    await bot.driver.block_action(user=LEADER, action_id=START, message=latest(bot))
    await bot.fake.wait_for("views.open")
    await bot.driver.submit_view(
        (await filled_modal(bot.fake, LEADER)), {"confidence": "2"}, user=LEADER
    )
    await bot.fake.wait_for("chat.update", count=2)
    assert [(c.status, c.skip_reason) for c in await checkins(bot)] == [("answered", None)]


async def test_an_old_weeks_button_says_the_week_has_closed(
    bot: Bot, example_contract: int
) -> None:
    message = await prompt(bot)
    bot.clock.advance(timedelta(days=5))  # Friday -> the Wednesday after: past the grace
    await bot.driver.block_action(user=LEADER, action_id=START, message=message)
    assert await modal_says(bot.fake, LEADER) == (
        "The check-in for week 10 (8–14 Mar 2027) closed at the end of Tuesday 16 Mar; "
        "`/checkin` opens this week's."
    )
    assert said(bot) == []


async def test_someone_else_cannot_use_the_leaders_buttons(bot: Bot, example_contract: int) -> None:
    message = await prompt(bot)
    await bot.driver.block_action(user=SPONSOR, action_id=START, message=message)
    # Their modal says so, and shows nothing of the check-in.
    assert await modal_says(bot.fake, SPONSOR) == (
        "Only the contract's leader can fill in its check-in."
    )
    assert said(bot) == []


async def test_history_lists_the_last_weeks(bot: Bot, example_contract: int) -> None:
    async with bot.sessions() as session:
        await writing(session)
        session.add(CheckIn(contract_id=example_contract, period_key="2027-W09", confidence=4))
        session.add(
            CheckIn(
                contract_id=example_contract,
                period_key="2027-W08",
                status="skipped",
                skip_reason="sick",
            )
        )
        await session.commit()
    await bot.driver.command("/checkin", "history", user=LEADER)
    await bot.fake.wait_for("response_url")
    text = said(bot)[0]
    lines = [line for line in text.splitlines() if line.startswith("•")]
    assert lines[:4] == [
        "• *week 10 (8–14 Mar 2027)* ⚪ not yet due",
        "• *week 9 (1–7 Mar 2027)* ✅ answered · confidence 4/5",
        "• *week 8 (22–28 Feb 2027)* ⏭️ skipped (sick)",
        "• *week 7 (15–21 Feb 2027)* ❌ missed",
    ]
    assert len(lines) == 8


async def test_history_of_a_new_contract_stops_at_its_start(bot: Bot) -> None:
    from datetime import date

    from tests.bot.checkins.test_support import add_contract

    await add_contract(bot.sessions, leader=LEADER, start=date(2027, 3, 6))
    bot.clock.set(FRIDAY)
    await bot.driver.command("/checkin", "history", user=LEADER)
    await bot.fake.wait_for("response_url")
    lines = [line for line in said(bot)[0].splitlines() if line.startswith("•")]
    assert lines == ["• *week 10 (8–14 Mar 2027)* 🟡 open"]


async def test_unknown_subcommands_get_the_help(bot: Bot, example_contract: int) -> None:
    await bot.driver.command("/checkin", "later", user=LEADER)
    await bot.fake.wait_for("response_url")
    assert said(bot)[0].startswith("I don't know `later`. `/checkin` opens this week's check-in")


async def test_a_429_on_views_open_still_opens_the_modal(bot: Bot, example_contract: int) -> None:
    message = await prompt(bot)
    bot.fake.fail_next("views.open", status=429, retry_after=0)
    await bot.driver.block_action(user=LEADER, action_id=START, message=message)
    calls = await bot.fake.wait_for("views.open", count=2)
    assert [c.status for c in calls] == [429, 200]
    assert (await filled_modal(bot.fake, LEADER))["callback_id"] == "checkin"


async def test_5xx_and_429_after_submit_are_retried_without_losing_anything(
    bot: Bot, example_contract: int
) -> None:
    message = await prompt(bot)
    await bot.driver.block_action(user=LEADER, action_id=START, message=message)
    await bot.fake.wait_for("views.open")
    bot.fake.fail_next("chat.update", status=503)
    bot.fake.fail_next("chat.update", status=429, retry_after=20)
    bot.fake.fail_next("chat.postMessage", status=500)
    values = {"risk1": "Budget frozen", "risk1_help": ["help"], "confidence": "2"}
    await bot.driver.submit_view((await filled_modal(bot.fake, LEADER)), values, user=LEADER)
    updates = await bot.fake.wait_for("chat.update", count=3)
    assert [c.status for c in updates] == [503, 429, 200]
    posts = await bot.fake.wait_for("chat.postMessage", count=3)
    assert [c.status for c in posts][1:] == [500, 200]
    assert len(posts_to(bot.fake, SPONSOR)) == 1
    assert "submitted" in latest(bot)["text"]


async def audit(bot: Bot) -> list[AuditEvent]:
    async with bot.sessions() as session:
        rows = await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))
        return [e for e in rows.all() if e.action.startswith("checkin")]


async def test_a_click_before_the_prompt_is_recorded_as_sent_still_updates_it(
    bot: Bot, example_contract: int
) -> None:
    """A click can come in the moments between the prompt's post and its record (the
    database busy meanwhile): the message clicked is the one shown snoozed."""
    message = await prompt(bot)
    await not_yet_recorded(bot, Delivery.recipient_id == LEADER, Delivery.slack_ts == message["ts"])
    bot.clock.set(at("2027-03-12 17:30", "Europe/Berlin"))
    await bot.driver.block_action(user=LEADER, action_id=SNOOZE, message=message)
    updates = await bot.fake.wait_for("chat.update", where=lambda c: c.args["ts"] == message["ts"])
    assert "Snoozed: I'll remind you" in json.dumps(updates[-1].args["blocks"], ensure_ascii=False)


async def test_a_click_naming_another_message_updates_only_the_prompt(
    bot: Bot, example_contract: int
) -> None:
    """A payload naming some other message of the bot's (crafted: Slack names the message
    clicked) never has that message rewritten while the prompt's own is on record."""
    message = await prompt(bot)
    bot.clock.set(at("2027-03-12 17:30", "Europe/Berlin"))
    elsewhere = {**message, "ts": "1773331200.000900"}
    await bot.driver.block_action(user=LEADER, action_id=SNOOZE, message=elsewhere)
    updates = await bot.fake.wait_for("chat.update")
    assert [call.args["ts"] for call in updates] == [message["ts"]]
