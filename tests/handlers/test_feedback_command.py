"""`/feedback` through signed requests and the fake Slack: giving, refusals, anonymity."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from storage.models import AuditEvent, Feedback
from tests.bot.checkins.test_support import set_status
from tests.conftest import Bot
from tests.handlers.test_feedback_support import (
    BEHAVIOUR,
    DANA,
    ESCALATION,
    LEADER,
    OUTSIDER,
    PEER1,
    PEER2,
    PEER3,
    SPONSOR,
    STRANGERS,
    add_strangers,
    answers,
    fast_sending,
    for_modal,
    give,
    notices,
    open_modal,
    run_job,
    say,
    text_of,
    traces_of,
)
from tests.harness import filled_modal


@pytest.fixture(autouse=True)
def _fast(bot: Bot) -> None:
    fast_sending(bot)


# --- refusals, each one ephemeral sentence ----------------------------------------------------


async def test_help_lists_the_ways_to_use_it(bot: Bot) -> None:
    said = await say(bot, "/feedback", "", user=PEER1)
    for part in ("/feedback @leader", "/feedback mine", "/feedback received"):
        assert part in said
    assert bot.fake.calls_to("response_url")[-1].args["response_type"] == "ephemeral"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@dana she was great", "pick the name from the list"),
        ("dana she was great", "Start with a mention"),
        ("<#C0GENERAL1|general> hi", "can't find a person"),
    ],
)
async def test_a_name_that_is_not_a_mention_is_no_person(
    bot: Bot, example_contract: int, text: str, expected: str
) -> None:
    said = await say(bot, "/feedback", text, user=PEER1)
    assert expected in said
    assert bot.fake.calls_to("views.open") == []


async def test_feedback_to_yourself_opens_your_self_view(bot: Bot, example_contract: int) -> None:
    """The leader's own view goes beside the others': with their name, no anonymity."""
    modal = await open_modal(bot, "/feedback", f"{DANA} I did well", user=LEADER)
    shown = text_of(modal)
    assert "Your self view" in shown and "anonymity" not in shown and "relation" not in shown


async def test_a_person_without_an_active_contract_gets_none(
    bot: Bot, example_contract: int
) -> None:
    said = await say(bot, "/feedback", f"<@{OUTSIDER}|olga>", user=PEER1)
    assert f"<@{OUTSIDER}> has no active leadership contract" in said
    assert bot.fake.calls_to("views.open") == []


# --- the modal --------------------------------------------------------------------------------


async def test_the_modal_opens_with_the_first_words_and_the_expectations(
    bot: Bot, example_contract: int
) -> None:
    modal = await open_modal(bot, "/feedback", f"{DANA} She asked every lead", user=PEER1)
    blocks = {b.get("block_id"): b for b in modal["blocks"]}
    assert blocks["behaviour"]["element"]["initial_value"] == "She asked every lead"
    options = [o["value"] for o in blocks["expectation"]["element"]["options"]]
    assert options == ["E1", "E2", "E3"]
    assert blocks["anonymity"]["element"]["initial_option"]["value"] == "attributed"
    assert {"polarity", "situation", "impact"} <= set(blocks)


@pytest.mark.parametrize(
    ("overrides", "block", "message"),
    [
        ({"behaviour": "Nice."}, "behaviour", "Too short to act on"),
        ({"behaviour": "   "}, "behaviour", "Please fill this in"),
        ({"behaviour": "x" * 2001}, "behaviour", "Keep it to 2000 characters"),
        ({"situation": "s" * 1001}, "situation", "Keep it to 1000 characters"),
        ({"impact": "i" * 1001}, "impact", "Keep it to 1000 characters"),
    ],
)
async def test_bad_texts_get_field_errors(
    bot: Bot, example_contract: int, overrides: dict[str, Any], block: str, message: str
) -> None:
    response = await give(bot, user=PEER1, **overrides)
    assert response.json["response_action"] == "errors"
    assert message in response.json["errors"][block]
    async with bot.sessions() as session:
        assert (await session.exec(select(Feedback))).all() == []


async def test_attributed_feedback_reaches_the_leader_at_once_with_the_name(
    bot: Bot, example_contract: int
) -> None:
    response = await give(bot, user=PEER1, expectation="E2", polarity="development")
    assert response.json["response_action"] == "update"
    assert "with your name" in text_of(response.json["view"])
    await bot.fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == LEADER)
    [dm] = notices(bot, LEADER)
    assert f"<@{PEER1}> gave you feedback" in text_of(dm)
    assert "development area" in text_of(dm) and "E2" in text_of(dm)
    assert BEHAVIOUR in text_of(dm)
    async with bot.sessions() as session:
        [row] = (await session.exec(select(Feedback))).all()
        assert (row.author_id, row.anonymous, row.author_hash) == (PEER1, False, None)
        events = (await session.exec(select(AuditEvent))).all()
        assert any(e.action == "feedback.given" and e.actor_id == PEER1 for e in events)


async def test_anonymous_feedback_is_held_and_nobody_is_told(
    bot: Bot, example_contract: int
) -> None:
    response = await give(bot, user=PEER1, anonymous=True)
    view = text_of(response.json["view"])
    assert "held without your name" in view and "3 people" in view
    assert notices(bot, LEADER) == []
    said = await say(bot, "/feedback", "received", user=LEADER)
    assert BEHAVIOUR not in said and "None released yet" in said
    async with bot.sessions() as session:
        [row] = (await session.exec(select(Feedback))).all()
        assert row.author_id is None and row.anonymous and row.author_hash
        assert (row.created_at.hour, row.created_at.minute) == (0, 0)  # the day, no time
        events = (await session.exec(select(AuditEvent))).all()
        assert not [e for e in events if e.action.startswith("feedback.")]


# --- the threshold ---------------------------------------------------------------------------


async def test_two_stay_hidden_from_leader_and_sponsor_the_third_releases_all_three(
    bot: Bot, example_contract: int
) -> None:
    texts = {
        PEER1: "She paused the review to ask every lead for their risks first.",
        PEER2: "He wrote down the trade-offs and shared them before the meeting.",
        PEER3: "She let the new manager run the incident review alone and coached after.",
    }
    for peer in (PEER1, PEER2):
        await give(bot, user=peer, anonymous=True, behaviour=texts[peer])
    bot.clock.advance(timedelta(days=2))
    await run_job(bot)
    for reader, args in ((LEADER, "received"), (SPONSOR, f"received {DANA}")):
        said = await say(bot, "/feedback", args, user=reader)
        assert not any(t in said for t in texts.values()), reader
    assert notices(bot, LEADER) == []

    await give(bot, user=PEER3, anonymous=True, behaviour=texts[PEER3], expectation="E2")
    await run_job(bot)  # the same day: not yet, so the release time names nobody
    assert notices(bot, LEADER) == []
    bot.clock.advance(timedelta(days=1))
    await run_job(bot)

    [release] = notices(bot, LEADER)
    shown = text_of(release)
    assert all(t in shown for t in texts.values())
    assert "3 entries" in shown
    assert shown.index("*E1*") < shown.index("*E2*")  # grouped by expectation, in order
    for peer in texts:
        assert peer not in shown
    for reader, args in ((LEADER, "received"), (SPONSOR, f"received {DANA}")):
        said = await say(bot, "/feedback", args, user=reader)
        assert all(t in said for t in texts.values()), reader
    async with bot.sessions() as session:
        rows = (await session.exec(select(Feedback))).all()
        assert len({r.released_at for r in rows}) == 1 and rows[0].released_at is not None

    await run_job(bot)  # a later run sends nothing twice
    assert len(notices(bot, LEADER)) == 1


async def test_one_person_cannot_reach_the_threshold_alone(bot: Bot, example_contract: int) -> None:
    for n in range(3):
        await give(bot, user=PEER1, anonymous=True, behaviour=f"{BEHAVIOUR} ({n})")
    bot.clock.advance(timedelta(days=1))
    await run_job(bot)
    assert notices(bot, LEADER) == []


async def test_the_weekly_cap_stops_one_person_flooding_a_leader(
    bot: Bot, example_contract: int
) -> None:
    for n in range(3):
        response = await give(bot, user=PEER1, anonymous=True, behaviour=f"{BEHAVIOUR} ({n})")
        assert response.json["response_action"] == "update"
    response = await give(bot, user=PEER1, anonymous=True, behaviour=f"{BEHAVIOUR} (4)")
    assert "3 anonymous entries this week" in response.json["errors"]["anonymity"]
    response = await give(bot, user=PEER2, anonymous=True)  # someone else still can
    assert response.json["response_action"] == "update"
    bot.clock.advance(timedelta(days=7))
    response = await give(bot, user=PEER1, anonymous=True, behaviour=f"{BEHAVIOUR} (5)")
    assert response.json["response_action"] == "update"


# --- nothing names an anonymous author -------------------------------------------------------


async def test_no_table_holds_an_anonymous_authors_id_name_or_email(
    bot: Bot, example_contract: int, caplog: pytest.LogCaptureFixture
) -> None:
    add_strangers(bot)
    caplog.set_level(logging.INFO)
    for n, stranger in enumerate(STRANGERS):
        await give(
            bot,
            user=stranger,
            anonymous=True,
            expectation=f"E{n + 1}",
            behaviour=f"{BEHAVIOUR} Observation {n}.",
        )
        mine = await open_modal(bot, "/feedback", "mine", user=stranger)
        assert f"Observation {n}." in text_of(mine)  # found again by the keyed hash
    bot.clock.advance(timedelta(days=1))
    await run_job(bot)
    assert len(notices(bot, LEADER)) == 1  # released, so every path an entry takes has run

    needles = [part for person in STRANGERS.items() for part in (person[0], *person[1])]
    assert await traces_of(bot.sessions, needles) == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [n for n in needles if n.lower() in logged.lower()]
    assert not [n for n in needles if n.lower() in text_of(notices(bot, LEADER)[0]).lower()]


# --- /feedback mine and /feedback received ---------------------------------------------------


async def test_mine_lists_ones_own_entries_and_deletes_them(
    bot: Bot, example_contract: int
) -> None:
    await give(bot, user=PEER1, anonymous=True, behaviour=f"{BEHAVIOUR} Anonymous one.")
    await give(bot, user=PEER1, behaviour=f"{BEHAVIOUR} Named one.")
    await give(bot, user=PEER2, anonymous=True, behaviour=f"{BEHAVIOUR} Someone else's.")

    mine = await open_modal(bot, "/feedback", "mine", user=PEER1)
    shown = text_of(mine)
    assert "Anonymous one." in shown and "Named one." in shown
    assert "Someone else's" not in shown
    assert "anonymous, held" in shown and "with your name" in shown

    async with bot.sessions() as session:
        rows = (await session.exec(select(Feedback))).all()
    by_text = {r.behaviour.rsplit(" ", 2)[-2]: r for r in rows}
    anonymous_own, named_own, other = by_text["Anonymous"], by_text["Named"], by_text["Someone"]
    before = len(bot.fake.calls_to("views.update"))
    await bot.driver.block_action(
        user=PEER1,
        action_id="feedback_delete_mine",
        view=mine,
        block_id=f"mine_{anonymous_own.id}",
    )
    await bot.fake.wait_for("views.update", count=before + 1)
    updated = text_of(await filled_modal(bot.fake, PEER1))
    assert "Deleted." in updated and "Anonymous one." not in updated

    # Someone else's entry cannot be deleted, even with a forged value.
    await bot.driver.block_action(
        user=PEER1,
        action_id="feedback_delete_mine",
        view=(await filled_modal(bot.fake, PEER1)),
        value=str(other.id),
    )
    await bot.fake.wait_for("views.update", count=before + 2)
    assert "not yours" in text_of(await filled_modal(bot.fake, PEER1))
    async with bot.sessions() as session:
        left = (await session.exec(select(Feedback.id))).all()
    assert set(left) == {named_own.id, other.id}


async def test_mine_with_nothing_written(bot: Bot) -> None:
    mine = await open_modal(bot, "/feedback", "mine", user=OUTSIDER)
    assert "haven't written any feedback" in text_of(mine)


async def test_received_is_for_the_leader_sponsor_and_owner_only(
    bot: Bot, example_contract: int
) -> None:
    await give(bot, user=PEER1, behaviour=f"{BEHAVIOUR} Named.")
    said = await say(bot, "/feedback", f"received {DANA}", user=SPONSOR)
    assert "Named." in said and f"<@{PEER1}>" in said
    for reader in (PEER2, ESCALATION, OUTSIDER):
        said = await say(bot, "/feedback", f"received {DANA}", user=reader)
        assert "Named." not in said and "Only <@U0LEAD001>, their sponsor" in said
    said = await say(bot, "/feedback", "received", user=PEER2)
    assert "don't lead a contract" in said
    said = await say(bot, "/feedback", "received @dana", user=SPONSOR)
    assert "pick the name from the list" in said


async def test_a_submission_for_a_contract_that_closed_meanwhile_is_refused(
    bot: Bot, example_contract: int
) -> None:

    modal = await open_modal(bot, "/feedback", DANA, user=PEER1)
    await set_status(bot.sessions, example_contract, "closed")
    response = await bot.driver.submit_view(modal, for_modal(modal, answers()), user=PEER1)
    assert "no longer active" in response.json["errors"]["behaviour"]


async def test_the_summary_counts_themes_the_leader_can_read(
    bot: Bot, example_contract: int
) -> None:
    await give(bot, user=PEER1, expectation="E2")
    await give(bot, user=PEER2, expectation="E2", polarity="development")
    await give(bot, user=PEER3, expectation="E1", anonymous=True)  # held: not counted
    said = await say(bot, "/contract", f"summary {DANA}", user=ESCALATION)
    assert "*Feedback themes*" in said
    assert "*E2* · 1 strength, 1 development area" in said
    assert "*E1* ·" not in said
    # The sponsor reads the feedback itself: the same counts by rater group.
    said = await say(bot, "/contract", f"summary {DANA}", user=SPONSOR)
    assert "*Feedback: self view beside the others'*" in said
    assert "*E2* · Peers: 1 strength, 1 development area" in said
    assert "*E1* ·" not in said and "*Feedback themes*" not in said
