"""Replying on a risk through signed requests and the fake Slack: Reply beside each open risk
in the digest and the summary opens a short modal; the reply threads under the leader's
check-in prompt for the week the risk was raised in, is kept with that check-in and shown in
`/checkin history` and the check-in's More; every click and submission is checked again."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import select

from bot.answers.model import MORE, REPLY_INPUT, REPLY_KIND
from bot.checkins.model import PROMPT
from bot.risks.model import REPLY as RISK_REPLY
from bot.risks.model import REPLY_MODAL as RISK_REPLY_MODAL
from bot.summary.home import OPEN_SUMMARY
from bot.ui.metadata import ContractRef
from bot.ui.views import LOADING
from storage.db import writing
from storage.models import CheckIn, CheckInReply, CheckInReplyRisk, Risk
from tests.bot.checkins.test_support import add_contract, deliveries
from tests.handlers.test_answers import (
    ESCALATION,
    LEADER,
    OWNER,
    PEER,
    SPONSOR,
    answered_and_digested,
    buttons,
    click,
    digest_of,
    said,
    with_value,
)
from tests.handlers.test_checkin_modal import ANSWERS
from tests.harness import Bot, filled_modal

RISK_TEXT = ANSWERS["risk1"]


async def stored(bot: Bot, model: Any) -> list[Any]:
    async with bot.sessions() as session:
        return list((await session.exec(select(model))).all())


async def open_reply(bot: Bot, digest: dict[str, Any], user: str) -> dict[str, Any]:
    await click(bot, digest, RISK_REPLY, user=user)
    modal = await filled_modal(bot.fake, user)
    assert modal["callback_id"] == RISK_REPLY_MODAL
    return modal


def risk_replies(bot: Bot) -> list[Any]:
    return [
        c
        for c in bot.fake.calls_to("chat.postMessage")
        if "replied about a risk" in c.args.get("text", "")
    ]


async def test_the_digest_offers_reply_beside_each_open_risk_to_those_who_answer(
    bot: Bot, example_contract: int
) -> None:
    digest = await answered_and_digested(bot)
    assert RISK_REPLY in buttons(digest)
    assert RISK_REPLY in buttons(digest_of(bot, OWNER))
    labels = [
        e["text"]["text"]
        for b in digest["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == RISK_REPLY
    ]
    assert labels == ["Reply: The Q3 launch competes for my time."]


async def test_a_risk_reply_threads_under_the_prompt_and_stays_with_the_checkin(
    bot: Bot, example_contract: int
) -> None:
    digest = await answered_and_digested(bot)
    (prompt,) = await deliveries(bot.sessions, PROMPT)
    (risk,) = await stored(bot, Risk)
    modal = await open_reply(bot, digest, SPONSOR)
    assert RISK_TEXT in json.dumps(modal["blocks"])

    empty = await bot.driver.submit_view(modal, {REPLY_INPUT: "   "}, user=SPONSOR)
    assert empty.json == {
        "response_action": "errors",
        "errors": {REPLY_INPUT: "Please fill this in."},
    }
    long = await bot.driver.submit_view(modal, {REPLY_INPUT: "y" * 1001}, user=SPONSOR)
    assert long.json["errors"][REPLY_INPUT] == "Keep it to 1000 characters (this is 1001)."
    assert await stored(bot, CheckInReply) == []

    words = "I can free <@U0PEER001> & <https://evil.example|time> for the launch."
    sent = await bot.driver.submit_view(modal, {REPLY_INPUT: words}, user=SPONSOR)
    assert sent.json == {"response_action": "clear"}
    (threaded,) = await bot.fake.wait_for(
        "chat.postMessage",
        where=lambda c: "replied about a risk" in c.args.get("text", ""),
    )
    assert threaded.args["thread_ts"] == prompt.slack_ts
    assert threaded.args["channel"] == prompt.slack_channel and threaded.response["ok"]
    body = json.dumps(threaded.args["blocks"], ensure_ascii=False)
    assert "&lt;@U0PEER001&gt; &amp; &lt;https://evil.example|time&gt;" in body
    assert "<@U0PEER001>" not in body.replace("&lt;@U0PEER001&gt;", "")
    assert RISK_TEXT in body and "week 10" in body
    (reply,) = await stored(bot, CheckInReply)
    assert (reply.checkin_id, reply.author_id) == (risk.checkin_id, SPONSOR)
    (link,) = await stored(bot, CheckInReplyRisk)
    assert (link.reply_id, link.risk_id) == (reply.id, risk.id)
    (row,) = await deliveries(bot.sessions, REPLY_KIND)
    assert (row.recipient_id, row.period_key) == (LEADER, f"reply:{reply.id}")

    await bot.driver.command("/checkin", "history", user=LEADER)
    history = await said(bot)
    assert "Replies to your check-ins" in history
    assert f"on risk: _{RISK_TEXT}_" in history and "&lt;@U0PEER001&gt; &amp;" in history

    await click(bot, digest, MORE, user=SPONSOR)
    more = json.dumps((await filled_modal(bot.fake, SPONSOR))["blocks"], ensure_ascii=False)
    assert f"on risk: _{RISK_TEXT}_" in more and "for the launch" in more


async def test_a_risk_reply_without_a_prompt_goes_as_a_dm(bot: Bot, example_contract: int) -> None:
    digest = await answered_and_digested(bot)
    async with bot.sessions() as session:
        await writing(session)
        for row in await deliveries(bot.sessions, PROMPT):
            await session.delete(await session.merge(row))
        await session.commit()
    modal = await open_reply(bot, digest, OWNER)
    await bot.driver.submit_view(modal, {REPLY_INPUT: "Let's talk."}, user=OWNER)
    (dm,) = await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: "replied about a risk" in c.args.get("text", "")
    )
    assert "thread_ts" not in dm.args and dm.args["channel"] == LEADER


async def test_peers_the_leader_and_forged_submissions_are_refused(
    bot: Bot, example_contract: int
) -> None:
    digest = await answered_and_digested(bot)
    modal = await open_reply(bot, digest, SPONSOR)
    opened = len(bot.fake.calls_to("views.open"))

    for user, refusal in [
        (PEER, "You can't read that check-in"),
        (ESCALATION, "Only the contract's sponsor, owner or approvers can reply to its risks"),
        (LEADER, "That's your own risk"),
    ]:
        await click(bot, digest, RISK_REPLY, user=user)
        shown = json.dumps((await filled_modal(bot.fake, user))["blocks"])
        assert refusal in shown, (user, shown)
        forged = await bot.driver.submit_view(modal, {REPLY_INPUT: "hi"}, user=user)
        assert refusal in forged.json["errors"][REPLY_INPUT]
    assert len(bot.fake.calls_to("views.open")) == opened + 3  # loading views only
    assert await stored(bot, CheckInReply) == []
    assert risk_replies(bot) == []


async def test_a_risk_of_another_contract_is_refused(bot: Bot, example_contract: int) -> None:
    digest = await answered_and_digested(bot)
    other = await add_contract(
        bot.sessions, leader="U0OTHER01", sponsor="U0OTHSP01", owner=None, title="Elsewhere"
    )
    async with bot.sessions() as session:
        await writing(session)
        theirs = CheckIn(contract_id=other, period_key="2027-W10", confidence=2, status="answered")
        session.add(theirs)
        await session.commit()
        await session.refresh(theirs)
        risk = Risk(contract_id=other, checkin_id=theirs.id, text="Private worry")
        loose = Risk(contract_id=example_contract, checkin_id=None, text="Raised elsewhere")
        session.add_all([risk, loose])
        await session.commit()
        await session.refresh(risk)
        await session.refresh(loose)
    crafted = with_value(digest, RISK_REPLY, json.dumps({"risk_id": risk.id}))
    await click(bot, crafted, RISK_REPLY, user=SPONSOR)
    shown = json.dumps((await filled_modal(bot.fake, SPONSOR))["blocks"])
    assert "You can't read that check-in" in shown and "Private worry" not in shown

    modal = await open_reply(bot, digest, SPONSOR)
    for value, refusal in [
        (json.dumps({"risk_id": risk.id}), "You can't read that check-in"),
        (json.dumps({"risk_id": loose.id}), "That risk is no longer there"),
        ("{x", "out of date"),
    ]:
        bot.fake.views[modal["id"]]["private_metadata"] = value  # a crafted submission
        answer = await bot.driver.submit_view(modal, {REPLY_INPUT: "hi"}, user=SPONSOR)
        assert refusal in answer.json["errors"][REPLY_INPUT], value
    assert await stored(bot, CheckInReply) == []
    assert risk_replies(bot) == []


async def test_a_double_submitted_risk_reply_is_kept_and_sent_once(
    bot: Bot, example_contract: int
) -> None:
    digest = await answered_and_digested(bot)
    modal = await open_reply(bot, digest, SPONSOR)
    first = await bot.driver.submit_view(modal, {REPLY_INPUT: "On it."}, user=SPONSOR)
    body, headers = bot.driver.last_sent
    await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: "replied about a risk" in c.args.get("text", "")
    )
    again = await bot.driver.post_raw(body, headers)
    assert again.status == 200 and again.json == first.json
    assert len(await stored(bot, CheckInReply)) == 1
    assert len(await stored(bot, CheckInReplyRisk)) == 1
    assert len(await deliveries(bot.sessions, REPLY_KIND)) == 1
    assert len(risk_replies(bot)) == 1


async def test_the_summary_offers_reply_beside_each_open_risk_to_those_who_answer(
    bot: Bot, example_contract: int
) -> None:
    await answered_and_digested(bot)
    seen = 0
    readers = [(SPONSOR, True), (LEADER, False), (ESCALATION, False)]
    for count, (user, offered) in enumerate(readers, start=1):
        await bot.driver.command("/contract", "summary <@U0LEAD001>", user=user)
        await bot.fake.wait_for(  # the charts come last
            "response_url", where=lambda c: "*Charts*" in json.dumps(c.args), count=count
        )
        calls = bot.fake.calls_to("response_url")[seen:]
        seen += len(calls)
        blocks = json.dumps([c.args.get("blocks") for c in calls])
        assert RISK_TEXT in blocks, user
        assert (RISK_REPLY in blocks) == offered, user


async def test_reply_in_the_summary_modal_pushes_the_form_on_top(
    bot: Bot, example_contract: int
) -> None:
    await answered_and_digested(bot)
    response = await bot.driver.block_action(
        user=SPONSOR, action_id=OPEN_SUMMARY, value=ContractRef.write(contract_id=example_contract)
    )
    assert response.status == 200
    summary = await filled_modal(bot.fake, SPONSOR)
    assert RISK_REPLY in buttons(summary)
    response = await bot.driver.block_action(user=SPONSOR, action_id=RISK_REPLY, view=summary)
    assert response.status == 200
    (pushed,) = await bot.fake.wait_for("views.push")
    assert pushed.response["ok"], pushed.response  # a "Loading…" view, on top of the summary
    assert pushed.args["view"]["callback_id"] == LOADING  # before anything is read
    modal = await filled_modal(bot.fake, SPONSOR)
    assert modal["callback_id"] == RISK_REPLY_MODAL
    assert modal["id"] == pushed.response["view"]["id"]
    assert RISK_TEXT in json.dumps(modal["blocks"], ensure_ascii=False)
