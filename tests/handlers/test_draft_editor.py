"""The draft editor changes what it holds: each item edited in its form filled in, or removed
after a confirmation; the draft's details edited; the draft discarded. Every click and form is
checked again on arrival (who clicks, whose item, is it still a draft), and bad input gets a
field error. All through signed requests into the real app and the fake Slack."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlmodel import col, func, select

from storage.db import writing
from storage.models import (
    AuditEvent,
    Barrier,
    Contract,
    ContractPerson,
    DevelopmentActivity,
    Evidence,
    Expectation,
    Milestone,
    Resource,
    SuccessIndicator,
)
from tests.conftest import Bot, import_example, response_texts
from tests.fakes import FakeSlack
from tests.harness import running_bot

LEADER, SPONSOR, OWNER, OUTSIDER = "U0PEER002", "U0SPON001", "U0HRBP001", "U0OUTSIDE"
DANA = "U0LEAD001"  # the leader of the imported example, an active contract
OTHER_BOT, GONE = "U0OTHBOT1", "U0GONE001"
NORTH_STAR = "U0BOT0001"

NEW_CONTRACT = {
    "title": "VP Sales: FY2027",
    "leader": LEADER,
    "sponsor": SPONSOR,
    "period_start": "2027-04-05",
    "period_end": "2028-03-17",
    "mission": "Grow a sales org that forecasts honestly.",
    "checkin_weekday": "4",
    "checkin_time": "15:00",
}
ITEMS: list[tuple[str, dict[str, Any]]] = [
    ("expectation", {"kind": "impact", "text": "Forecast within 5%."}),
    (
        "activity",
        {
            "title": "Negotiation course",
            "modality": "formal_training",
            "expectation": "E1",
            "start": "2027-04-12",
            "due": "2027-06-01",
            "demonstration": "Closes a renewal without discounting.",
        },
    ),
    (
        "indicator",
        {
            "name": "Forecast accuracy",
            "unit": "%",
            "baseline": "60",
            "target": "85",
            "direction": "increase",
            "source": "CRM",
            "cadence": "monthly",
        },
    ),
    (
        "milestone",
        {"title": "Accuracy at 70", "due": "2027-06-30", "indicator": "I1", "threshold": "70"},
    ),
    ("milestone", {"title": "Course done", "due": "2027-07-01", "activity": "D1"}),
    ("resource", {"kind": "budget", "text": "EUR 6,000 for coaching"}),
    ("barrier", {"risk": "Q4 hiring freeze", "contingency": "Borrow an analyst"}),
]
MODELS: dict[str, Any] = {
    "expectation": Expectation,
    "activity": DevelopmentActivity,
    "indicator": SuccessIndicator,
    "milestone": Milestone,
    "resource": Resource,
    "barrier": Barrier,
}


@pytest_asyncio.fixture
async def bot_on(fake_slack: FakeSlack, database_url: str) -> AsyncIterator[Bot]:
    """The real app on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set."""
    async with running_bot(fake_slack, database_url) as harness:
        yield harness


@pytest.fixture(autouse=True)
def _strangers(fake_slack: FakeSlack) -> None:
    """Another app's bot user and a deactivated account, as Slack's users.info shows them."""
    fake_slack.add_user(OTHER_BOT, name="jirabot", real_name="Jira", is_bot=True)
    fake_slack.add_user(GONE, name="gone", real_name="Gone Person", deleted=True)


# --- helpers ---------------------------------------------------------------------------------


async def open_new(bot: Bot, user: str = LEADER) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.command("/contract", "new", user=user)
    await bot.fake.wait_for("views.open", count=before + 1)
    return bot.fake.last_view(user)


async def new_draft(bot: Bot, user: str = LEADER, **changes: Any) -> dict[str, Any]:
    response = await bot.driver.submit_view(
        await open_new(bot, user), {**NEW_CONTRACT, **changes}, user=user
    )
    assert response.json["response_action"] == "update", response.json
    return bot.fake.last_view(user)


async def push_from(bot: Bot, editor: dict[str, Any], action_id: str, user: str) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.push"))
    await bot.driver.block_action(user=user, action_id=action_id, view=editor)
    calls = await bot.fake.wait_for("views.push", count=before + 1)
    assert calls[-1].response["ok"], calls[-1].response
    return bot.fake.last_view(user)


async def add(bot: Bot, kind: str, values: dict[str, Any], user: str = LEADER) -> Any:
    editor = bot.fake.last_view(user)
    pushed = await push_from(bot, editor, f"contract_add_item:{kind}", user)
    updates = len(bot.fake.calls_to("views.update"))
    response = await bot.driver.submit_view(pushed, values, user=user)
    if response.json is None:
        await bot.fake.wait_for("views.update", count=updates + 1)
    return response


async def full_draft(bot: Bot, user: str = LEADER, **changes: Any) -> dict[str, Any]:
    """A draft holding E1, D1 (for E1), I1, M1 (by I1), M2 (by D1), R1 and B1."""
    await new_draft(bot, user, **changes)
    for kind, values in ITEMS:
        response = await add(bot, kind, values, user)
        assert response.json is None, response.json
    return bot.fake.last_view(user)


def button(view: dict[str, Any], text: str) -> dict[str, Any]:
    """The button labelled `text` in a view."""
    for block in view["blocks"]:
        for element in block.get("elements") or []:
            if element.get("type") == "button" and element["text"]["text"] == text:
                return dict(element)
    raise AssertionError(f"no button {text!r} in {[b.get('block_id') for b in view['blocks']]}")


async def click(
    bot: Bot, text: str, *, user: str = LEADER, value: str | None = None, wait: str | None = None
) -> Any:
    """Click the editor's button labelled `text` (with a crafted `value`, if given)."""
    editor = bot.fake.last_view(user)
    element = button(editor, text)
    before = len(bot.fake.calls_to(wait)) if wait else 0
    response = await bot.driver.block_action(
        user=user, action_id=element["action_id"], view=editor, value=value
    )
    assert response.status == 200
    if wait:
        await bot.fake.wait_for(wait, count=before + 1)
    return response


async def edit(bot: Bot, label: str, values: dict[str, Any], user: str = LEADER) -> Any:
    editor = bot.fake.last_view(user)
    form = await push_from(bot, editor, button(editor, f"Edit {label}")["action_id"], user)
    updates = len(bot.fake.calls_to("views.update"))
    response = await bot.driver.submit_view(form, values, user=user)
    if response.json is None:
        await bot.fake.wait_for("views.update", count=updates + 1)
    return response


def notice(view: dict[str, Any]) -> str:
    first = view["blocks"][0]
    return " ".join(e.get("text", "") for e in first.get("elements") or [])


async def rows(bot: Bot, model: Any) -> list[Any]:
    async with bot.sessions() as session:
        return list((await session.exec(select(model).order_by(col(model.id)))).all())


async def events(bot: Bot, action: str) -> list[AuditEvent]:
    async with bot.sessions() as session:
        found = await session.exec(select(AuditEvent).where(AuditEvent.action == action))
        return list(found.all())


async def count(bot: Bot, model: Any) -> int:
    async with bot.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def item_count(bot: Bot) -> int:
    return sum([await count(bot, model) for model in MODELS.values()])


def dm_texts(bot: Bot, user: str) -> list[str]:
    return [m.get("text", "") for m in bot.fake.messages.get(bot.fake.dm_id(user), [])]


async def dm_said(bot: Bot, user: str, before: int) -> str:
    channel = bot.fake.dm_id(user)
    await bot.fake.wait_for(
        "chat.postMessage",
        count=before + 1,
        where=lambda c: c.response.get("channel") == channel,
    )
    return dm_texts(bot, user)[-1]


def dms_so_far(bot: Bot, user: str) -> int:
    return len(dm_texts(bot, user))


async def ask(bot: Bot, text: str, *, user: str) -> str:
    before = len(bot.fake.calls_to("response_url"))
    await bot.driver.command("/contract", text, user=user)
    await bot.fake.wait_for("response_url", count=before + 1)
    return response_texts(bot.fake)[-1]


def initial(view: dict[str, Any], block_id: str) -> Any:
    """What an input shows before anyone types: its initial value, option, date or user."""
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    element = block["element"]
    for key in ("initial_value", "initial_date", "initial_user", "initial_time"):
        if key in element:
            return element[key]
    option = element.get("initial_option")
    return option["value"] if option else None


# --- editing each kind of item ---------------------------------------------------------------

EDITS = [
    (
        "expectation",
        "E1",
        {"text": "Forecast within 3%."},
        lambda r: r.text == "Forecast within 3%.",
    ),
    (
        "activity",
        "D1",
        {"title": "Advanced negotiation", "due": "2027-06-15"},
        lambda r: (
            (r.title, r.due.isoformat(), r.expectation_key)
            == ("Advanced negotiation", "2027-06-15", "E1")
        ),
    ),
    (
        "indicator",
        "I1",
        {"target": "90,5", "unit": "pts"},
        lambda r: (r.target, r.baseline, r.unit) == (90.5, 60, "pts"),
    ),
    (
        "milestone",
        "M1",
        {"threshold": "75", "title": "Accuracy at 75"},
        lambda r: (r.threshold, r.title, r.indicator_key) == (75, "Accuracy at 75", "I1"),
    ),
    (
        "resource",
        "R1",
        {"kind": "time"},
        lambda r: (r.kind, r.text) == ("time", "EUR 6,000 for coaching"),
    ),
    (
        "barrier",
        "B1",
        {"contingency": "Hire a contractor"},
        lambda r: r.contingency == "Hire a contractor",
    ),
]


@pytest.mark.parametrize(("kind", "label", "values", "check"), EDITS, ids=[e[0] for e in EDITS])
async def test_each_kind_of_item_is_edited_in_its_form_filled_in(
    bot: Bot, kind: str, label: str, values: dict[str, Any], check: Any
) -> None:
    await full_draft(bot)
    editor = bot.fake.last_view(LEADER)
    form = await push_from(bot, editor, button(editor, f"Edit {label}")["action_id"], LEADER)
    assert form["callback_id"] == f"contract_edit_item:{kind}"
    assert form["title"]["text"] == f"Edit {label}" and form["submit"]["text"] == "Save"
    added = dict(next(v for k, v in ITEMS if k == kind))
    shown = {block_id: initial(form, block_id) for block_id in added}
    assert {k: str(v) for k, v in shown.items()} == {k: str(v) for k, v in added.items()}

    updates = len(bot.fake.calls_to("views.update"))
    response = await bot.driver.submit_view(form, values, user=LEADER)
    assert response.status == 200 and response.json is None
    update = (await bot.fake.wait_for("views.update", count=updates + 1))[-1]
    assert update.response["ok"], update.response
    assert notice(bot.fake.last_view(LEADER)) == f"Saved {label}."
    row = (await rows(bot, MODELS[kind]))[0]
    assert check(row)
    assert len(await events(bot, f"draft.{kind}_changed")) == 1
    assert await item_count(bot) == len(ITEMS)


async def test_an_edit_that_changes_nothing_writes_nothing(bot: Bot) -> None:
    await full_draft(bot)
    response = await edit(bot, "E1", {})
    assert response.json is None
    assert await events(bot, "draft.expectation_changed") == []


async def test_a_replayed_edit_writes_once(bot_on: Bot) -> None:
    bot = bot_on
    await full_draft(bot)
    response = await edit(bot, "B1", {"risk": "A longer freeze"})
    assert response.json is None
    body, headers = bot.driver.last_sent
    again = await bot.driver.post_raw(body, headers)
    assert again.status == 200
    assert len(await events(bot, "draft.barrier_changed")) == 1


# --- the same rules as adding ----------------------------------------------------------------


async def test_an_edited_item_gets_the_field_errors_of_a_new_one(bot: Bot) -> None:
    await full_draft(bot)
    response = await edit(bot, "I1", {"target": "60"})
    assert response.json == {
        "response_action": "errors",
        "errors": {"target": "The target must differ from baseline."},
    }
    form = bot.fake.last_view(LEADER)
    response = await bot.driver.submit_view(form, {"baseline": "sixty", "name": ""}, user=LEADER)
    assert response.json["errors"]["baseline"] == "“sixty” is not a number."
    assert response.json["errors"]["name"] == "Please fill this in."
    indicator = (await rows(bot, SuccessIndicator))[0]
    assert (indicator.baseline, indicator.target, indicator.name) == (60, 85, "Forecast accuracy")


async def test_an_indicator_edit_must_keep_its_milestones_thresholds(bot: Bot) -> None:
    await full_draft(bot)
    response = await edit(bot, "I1", {"target": "65"})
    assert "M1" in response.json["errors"]["target"]
    assert "change the milestone first" in response.json["errors"]["target"]
    assert (await rows(bot, SuccessIndicator))[0].target == 85


async def test_a_milestone_edit_is_checked_like_a_new_one(bot: Bot) -> None:
    await full_draft(bot)
    response = await edit(bot, "M1", {"threshold": "95"})
    assert "between the indicator's baseline and target" in response.json["errors"]["threshold"]
    form = bot.fake.last_view(LEADER)
    response = await bot.driver.submit_view(form, {"due": "2028-05-01"}, user=LEADER)
    assert "within the contract period" in response.json["errors"]["due"]
    response = await bot.driver.submit_view(form, {"activity": "D1"}, user=LEADER)
    assert response.json["errors"] == {"activity": "Choose an indicator or an activity, not both."}
    assert (await rows(bot, Milestone))[0].threshold == 70


# --- activity dates in the past --------------------------------------------------------------

PAST_PERIOD: dict[str, Any] = {
    "period_start": "2027-01-04",
    "period_end": "2027-12-17",
    "past_ok": ["yes"],
}
COURSE = {
    "title": "Negotiation course",
    "modality": "formal_training",
    "demonstration": "Closes a renewal without discounting.",
}


async def test_an_activity_starting_in_the_past_needs_the_tick(bot: Bot) -> None:
    await new_draft(bot, **PAST_PERIOD)
    response = await add(bot, "activity", {**COURSE, "start": "2027-02-01", "due": "2027-06-01"})
    assert response.json["response_action"] == "errors"
    assert set(response.json["errors"]) == {"start"}
    assert "2027-02-01) is in the past" in response.json["errors"]["start"]
    assert "Yes, in the past" in response.json["errors"]["start"]
    assert await rows(bot, DevelopmentActivity) == []

    form = bot.fake.last_view(LEADER)
    response = await bot.driver.submit_view(
        form,
        {**COURSE, "start": "2027-02-01", "due": "2027-06-01", "past_ok": ["yes"]},
        user=LEADER,
    )
    assert response.json is None
    activity = (await rows(bot, DevelopmentActivity))[0]
    assert activity.start is not None and activity.start.isoformat() == "2027-02-01"


async def test_an_activity_due_in_the_past_needs_the_tick(bot: Bot) -> None:
    await new_draft(bot, **PAST_PERIOD)
    response = await add(bot, "activity", {**COURSE, "due": "2027-03-01"})
    assert set(response.json["errors"]) == {"due"}
    assert "2027-03-01) is in the past" in response.json["errors"]["due"]
    assert await rows(bot, DevelopmentActivity) == []


async def test_an_activity_due_before_its_start_is_refused_even_when_ticked(bot: Bot) -> None:
    await new_draft(bot, **PAST_PERIOD)
    values = {**COURSE, "start": "2027-02-15", "due": "2027-02-01", "past_ok": ["yes"]}
    response = await add(bot, "activity", values)
    assert response.json["errors"] == {"due": "The due date must not be before the start."}
    assert await rows(bot, DevelopmentActivity) == []


async def test_editing_an_activity_into_the_past_needs_the_tick(bot: Bot) -> None:
    await full_draft(bot, **PAST_PERIOD)
    response = await edit(bot, "D1", {"start": "2027-03-01"})
    assert set(response.json["errors"]) == {"start"}
    assert (await rows(bot, DevelopmentActivity))[0].start.isoformat() == "2027-04-12"
    form = bot.fake.last_view(LEADER)
    response = await bot.driver.submit_view(
        form, {"start": "2027-03-01", "past_ok": ["yes"]}, user=LEADER
    )
    assert response.json is None
    assert (await rows(bot, DevelopmentActivity))[0].start.isoformat() == "2027-03-01"


async def test_a_past_date_kept_as_it_was_needs_no_second_tick(bot: Bot) -> None:
    await full_draft(bot, **PAST_PERIOD)
    response = await edit(bot, "D1", {"start": "2027-02-01", "past_ok": ["yes"]})
    assert response.json is None
    response = await edit(bot, "D1", {"title": "Renamed"})
    assert response.json is None
    activity = (await rows(bot, DevelopmentActivity))[0]
    assert (activity.title, str(activity.start)) == ("Renamed", "2027-02-01")
    response = await bot.driver.submit_view(
        await open_details(bot), {"mission": "Only the mission."}, user=LEADER
    )
    assert response.json is None
    assert (await rows(bot, Contract))[0].mission == "Only the mission."
    response = await bot.driver.submit_view(
        await open_details(bot), {"period_start": "2027-01-11"}, user=LEADER
    )
    assert set(response.json["errors"]) == {"period_start"}


# --- removing ------------------------------------------------------------------------------


async def test_every_kind_of_item_is_removed_after_a_confirmation(bot_on: Bot) -> None:
    bot = bot_on
    await full_draft(bot)
    editor = bot.fake.last_view(LEADER)
    confirm = button(editor, "Remove E1")["confirm"]
    assert confirm["title"]["text"] == "Remove E1?"
    assert "Forecast within 5%." in confirm["text"]["text"]
    assert confirm["confirm"]["text"] == "Remove" and confirm["style"] == "danger"
    # Those that nothing refers to first, then what they referred to.
    for kind, label in [
        ("milestone", "M2"),
        ("milestone", "M1"),
        ("activity", "D1"),
        ("indicator", "I1"),
        ("expectation", "E1"),
        ("resource", "R1"),
        ("barrier", "B1"),
    ]:
        before = len(await rows(bot, MODELS[kind]))
        await click(bot, f"Remove {label}", wait="views.update")
        assert notice(bot.fake.last_view(LEADER)) == f"Removed {label}."
        assert len(await rows(bot, MODELS[kind])) == before - 1
        with pytest.raises(AssertionError):
            button(bot.fake.last_view(LEADER), f"Remove {label}")
    assert await item_count(bot) == 0
    removed = await events(bot, "draft.milestone_removed")
    assert [e.detail["item"] for e in removed] == ["M2", "M1"]
    # A draft's keys are free again once nothing holds them.
    await add(bot, "expectation", {"kind": "impact", "text": "Another one."})
    assert [e.key for e in await rows(bot, Expectation)] == ["E1"]


@pytest.mark.parametrize(
    ("label", "kind", "using"),
    [("E1", "expectation", "D1"), ("I1", "indicator", "M1"), ("D1", "activity", "M2")],
)
async def test_an_item_others_refer_to_is_not_removed(
    bot: Bot, label: str, kind: str, using: str
) -> None:
    await full_draft(bot)
    await click(bot, f"Remove {label}", wait="views.update")
    said = notice(bot.fake.last_view(LEADER))
    assert said == (f"{label} cannot be removed: {using} refers to it. Change or remove it first.")
    assert len(await rows(bot, MODELS[kind])) == 1
    assert await events(bot, f"draft.{kind}_removed") == []


async def test_an_item_with_evidence_is_not_removed(bot: Bot) -> None:
    await full_draft(bot)
    contract = (await rows(bot, Contract))[0]
    async with bot.sessions() as session:
        await writing(session)
        session.add(
            Evidence(
                contract_id=contract.id or 0,
                item_type="indicator",
                item_key="I1",
                note="The CRM export.",
                added_by=LEADER,
            )
        )
        await session.commit()
    await click(bot, "Remove M1", wait="views.update")
    await click(bot, "Remove I1", wait="views.update")
    assert notice(bot.fake.last_view(LEADER)) == (
        "I1 has 1 piece of evidence, so it cannot be removed: change it instead."
    )
    assert len(await rows(bot, SuccessIndicator)) == 1


async def test_a_double_clicked_remove_removes_once(bot_on: Bot) -> None:
    bot = bot_on
    await full_draft(bot)
    editor = bot.fake.last_view(LEADER)
    element = button(editor, "Remove B1")
    responses = await asyncio.gather(  # both sent before the first one's answer
        *(
            bot.driver.block_action(user=LEADER, action_id=element["action_id"], view=editor)
            for _ in range(2)
        )
    )
    assert [r.status for r in responses] == [200, 200]
    await bot.fake.wait_for("views.update", count=1 + len(ITEMS) + 1)
    assert await rows(bot, Barrier) == []
    assert len(await events(bot, "draft.barrier_removed")) == 1
    with pytest.raises(AssertionError):  # whichever answer Slack took, B1 is gone from it
        button(bot.fake.last_view(LEADER), "Remove B1")
    assert dm_texts(bot, LEADER) == []


# --- the draft's details ---------------------------------------------------------------------


async def test_the_details_are_edited_in_the_new_contract_form_filled_in(bot_on: Bot) -> None:
    bot = bot_on
    await full_draft(bot)
    editor = bot.fake.last_view(LEADER)
    form = await push_from(bot, editor, button(editor, "Edit details")["action_id"], LEADER)
    assert form["callback_id"] == "contract_details"
    assert "leader" not in {b.get("block_id") for b in form["blocks"]}
    assert initial(form, "title") == "VP Sales: FY2027"
    assert initial(form, "sponsor") == SPONSOR
    assert initial(form, "owner") == SPONSOR  # the leader drafted it: the sponsor owns it
    assert initial(form, "period_start") == "2027-04-05"
    assert initial(form, "checkin_weekday") == "4"
    assert initial(form, "checkin_time") == "15:00"

    updates = len(bot.fake.calls_to("views.update"))
    changes = {
        "title": "VP Sales: FY2027 (v2)",
        "sponsor": "U0VP00001",
        "owner": OWNER,
        "period_end": "2028-03-31",
        "mission": "Forecast honestly.",
        "checkin_weekday": "0",
        "checkin_time": "09:30",
    }
    response = await bot.driver.submit_view(form, changes, user=LEADER)
    assert response.json is None
    await bot.fake.wait_for("views.update", count=updates + 1)
    assert notice(bot.fake.last_view(LEADER)) == "Saved the details."
    contract = (await rows(bot, Contract))[0]
    assert (contract.title, contract.sponsor_id, contract.owner_id) == (
        "VP Sales: FY2027 (v2)",
        "U0VP00001",
        OWNER,
    )
    assert (contract.period_end.isoformat(), contract.mission) == (
        "2028-03-31",
        "Forecast honestly.",
    )
    assert (contract.checkin_weekday, contract.checkin_time) == (0, "09:30")
    approvers = [p.user_id for p in await rows(bot, ContractPerson) if p.role == "approver"]
    assert approvers == ["U0VP00001"]  # approvers that were the sponsor follow the sponsor
    (event,) = await events(bot, "draft.details_changed")
    assert event.actor_id == LEADER and event.detail["sponsor_id"] == "U0VP00001"
    await click(bot, "Remove B1", wait="views.update")
    history = await ask(bot, "history", user=LEADER)
    assert (
        f"<@{LEADER}> changed the draft's title, sponsor, owner, period, mission, check-in day "
        "and check-in time" in history
    )
    assert f"<@{LEADER}> removed B1 from the draft" in history


async def open_details(bot: Bot, user: str = LEADER) -> dict[str, Any]:
    editor = bot.fake.last_view(user)
    return await push_from(bot, editor, button(editor, "Edit details")["action_id"], user)


BAD_DETAILS = [
    ({"sponsor": LEADER}, "sponsor", "cannot sponsor their own contract"),
    ({"sponsor": OTHER_BOT}, "sponsor", "is a bot"),
    ({"sponsor": "USLACKBOT"}, "sponsor", "is a bot"),
    ({"sponsor": NORTH_STAR}, "sponsor", "North Star itself"),
    ({"sponsor": GONE}, "sponsor", "deactivated"),
    ({"owner": LEADER}, "owner", "cannot own their own contract"),
    ({"owner": OTHER_BOT}, "owner", "is a bot"),
    ({"owner": GONE}, "owner", "deactivated"),
    ({"title": ""}, "title", "Please fill this in."),
    ({"period_start": "2027-03-01"}, "period_start", "is in the past"),
    ({"period_end": "2027-04-01"}, "period_end", "must be after the period start"),
    ({"period_end": "2027-06-20"}, "period_end", "M2 would fall outside this period"),
]


@pytest.mark.parametrize(
    ("values", "field", "words"), BAD_DETAILS, ids=[f"{f}-{w[:16]}" for _, f, w in BAD_DETAILS]
)
async def test_bad_details_are_field_errors(
    bot: Bot, values: dict[str, Any], field: str, words: str
) -> None:
    await full_draft(bot)
    response = await bot.driver.submit_view(await open_details(bot), values, user=LEADER)
    assert response.json["response_action"] == "errors"
    assert set(response.json["errors"]) == {field}
    assert words in response.json["errors"][field]
    contract = (await rows(bot, Contract))[0]
    assert (contract.title, contract.sponsor_id, contract.owner_id) == (
        "VP Sales: FY2027",
        SPONSOR,
        SPONSOR,
    )
    assert contract.period_end.isoformat() == "2028-03-17"
    assert await events(bot, "draft.details_changed") == []


async def test_a_period_that_would_leave_out_an_activity_names_it(bot: Bot) -> None:
    await full_draft(bot)
    response = await bot.driver.submit_view(
        await open_details(bot), {"period_start": "2027-05-03"}, user=LEADER
    )
    assert response.json["errors"] == {
        "period_end": "D1 would fall outside this period: move their dates first, or choose "
        "a period that holds them."
    }


async def test_a_title_the_leader_uses_elsewhere_is_refused_and_its_own_is_kept(bot: Bot) -> None:
    await new_draft(bot, title="Another one")
    await full_draft(bot)
    response = await bot.driver.submit_view(
        await open_details(bot), {"title": "Another one"}, user=LEADER
    )
    assert response.json["errors"] == {
        "title": "This leader already has a contract with this title."
    }
    response = await bot.driver.submit_view(
        bot.fake.last_view(LEADER), {"title": "VP Sales: FY2027", "mission": "New."}, user=LEADER
    )
    assert response.json is None


# --- the owner in /contract new --------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "words"),
    [
        (LEADER, "cannot own their own contract"),
        (OTHER_BOT, "is a bot"),
        ("USLACKBOT", "is a bot"),
        (GONE, "deactivated"),
    ],
)
async def test_new_contract_refuses_an_owner_who_is_the_leader_or_no_person(
    bot: Bot, owner: str, words: str
) -> None:
    response = await bot.driver.submit_view(
        await open_new(bot), {**NEW_CONTRACT, "owner": owner}, user=LEADER
    )
    assert set(response.json["errors"]) == {"owner"}
    assert words in response.json["errors"]["owner"]
    assert await count(bot, Contract) == 0


async def test_a_new_contract_always_has_an_owner_and_never_its_leader(bot: Bot) -> None:
    await new_draft(bot)  # the leader drafts: the sponsor owns it
    await new_draft(bot, user=OWNER, title="By Hana")  # someone else drafts: they own it
    await new_draft(bot, user=OWNER, title="Chosen", owner="U0VP00001")
    owners = {c.title: c.owner_id for c in await rows(bot, Contract)}
    assert owners == {"VP Sales: FY2027": SPONSOR, "By Hana": OWNER, "Chosen": "U0VP00001"}


# --- discarding ------------------------------------------------------------------------------


async def test_discard_deletes_the_draft_and_frees_its_title(bot_on: Bot) -> None:
    bot = bot_on
    await full_draft(bot)
    contract_id = (await rows(bot, Contract))[0].id
    confirm = button(bot.fake.last_view(LEADER), "Discard draft")["confirm"]
    assert confirm["title"]["text"] == "Discard this draft?"
    assert "cannot be undone" in confirm["text"]["text"]
    await click(bot, "Discard draft", wait="views.update")
    shown = bot.fake.last_view(LEADER)
    assert shown["title"]["text"] == "Draft discarded"
    assert "“VP Sales: FY2027” is discarded" in notice(shown)
    assert await count(bot, Contract) == 0
    for model in MODELS.values():
        assert await count(bot, model) == 0
    (event,) = await events(bot, "draft.discarded")
    assert event.contract_id is None and event.actor_id == LEADER
    assert event.detail == {
        "contract_id": contract_id,
        "title": "VP Sales: FY2027",
        "leader": LEADER,
        "items": len(ITEMS),
    }
    await new_draft(bot)  # the same title again
    assert [c.title for c in await rows(bot, Contract)] == ["VP Sales: FY2027"]


async def test_a_double_clicked_discard_discards_once(bot_on: Bot) -> None:
    bot = bot_on
    editor = await new_draft(bot)
    element = button(editor, "Discard draft")
    await asyncio.gather(  # both sent before the first one's answer
        *(
            bot.driver.block_action(user=LEADER, action_id=element["action_id"], view=editor)
            for _ in range(2)
        )
    )
    await bot.fake.wait_for("views.update", count=1)
    assert await count(bot, Contract) == 0
    assert len(await events(bot, "draft.discarded")) == 1
    assert dm_texts(bot, LEADER) == []


async def test_contract_discard_command(bot: Bot) -> None:
    await full_draft(bot)
    said = await ask(bot, f"discard <@{LEADER}|raj>", user=OUTSIDER)
    assert "Only the leader, sponsor or owner" in said
    assert await count(bot, Contract) == 1
    said = await ask(bot, "discard", user=SPONSOR)
    assert said == f"Discarded the draft “VP Sales: FY2027” of <@{LEADER}> with all its items."
    assert await count(bot, Contract) == 0 and await count(bot, Expectation) == 0
    assert len(await events(bot, "draft.discarded")) == 1
    said = await ask(bot, "discard", user=LEADER)
    assert said == "You have no draft contract. Start one with `/contract new`."
    said = await ask(bot, "discard <not a person>", user=LEADER)
    assert "couldn't find a Slack user" in said


async def test_an_active_contract_is_not_discarded(bot: Bot) -> None:
    await import_example(bot)
    said = await ask(bot, f"discard <@{DANA}|dana>", user=DANA)
    assert "active contract cannot be discarded" in said
    assert said.startswith("This contract is active")
    assert await count(bot, Contract) == 1


# --- crafted clicks and forms ----------------------------------------------------------------


def item_value(view: dict[str, Any], text: str) -> dict[str, Any]:
    return dict(json.loads(button(view, text)["value"]))


async def craft(bot: Bot, user: str, action_id: str, value: Any) -> str:
    """A block action nobody's view shows, with a crafted value; the DM it is answered by."""
    before = dms_so_far(bot, user)
    text = value if isinstance(value, str) else json.dumps(value)
    response = await bot.driver.block_action(user=user, action_id=action_id, value=text)
    assert response.status == 200
    return await dm_said(bot, user, before)


async def everything(bot: Bot) -> list[Any]:
    found = []
    for model in (Contract, *MODELS.values()):
        found += [r.model_dump() for r in await rows(bot, model)]
    return found


async def test_someone_else_cannot_edit_remove_or_discard_a_draft(bot: Bot) -> None:
    editor = await full_draft(bot)
    before = await everything(bot)
    refused = "Only the leader, sponsor or owner of a contract can change it."
    edit_value, remove_value = item_value(editor, "Edit E1"), item_value(editor, "Remove B1")
    assert await craft(bot, OUTSIDER, "contract_item_edit:1", edit_value) == refused
    assert await craft(bot, OUTSIDER, "contract_item_remove:7", remove_value) == refused
    reference = button(editor, "Discard draft")["value"]
    assert await craft(bot, OUTSIDER, "contract_edit_details", reference) == refused
    assert (
        await craft(bot, OUTSIDER, "contract_discard", reference)
        == "Only the leader, sponsor or owner of a draft can discard it."
    )
    assert await everything(bot) == before
    assert len(bot.fake.calls_to("views.push")) == len(ITEMS)


async def test_an_item_of_another_draft_is_not_touched_through_this_one(bot: Bot) -> None:
    editor = await full_draft(bot)
    await new_draft(bot, title="Second draft")
    await add(bot, "barrier", {"risk": "Other risk", "contingency": "Other plan"})
    theirs = (await rows(bot, Barrier))[-1]
    first = item_value(editor, "Remove B1")
    crafted = {**first, "item_id": theirs.id}
    said = await craft(bot, LEADER, "contract_item_remove:7", crafted)
    assert said == "That barrier is not in this draft: it was removed, or belongs to another."
    said = await craft(bot, LEADER, "contract_item_edit:7", crafted)
    assert said == "That barrier is not in this draft: it was removed, or belongs to another."
    wrong_kind = {**first, "kind": "expectation", "item_id": theirs.id}
    said = await craft(bot, LEADER, "contract_item_remove:7", wrong_kind)
    assert said.startswith("That expectation is not in this draft")
    assert len(await rows(bot, Barrier)) == 2
    assert await events(bot, "draft.barrier_removed") == []


async def test_an_active_contracts_items_are_not_edited_removed_or_discarded(bot: Bot) -> None:
    contract_id = await import_example(bot)
    async with bot.sessions() as session:
        expectation = (
            await session.exec(select(Expectation).where(Expectation.contract_id == contract_id))
        ).first()
    assert expectation is not None
    before = await everything(bot)
    value = {"contract_id": contract_id, "kind": "expectation", "item_id": expectation.id}
    no_draft = "This contract is no longer a draft you can edit."
    assert await craft(bot, DANA, "contract_item_edit:1", value) == no_draft
    assert await craft(bot, DANA, "contract_item_remove:1", value) == no_draft
    reference = json.dumps({"contract_id": contract_id})
    assert await craft(bot, DANA, "contract_edit_details", reference) == no_draft
    said = await craft(bot, DANA, "contract_discard", reference)
    assert "an active contract cannot be discarded" in said
    assert await everything(bot) == before
    # The import's own: the contract imported, and its agreement given outside Slack.
    assert await count(bot, AuditEvent) == 2


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        {"contract_id": 1, "kind": "contract", "item_id": 1},
        {"contract_id": 1, "kind": "barrier", "item_id": "1; DROP TABLE barrier"},
        {"contract_id": 2**40, "kind": "barrier", "item_id": 1},
    ],
)
async def test_a_value_that_is_not_what_the_bot_wrote_does_nothing(bot: Bot, value: Any) -> None:
    await full_draft(bot)
    before = await everything(bot)
    said = await craft(bot, LEADER, "contract_item_remove:7", value)
    assert "out of date" in said
    assert await everything(bot) == before


async def test_a_removed_item_is_neither_edited_nor_removed_again(bot: Bot) -> None:
    editor = await full_draft(bot)
    value = item_value(editor, "Remove B1")
    form = await push_from(bot, editor, button(editor, "Edit B1")["action_id"], LEADER)
    said = await craft(bot, LEADER, "contract_item_remove:7", value)
    assert said == "Removed B1."
    said = await craft(bot, LEADER, "contract_item_remove:7", value)
    assert said == "That barrier is not in this draft: it was removed, or belongs to another."
    response = await bot.driver.submit_view(form, {"risk": "Changed"}, user=LEADER)
    assert response.json == {
        "response_action": "errors",
        "errors": {"risk": "This barrier was removed from the draft meanwhile: close this form."},
    }
    assert await rows(bot, Barrier) == []
    assert len(await events(bot, "draft.barrier_removed")) == 1
    assert await events(bot, "draft.barrier_changed") == []


async def test_an_edit_form_pointed_at_another_contract_is_refused(bot: Bot) -> None:
    active = await import_example(bot)
    editor = await full_draft(bot)
    form = await push_from(bot, editor, button(editor, "Edit E1")["action_id"], LEADER)
    async with bot.sessions() as session:
        theirs = (
            await session.exec(select(Expectation).where(Expectation.contract_id == active))
        ).first()
    assert theirs is not None
    before = await everything(bot)
    stored = bot.fake.views[form["id"]]
    original = stored["private_metadata"]
    for crafted, error in [
        (
            {**json.loads(original), "item_id": theirs.id},
            "This expectation was removed from the draft meanwhile: close this form.",
        ),
        (
            {"contract_id": active, "kind": "expectation", "item_id": theirs.id},
            "Only the leader, sponsor or owner of a contract can change it.",
        ),
        ({**json.loads(original), "kind": "barrier"}, "out of date"),
    ]:
        stored["private_metadata"] = json.dumps(crafted)
        response = await bot.driver.submit_view(form, {"text": "Taken over"}, user=LEADER)
        assert response.json["response_action"] == "errors"
        assert error in response.json["errors"]["kind"]
    assert await everything(bot) == before


async def test_editing_needs_the_editor_of_a_draft_that_still_exists(bot: Bot) -> None:
    editor = await full_draft(bot)
    form = await push_from(bot, editor, button(editor, "Edit E1")["action_id"], LEADER)
    await ask(bot, "discard", user=LEADER)
    response = await bot.driver.submit_view(form, {"text": "Too late"}, user=LEADER)
    assert response.json["errors"] == {"kind": "That draft no longer exists: it was discarded."}
    assert await count(bot, Contract) == 0


def test_the_draft_item_kinds_are_the_metadata_kinds() -> None:
    from typing import get_args

    from bot.contracts.blocks import ITEM_KINDS
    from bot.ui.metadata import DraftItemKind

    assert set(get_args(DraftItemKind)) == set(ITEM_KINDS)
