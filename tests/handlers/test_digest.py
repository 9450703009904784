"""The digest's buttons through signed requests and the fake Slack: Approve and Reject of a
pending amendment, a click by someone who may not decide, and Open summary."""

from __future__ import annotations

import copy
import json
from typing import Any

from sqlmodel import select

from bot.amendments.blocks import AMEND_REJECT, APPROVE, REJECT
from bot.summary.home import OPEN_SUMMARY
from storage.models import Amendment, Contract
from tests.bot.checkins.test_support import run_job, virtual_time
from tests.conftest import response_texts
from tests.handlers.test_amendments import propose
from tests.harness import Bot, filled_modal

LEADER, SPONSOR, OWNER = "U0LEAD001", "U0SPON001", "U0HRBP001"


async def digest_of(bot: Bot, user: str) -> dict[str, Any]:
    """The digest in `user`'s DM, as their client shows it."""
    found = [
        m
        for m in bot.fake.messages.get(bot.fake.dm_id(user), [])
        if "North Star digest" in m["text"]
    ]
    assert len(found) == 1
    return copy.deepcopy(found[0])


async def with_pending_amendment(bot: Bot) -> None:
    virtual_time(bot.services)
    response = await propose(bot, "milestone:M1", {"due": "2027-06-30"})
    assert response.json["response_action"] == "update", response.json
    await bot.fake.wait_for("chat.postMessage")  # the request DM to the sponsor
    report = await run_job(bot, "digests")  # March's digest, due since Monday 1 March
    assert str(report).startswith("2 sent")


def action_ids(message: dict[str, Any]) -> list[str]:
    return [
        e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]


async def test_the_sponsor_approves_from_the_digest(bot: Bot, example_contract: int) -> None:
    await with_pending_amendment(bot)
    digest = await digest_of(bot, SPONSOR)
    assert action_ids(digest) == [APPROVE, REJECT]
    response = await bot.driver.block_action(user=SPONSOR, action_id=APPROVE, message=digest)
    assert response.status == 200
    (outcome,) = await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: c.args["channel"] == LEADER
    )
    assert "was approved and applied" in outcome.args["text"]
    async with bot.sessions() as session:
        (amendment,) = (await session.exec(select(Amendment))).all()
        contract = await session.get(Contract, example_contract)
    assert amendment.status == "applied" and contract is not None and contract.version == 2


async def test_the_owner_sees_it_without_buttons_and_a_forwarded_click_is_refused(
    bot: Bot, example_contract: int
) -> None:
    await with_pending_amendment(bot)
    mine = await digest_of(bot, OWNER)
    assert action_ids(mine) == []
    assert "⏳ *#1* change milestone M1" in json.dumps(mine["blocks"], ensure_ascii=False)
    forwarded = await digest_of(bot, SPONSOR)
    await bot.driver.block_action(user=OWNER, action_id=APPROVE, message=forwarded)
    (call,) = await bot.fake.wait_for("response_url")
    assert call.args["response_type"] == "ephemeral"
    assert "Only this contract's approvers (<@U0SPON001>)" in call.args["text"]
    async with bot.sessions() as session:
        (amendment,) = (await session.exec(select(Amendment))).all()
    assert amendment.status == "pending"


async def test_reject_from_the_digest_asks_for_a_reason(bot: Bot, example_contract: int) -> None:
    await with_pending_amendment(bot)
    digest = await digest_of(bot, SPONSOR)
    await bot.driver.block_action(user=SPONSOR, action_id=REJECT, message=digest)
    calls = await bot.fake.wait_for("views.open", count=2)
    assert calls[-1].response["ok"], calls[-1].response
    assert calls[-1].args["view"]["callback_id"] == AMEND_REJECT


async def test_open_summary_from_the_digest(bot: Bot, example_contract: int) -> None:
    await with_pending_amendment(bot)
    digest = await digest_of(bot, OWNER)
    await bot.driver.block_action(user=OWNER, action_id=OPEN_SUMMARY, message=digest)
    calls = await bot.fake.wait_for("views.open", count=2)
    assert calls[-1].response["ok"], calls[-1].response
    assert "Head of Platform" in json.dumps(await filled_modal(bot.fake, OWNER))
    assert response_texts(bot.fake) == []
