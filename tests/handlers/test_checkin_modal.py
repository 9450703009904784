"""`/checkin` and the check-in modal through signed requests: save, edit, errors, pages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import col, select

from bot.checkins.blocks import CHECKIN_MODAL, EDIT
from storage.db import writing
from storage.models import (
    AuditEvent,
    CheckIn,
    CheckInDraft,
    Contract,
    DevelopmentActivity,
    Evidence,
    Measurement,
    Risk,
    SuccessIndicator,
)
from tests.bot.checkins.test_support import add_contract, deliveries, posts_to, virtual_time
from tests.harness import Bot, filled_modal, modal_says

LEADER, SPONSOR, OUTSIDER = "U0LEAD001", "U0SPON001", "U0OUTSIDE"

ANSWERS: dict[str, Any] = {
    "ind:I1": "66",
    "ind:I2": "41.5",
    "ind:I3": "55",
    "act:D1:status": "in_progress",
    "act:D1:progress": "30",
    "ev1_item": "indicator:I2",
    "ev1_url": "https://dash.example.com/cycle-time",
    "ev1_note": "Sprint report",
    "wins": "Shipped the new runbook.",
    "risk1": "The Q3 launch competes for my time.",
    "risk1_help": ["help"],
    "reflection": "Delegating the review worked; next I try it with planning.",
    "confidence": "4",
}


async def open_checkin(bot: Bot, user: str = LEADER) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.open"))
    response = await bot.driver.command("/checkin", "", user=user)
    assert response.status == 200
    calls = await bot.fake.wait_for("views.open", count=before + 1)
    assert calls[-1].response["ok"], calls[-1].response
    return await filled_modal(bot.fake, user)


async def submit(bot: Bot, view: dict[str, Any], values: dict[str, Any]) -> Any:
    return await bot.driver.submit_view(view, values, user=LEADER)


async def stored(bot: Bot, model: Any) -> list[Any]:
    async with bot.sessions() as session:
        return list((await session.exec(select(model).order_by(col(model.id)))).all())


def input_ids(view: dict[str, Any]) -> list[str]:
    return [b["block_id"] for b in view["blocks"] if b["type"] == "input"]


async def test_the_modal_asks_for_what_is_due_with_ids_in_its_metadata(
    bot: Bot, example_contract: int
) -> None:
    modal = await open_checkin(bot)
    assert modal["callback_id"] == CHECKIN_MODAL
    assert json.loads(modal["private_metadata"]) == {
        "contract_id": example_contract,
        "period": "2027-W10",
        "page": 1,
        "pages": 1,
    }
    ids = input_ids(modal)
    # No values yet this quarter or month: every indicator; D2 only starts in April.
    assert [i for i in ids if i.startswith(("ind:", "act:"))] == [
        "ind:I1",
        "ind:I2",
        "ind:I3",
        "act:D1:status",
        "act:D1:progress",
        "act:D3:status",
        "act:D3:progress",
    ]
    i3 = next(b for b in modal["blocks"] if b["block_id"] == "ind:I3")
    assert i3["element"]["type"] == "number_input"
    assert (i3["element"]["min_value"], i3["element"]["max_value"]) == ("0", "100")
    assert "(%)" in i3["label"]["text"]
    assert {"wins", "risk1", "risk1_help", "reflection", "confidence", "ev1_url"} <= set(ids)


async def test_submitting_saves_everything_at_once_and_tells_the_sponsor(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    modal = await open_checkin(bot)
    response = await submit(bot, modal, ANSWERS)
    assert response.json == {"response_action": "clear"}

    (checkin,) = await stored(bot, CheckIn)
    assert (checkin.status, checkin.period_key, checkin.confidence) == ("answered", "2027-W10", 4)
    assert checkin.wins == "Shipped the new runbook." and "Delegating" in checkin.reflection
    values = {m.indicator_id: m.value for m in await stored(bot, Measurement)}
    indicators = {i.key: i.id for i in await stored(bot, SuccessIndicator)}
    assert values == {indicators["I1"]: 66, indicators["I2"]: 41.5, indicators["I3"]: 55}
    assert all(m.checkin_id == checkin.id for m in await stored(bot, Measurement))
    d1 = next(a for a in await stored(bot, DevelopmentActivity) if a.key == "D1")
    assert (d1.status, d1.progress) == ("in_progress", 30)
    (evidence,) = await stored(bot, Evidence)
    assert (evidence.item_type, evidence.item_key, evidence.url) == (
        "indicator",
        "I2",
        "https://dash.example.com/cycle-time",
    )
    (risk,) = await stored(bot, Risk)
    assert risk.needs_sponsor_help and risk.checkin_id == checkin.id
    assert [e.action for e in await stored(bot, AuditEvent)][-1] == "checkin.submitted"

    # The sponsor hears about it at once; the leader gets the period's message with Edit.
    await bot.fake.wait_for("chat.postMessage", count=2)
    (help_dm,) = posts_to(bot.fake, SPONSOR)
    assert "The Q3 launch competes for my time." in json.dumps(help_dm.args)
    (receipt,) = posts_to(bot.fake, LEADER)
    assert "submitted" in receipt.args["text"]
    assert EDIT in json.dumps(receipt.args["blocks"])
    kinds = sorted(d.kind for d in await deliveries(bot.sessions))
    assert kinds == ["checkin_prompt", "sponsor_help"]


async def test_an_edit_updates_in_place_and_is_audited(bot: Bot, example_contract: int) -> None:
    virtual_time(bot.services)
    await submit(bot, await open_checkin(bot), ANSWERS)
    await bot.fake.wait_for("chat.postMessage", count=2)
    dm = bot.fake.dm_id(LEADER)
    message = bot.fake.messages[dm][-1]

    await bot.driver.block_action(user=LEADER, action_id=EDIT, message=message)
    await bot.fake.wait_for("views.open", count=2)
    modal = await filled_modal(bot.fake, LEADER)
    assert modal["title"]["text"] == "Edit check-in"
    initial = {
        b["block_id"]: b["element"].get("initial_value")
        for b in modal["blocks"]
        if b["type"] == "input"
    }
    assert (initial["ind:I2"], initial["risk1"], initial["ev1_url"]) == (
        "41.5",
        ANSWERS["risk1"],
        ANSWERS["ev1_url"],
    )
    response = await submit(bot, modal, {"ind:I2": "39", "ind:I3": "", "confidence": "3"})
    assert response.json == {"response_action": "clear"}
    await bot.fake.wait_for("chat.update", count=1)

    (checkin,) = await stored(bot, CheckIn)
    assert checkin.confidence == 3
    indicators = {i.id: i.key for i in await stored(bot, SuccessIndicator)}
    assert {indicators[m.indicator_id]: m.value for m in await stored(bot, Measurement)} == {
        "I1": 66,
        "I2": 39,
    }
    assert len(await stored(bot, Risk)) == 1 and len(await stored(bot, Evidence)) == 1
    edited = [e for e in await stored(bot, AuditEvent) if e.action == "checkin.edited"]
    assert len(edited) == 1
    assert edited[0].detail["before"]["values"]["I2"] == 41.5
    assert edited[0].detail["after"]["values"] == {"I1": 66, "I2": 39}
    # Same message, updated; the sponsor is not asked twice about the same risk.
    assert len(posts_to(bot.fake, LEADER)) == 1 and len(posts_to(bot.fake, SPONSOR)) == 1
    assert "confidence 3/5" in json.dumps(bot.fake.messages[dm][-1]["blocks"])


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        ({"ind:I2": "soon"}, {"ind:I2": "“soon” is not a number."}),
        ({"ind:I3": "150"}, {"ind:I3": "I3 must be from 0 to 100 %."}),
        ({"ind:I2": "-3"}, {"ind:I2": "I2 must be at least 0 days."}),
        ({"ind:I1": "1e13"}, {"ind:I1": "Enter a number between"}),
        ({"act:D1:progress": "120"}, {"act:D1:progress": "Progress is a whole number"}),
        ({"act:D1:progress": "12.5"}, {"act:D1:progress": "Progress is a whole number"}),
        ({"ev1_url": "not a link", "ev1_item": "indicator:I1"}, {"ev1_url": "not a web link"}),
        ({"ev1_url": "ftp://files.example.com/x", "ev1_item": "activity:D1"}, {"ev1_url": "not"}),
        ({"ev1_url": "https:///no-host", "ev1_item": "activity:D1"}, {"ev1_url": "not"}),
        ({"ev1_url": "https://wiki/x y", "ev1_item": "activity:D1"}, {"ev1_url": "not"}),
        ({"ev1_url": "https://intranet/p"}, {"ev1_item": "Choose what this evidence supports."}),
        ({"ev1_item": "expectation:E2"}, {"ev1_url": "Add a link or a note"}),
        ({"risk2_help": ["help"]}, {"risk2": "Describe the risk"}),
    ],
    ids=[
        "not-a-number",
        "percent-out-of-range",
        "negative-days",
        "too-large",
        "progress-over-100",
        "progress-fraction",
        "not-a-url",
        "not-a-web-url",
        "url-without-host",
        "url-with-a-space",
        "url-without-item",
        "item-without-url-or-note",
        "help-without-a-risk",
    ],
)
async def test_bad_values_come_back_as_field_errors_and_nothing_is_saved(
    bot: Bot, example_contract: int, values: dict[str, Any], errors: dict[str, str]
) -> None:
    modal = await open_checkin(bot)
    response = await submit(bot, modal, {"confidence": "3", **values})
    assert response.json["response_action"] == "errors"
    assert set(response.json["errors"]) == set(errors)
    for block_id, text in errors.items():
        assert text in response.json["errors"][block_id]
    for model in (CheckIn, Measurement, Evidence, Risk, CheckInDraft):
        assert await stored(bot, model) == []
    assert [e.action for e in await stored(bot, AuditEvent) if e.action.startswith("checkin")] == []


async def test_checkin_without_an_active_contract_is_one_clear_sentence(bot: Bot) -> None:
    await bot.driver.command("/checkin", "", user=OUTSIDER)
    # The modal opens before anything is read; it then says why there is nothing to fill in.
    assert await modal_says(bot.fake, OUTSIDER) == (
        "You don't have an active leadership contract, so there is no check-in for you to fill in."
    )
    assert bot.fake.calls_to("response_url") == []


async def test_a_draft_contract_has_no_checkin_yet(bot: Bot) -> None:
    await add_contract(bot.sessions, leader=OUTSIDER, status="draft")
    await bot.driver.command("/checkin", "", user=OUTSIDER)
    assert "don't have an active leadership contract" in await modal_says(bot.fake, OUTSIDER)


async def test_only_the_leader_can_submit(bot: Bot, example_contract: int) -> None:
    modal = await open_checkin(bot)
    response = await bot.driver.submit_view(modal, {"confidence": "3"}, user=SPONSOR)
    assert response.json["response_action"] == "errors"
    assert "Only the contract's leader" in next(iter(response.json["errors"].values()))
    assert await stored(bot, CheckIn) == []


async def test_a_modal_left_open_past_its_week_is_refused(bot: Bot, example_contract: int) -> None:
    from datetime import timedelta

    modal = await open_checkin(bot)
    bot.clock.advance(timedelta(days=7))  # Wednesday -> next Wednesday: past the grace
    response = await submit(bot, modal, {"confidence": "3"})
    assert next(iter(response.json["errors"].values())) == (
        "The check-in for week 10 (8–14 Mar 2027) closed at the end of Tuesday 16 Mar; "
        "`/checkin` opens this week's."
    )
    assert await stored(bot, CheckIn) == []


# --- a contract too large for one modal ---------------------------------------------------


async def big_contract(bot: Bot) -> int:
    indicators = [
        {
            "key": f"I{n}",
            "name": f"Indicator {n}",
            "unit": "",
            "baseline": 0,
            "target": 100,
            "cadence": "weekly",
        }
        for n in range(1, 71)
    ]
    from datetime import date

    activities = [
        {
            "key": f"D{n}",
            "title": f"Activity {n}",
            "modality": "coaching",
            "due": date(2027, 12, 1),
            "status": "in_progress",
            "progress": 10,
        }
        for n in range(1, 21)
    ]
    return await add_contract(
        bot.sessions, leader=LEADER, indicators=indicators, activities=activities
    )


async def test_a_large_contract_continues_on_a_pushed_page(bot: Bot) -> None:
    virtual_time(bot.services)
    contract_id = await big_contract(bot)
    first = await open_checkin(bot)
    meta = json.loads(first["private_metadata"])
    assert meta == {"contract_id": contract_id, "period": "2027-W10", "page": 1, "pages": 2}
    assert len(first["blocks"]) <= 100 and first["submit"]["text"] == "Next"
    assert "confidence" not in input_ids(first)
    page_one = {i: "7" for i in input_ids(first) if i.startswith("ind:")}
    response = await submit(bot, first, page_one)
    assert response.json["response_action"] == "push"
    second = await filled_modal(bot.fake, LEADER)
    assert json.loads(second["private_metadata"])["page"] == 2
    assert len(second["private_metadata"]) < 200  # ids only
    assert "confidence" in input_ids(second)
    assert await stored(bot, CheckIn) == []  # nothing saved until the last page

    page_two = {i: "9" for i in input_ids(second) if i.startswith("ind:")}
    response = await submit(bot, second, {**page_two, "confidence": "5"})
    assert response.json == {"response_action": "clear"}
    values = [m.value for m in await stored(bot, Measurement)]
    assert len(values) == 70
    assert values.count(7) == len(page_one) and values.count(9) == len(page_two)
    assert await stored(bot, CheckInDraft) == []
    assert not any(bot.fake.is_open(v) for v in (first["id"], second["id"]))


async def test_first_page_errors_stay_on_the_first_page(bot: Bot) -> None:
    await big_contract(bot)
    first = await open_checkin(bot)
    response = await submit(bot, first, {"ind:I1": "lots"})
    assert response.json["response_action"] == "errors"
    assert await stored(bot, CheckInDraft) == []


async def test_lost_first_page_answers_are_never_dropped_silently(bot: Bot) -> None:
    await big_contract(bot)
    first = await open_checkin(bot)
    await submit(bot, first, {"ind:I1": "7"})
    second = await filled_modal(bot.fake, LEADER)
    async with bot.sessions() as session:
        await writing(session)
        for draft in (await session.exec(select(CheckInDraft))).all():
            await session.delete(draft)
        await session.commit()
    response = await submit(bot, second, {"confidence": "4"})
    assert response.json["response_action"] == "errors"
    assert "earlier page were lost" in next(iter(response.json["errors"].values()))
    assert await stored(bot, CheckIn) == [] and await stored(bot, Measurement) == []


async def test_contract_lookups_ignore_other_leaders(bot: Bot, example_contract: int) -> None:
    async with bot.sessions() as session:
        leaders = {c.leader_id for c in (await session.exec(select(Contract))).all()}
    assert leaders == {LEADER}


async def test_checkin_after_answering_opens_the_edit(bot: Bot, example_contract: int) -> None:
    virtual_time(bot.services)
    await submit(bot, await open_checkin(bot), {"confidence": "4"})
    modal = await open_checkin(bot)
    assert modal["title"]["text"] == "Edit check-in"
    confidence = next(b for b in modal["blocks"] if b["block_id"] == "confidence")
    assert confidence["element"]["initial_option"]["value"] == "4"


async def test_a_value_already_given_this_month_is_not_asked_again(
    bot: Bot, example_contract: int
) -> None:
    from datetime import timedelta

    virtual_time(bot.services)
    await submit(bot, await open_checkin(bot), {"ind:I2": "40", "confidence": "4"})
    bot.clock.advance(timedelta(days=7))  # week 11: I1 quarterly, I2/I3 monthly
    modal = await open_checkin(bot)
    asked = [i for i in input_ids(modal) if i.startswith("ind:")]
    assert asked == ["ind:I1", "ind:I3"]  # I2 has its March value; the others still wait
    i1 = next(b for b in modal["blocks"] if b["block_id"] == "ind:I1")
    assert i1["element"].get("initial_value") is None  # no value yet: nothing to pre-fill


async def test_outside_the_contracts_dates_there_is_no_checkin(bot: Bot) -> None:
    from datetime import date

    await add_contract(bot.sessions, leader=OUTSIDER, end=date(2027, 3, 1))
    await bot.driver.command("/checkin", "", user=OUTSIDER)
    assert await modal_says(bot.fake, OUTSIDER) == (
        "Your contract's check-ins run from 4 Jan 2027 to 1 Mar 2027, so there is none this week."
    )


def test_both_jobs_are_registered_for_the_scheduler_and_the_cli() -> None:
    from bot.jobs import JOBS

    assert (JOBS["checkins"].every_seconds, JOBS["reminders"].every_seconds) == (60, 60)
