"""Evidence through signed requests and the fake Slack: the message shortcut and
`/contract evidence`, who may add to which contract, and what summaries and App Home show."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import select

from storage.db import writing
from storage.models import (
    AuditEvent,
    Contract,
    Evidence,
    EvidenceSource,
    Expectation,
    SuccessIndicator,
)
from tests.conftest import Bot
from tests.handlers.test_feedback_support import (
    LEADER,
    OUTSIDER,
    PEER1,
    SPONSOR,
    open_modal,
    say,
    text_of,
)
from tests.harness import filled_modal, modal_says

PERMALINK_HOST = "https://fake.slack.test"


async def shortcut(bot: Bot, *, user: str, message: dict[str, Any]) -> None:
    response = await bot.driver.message_shortcut(
        user=user, callback_id="add_evidence", message=message, channel="C0GENERAL1"
    )
    assert response.status == 200


async def shortcut_modal(bot: Bot, *, user: str, message: dict[str, Any]) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.open"))
    await shortcut(bot, user=user, message=message)
    opened = (await bot.fake.wait_for("views.open", count=before + 1))[-1]
    assert opened.response["ok"], opened.response
    return await filled_modal(bot.fake, user)


async def second_contract(bot: Bot) -> int:
    """An active contract of Pia's that the example's sponsor also sponsors: E1 and I1 only."""
    async with bot.sessions() as session:
        await writing(session)
        contract = Contract(
            title="Staff engineer: platform guild",
            leader_id=PEER1,
            sponsor_id=SPONSOR,
            status="active",
            period_start=date(2027, 1, 4),
            period_end=date(2027, 12, 17),
        )
        session.add(contract)
        await session.flush()
        session.add(Expectation(contract_id=contract.id or 0, key="E1", kind="impact", text="Lead"))
        session.add(
            SuccessIndicator(
                contract_id=contract.id or 0,
                key="I1",
                name="Guild attendance",
                baseline=5,
                target=20,
                direction="increase",
                cadence="monthly",
            )
        )
        await session.commit()
        return contract.id or 0


async def permalink_kept(bot: Bot, timeout: float = 5.0) -> str:  # noqa: ASYNC109
    """Wait until the shortcut's message has its permalink on the server; that link."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with bot.sessions() as session:
            found = (await session.exec(select(EvidenceSource))).all()
        if found and found[-1].permalink:
            return found[-1].permalink
        assert asyncio.get_running_loop().time() < deadline, "no permalink kept"
        await asyncio.sleep(0.01)


def items(modal: dict[str, Any]) -> list[str]:
    block = next(b for b in modal["blocks"] if b.get("block_id") == "item")
    return [o["value"] for g in block["element"]["option_groups"] for o in g["options"]]


async def test_someone_without_a_contract_is_told_so(bot: Bot, example_contract: int) -> None:
    message = bot.fake.post_user_message("C0GENERAL1", user=PEER1, text="Shipped the runbook")
    await shortcut(bot, user=OUTSIDER, message=message)
    # The modal opens before anything is read, then says why there is nothing to add to.
    assert "no active contract to add evidence to" in await modal_says(bot.fake, OUTSIDER)
    assert bot.fake.calls_to("response_url") == []
    async with bot.sessions() as session:  # and nothing of the message was kept
        assert (await session.exec(select(EvidenceSource))).all() == []


async def test_the_leader_adds_a_message_with_its_permalink_and_an_excerpt(
    bot: Bot, example_contract: int
) -> None:
    words = "Dana walked us through the reliability roadmap trade-offs. " * 20
    message = bot.fake.post_user_message("C0GENERAL1", user=PEER1, text=words)
    modal = await shortcut_modal(bot, user=LEADER, message=message)
    assert not [b for b in modal["blocks"] if b.get("block_id") == "evidence_contract"]
    assert items(modal)[:1] == ["indicator:I1"] and "expectation:E3" in items(modal)
    assert "Dana walked us through" in text_of(modal)
    await permalink_kept(bot)  # fetched after the modal opened

    response = await bot.driver.submit_view(
        (await filled_modal(bot.fake, LEADER)),
        {"item": "expectation:E1", "note": "Roadmap"},
        user=LEADER,
    )
    assert response.json["response_action"] == "update"
    assert "Added to *E1*" in text_of(response.json["view"])
    async with bot.sessions() as session:
        [row] = (await session.exec(select(Evidence))).all()
        events = (await session.exec(select(AuditEvent))).all()
    assert row.url == f"{PERMALINK_HOST}/archives/C0GENERAL1/p{message['ts'].replace('.', '')}"
    assert (row.item_type, row.item_key, row.added_by, row.source) == (
        "expectation",
        "E1",
        LEADER,
        "shortcut",
    )
    assert len(row.excerpt) <= 300 and row.excerpt.startswith("Dana walked us through")
    assert row.note == "Roadmap"
    assert any(e.action == "evidence.added" and e.actor_id == LEADER for e in events)


async def test_a_message_without_a_permalink_is_kept_without_one(
    bot: Bot, example_contract: int
) -> None:
    message = {"type": "message", "ts": "1699999999.000100", "user": PEER1, "text": "Gone soon"}
    modal = await shortcut_modal(bot, user=LEADER, message=message)
    response = await bot.driver.submit_view(modal, {"item": "indicator:I2"}, user=LEADER)
    assert response.json["response_action"] == "update"
    await bot.fake.wait_for("chat.getPermalink", count=2)
    async with bot.sessions() as session:
        [row] = (await session.exec(select(Evidence))).all()
    assert (row.url, row.excerpt, row.item_key) == (None, "Gone soon", "I2")


async def test_a_sponsor_picks_the_contract_and_its_items_follow(
    bot: Bot, example_contract: int
) -> None:
    other = await second_contract(bot)
    message = bot.fake.post_user_message("C0GENERAL1", user=PEER1, text="Guild met: 18 people")
    modal = await shortcut_modal(bot, user=SPONSOR, message=message)
    picker = next(b for b in modal["blocks"] if b.get("block_id") == "evidence_contract")
    assert len(picker["element"]["options"]) == 2
    await permalink_kept(bot)

    # Picking Pia's contract without waiting for its items, then an item only Dana's has.
    response = await bot.driver.submit_view(
        modal, {"evidence_contract": str(other), "item": "activity:D1"}, user=SPONSOR
    )
    assert response.json["errors"] == {"item": "Choose an item of this contract."}

    await bot.driver.block_action(
        user=SPONSOR, action_id="evidence_contract", view=modal, value=str(other)
    )
    await bot.fake.wait_for("views.update", count=2)  # the first filled the loading modal
    modal = await filled_modal(bot.fake, SPONSOR)
    assert items(modal) == ["indicator:I1", "expectation:E1"]
    response = await bot.driver.submit_view(
        modal, {"evidence_contract": str(other), "item": "indicator:I1"}, user=SPONSOR
    )
    assert response.json["response_action"] == "update"
    async with bot.sessions() as session:
        [row] = (await session.exec(select(Evidence))).all()
    assert (row.contract_id, row.item_key, row.added_by) == (other, "I1", SPONSOR)


async def test_contract_evidence_opens_the_same_modal_without_a_message(
    bot: Bot, example_contract: int
) -> None:
    modal = await open_modal(bot, "/contract", "evidence", user=LEADER)
    blocks = {b.get("block_id"): b for b in modal["blocks"]}
    assert "link" in blocks and not blocks["note"].get("optional")
    bad = await bot.driver.submit_view(
        modal, {"item": "activity:D1", "note": "x" * 1001, "link": "ftp://nowhere"}, user=LEADER
    )
    assert set(bad.json["errors"]) == {"note", "link"}
    blank = await bot.driver.submit_view(modal, {"item": "activity:D1", "note": "   "}, user=LEADER)
    assert "needs a note" in blank.json["errors"]["note"]
    good = await bot.driver.submit_view(
        modal,
        {"item": "activity:D1", "note": "Coaching session 2", "link": "https://docs.example/2"},
        user=LEADER,
    )
    assert good.json["response_action"] == "update"
    async with bot.sessions() as session:
        [row] = (await session.exec(select(Evidence))).all()
    assert (row.url, row.source, row.excerpt) == ("https://docs.example/2", "command", "")


async def test_contract_evidence_needs_a_contract(bot: Bot, example_contract: int) -> None:
    assert (await bot.driver.command("/contract", "evidence", user=OUTSIDER)).status == 200
    assert "no active contract to add evidence to" in await modal_says(bot.fake, OUTSIDER)
    assert "/contract evidence" in await say(bot, "/contract", "help", user=OUTSIDER)


@pytest.mark.parametrize("user", [LEADER, SPONSOR])
async def test_summary_and_home_count_evidence_and_mark_stale_items(
    bot: Bot, example_contract: int, user: str
) -> None:
    async with bot.sessions() as session:
        await writing(session)
        session.add(
            Evidence(
                contract_id=example_contract,
                item_type="indicator",
                item_key="I1",
                note="Pulse survey results",
                url="https://docs.example/pulse",
                added_by=LEADER,
                created_at=bot.clock.now(),
            )
        )
        await session.commit()
    said = await say(bot, "/contract", f"summary <@{LEADER}|dana>", user=user)
    assert "1 evidence" in said  # the indicator's own line
    assert "1 piece: I1 1" in said and "Pulse survey results" in said
    assert "<https://docs.example/pulse|message>" in said
    # The contract began on 4 Jan; on 10 Mar everything without evidence is stale, I1 is not.
    assert "No evidence in 30 days: I2, I3, D1" in said
    assert "I1," not in said.split("No evidence in 30 days:")[1].split("\n")[0]

    await bot.driver.app_home_opened(user)
    await bot.fake.wait_for("views.publish")
    home = text_of(bot.fake.home_views[user])
    assert "1 piece of evidence" in home and "with none in 30 days" in home

    bot.clock.advance(timedelta(days=45))
    said = await say(bot, "/contract", f"summary <@{LEADER}|dana>", user=user)
    assert "No evidence in 30 days: I1, I2" in said
