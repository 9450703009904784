"""Milestones through signed requests and the fake Slack: recognition after a check-in, and
the recalibration DM's two buttons, refusals included."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from bot.amendments.blocks import AMEND_ITEM, APPROVE
from bot.milestones.blocks import ASK_SUPPORT, PROPOSE, SUPPORT_INPUT, SUPPORT_MODAL
from bot.milestones.service import SUPPORT
from storage.db import writing
from storage.models import AuditEvent, Milestone
from tests.bot.checkins.test_support import at, deliveries, posts_to, run_job, virtual_time
from tests.conftest import response_texts
from tests.handlers.test_checkin_modal import ANSWERS, open_checkin, submit
from tests.harness import Bot, filled_modal

LEADER, SPONSOR, OWNER, VP, OUTSIDER = (
    "U0LEAD001",
    "U0SPON001",
    "U0HRBP001",
    "U0VP00001",
    "U0OUTSIDE",
)
WINS = "C0WINS001"


def to(channel: str) -> Any:
    return lambda call: call.args.get("channel") == channel and call.response.get("ok")


async def m1(bot: Bot) -> Milestone:
    async with bot.sessions() as session:
        return (await session.exec(select(Milestone).where(Milestone.key == "M1"))).one()


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        element["action_id"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def missed_m1(bot: Bot) -> dict[str, Any]:
    """Let M1 (due 1 April) pass unmet; the leader's recalibration DM, as shown then."""
    virtual_time(bot.services)
    bot.clock.set(at("2027-04-02 09:00", "Europe/Berlin"))
    await run_job(bot, "milestones")
    message = bot.fake.messages[bot.fake.dm_id(LEADER)][-1]
    assert buttons(message) == [PROPOSE, ASK_SUPPORT]
    return copy.deepcopy(message)


async def click(bot: Bot, message: dict[str, Any], action: str, *, user: str) -> None:
    response = await bot.driver.block_action(user=user, action_id=action, message=message)
    assert response.status == 200


async def last_reply(bot: Bot, count: int = 1) -> dict[str, Any]:
    calls = await bot.fake.wait_for("response_url", count=count)
    return calls[-1].args


async def test_a_checkin_that_reaches_a_threshold_is_celebrated(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    bot.fake.add_channel(WINS, name="wins")
    modal = await open_checkin(bot)
    answers = {**ANSWERS, "ind:I1": "70", "act:D1:status": "done", "act:D1:progress": "100"}
    response = await submit(bot, modal, answers)
    assert response.json == {"response_action": "clear"}

    posts = await bot.fake.wait_for("chat.postMessage", count=2, where=to(WINS))
    assert "Engagement at 68 or above" in json.dumps(posts[0].args)
    assert "Coaching programme completed" in json.dumps(posts[1].args)
    await bot.fake.wait_for("chat.postMessage", count=3, where=to(SPONSOR))  # help + 2 notes
    leader = [c.args["text"] for c in posts_to(bot.fake, LEADER)]
    assert sum("You met milestone" in text for text in leader) == 2
    sponsor = [c.args["text"] for c in posts_to(bot.fake, SPONSOR)]
    assert sum("met milestone" in text for text in sponsor) == 2
    async with bot.sessions() as session:
        statuses = {m.key: m.status for m in (await session.exec(select(Milestone))).all()}
    assert statuses == {"M1": "met", "M2": "met", "M3": "pending"}
    actions = [e.action for e in await stored_events(bot)]
    assert actions.count("milestone.met") == 2
    assert actions.index("checkin.submitted") < actions.index("milestone.met")


async def stored_events(bot: Bot) -> list[AuditEvent]:
    async with bot.sessions() as session:
        return list((await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all())


async def test_a_checkin_below_the_threshold_decides_nothing(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    response = await submit(bot, await open_checkin(bot), ANSWERS)  # I1 66 of 68
    assert response.json == {"response_action": "clear"}
    await bot.fake.wait_for("chat.postMessage", count=2)
    assert (await m1(bot)).status == "pending"
    kinds = sorted(d.kind for d in await deliveries(bot.sessions))
    assert kinds == ["checkin_prompt", "sponsor_help"]


async def test_propose_opens_the_amendment_form_and_a_second_miss_escalates(
    bot: Bot, example_contract: int
) -> None:
    message = await missed_m1(bot)
    assert (await m1(bot)).missed_count == 1
    assert posts_to(bot.fake, VP) == []

    await click(bot, message, PROPOSE, user=LEADER)
    (opened,) = await bot.fake.wait_for("views.open")
    assert opened.response["ok"], opened.response
    form = await filled_modal(bot.fake, LEADER)
    assert form["callback_id"] == AMEND_ITEM
    assert json.loads(form["private_metadata"])["handle"] == "M1"
    response = await bot.driver.submit_view(
        form, {"due": "2027-05-14", "rationale": "The survey moved to May."}, user=LEADER
    )
    assert response.json["response_action"] == "update", response.json

    await bot.fake.wait_for("chat.postMessage", count=2, where=to(SPONSOR))  # note, request
    request = copy.deepcopy(bot.fake.messages[bot.fake.dm_id(SPONSOR)][-1])
    assert "Amendment #1" in json.dumps(request["blocks"])
    await bot.driver.block_action(user=SPONSOR, action_id=APPROVE, message=request)
    await bot.fake.wait_for("chat.postMessage", count=2, where=to(LEADER))  # the outcome
    recalibrated = await m1(bot)
    assert (recalibrated.status, recalibrated.due.isoformat(), recalibrated.missed_count) == (
        "pending",
        "2027-05-14",
        1,
    )

    bot.clock.set(at("2027-05-15 09:00", "Europe/Berlin"))
    await run_job(bot, "milestones")
    assert (await m1(bot)).missed_count == 2
    (escalated,) = posts_to(bot.fake, VP)
    assert "missed milestone M1 again" in escalated.args["text"]
    assert "miss 2, due 14 May 2027" in json.dumps(escalated.args["blocks"])
    assert (
        len([c for c in posts_to(bot.fake, LEADER) if "Let's recalibrate" in c.args["text"]]) == 2
    )


async def test_ask_my_sponsor_for_support_asks_what_they_need_once(
    bot: Bot, example_contract: int
) -> None:
    message = await missed_m1(bot)
    await click(bot, message, ASK_SUPPORT, user=LEADER)
    await bot.fake.wait_for("views.open")
    modal = bot.fake.last_view(LEADER)
    assert modal["callback_id"] == SUPPORT_MODAL
    before = len(posts_to(bot.fake, SPONSOR))

    empty = await bot.driver.submit_view(modal, {SUPPORT_INPUT: "   "}, user=LEADER)
    assert empty.json == {
        "response_action": "errors",
        "errors": {SUPPORT_INPUT: "Please fill this in."},
    }
    long = await bot.driver.submit_view(modal, {SUPPORT_INPUT: "x" * 1001}, user=LEADER)
    assert long.json["errors"][SUPPORT_INPUT] == "Keep it to 1000 characters (this is 1001)."
    assert len(posts_to(bot.fake, SPONSOR)) == before

    need = "An hour with <!channel> the *data* team & a decision on Q3"
    sent = await bot.driver.submit_view(modal, {SUPPORT_INPUT: need}, user=LEADER)
    assert sent.json == {"response_action": "clear"}
    asks = await bot.fake.wait_for("chat.postMessage", count=2, where=to(SPONSOR))
    assert "asks for your support with milestone M1" in asks[-1].args["text"]
    shown = json.dumps(asks[-1].args["blocks"], ensure_ascii=False)
    assert "&lt;!channel&gt; the *data* team &amp; a decision on Q3" in shown
    assert "Head of Platform" in shown and "Asked in week 13 (29 Mar–4 Apr 2027)" in shown
    (confirmed,) = await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: "I've asked <@U0SPON001>" in c.args.get("text", "")
    )
    assert confirmed.args["channel"] == bot.fake.dm_id(LEADER)
    (updated,) = await bot.fake.wait_for("chat.update")
    assert updated.args["channel"] == bot.fake.dm_id(LEADER)
    shown_to_leader = bot.fake.messages[bot.fake.dm_id(LEADER)][-2]
    assert buttons(shown_to_leader) == [PROPOSE]
    assert "You asked <@U0SPON001> for support" in json.dumps(shown_to_leader["blocks"])

    await click(bot, message, ASK_SUPPORT, user=LEADER)  # the old copy, clicked again
    said = await last_reply(bot)
    assert said["text"] == "You already asked <@U0SPON001> for support with M1."
    assert len(bot.fake.calls_to("views.open")) == 1
    assert len(posts_to(bot.fake, SPONSOR)) == before + 1
    (row,) = await deliveries(bot.sessions, SUPPORT)
    assert (row.recipient_id, row.period_key, row.status) == (SPONSOR, "M1:missed1", "sent")
    assert [e.action for e in await stored_events(bot)].count("milestone.support_requested") == 1


async def test_a_support_form_submitted_by_someone_else_is_refused(
    bot: Bot, example_contract: int
) -> None:
    message = await missed_m1(bot)
    await click(bot, message, ASK_SUPPORT, user=LEADER)
    await bot.fake.wait_for("views.open")
    modal = bot.fake.last_view(LEADER)
    forged = await bot.driver.submit_view(modal, {SUPPORT_INPUT: "help"}, user=OUTSIDER)
    assert forged.json["response_action"] == "errors"
    assert forged.json["errors"][SUPPORT_INPUT].startswith("Only the leader")
    assert await deliveries(bot.sessions, SUPPORT) == []


@pytest.mark.parametrize("action", [PROPOSE, ASK_SUPPORT])
async def test_a_click_by_someone_else_is_refused(
    bot: Bot, example_contract: int, action: str
) -> None:
    message = await missed_m1(bot)
    await click(bot, message, action, user=OUTSIDER)
    said = await last_reply(bot)
    assert said["response_type"] == "ephemeral" and said["replace_original"] is False
    assert said["text"].startswith("Only ")
    assert bot.fake.calls_to("views.open") == []
    assert await deliveries(bot.sessions, SUPPORT) == []
    assert bot.fake.calls_to("chat.update") == []


async def test_the_sponsor_may_propose_but_not_ask_themselves(
    bot: Bot, example_contract: int
) -> None:
    message = await missed_m1(bot)
    await click(bot, message, ASK_SUPPORT, user=SPONSOR)
    assert "Only <@U0LEAD001>" in (await last_reply(bot))["text"]
    await click(bot, message, PROPOSE, user=SPONSOR)
    (opened,) = await bot.fake.wait_for("views.open")
    assert (
        opened.response["ok"]
        and (await filled_modal(bot.fake, SPONSOR))["callback_id"] == AMEND_ITEM
    )


async def test_a_button_of_an_earlier_miss_says_so(bot: Bot, example_contract: int) -> None:
    message = await missed_m1(bot)
    async with bot.sessions() as session:
        await writing(session)
        row = (await session.exec(select(Milestone).where(Milestone.key == "M1"))).one()
        row.status, row.decided_at = "pending", None  # recalibrated meanwhile
        session.add(row)
        await session.commit()
    await click(bot, message, ASK_SUPPORT, user=LEADER)
    assert "has been recalibrated since" in (await last_reply(bot))["text"]
    assert await deliveries(bot.sessions, SUPPORT) == []
    assert "recalibrated" in response_texts(bot.fake)[-1]


async def test_a_milestone_amended_into_the_past_is_decided_and_announced_once(
    bot: Bot, example_contract: int
) -> None:
    """The contract came to North Star on 10 March; M1 moved to 1 March is news all the same."""
    virtual_time(bot.services)
    form = await _amend_m1(bot)
    response = await bot.driver.submit_view(
        form, {"due": "2027-03-01", "rationale": "The survey closed early."}, user=LEADER
    )
    assert "is in the past" in response.json["errors"]["due"]
    response = await bot.driver.submit_view(
        form,
        {"due": "2027-03-01", "past_ok": ["yes"], "rationale": "The survey closed early."},
        user=LEADER,
    )
    assert response.json["response_action"] == "update", response.json
    await bot.fake.wait_for("chat.postMessage", count=1, where=to(SPONSOR))
    request = copy.deepcopy(bot.fake.messages[bot.fake.dm_id(SPONSOR)][-1])
    await bot.driver.block_action(user=SPONSOR, action_id=APPROVE, message=request)
    await bot.fake.wait_for("chat.postMessage", count=1, where=to(LEADER))  # the outcome
    assert (await m1(bot)).due_set_at is not None

    bot.clock.advance(timedelta(minutes=30))
    await run_job(bot, "milestones")
    bot.clock.advance(timedelta(hours=1))
    await run_job(bot, "milestones")
    decided = await m1(bot)
    assert (decided.status, decided.missed_count) == ("missed", 1)
    told = [c for c in posts_to(bot.fake, LEADER) if "Let's recalibrate" in c.args["text"]]
    assert len(told) == 1
    assert [d.period_key for d in await deliveries(bot.sessions, "milestone_missed")] == [
        "M1:missed1"
    ]


async def _amend_m1(bot: Bot) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.command("/contract", "amend", user=LEADER)
    await bot.fake.wait_for("views.open", count=before + 1)
    chooser = await filled_modal(bot.fake, LEADER)
    response = await bot.driver.submit_view(
        chooser, {"item": "milestone:M1", "action": "change"}, user=LEADER
    )
    assert response.json["response_action"] == "update", response.json
    return await filled_modal(bot.fake, LEADER)
