"""Every Slack request that writes, writes once: replays, Slack's retries, double clicks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from sqlmodel import col, func, select

from bot.idempotency import request_key
from bot.sandbox.driver import _state_values
from storage.models import (
    Amendment,
    AuditEvent,
    CheckIn,
    Evidence,
    Expectation,
    Feedback,
    SlackRequest,
)
from tests.bot.checkins.test_support import virtual_time
from tests.conftest import Bot
from tests.fakes import FakeSlack
from tests.handlers.test_amendments import SPONSOR, propose
from tests.handlers.test_checkin_modal import ANSWERS, open_checkin, submit
from tests.handlers.test_contracts import add, create_draft
from tests.handlers.test_feedback_support import (
    DANA,
    LEADER,
    PEER1,
    answers,
    dms,
    fast_sending,
    open_modal,
    settled,
)
from tests.harness import running_bot


@pytest_asyncio.fixture
async def bot(fake_slack: FakeSlack, database_url: str) -> AsyncIterator[Bot]:
    """The app on SQLite, and on PostgreSQL where a server answers."""
    async with running_bot(fake_slack, database_url) as harness:
        fast_sending(harness)
        yield harness


async def _count(bot: Bot, model: Any, *where: Any) -> int:
    async with bot.sessions() as session:
        return int(
            (await session.exec(select(func.count()).select_from(model).where(*where))).one()
        )


@pytest.mark.parametrize("anonymous", [False, True])
async def test_a_replayed_feedback_submission_writes_nothing_and_gets_the_same_answer(
    bot: Bot, example_contract: int, anonymous: bool
) -> None:
    modal = await open_modal(bot, "/feedback", DANA, user=PEER1)
    values = answers(anonymity="anonymous" if anonymous else "attributed")
    first = await bot.driver.submit_view(modal, values, user=PEER1)
    body, headers = bot.driver.last_sent
    if not anonymous:  # named feedback reaches the leader at once
        await bot.fake.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == LEADER)

    again = await bot.driver.post_raw(body, headers)

    assert again.status == 200
    assert again.json == first.json  # the same "thank you" view
    assert await _count(bot, Feedback) == 1
    await asyncio.sleep(0.3)
    await settled(bot)
    assert len(dms(bot, LEADER)) == (0 if anonymous else 1)


async def test_three_identical_submissions_at_once_write_one_entry_and_one_dm(
    bot: Bot, example_contract: int
) -> None:
    modal = await open_modal(bot, "/feedback", DANA, user=PEER1)
    # The same signed request three times at once: the client retried, Slack retried.
    current = bot.driver._current(modal)
    current["state"] = {"values": _state_values(current, answers())}
    payload = {
        "type": "view_submission",
        **bot.driver._common(PEER1),
        "trigger_id": bot.fake.issue_trigger_id(user=PEER1, view_id=current["id"]),
        "view": current,
        "response_urls": [],
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = {"Content-Type": "application/x-www-form-urlencoded", **bot.driver.sign(body)}

    answered = await asyncio.gather(*(bot.driver.post_raw(body, headers) for _ in range(3)))

    assert [a.status for a in answered] == [200, 200, 200]
    assert await _count(bot, Feedback) == 1
    await bot.fake.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == LEADER)
    await asyncio.sleep(0.3)
    await settled(bot)
    assert len(dms(bot, LEADER)) == 1


async def test_a_double_click_on_submit_adds_one_draft_item(bot: Bot) -> None:
    editor = await create_draft(bot)
    await add(bot, editor, "expectation", {"kind": "impact", "text": "Forecast within 5%."})
    body, headers = bot.driver.last_sent
    again = await bot.driver.post_raw(body, headers)
    assert again.status == 200
    assert await _count(bot, Expectation) == 1
    assert await _count(bot, AuditEvent, col(AuditEvent.action) == "draft.expectation_added") == 1


async def test_request_feedback_twice_by_replay_asks_once(bot: Bot, example_contract: int) -> None:
    response = await bot.driver.command(
        "/contract", "request-feedback <@U0PEER002|pia> E1", user=LEADER
    )
    assert response.status == 200
    body, headers = bot.driver.last_sent
    await bot.fake.wait_for("response_url")
    to_raj = await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: c.args.get("channel") == "U0PEER002"
    )
    assert len(to_raj) == 1

    again = await bot.driver.post_raw(body, headers)
    assert again.status == 200
    await asyncio.sleep(0.3)
    await settled(bot)
    assert (
        len(
            [
                c
                for c in bot.fake.calls_to("chat.postMessage")
                if c.args.get("channel") == "U0PEER002"
            ]
        )
        == 1
    )
    assert len(bot.fake.calls_to("response_url")) == 1


async def test_slack_retrying_an_event_runs_it_once(bot: Bot, example_contract: int) -> None:
    event = {"type": "app_home_opened", "user": LEADER, "tab": "home", "channel": "D0DANA001"}
    for retry in (None, 1, 2, 3):
        answered = await bot.driver.event(event, retry_num=retry, event_id="Ev0HOME0001")
        assert answered.status == 200
    await bot.fake.wait_for("views.publish")
    # Run once: App Home is published at once, then once more with its newly drawn charts.
    await bot.fake.wait_for("files.completeUploadExternal", count=3, timeout=30)
    await bot.fake.wait_for("views.publish", count=2, timeout=30)
    await asyncio.sleep(0.2)
    assert len(bot.fake.calls_to("views.publish")) == 2
    assert len(bot.fake.calls_to("files.completeUploadExternal")) == 3


async def test_a_failed_event_is_released_for_slacks_retry(bot: Bot) -> None:
    bot.fake.fail_next("views.publish", status=500, times=10)
    event = {"type": "app_home_opened", "user": LEADER, "tab": "home", "channel": "D0DANA001"}
    await bot.driver.event(event, event_id="Ev0HOME0002")
    async with asyncio.timeout(5):
        while await _count(bot, SlackRequest) != 0:  # noqa: ASYNC110 - polls the database
            await asyncio.sleep(0.02)


def test_keys_come_from_what_slack_gives_each_kind_of_request() -> None:
    view = {"type": "view_submission", "view": {"id": "V1", "hash": "h1"}, "trigger_id": "t"}
    assert request_key(view) == "view:V1:h1"
    assert request_key({"type": "event_callback", "event_id": "Ev1"}) == "event:Ev1"
    assert request_key({"command": "/feedback", "trigger_id": "1.2.abc"}) == "command:1.2.abc"
    assert request_key({"type": "block_actions", "trigger_id": "9.9"}) == "action:9.9"
    assert request_key({"type": "message_action", "trigger_id": "8.8"}) == "shortcut:8.8"
    assert request_key({"type": "view_closed", "view": {"id": "V1"}}) is None
    assert request_key({"type": "event_callback"}) is None
    long = request_key({"type": "block_actions", "trigger_id": "x" * 5000})
    assert long is not None and len(long) < 100


async def _replay_last(bot: Bot) -> Any:
    body, headers = bot.driver.last_sent
    again = await bot.driver.post_raw(body, headers)
    assert again.status == 200
    return again


async def test_a_replayed_evidence_submission_adds_one_piece(
    bot: Bot, example_contract: int
) -> None:
    modal = await open_modal(bot, "/contract", "evidence", user=LEADER)
    values = {"item": "activity:D1", "note": "Coaching session 2", "link": "https://d.example/2"}
    first = await bot.driver.submit_view(modal, values, user=LEADER)
    again = await _replay_last(bot)
    assert again.json == first.json
    assert await _count(bot, Evidence) == 1


async def test_a_replayed_amendment_proposal_asks_the_sponsor_once(
    bot: Bot, example_contract: int
) -> None:
    first = await propose(bot, values={"target": "28"})
    assert first.json["response_action"] == "update", first.json
    await bot.fake.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == SPONSOR)
    again = await _replay_last(bot)
    assert again.json == first.json
    assert await _count(bot, Amendment) == 1
    await asyncio.sleep(0.3)
    await settled(bot)
    asks = [c for c in bot.fake.calls_to("chat.postMessage") if c.args["channel"] == SPONSOR]
    assert len(asks) == 1


async def test_a_replayed_checkin_is_submitted_once(bot: Bot, example_contract: int) -> None:
    virtual_time(bot.services)
    modal = await open_checkin(bot)
    first = await submit(bot, modal, ANSWERS)
    assert first.json == {"response_action": "clear"}
    again = await _replay_last(bot)
    assert again.json == first.json
    submitted = col(AuditEvent.action) == "checkin.submitted"
    assert await _count(bot, AuditEvent, submitted) == 1
    assert await _count(bot, CheckIn) == 1
