"""The leader's answer to released feedback, through signed requests and the fake Slack:
*Acknowledge* (once, shown in the DM, the named giver told, an anonymous one nobody) and
*Make it an activity* (the amendment form pre-filled, approval as usual, the entry showing
what became of it); every click and submission checked again."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.feedback.blocks import ACKNOWLEDGE, ENTRY_BLOCK, MAKE_ACTIVITY
from bot.feedback.model import activity_title
from storage.db import writing
from storage.models import (
    Amendment,
    Delivery,
    DevelopmentActivity,
    Feedback,
    FeedbackAck,
    FeedbackActivity,
)
from tests.bot.checkins.test_support import add_contract
from tests.conftest import Bot, response_texts
from tests.handlers.test_feedback_support import (
    BEHAVIOUR,
    LEADER,
    PEER1,
    PEER2,
    PEER3,
    SPONSOR,
    dms,
    fast_sending,
    give,
    not_yet_recorded,
    run_job,
    settled,
    text_of,
)
from tests.harness import filled_modal

NOT_YOURS = "not one you can act on"
ANONYMOUS_TEXTS = {
    PEER1: "She paused the review to ask every lead for their risks first.",
    PEER2: "He wrote down the trade-offs and shared them before the meeting.",
    PEER3: "She let the new manager run the incident review alone and coached after.",
}
DEMONSTRATION = "Run the Q3 planning review with every lead's risks on the table first."


@pytest.fixture(autouse=True)
def _fast(bot: Bot) -> None:
    fast_sending(bot)


async def stored(bot: Bot, model: Any) -> list[Any]:
    async with bot.sessions() as session:
        return list((await session.exec(select(model))).all())


def entry_dm(bot: Bot, needle: str) -> dict[str, Any]:
    """The leader's DM carrying `needle`, as the client shows it now."""
    found = [m for m in dms(bot, LEADER) if needle in text_of(m)]
    assert found, f"no DM to the leader with {needle!r}"
    return copy.deepcopy(found[0])


def entry_buttons(message: dict[str, Any], feedback_id: int | None) -> list[str]:
    """The texts of the leader's buttons under one entry."""
    [block] = [b for b in message["blocks"] if b.get("block_id") == f"{ENTRY_BLOCK}{feedback_id}"]
    return [e["text"]["text"] for e in block["elements"]]


def with_entry(message: dict[str, Any], feedback_id: int | str | None) -> dict[str, Any]:
    """The message as a crafted request would carry it: every entry button names `feedback_id`."""
    crafted = copy.deepcopy(message)
    for block in crafted["blocks"]:
        for element in block.get("elements") or []:
            if element.get("action_id") in (ACKNOWLEDGE, MAKE_ACTIVITY):
                element["value"] = json.dumps({"feedback_id": feedback_id})
    return crafted


async def click(
    bot: Bot, message: dict[str, Any], action: str, *, user: str, feedback_id: int | None = None
) -> None:
    block = f"{ENTRY_BLOCK}{feedback_id}" if feedback_id is not None else "b"
    response = await bot.driver.block_action(
        user=user, action_id=action, message=message, block_id=block
    )
    assert response.status == 200


async def refused(bot: Bot, message: dict[str, Any], action: str, *, user: str) -> str:
    """Click and return the ephemeral answer: nothing else may come of it."""
    before = len(bot.fake.calls_to("response_url"))
    opened = len(bot.fake.calls_to("views.open"))
    await click(bot, message, action, user=user)
    await bot.fake.wait_for("response_url", count=before + 1)
    assert len(bot.fake.calls_to("views.open")) == opened
    call = bot.fake.calls_to("response_url")[-1]
    assert call.args["response_type"] == "ephemeral"
    return response_texts(bot.fake)[-1]


async def named_entry(bot: Bot, **answers: Any) -> tuple[Feedback, dict[str, Any]]:
    """PEER1 gives the leader feedback by name; the entry and the leader's DM of it."""
    await give(bot, user=PEER1, **answers)
    await bot.fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == LEADER)
    await settled(bot)  # the DM is recorded as sent, as it is long before a person can click
    [entry] = await stored(bot, Feedback)
    return entry, entry_dm(bot, "gave you feedback")


async def released_entries(bot: Bot) -> tuple[list[Feedback], dict[str, Any]]:
    """Three anonymous entries released together; them and the leader's release DM."""
    for peer, behaviour in ANONYMOUS_TEXTS.items():
        await give(bot, user=peer, anonymous=True, behaviour=behaviour, expectation="E2")
    bot.clock.advance(timedelta(days=1))
    await run_job(bot)
    entries = await stored(bot, Feedback)
    assert all(e.released_at is not None for e in entries)
    return entries, entry_dm(bot, "Anonymous feedback for you")


def said_to(bot: Bot, user: str) -> str:
    return "\n".join(text_of(m) for m in dms(bot, user))


# --- Acknowledge ------------------------------------------------------------------------------


async def test_acknowledging_named_feedback_shows_it_and_tells_the_giver_once(
    bot: Bot, example_contract: int
) -> None:
    entry, message = await named_entry(bot)
    assert entry_buttons(message, entry.id) == ["Acknowledge", "Make it an activity"]

    await click(bot, message, ACKNOWLEDGE, user=LEADER, feedback_id=entry.id)
    await bot.fake.wait_for("chat.update")
    await bot.fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == PEER1)
    [ack] = await stored(bot, FeedbackAck)
    assert (ack.feedback_id, ack.acknowledged_by) == (entry.id, LEADER)
    shown = entry_dm(bot, "gave you feedback")
    assert entry_buttons(shown, entry.id) == ["Acknowledged ✓ 10 Mar 2027", "Make it an activity"]
    [told] = dms(bot, PEER1)
    assert f"<@{LEADER}> acknowledged your feedback on E1 of 10 Mar 2027" in text_of(told)

    bot.clock.advance(timedelta(days=1))
    answer = await refused(bot, shown, ACKNOWLEDGE, user=LEADER)
    assert "You acknowledged this feedback on 10 Mar 2027" in answer
    await settled(bot)
    assert len(await stored(bot, FeedbackAck)) == 1
    assert len(dms(bot, PEER1)) == 1


async def test_a_click_before_the_dm_is_recorded_as_sent_still_shows_the_acknowledgement(
    bot: Bot, example_contract: int
) -> None:
    """Slack can deliver a click on the DM before the bot has recorded it as sent: the DM
    clicked is updated all the same, from the channel and ts of Slack's payload."""
    entry, message = await named_entry(bot)
    await not_yet_recorded(bot, Delivery.recipient_id == LEADER, Delivery.slack_ts == message["ts"])

    await click(bot, message, ACKNOWLEDGE, user=LEADER, feedback_id=entry.id)
    (update,) = await bot.fake.wait_for(
        "chat.update", where=lambda c: c.args.get("ts") == message["ts"]
    )
    assert "Acknowledged ✓" in json.dumps(update.args["blocks"], ensure_ascii=False)


async def test_acknowledging_anonymous_feedback_tells_nobody(
    bot: Bot, example_contract: int
) -> None:
    entries, message = await released_entries(bot)
    for entry in entries:
        assert entry_buttons(message, entry.id) == ["Acknowledge", "Make it an activity"]
    first = entries[0]
    before = {peer: len(dms(bot, peer)) for peer in ANONYMOUS_TEXTS}  # requests on cadence

    await click(bot, message, ACKNOWLEDGE, user=LEADER, feedback_id=first.id)
    await bot.fake.wait_for("chat.update")
    await settled(bot)
    shown = entry_dm(bot, "Anonymous feedback for you")
    assert entry_buttons(shown, first.id)[0] == "Acknowledged ✓ 11 Mar 2027"
    assert all(entry_buttons(shown, e.id)[0] == "Acknowledge" for e in entries[1:])
    assert all(t in text_of(shown) for t in ANONYMOUS_TEXTS.values())
    for peer in ANONYMOUS_TEXTS:
        assert len(dms(bot, peer)) == before[peer] and peer not in text_of(shown)
        assert "acknowledged" not in said_to(bot, peer)
    [ack] = await stored(bot, FeedbackAck)
    assert ack.feedback_id == first.id


# --- Make it an activity, through approval ------------------------------------------------------


async def open_activity(
    bot: Bot, message: dict[str, Any], feedback_id: int | None
) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.open"))
    await click(bot, message, MAKE_ACTIVITY, user=LEADER, feedback_id=feedback_id)
    [opened] = (await bot.fake.wait_for("views.open", count=before + 1))[before:]
    assert opened.args["view"]["callback_id"] == "loading"  # the loading modal first
    return await filled_modal(bot.fake, LEADER)


def initial(modal: dict[str, Any], block_id: str) -> Any:
    [block] = [b for b in modal["blocks"] if b.get("block_id") == block_id]
    element = block["element"]
    if "initial_option" in element:
        return element["initial_option"]["value"]
    return element.get("initial_value") or element.get("initial_date")


ACTIVITY_ANSWERS = {"modality": "experiential", "demonstration": DEMONSTRATION}


async def test_make_it_an_activity_proposes_it_and_approval_adds_it(
    bot: Bot, example_contract: int
) -> None:
    entry, message = await named_entry(bot, expectation="E2", polarity="development")
    modal = await open_activity(bot, message, entry.id)
    assert modal["callback_id"] == "amendment_item"
    assert initial(modal, "title") == activity_title(BEHAVIOUR)
    assert initial(modal, "expectation") == "E2"
    assert initial(modal, "due") == "2027-12-17"
    assert initial(modal, "rationale") == "From feedback of 10 Mar 2027."

    response = await bot.driver.submit_view(modal, ACTIVITY_ANSWERS, user=LEADER)
    assert response.json["response_action"] == "update", response.json
    [amendment] = await stored(bot, Amendment)
    assert (amendment.item_type, amendment.status, amendment.before) == (
        "activity",
        "pending",
        None,
    )
    assert amendment.after is not None and amendment.after["expectation"] == "E2"
    assert amendment.rationale == "From feedback of 10 Mar 2027."
    [link] = await stored(bot, FeedbackActivity)
    assert (link.feedback_id, link.amendment_id) == (entry.id, amendment.id)
    await bot.fake.wait_for("chat.update")
    shown = entry_dm(bot, "gave you feedback")
    assert entry_buttons(shown, entry.id)[1] == f"Activity proposed · #{amendment.id}"

    request = await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: c.args.get("channel") == SPONSOR
    )
    sponsor_dm = copy.deepcopy(dms(bot, SPONSOR)[-1])
    assert request and "Amendment #" in text_of(sponsor_dm)
    await bot.driver.block_action(user=SPONSOR, action_id="amendment_approve", message=sponsor_dm)
    await bot.fake.wait_for(
        "chat.update",
        count=3,  # the entry's DM, the sponsor's request, the entry's DM again
    )
    [applied] = await stored(bot, Amendment)
    assert applied.status == "applied"
    added = [a for a in await stored(bot, DevelopmentActivity) if a.key == amendment.item_key]
    assert [(a.title, a.expectation_key) for a in added] == [(activity_title(BEHAVIOUR), "E2")]
    await settled(bot)
    shown = entry_dm(bot, "gave you feedback")
    assert entry_buttons(shown, entry.id)[1] == f"Activity added · #{amendment.id}"

    answer = await refused(bot, shown, MAKE_ACTIVITY, user=LEADER)
    assert "made this feedback into an activity already" in answer


async def test_anonymous_feedback_makes_an_activity_without_a_giver_or_its_day(
    bot: Bot, example_contract: int
) -> None:
    entries, message = await released_entries(bot)
    modal = await open_activity(bot, message, entries[0].id)
    assert initial(modal, "rationale") == "From anonymous feedback of 11 Mar 2027."
    response = await bot.driver.submit_view(modal, ACTIVITY_ANSWERS, user=LEADER)
    assert response.json["response_action"] == "update", response.json
    [amendment] = await stored(bot, Amendment)
    assert amendment.proposer_id == LEADER
    for peer in ANONYMOUS_TEXTS:
        assert peer not in json.dumps(amendment.after) and peer not in amendment.rationale


async def test_a_rejected_activity_can_be_proposed_again(bot: Bot, example_contract: int) -> None:
    entry, message = await named_entry(bot)
    modal = await open_activity(bot, message, entry.id)
    await bot.driver.submit_view(modal, ACTIVITY_ANSWERS, user=LEADER)
    [amendment] = await stored(bot, Amendment)
    async with bot.sessions() as session:
        await writing(session)
        row = await session.get(Amendment, amendment.id)
        assert row is not None
        row.status = "rejected"
        session.add(row)
        await session.commit()
    modal = await open_activity(bot, entry_dm(bot, "gave you feedback"), entry.id)
    response = await bot.driver.submit_view(modal, ACTIVITY_ANSWERS, user=LEADER)
    assert response.json["response_action"] == "update", response.json
    [link] = await stored(bot, FeedbackActivity)
    assert link.amendment_id == max(a.id for a in await stored(bot, Amendment))


# --- refusals: on the button and on the submission --------------------------------------------


async def test_only_the_leader_acts_on_an_entry(bot: Bot, example_contract: int) -> None:
    _, message = await named_entry(bot)
    for user in (SPONSOR, PEER1, PEER2):
        for action in (ACKNOWLEDGE, MAKE_ACTIVITY):
            assert NOT_YOURS in await refused(bot, message, action, user=user)
    assert await stored(bot, FeedbackAck) == []
    assert await stored(bot, Amendment) == []


async def test_crafted_entries_are_refused_alike(bot: Bot, example_contract: int) -> None:
    """Another leader's entry, a held anonymous one, a withdrawn one and one that never was
    get the same answer, so a made-up id tells nothing about which entries exist."""
    entry, message = await named_entry(bot)
    await give(bot, user=PEER2, anonymous=True, behaviour=ANONYMOUS_TEXTS[PEER2])
    other = await add_contract(
        bot.sessions, leader="U0OTHER01", sponsor="U0OTHSP01", owner=None, title="Elsewhere"
    )
    async with bot.sessions() as session:
        await writing(session)
        held = (await session.exec(select(Feedback).where(Feedback.anonymous))).one()
        theirs = Feedback(
            contract_id=other,
            polarity="strength",
            behaviour=BEHAVIOUR,
            anonymous=False,
            author_id=PEER1,
        )
        gone = Feedback(
            contract_id=example_contract,
            polarity="strength",
            behaviour=BEHAVIOUR,
            anonymous=False,
            author_id=PEER3,
        )
        session.add_all([theirs, gone])
        await session.commit()
        gone_id = gone.id
        await session.delete(gone)  # withdrawn by its author
        await session.commit()
    for crafted in (held.id, theirs.id, gone_id, 2**31 - 2):
        for action in (ACKNOWLEDGE, MAKE_ACTIVITY):
            answer = await refused(bot, with_entry(message, crafted), action, user=LEADER)
            assert NOT_YOURS in answer, (crafted, action)
            assert BEHAVIOUR not in answer and ANONYMOUS_TEXTS[PEER2] not in answer
    for junk in ("-1", "abc", str(2**40)):
        answer = await refused(bot, with_entry(message, junk), ACKNOWLEDGE, user=LEADER)
        assert "out of date" in answer
    assert await stored(bot, FeedbackAck) == []
    assert await stored(bot, Amendment) == []
    assert entry.id is not None


async def test_a_forged_submission_is_refused(bot: Bot, example_contract: int) -> None:
    entry, message = await named_entry(bot)
    await give(bot, user=PEER2, anonymous=True, behaviour=ANONYMOUS_TEXTS[PEER2])
    async with bot.sessions() as session:
        held = (await session.exec(select(Feedback).where(Feedback.anonymous))).one()
    modal = await open_activity(bot, message, entry.id)
    metadata = json.loads(bot.fake.views[modal["id"]]["private_metadata"])
    assert metadata["feedback_id"] == entry.id

    for forged in (
        {"feedback_id": held.id},  # held anonymous: never shown to the leader
        {"feedback_id": 123456},  # no such entry
        {"feedback_id": entry.id, "handle": "D1"},  # an existing activity instead
        {"feedback_id": entry.id, "kind": "milestone"},
    ):
        bot.fake.views[modal["id"]]["private_metadata"] = json.dumps({**metadata, **forged})
        answer = await bot.driver.submit_view(modal, ACTIVITY_ANSWERS, user=LEADER)
        assert answer.json["response_action"] == "errors", forged
        error = " ".join(answer.json["errors"].values())
        assert NOT_YOURS in error or "out of date" in error, (forged, error)
    bot.fake.views[modal["id"]]["private_metadata"] = json.dumps(metadata)
    answer = await bot.driver.submit_view(modal, ACTIVITY_ANSWERS, user=SPONSOR)
    assert answer.json["response_action"] == "errors"
    assert NOT_YOURS in answer.json["errors"]["rationale"]
    assert await stored(bot, Amendment) == []
    assert await stored(bot, FeedbackActivity) == []


async def test_withdrawn_while_the_form_was_open_is_refused(
    bot: Bot, example_contract: int
) -> None:
    entry, message = await named_entry(bot)
    modal = await open_activity(bot, message, entry.id)
    async with bot.sessions() as session:
        await writing(session)
        row = await session.get(Feedback, entry.id)
        await session.delete(row)
        await session.commit()
    answer = await bot.driver.submit_view(modal, ACTIVITY_ANSWERS, user=LEADER)
    assert NOT_YOURS in answer.json["errors"]["rationale"]
    assert await stored(bot, Amendment) == []


async def test_a_double_click_makes_one_amendment(bot: Bot, example_contract: int) -> None:
    entry, message = await named_entry(bot)
    first = await open_activity(bot, message, entry.id)
    second = await open_activity(bot, message, entry.id)
    assert first["id"] != second["id"]
    done = await bot.driver.submit_view(first, ACTIVITY_ANSWERS, user=LEADER)
    assert done.json["response_action"] == "update"
    again = await bot.driver.submit_view(second, ACTIVITY_ANSWERS, user=LEADER)
    assert "made this feedback into an activity already" in again.json["errors"]["rationale"]
    assert len(await stored(bot, Amendment)) == 1
    assert len(await stored(bot, FeedbackActivity)) == 1
