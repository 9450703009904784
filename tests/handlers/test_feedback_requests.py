"""`/contract request-feedback`, the reviewers' DMs and their button, reminders, the cadence."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from storage.models import Delivery, Feedback, FeedbackRequest
from tests.conftest import Bot
from tests.handlers.test_feedback_support import (
    DANA,
    LEADER,
    OUTSIDER,
    PEER1,
    PEER2,
    PEER3,
    SPONSOR,
    answers,
    dms,
    every_row,
    fast_sending,
    for_modal,
    run_job,
    say,
    settled,
    text_of,
)
from tests.harness import filled_modal


@pytest.fixture(autouse=True)
def _fast(bot: Bot) -> None:
    fast_sending(bot)


def mention(user: str) -> str:
    return f"<@{user}|{user.lower()}>"


async def ask(bot: Bot, *people: str, extra: str = "", user: str = LEADER) -> str:
    text = " ".join(["request-feedback", *(mention(p) for p in people), extra]).strip()
    return await say(bot, "/contract", text, user=user)


async def request_dm(bot: Bot, reviewer: str, count: int = 1) -> dict[str, Any]:
    await bot.fake.wait_for(
        "chat.postMessage", count=count, where=lambda c: c.args.get("channel") == reviewer
    )
    return dms(bot, reviewer)[count - 1]


async def click_give(bot: Bot, reviewer: str, message: dict[str, Any]) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.block_action(user=reviewer, action_id="feedback_request_give", message=message)
    opened = (await bot.fake.wait_for("views.open", count=before + 1))[-1]
    assert opened.response["ok"], opened.response
    return await filled_modal(bot.fake, reviewer)


async def test_the_leader_asks_and_each_reviewer_gets_a_button(
    bot: Bot, example_contract: int
) -> None:
    said = await ask(bot, PEER1, PEER2, extra="E2")
    assert f"Asked <@{PEER1}>, <@{PEER2}>" in said and "on E2" in said
    for reviewer in (PEER1, PEER2):
        dm = await request_dm(bot, reviewer)
        shown = text_of(dm)
        assert f"<@{LEADER}> asks for your feedback on <@{LEADER}>" in shown
        assert "*E2*" in shown and "Give feedback" in shown
    async with bot.sessions() as session:
        rows = (await session.exec(select(FeedbackRequest))).all()
    assert {r.reviewer_id for r in rows} == {PEER1, PEER2}
    assert len({r.batch for r in rows}) == 1 and rows[0].expectation_key == "E2"


@pytest.mark.parametrize(
    ("user", "text", "expected"),
    [
        (PEER1, f"request-feedback {mention(PEER2)}", "only a contract's leader or sponsor"),
        (LEADER, "request-feedback raj", "I couldn't read “raj”"),
        (LEADER, f"request-feedback {mention(PEER2)} E9", "has no expectation E9"),
        (LEADER, "request-feedback E2", "Name the people or the groups to ask"),
        (LEADER, "request-feedback reports", "The contract lists no direct reports"),
        (LEADER, f"request-feedback {mention(PEER2)} for dana", "is not a mention"),
        (OUTSIDER, f"request-feedback {mention(PEER2)} for {DANA}", "Only the leader or the spon"),
    ],
)
async def test_requests_that_cannot_be_made(
    bot: Bot, example_contract: int, user: str, text: str, expected: str
) -> None:
    said = await say(bot, "/contract", text, user=user)
    assert expected in said
    async with bot.sessions() as session:
        assert (await session.exec(select(FeedbackRequest))).all() == []


async def test_the_sponsor_asks_for_the_contract_they_sponsor(
    bot: Bot, example_contract: int
) -> None:
    said = await ask(bot, PEER3, user=SPONSOR)
    assert f"on <@{LEADER}>'s contract" in said
    dm = await request_dm(bot, PEER3)
    assert f"<@{SPONSOR}> asks for your feedback on <@{LEADER}>" in text_of(dm)


async def test_answers_by_name_are_shown_anonymous_ones_never_counted(
    bot: Bot, example_contract: int
) -> None:
    await ask(bot, PEER1, PEER2, PEER3, extra="E2")
    named = await click_give(bot, PEER1, await request_dm(bot, PEER1))
    expectation = next(b for b in named["blocks"] if b.get("block_id") == "expectation")
    assert expectation["element"]["initial_option"]["value"] == "E2"
    await bot.driver.submit_view(named, for_modal(named, answers(expectation="E2")), user=PEER1)
    await request_dm(bot, PEER3)  # every delivery so far has settled
    await bot.fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == LEADER)
    await settled(bot)

    before = {(t, json.dumps(r, default=str)) for t, r in await every_row(bot.sessions)}
    anonymous = await click_give(bot, PEER2, await request_dm(bot, PEER2))
    response = await bot.driver.submit_view(
        anonymous, answers(expectation="E2", anonymity="anonymous"), user=PEER2
    )
    assert response.json["response_action"] == "update"
    after = {(t, json.dumps(r, default=str)) for t, r in await every_row(bot.sessions)}
    changed = after - before
    # The request keeps no mark of it; the submission's own key (so that a replay writes
    # nothing) holds the view's id and the "thank you" shown, nothing of the request.
    assert {t for t, _ in changed} == {"feedback", "slack_request"}
    (claimed,) = [json.loads(row) for t, row in changed if t == "slack_request"]
    assert set(claimed) == {"key", "answer", "created_at"}
    assert "request" not in json.dumps(claimed["answer"]).lower()
    assert not [row for _, row in changed if PEER2 in row or "raj" in row.lower()]

    async with bot.sessions() as session:
        requests = {r.reviewer_id: r for r in (await session.exec(select(FeedbackRequest))).all()}
        entries = {e.anonymous: e for e in (await session.exec(select(Feedback))).all()}
    assert requests[PEER1].status == "answered" and entries[False].request_id == requests[PEER1].id
    assert requests[PEER2].status == "open" and entries[True].request_id is None

    said = await say(bot, "/contract", "request-feedback", user=LEADER)
    assert f"answered by name: <@{PEER1}>" in said
    assert "anonymous answers:" not in said and "no named answer" not in said
    assert PEER2 not in said and PEER3 not in said
    bot.clock.advance(timedelta(days=1))
    assert await say(bot, "/contract", "request-feedback", user=LEADER) == said
    said = await say(bot, "/contract", "request-feedback", user=PEER1)
    assert "asked for no feedback" in said


async def test_one_reminder_to_everyone_without_a_named_answer(
    bot: Bot, example_contract: int
) -> None:
    await ask(bot, PEER1, PEER2)
    modal = await click_give(bot, PEER1, await request_dm(bot, PEER1))
    await bot.driver.submit_view(modal, for_modal(modal, answers()), user=PEER1)
    modal = await click_give(bot, PEER2, await request_dm(bot, PEER2))
    await bot.driver.submit_view(
        modal, for_modal(modal, answers(anonymity="anonymous")), user=PEER2
    )

    def reminders(user: str) -> list[dict[str, Any]]:
        return [m for m in dms(bot, user) if "Reminder" in text_of(m)]

    bot.clock.advance(timedelta(days=2))
    await run_job(bot)
    assert reminders(PEER2) == []
    bot.clock.advance(timedelta(days=1, hours=1))  # Saturday: reminders wait for a working day
    await run_job(bot)
    assert reminders(PEER2) == []
    bot.clock.set(datetime(2027, 3, 15, 4, 0, tzinfo=UTC))  # Monday, 09:30 in Kolkata
    await run_job(bot)
    await run_job(bot)
    [reminder] = reminders(PEER2)
    assert f"<@{LEADER}> asks for your feedback" in text_of(reminder)
    assert "answered anonymously" in text_of(reminder)
    assert reminders(PEER1) == []  # answered with a name: no reminder
    async with bot.sessions() as session:
        asked = select(FeedbackRequest).where(FeedbackRequest.requester_id == LEADER)
        requests = {r.reviewer_id: r for r in (await session.exec(asked)).all()}
    assert requests[PEER2].reminded_at is not None

    bot.clock.advance(timedelta(days=12))
    await run_job(bot)
    async with bot.sessions() as session:
        assert (await session.get(FeedbackRequest, requests[PEER2].id)).status == "expired"  # type: ignore[union-attr]


async def test_the_button_is_only_for_the_person_asked(bot: Bot, example_contract: int) -> None:
    await ask(bot, PEER1)
    dm = await request_dm(bot, PEER1)
    before = len(bot.fake.calls_to("response_url"))
    await bot.driver.block_action(user=PEER2, action_id="feedback_request_give", message=dm)
    await bot.fake.wait_for("response_url", count=before + 1)
    assert "not addressed to you" in bot.fake.calls_to("response_url")[-1].args["text"]
    assert bot.fake.calls_to("views.open") == []


async def test_the_cadence_asks_each_reviewer_once_a_window(
    bot: Bot, example_contract: int
) -> None:
    bot.clock.set(datetime(2027, 3, 10, 5, 0, tzinfo=UTC))  # 06:00 in Berlin: too early
    await run_job(bot)
    assert dms(bot, PEER1) == []
    bot.clock.set(datetime(2027, 3, 10, 9, 0, tzinfo=UTC))
    await run_job(bot)
    await run_job(bot)
    for reviewer in (PEER1, PEER2, PEER3):
        [dm] = dms(bot, reviewer)
        assert f"regular feedback on <@{LEADER}>" in text_of(dm)
    async with bot.sessions() as session:
        deliveries = (
            await session.exec(select(Delivery).where(Delivery.kind == "feedback_cadence"))
        ).all()
    assert {(d.recipient_id, d.period_key, d.status) for d in deliveries} == {
        (p, "2027-03", "sent") for p in (PEER1, PEER2, PEER3, SPONSOR, LEADER)
    }
    modal = await click_give(bot, PEER3, dms(bot, PEER3)[0])
    response = await bot.driver.submit_view(modal, for_modal(modal, answers()), user=PEER3)
    assert response.json["response_action"] == "update"

    bot.clock.set(datetime(2027, 3, 15, 9, 0, tzinfo=UTC))
    await run_job(bot)  # the reminders, on Monday (three days on was a Saturday)
    bot.clock.set(datetime(2027, 4, 5, 9, 0, tzinfo=UTC))  # a Monday in the next window
    await run_job(bot)
    assert len(dms(bot, PEER1)) == 3  # March's request, its reminder, April's request
    assert "regular feedback" in text_of(dms(bot, PEER1)[-1])
    assert len(dms(bot, PEER3)) == 2  # answered by name in March: no reminder
