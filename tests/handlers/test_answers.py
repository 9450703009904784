"""Answering check-ins through signed requests and the fake Slack: the digest shows what the
leader wrote, More opens it whole, Reply threads under the prompt and stays with the
check-in, Nudge goes once a week; every button re-checks who clicks it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from sqlmodel import select

from bot.answers.model import MORE, NUDGE, NUDGE_KIND, REPLY, REPLY_INPUT, REPLY_KIND, REPLY_MODAL
from bot.checkins.blocks import START
from bot.checkins.model import PROMPT
from bot.risks.model import REPLY as RISK_REPLY
from bot.summary.home import OPEN_SUMMARY
from bot.ui.views import LOADING
from storage.db import writing
from storage.models import CheckIn, CheckInNudge, CheckInReply
from tests.bot.checkins.test_support import add_contract, at, deliveries, run_job, virtual_time
from tests.conftest import response_texts
from tests.handlers.test_checkin_modal import ANSWERS, open_checkin, submit
from tests.harness import Bot, filled_modal

LEADER, SPONSOR, OWNER = "U0LEAD001", "U0SPON001", "U0HRBP001"
PEER, ESCALATION = "U0PEER001", "U0VP00001"

WINS = "Shipped the <!channel> runbook & *trained* two on-call leads."
REFLECTION = "Delegating the review worked. " * 20 + "Next I try it with planning."


def digest_of(bot: Bot, user: str) -> dict[str, Any]:
    found = [
        m
        for m in bot.fake.messages.get(bot.fake.dm_id(user), [])
        if "North Star digest" in m["text"]
    ]
    assert len(found) == 1
    return copy.deepcopy(found[0])


def flat(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        e["action_id"]
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] != OPEN_SUMMARY
    ]


def with_value(message: dict[str, Any], action_id: str, value: str) -> dict[str, Any]:
    """The message as a crafted request would carry it: `action_id`'s button holds `value`."""
    crafted = copy.deepcopy(message)
    for block in crafted["blocks"]:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                element["value"] = value
    return crafted


async def click(bot: Bot, message: dict[str, Any], action: str, *, user: str) -> None:
    response = await bot.driver.block_action(user=user, action_id=action, message=message)
    assert response.status == 200


async def said(bot: Bot, count: int = 1) -> str:
    await bot.fake.wait_for("response_url", count=count)
    return response_texts(bot.fake)[count - 1]


async def answered_and_digested(bot: Bot, **answers: Any) -> dict[str, Any]:
    """The leader answers week 10; the March digest goes; the sponsor's digest."""
    virtual_time(bot.services)
    modal = await open_checkin(bot)
    response = await submit(bot, modal, {**ANSWERS, **answers})
    assert response.json == {"response_action": "clear"}
    report = await run_job(bot, "digests")
    assert str(report).startswith("2 sent"), str(report)
    return digest_of(bot, SPONSOR)


async def test_the_digest_shows_reflection_wins_and_confidence(
    bot: Bot, example_contract: int
) -> None:
    digest = await answered_and_digested(bot, wins=WINS, reflection=REFLECTION)
    text = flat(digest)
    assert "📝 *Check-in, week 10 (8–14 Mar 2027)* · confidence 4/5" in text
    assert "🏆 *Wins* Shipped the &lt;!channel&gt; runbook &amp; *trained* two" in text
    assert "<!channel>" not in text
    reflection = next(line for line in text.split("\\n") if "💭 *Reflection*" in line)
    assert reflection.endswith('…"') or "…" in reflection
    assert "Next I try it with planning" not in text  # shortened: More has the rest
    assert "📊 Confidence 4/5 (the first rating)" in text
    assert [b for b in buttons(digest) if b != RISK_REPLY] == [MORE, REPLY]
    mine = digest_of(bot, OWNER)  # the owner answers check-ins too
    assert [b for b in buttons(mine) if b != RISK_REPLY] == [MORE, REPLY]


async def test_more_opens_the_whole_checkin_and_refuses_a_peer(
    bot: Bot, example_contract: int
) -> None:
    digest = await answered_and_digested(bot, reflection=REFLECTION)
    await click(bot, digest, MORE, user=SPONSOR)
    await bot.fake.wait_for("views.open", count=2)  # the leader's check-in was the first
    view = await filled_modal(bot.fake, SPONSOR)
    shown = json.dumps(view["blocks"], ensure_ascii=False)
    assert "Next I try it with planning." in shown and "Confidence* 4/5" in shown
    assert [
        e["action_id"] for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]
    ] == [REPLY]

    await click(bot, digest, MORE, user=PEER)  # a forwarded digest
    assert "You can't read that check-in" in await said(bot)
    assert len(bot.fake.calls_to("views.open")) == 2

    await click(
        bot, digest, MORE, user=ESCALATION
    )  # reads the contract, answers through the sponsor
    await bot.fake.wait_for("views.open", count=3)
    theirs = await filled_modal(bot.fake, ESCALATION)
    assert "Next I try it with planning." in json.dumps(theirs["blocks"])
    assert all(b["type"] != "actions" for b in theirs["blocks"])
    await click(bot, digest, REPLY, user=ESCALATION)
    assert "Only the contract's sponsor, owner or approvers" in await said(bot, 2)


async def test_reply_in_the_checkin_modal_pushes_the_form_on_top(
    bot: Bot, example_contract: int
) -> None:
    digest = await answered_and_digested(bot)
    await click(bot, digest, MORE, user=SPONSOR)
    await bot.fake.wait_for("views.open", count=2)
    more = await filled_modal(bot.fake, SPONSOR)
    response = await bot.driver.block_action(user=SPONSOR, action_id=REPLY, view=more)
    assert response.status == 200
    (pushed,) = await bot.fake.wait_for("views.push")
    assert pushed.response["ok"], pushed.response  # a "Loading…" view, on top of the check-in
    assert pushed.args["view"]["callback_id"] == LOADING  # before anything is read
    modal = await filled_modal(bot.fake, SPONSOR)
    assert modal["callback_id"] == REPLY_MODAL and modal["id"] == pushed.response["view"]["id"]
    assert len(bot.fake.calls_to("views.open")) == 2  # nothing opened beside it


async def test_a_reply_threads_under_the_prompt_and_shows_in_history(
    bot: Bot, example_contract: int
) -> None:
    digest = await answered_and_digested(bot)
    (prompt,) = await deliveries(bot.sessions, PROMPT)
    assert prompt.slack_ts and prompt.slack_channel

    await click(bot, digest, REPLY, user=SPONSOR)
    await bot.fake.wait_for("views.open", count=2)
    modal = await filled_modal(bot.fake, SPONSOR)
    assert modal["callback_id"] == REPLY_MODAL

    empty = await bot.driver.submit_view(modal, {REPLY_INPUT: "  "}, user=SPONSOR)
    assert empty.json == {
        "response_action": "errors",
        "errors": {REPLY_INPUT: "Please fill this in."},
    }
    long = await bot.driver.submit_view(modal, {REPLY_INPUT: "y" * 1001}, user=SPONSOR)
    assert long.json["errors"][REPLY_INPUT] == "Keep it to 1000 characters (this is 1001)."
    forged = await bot.driver.submit_view(modal, {REPLY_INPUT: "hi"}, user=PEER)
    assert "You can't read that check-in" in forged.json["errors"][REPLY_INPUT]
    assert await stored(bot, CheckInReply) == []

    words = "Great week <@U0PEER001> & <https://evil.example|click> — let's talk planning."
    sent = await bot.driver.submit_view(modal, {REPLY_INPUT: words}, user=SPONSOR)
    assert sent.json == {"response_action": "clear"}
    (threaded,) = await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: c.args.get("thread_ts") == prompt.slack_ts
    )
    assert threaded.args["channel"] == prompt.slack_channel and threaded.response["ok"]
    body = json.dumps(threaded.args["blocks"], ensure_ascii=False)
    assert "&lt;@U0PEER001&gt; &amp; &lt;https://evil.example|click&gt;" in body
    assert "<@U0SPON001> replied to your check-in for week 10" in body
    (reply,) = await stored(bot, CheckInReply)
    assert (reply.author_id, reply.text) == (SPONSOR, words)
    (row,) = await deliveries(bot.sessions, REPLY_KIND)
    assert (row.recipient_id, row.period_key) == (LEADER, f"reply:{reply.id}")

    response = await bot.driver.command("/checkin", "history", user=LEADER)
    assert response.status == 200
    history = await said(bot)
    assert "Replies to your check-ins" in history
    assert "↩️ <@U0SPON001>" in history and "&lt;@U0PEER001&gt; &amp;" in history

    await click(bot, digest, MORE, user=SPONSOR)  # the reply stays with the check-in
    await bot.fake.wait_for("views.open", count=3)
    assert "let's talk planning" in json.dumps((await filled_modal(bot.fake, SPONSOR))["blocks"])


async def test_a_reply_without_a_prompt_goes_as_a_dm(bot: Bot, example_contract: int) -> None:
    digest = await answered_and_digested(bot)
    async with bot.sessions() as session:
        await writing(session)
        for row in await deliveries(bot.sessions, PROMPT):
            merged = await session.merge(row)
            await session.delete(merged)
        await session.commit()
    await click(bot, digest, REPLY, user=OWNER)
    await bot.fake.wait_for("views.open", count=2)
    modal = await filled_modal(bot.fake, OWNER)
    await bot.driver.submit_view(modal, {REPLY_INPUT: "Proud of this."}, user=OWNER)
    (dm,) = await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: "replied to your check-in" in c.args.get("text", "")
    )
    assert "thread_ts" not in dm.args and dm.args["channel"] == LEADER


async def stored(bot: Bot, model: Any) -> list[Any]:
    async with bot.sessions() as session:
        return list((await session.exec(select(model))).all())


async def missed_week_digest(bot: Bot) -> dict[str, Any]:
    """Weeks 10 and 11 pass unanswered; the March digest, sent on 24 March."""
    virtual_time(bot.services)
    bot.clock.set(at("2027-03-24 09:00", "Europe/Berlin"))
    report = await run_job(bot, "digests")
    assert str(report).startswith("2 sent"), str(report)
    return digest_of(bot, SPONSOR)


async def test_nudge_goes_once_a_week_whoever_clicks(bot: Bot, example_contract: int) -> None:
    digest = await missed_week_digest(bot)
    assert "📭 2 missed check-ins: week 10" in flat(digest)
    assert buttons(digest) == [NUDGE]
    await click(bot, digest, NUDGE, user=SPONSOR)
    assert (
        await said(bot)
        == "I've nudged <@U0LEAD001> about their check-in for week 11 (15–21 Mar 2027)."
    )
    (nudge,) = await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: "nudge" in c.args.get("text", "").lower()
    )
    assert nudge.args["channel"] == LEADER
    body = json.dumps(nudge.args["blocks"], ensure_ascii=False)
    assert "<@U0SPON001> would love to hear how week 11" in body
    assert "That week has closed" in body and START not in body

    await click(bot, digest, NUDGE, user=SPONSOR)  # a double click
    await click(bot, digest_of(bot, OWNER), NUDGE, user=OWNER)
    again = await said(bot, 2)
    assert again.startswith("<@U0LEAD001> was already nudged about week 11")
    assert "by <@U0SPON001> on 24 Mar 2027" in await said(bot, 3)
    assert len(await deliveries(bot.sessions, NUDGE_KIND)) == 1
    assert len(await stored(bot, CheckInNudge)) == 1
    nudges = [
        c
        for c in bot.fake.calls_to("chat.postMessage")
        if "nudge" in c.args.get("text", "").lower()
    ]
    assert len(nudges) == 1


async def test_a_nudge_while_the_week_is_open_carries_start(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    bot.clock.set(at("2027-03-16 09:00", "Europe/Berlin"))  # week 10 is late but answerable
    digest = await missed_week_digest_now(bot)
    crafted = copy.deepcopy(digest)
    crafted["blocks"].append(
        {
            "type": "actions",
            "block_id": "nudge",
            "elements": [
                {
                    "type": "button",
                    "action_id": NUDGE,
                    "text": {"type": "plain_text", "text": "Nudge"},
                    "value": json.dumps({"contract_id": example_contract, "period": "2027-W10"}),
                }
            ],
        }
    )
    await click(bot, crafted, NUDGE, user=SPONSOR)
    (nudge,) = await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: "nudge" in c.args.get("text", "").lower()
    )
    assert START in json.dumps(nudge.args["blocks"])


async def missed_week_digest_now(bot: Bot) -> dict[str, Any]:
    report = await run_job(bot, "digests")
    assert str(report).startswith("2 sent"), str(report)
    return digest_of(bot, SPONSOR)


@pytest.mark.parametrize(
    ("user", "period", "refusal"),
    [
        (PEER, "2027-W11", "You can't nudge about that contract."),
        (ESCALATION, "2027-W11", "Only the contract's sponsor or owner can nudge"),
        (SPONSOR, "2027-W13", "not due yet"),
        (SPONSOR, "2026-W40", "outside the contract's dates"),
    ],
)
async def test_a_crafted_nudge_is_refused(
    bot: Bot, example_contract: int, user: str, period: str, refusal: str
) -> None:
    digest = await missed_week_digest(bot)
    value = json.dumps({"contract_id": example_contract, "period": period})
    await click(bot, with_value(digest, NUDGE, value), NUDGE, user=user)
    assert refusal in await said(bot)
    assert await deliveries(bot.sessions, NUDGE_KIND) == []


async def test_buttons_crafted_for_another_contract_are_refused(
    bot: Bot, example_contract: int
) -> None:
    digest = await answered_and_digested(bot)
    other = await add_contract(
        bot.sessions, leader="U0OTHER01", sponsor="U0OTHSP01", owner=None, title="Elsewhere"
    )
    async with bot.sessions() as session:
        await writing(session)
        theirs = CheckIn(
            contract_id=other, period_key="2027-W10", confidence=2, reflection="Private words"
        )
        session.add(theirs)
        await session.commit()
        await session.refresh(theirs)
    value = json.dumps({"checkin_id": theirs.id})
    await click(bot, with_value(digest, MORE, value), MORE, user=SPONSOR)
    await click(bot, with_value(digest, REPLY, value), REPLY, user=SPONSOR)
    assert "You can't read that check-in" in await said(bot)
    assert "You can't read that check-in" in await said(bot, 2)
    nudge = json.dumps({"contract_id": other, "period": "2027-W09"})
    crafted = with_value(digest, MORE, nudge)
    for block in crafted["blocks"]:
        for element in block.get("elements") or []:
            if element.get("action_id") == MORE:
                element["action_id"] = NUDGE
    await click(bot, crafted, NUDGE, user=SPONSOR)
    assert "You can't nudge about that contract." in await said(bot, 3)
    await click(bot, with_value(digest, MORE, "{not json"), MORE, user=SPONSOR)
    assert "out of date" in await said(bot, 4)
    assert len(bot.fake.calls_to("views.open")) == 1  # the leader's check-in only


async def test_the_summary_shows_the_latest_checkin_to_its_readers_only(
    bot: Bot, example_contract: int
) -> None:
    await answered_and_digested(bot, wins=WINS, reflection=REFLECTION)
    await bot.driver.command("/contract", "summary <@U0LEAD001>", user=SPONSOR)
    summary = await said(bot)
    assert "*Latest check-in*\n_week 10 (8–14 Mar 2027)_" in summary
    assert "🏆 *Wins* Shipped the &lt;!channel&gt; runbook &amp; *trained*" in summary
    assert "Next I try it with planning." in summary  # the summary has room for it whole
    assert "📊 Confidence 4/5 (the first rating)" in summary
    await bot.driver.command("/contract", "summary <@U0LEAD001>", user=PEER)
    refused = await said(bot, 2)
    assert "Latest check-in" not in refused and "Delegating" not in refused


async def test_a_replayed_reply_is_kept_and_sent_once(bot: Bot, example_contract: int) -> None:
    digest = await answered_and_digested(bot)
    await click(bot, digest, REPLY, user=SPONSOR)
    await bot.fake.wait_for("views.open", count=2)
    modal = await filled_modal(bot.fake, SPONSOR)
    first = await bot.driver.submit_view(modal, {REPLY_INPUT: "Well done."}, user=SPONSOR)
    body, headers = bot.driver.last_sent
    await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: "replied to your check-in" in c.args.get("text", "")
    )
    again = await bot.driver.post_raw(body, headers)  # Slack's retry, or a double click
    assert again.status == 200 and again.json == first.json
    assert len(await stored(bot, CheckInReply)) == 1
    assert len(await deliveries(bot.sessions, REPLY_KIND)) == 1
    replies = [
        c
        for c in bot.fake.calls_to("chat.postMessage")
        if "replied to your check-in" in c.args.get("text", "")
    ]
    assert len(replies) == 1
