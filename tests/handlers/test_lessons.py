"""Lessons through signed requests and the fake Slack: *Share as a lesson* after a reflection
and after a missed milestone, named and unnamed, refusals, `/learnings`, and a lesson that
outlives its contract and its author."""

from __future__ import annotations

import copy
import json
from typing import Any

from sqlmodel import col, select

from bot.lessons.blocks import ERASED_AUTHOR, SHARE, SHARE_MODAL, WITHOUT_NAME, share_button
from bot.privacy.keys import feedback_key
from bot.privacy.service import erase_person, export_person
from storage.db import writing
from storage.models import CheckIn, Contract, Lesson, Risk
from tests.bot.checkins.test_support import run_job, virtual_time
from tests.conftest import response_texts
from tests.handlers.test_checkin_modal import ANSWERS, open_checkin, submit
from tests.handlers.test_milestones import missed_m1
from tests.harness import Bot

LEADER, SPONSOR, OUTSIDER = "U0LEAD001", "U0SPON001", "U0OUTSIDE"
TAKEAWAY = "Hand over the review early, and say what good looks like."


def with_share(bot: Bot, user: str) -> dict[str, Any]:
    """The latest message in `user`'s DM offering *Share as a lesson*."""
    for message in reversed(bot.fake.messages.get(bot.fake.dm_id(user), [])):
        if any((b.get("accessory") or {}).get("action_id") == SHARE for b in message["blocks"]):
            return copy.deepcopy(message)
    raise AssertionError("no message offers Share as a lesson")


async def checked_in(bot: Bot) -> dict[str, Any]:
    """The leader answers this week's check-in with a reflection; the answered prompt."""
    virtual_time(bot.services)
    modal = await open_checkin(bot)
    response = await submit(bot, modal, ANSWERS)
    assert response.json == {"response_action": "clear"}
    await bot.fake.wait_for("chat.postMessage", count=2)  # the sponsor's help DM, the receipt
    return with_share(bot, LEADER)


async def open_share(bot: Bot, message: dict[str, Any], user: str = LEADER) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.open"))
    response = await bot.driver.block_action(user=user, action_id=SHARE, message=message)
    assert response.status == 200
    calls = await bot.fake.wait_for("views.open", count=before + 1)
    assert calls[-1].response["ok"], calls[-1].response
    return bot.fake.last_view(user)


async def lessons(bot: Bot) -> list[Lesson]:
    async with bot.sessions() as session:
        return list((await session.exec(select(Lesson).order_by(col(Lesson.title)))).all())


async def learnings(bot: Bot, words: str, user: str = SPONSOR) -> str:
    before = len(bot.fake.calls_to("response_url"))
    response = await bot.driver.command("/learnings", words, user=user)
    assert response.status == 200
    await bot.fake.wait_for("response_url", count=before + 1)
    return "\n".join(response_texts(bot.fake)[before:])


SHARED: dict[str, Any] = {
    "title": "Delegate reviews early",
    "takeaway": TAKEAWAY,
    "tags": "Delegation, code review",
    "anonymity": "named",
}


async def test_a_reflection_is_shared_as_a_named_lesson_and_found(
    bot: Bot, example_contract: int
) -> None:
    modal = await open_share(bot, await checked_in(bot))
    assert modal["callback_id"] == SHARE_MODAL
    initial = {
        b["block_id"]: b["element"].get("initial_value")
        for b in modal["blocks"]
        if b["type"] == "input"
    }
    assert initial["title"].startswith("Delegating the review worked")
    assert initial["happened"] == ANSWERS["reflection"]
    theme = next(b for b in modal["blocks"] if b.get("block_id") == "theme")
    e1 = next(o["value"] for o in theme["element"]["options"] if o["value"] != "none")

    response = await bot.driver.submit_view(
        modal, {**SHARED, "theme": e1, "activity_type": "coaching"}, user=LEADER
    )
    assert response.json["response_action"] == "update"
    (lesson,) = await lessons(bot)
    assert (lesson.named, lesson.author_id, lesson.contract_id) == (True, LEADER, example_contract)
    assert lesson.tags == ["delegation", "code-review"] and lesson.activity_type == "coaching"
    assert lesson.theme and lesson.source_kind == "checkin"

    found = await learnings(bot, "delegate")
    assert "Delegate reviews early" in found and f"<@{LEADER}>" in found
    assert "delegation, code-review" in found and "coaching" in found
    contract = await _contract(bot, example_contract)
    assert contract.title not in found  # nothing of the contract but the lesson itself


async def _contract(bot: Bot, contract_id: int) -> Contract:
    async with bot.sessions() as session:
        found = await session.get(Contract, contract_id)
    assert found is not None
    return found


async def test_a_missed_milestone_is_shared_without_a_name(bot: Bot, example_contract: int) -> None:
    message = await missed_m1(bot)
    modal = await open_share(bot, with_share(bot, LEADER))
    initial = {
        b["block_id"]: b["element"].get("initial_value")
        for b in modal["blocks"]
        if b["type"] == "input"
    }
    assert "M1" in initial["title"] and "was missed" in initial["happened"]
    assert message["blocks"]  # the recalibration DM still has its own buttons
    response = await bot.driver.submit_view(
        modal,
        {"title": "Plan the <rollout> & buffer", "takeaway": TAKEAWAY, "anonymity": "unnamed"},
        user=LEADER,
    )
    assert response.json["response_action"] == "update"
    (lesson,) = await lessons(bot)
    assert (lesson.named, lesson.author_id, lesson.contract_id, lesson.source_id) == (
        False,
        None,
        None,
        None,
    )
    assert lesson.author_hash and lesson.created_at.hour == 0

    found = await learnings(bot, "rollout")
    assert "Plan the &lt;rollout&gt; &amp; buffer" in found
    assert WITHOUT_NAME in found and f"<@{LEADER}>" not in found


async def test_only_the_leader_shares_and_crafted_sources_are_refused(
    bot: Bot, example_contract: int
) -> None:
    message = await checked_in(bot)
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.block_action(user=SPONSOR, action_id=SHARE, message=message)
    await bot.fake.wait_for("response_url")
    assert "Only the contract's leader" in response_texts(bot.fake)[-1]
    for crafted in ('{"kind": "checkin", "source_id": 999999}', '{"kind": "x"}', "junk"):
        await bot.driver.block_action(user=LEADER, action_id=SHARE, value=crafted)
    assert len(bot.fake.calls_to("views.open")) == before

    # A form whose metadata is changed to someone else's source, or to nothing.
    modal = await open_share(bot, message)
    for crafted in ('{"kind": "milestone", "source_id": 2147483647}', "{}"):
        bot.fake.views[modal["id"]]["private_metadata"] = crafted
        response = await bot.driver.submit_view(modal, SHARED, user=LEADER)
        assert response.json["response_action"] == "errors"
    # The sponsor submitting the leader's own form is refused on submit too.
    async with bot.sessions() as session:
        checkin = (await session.exec(select(CheckIn))).one()
    bot.fake.views[modal["id"]]["private_metadata"] = json.dumps(
        {"kind": "checkin", "source_id": checkin.id}
    )
    response = await bot.driver.submit_view(modal, SHARED, user=SPONSOR)
    assert response.json["errors"] == {
        "title": "Only the contract's leader can share a lesson from it."
    }
    assert await lessons(bot) == []


async def test_bad_fields_get_field_errors_and_nothing_is_kept(
    bot: Bot, example_contract: int
) -> None:
    modal = await open_share(bot, await checked_in(bot))
    cases = [
        ({"title": "   "}, "title"),
        ({"tags": "a, b, c, d, e, f"}, "tags"),
        ({"tags": "x" * 31}, "tags"),
    ]
    for values, field in cases:
        response = await bot.driver.submit_view(modal, {**SHARED, **values}, user=LEADER)
        assert response.json["response_action"] == "errors"
        assert field in response.json["errors"], values
    assert await lessons(bot) == []


async def test_a_double_submit_keeps_one_lesson(bot: Bot, example_contract: int) -> None:
    message = await checked_in(bot)
    modal = await open_share(bot, message)
    original = copy.deepcopy(bot.fake.views[modal["id"]])
    first = await bot.driver.submit_view(modal, SHARED, user=LEADER)
    assert first.json["response_action"] == "update"
    bot.fake.views[modal["id"]] = original  # the same view and hash, sent again
    again = await bot.driver.submit_view(modal, SHARED, user=LEADER)
    assert again.status == 200
    # The button again says so; a form opened before the first was shared is refused on
    # submit: one source, one lesson.
    await bot.driver.block_action(user=LEADER, action_id=SHARE, message=message)
    await bot.fake.wait_for("response_url")
    assert response_texts(bot.fake)[-1].startswith("You have already shared a lesson from this.")
    async with bot.sessions() as session:
        await writing(session)
        await session.delete((await session.exec(select(Lesson))).one())
        await session.commit()
    second = await open_share(bot, message)
    modal_two = await open_share(bot, message)
    assert (await bot.driver.submit_view(second, SHARED, user=LEADER)).json[
        "response_action"
    ] == "update"
    refused = await bot.driver.submit_view(modal_two, SHARED, user=LEADER)
    assert refused.json["errors"]["title"].startswith("You have already shared")
    assert len(await lessons(bot)) == 1


async def test_learnings_answers_empty_and_hostile_searches(
    bot: Bot, example_contract: int
) -> None:
    assert "No lessons have been shared yet" in await learnings(bot, "")
    modal = await open_share(bot, await checked_in(bot))
    await bot.driver.submit_view(modal, SHARED, user=LEADER)

    assert "The latest lessons" in await learnings(bot, "")
    assert "has no words to search for" in await learnings(bot, '!!! "" ***')
    for hostile in ('"delegate', "delegate*", "NEAR(delegate review)", "-delegate", "a OR"):
        said = await learnings(bot, hostile, user=OUTSIDER)
        assert "Delegate reviews early" in said or "No lessons match" in said, hostile
    assert "No lessons match “zebra”" in await learnings(bot, "zebra")


async def test_a_lesson_outlives_its_contract_and_its_authors_erasure(
    bot: Bot, example_contract: int
) -> None:
    modal = await open_share(bot, await checked_in(bot))
    await bot.driver.submit_view(modal, SHARED, user=LEADER)
    async with bot.sessions() as session:
        await writing(session)
        await session.delete(await session.get(Contract, example_contract))
        await session.commit()
    (lesson,) = await lessons(bot)
    assert lesson.contract_id is None and lesson.author_id == LEADER

    key = feedback_key(bot.services.settings)
    now = bot.clock.now()
    async with bot.sessions() as session:
        exported = await export_person(session=session, user=LEADER, team="T0", key=key, now=now)
    assert [item["title"] for item in exported["lessons_shared"]] == ["Delegate reviews early"]
    async with bot.sessions() as session:
        await writing(session)
        await erase_person(session=session, user=LEADER, team="T0", key=key, now=now)
    (lesson,) = await lessons(bot)
    assert (lesson.named, lesson.author_id) == (True, None)
    found = await learnings(bot, "delegate")
    assert ERASED_AUTHOR in found and LEADER not in found


async def test_digest_and_app_home_show_lessons(bot: Bot, example_contract: int) -> None:
    modal = await open_share(bot, await checked_in(bot))
    await bot.driver.submit_view(modal, SHARED, user=LEADER)
    await run_job(bot, "digests")
    digest = [
        m for m in bot.fake.messages.get(bot.fake.dm_id(SPONSOR), []) if "digest" in m["text"]
    ]
    assert "Lesson shared: *Delegate reviews early* · " in json.dumps(digest, ensure_ascii=False)

    before = len(bot.fake.calls_to("views.publish"))
    await bot.driver.app_home_opened(OUTSIDER)
    calls = await bot.fake.wait_for("views.publish", count=before + 1)
    home = json.dumps(calls[-1].args)
    assert "Lessons" in home and "Delegate reviews early" in home and "/learnings" in home


async def test_an_unnamed_lesson_is_its_authors_to_export_and_unlinked_by_erasure(
    bot: Bot, example_contract: int
) -> None:
    modal = await open_share(bot, await checked_in(bot))
    await bot.driver.submit_view(modal, {**SHARED, "anonymity": "unnamed"}, user=LEADER)
    async with bot.sessions() as session:
        await writing(session)
        await session.delete(await session.get(Contract, example_contract))
        await session.commit()
    key = feedback_key(bot.services.settings)
    now = bot.clock.now()
    async with bot.sessions() as session:
        exported = await export_person(session=session, user=LEADER, team="T0", key=key, now=now)
        others = await export_person(session=session, user=SPONSOR, team="T0", key=key, now=now)
    assert [i["shared"] for i in exported["lessons_shared"]] == ["without your name"]
    assert others["lessons_shared"] == []
    async with bot.sessions() as session:
        await writing(session)
        await erase_person(session=session, user=LEADER, team="T0", key=key, now=now)
    (lesson,) = await lessons(bot)
    assert (lesson.named, lesson.author_id, lesson.author_hash) == (False, None, None)
    assert WITHOUT_NAME in await learnings(bot, "delegate")


async def test_a_risk_gives_a_lesson_once_it_is_resolved(bot: Bot, example_contract: int) -> None:
    """The button any surface can show (`share_button("risk", id)`), refused while it is open."""
    await checked_in(bot)
    async with bot.sessions() as session:
        risk = (await session.exec(select(Risk))).one()
    value = share_button("risk", risk.id or 0).value
    await bot.driver.block_action(user=LEADER, action_id=SHARE, value=value)
    await bot.fake.wait_for("response_url")
    assert "not resolved yet" in response_texts(bot.fake)[-1]

    async with bot.sessions() as session:
        await writing(session)
        risk.status = "resolved"
        session.add(risk)
        await session.commit()
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.block_action(user=LEADER, action_id=SHARE, value=value)
    await bot.fake.wait_for("views.open", count=before + 1)
    modal = bot.fake.last_view(LEADER)
    title = next(b for b in modal["blocks"] if b.get("block_id") == "title")
    assert title["element"]["initial_value"] == ANSWERS["risk1"]
    response = await bot.driver.submit_view(modal, SHARED, user=LEADER)
    assert response.json["response_action"] == "update"
    (lesson,) = await lessons(bot)
    assert lesson.source_kind == "risk"
