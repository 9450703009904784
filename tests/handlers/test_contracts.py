"""`/contract new`, the draft editor and its item modals, with their field errors."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from storage.models import Contract, ContractVersion, Milestone, SuccessIndicator
from tests.conftest import Bot, response_texts
from tests.handlers.test_agreement import click, request_to
from tests.harness import filled_modal

LEADER, SPONSOR = "U0PEER002", "U0SPON001"

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


async def open_new_modal(bot: Bot, user: str = LEADER) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.open"))
    response = await bot.driver.command("/contract", "new", user=user)
    assert response.status == 200
    calls = await bot.fake.wait_for("views.open", count=before + 1)
    assert calls[-1].response["ok"], calls[-1].response
    return await filled_modal(bot.fake, user)


async def create_draft(bot: Bot, **changes: Any) -> dict[str, Any]:
    modal = await open_new_modal(bot)
    response = await bot.driver.submit_view(modal, {**NEW_CONTRACT, **changes}, user=LEADER)
    assert response.json["response_action"] == "update", response.json
    return await filled_modal(bot.fake, LEADER)


async def add(bot: Bot, editor: dict[str, Any], kind: str, values: dict[str, Any]) -> Any:
    """Click "Add <kind>" in the editor, fill the pushed modal, submit it."""
    before = len(bot.fake.calls_to("views.push"))
    await bot.driver.block_action(
        user=LEADER, action_id=f"contract_add_item:{kind}", view=editor, block_id="add_items"
    )
    calls = await bot.fake.wait_for("views.push", count=before + 1)
    assert calls[-1].response["ok"], calls[-1].response
    pushed = await filled_modal(bot.fake, LEADER)
    return await bot.driver.submit_view(pushed, values, user=LEADER)


async def test_new_contract_creates_a_draft_and_shows_its_editor(bot: Bot) -> None:
    editor = await create_draft(bot)
    assert editor["callback_id"] == "contract_editor"
    async with bot.sessions() as session:
        contract = (await session.exec(select(Contract))).one()
    assert (contract.title, contract.status, contract.leader_id) == (
        "VP Sales: FY2027",
        "draft",
        LEADER,
    )
    assert contract.checkin_weekday == 4 and contract.checkin_time == "15:00"


async def test_new_contract_field_errors(bot: Bot) -> None:
    modal = await open_new_modal(bot)
    response = await bot.driver.submit_view(
        modal,
        {**NEW_CONTRACT, "title": "", "sponsor": LEADER, "period_end": "2026-12-01"},
        user=LEADER,
    )
    assert response.json["response_action"] == "errors"
    assert set(response.json["errors"]) == {"title", "sponsor", "period_end"}
    async with bot.sessions() as session:
        assert (await session.exec(select(Contract))).all() == []


# The harness's clock reads 2027-03-10.
PAST_START = {"period_start": "2027-01-04", "period_end": "2027-12-17"}


async def test_a_period_starting_in_the_past_is_refused_without_the_tick(bot: Bot) -> None:
    modal = await open_new_modal(bot)
    assert "past_ok" in {b.get("block_id") for b in modal["blocks"]}
    response = await bot.driver.submit_view(modal, {**NEW_CONTRACT, **PAST_START}, user=LEADER)
    assert response.json["response_action"] == "errors"
    assert set(response.json["errors"]) == {"period_start"}
    assert "2027-01-04) is in the past" in response.json["errors"]["period_start"]
    assert "Yes, in the past" in response.json["errors"]["period_start"]
    async with bot.sessions() as session:
        assert (await session.exec(select(Contract))).all() == []


async def test_a_period_ending_in_the_past_is_refused_without_the_tick(bot: Bot) -> None:
    modal = await open_new_modal(bot)
    values = {**NEW_CONTRACT, "period_start": "2026-01-05", "period_end": "2026-12-18"}
    response = await bot.driver.submit_view(modal, values, user=LEADER)
    assert set(response.json["errors"]) == {"period_start", "period_end"}
    async with bot.sessions() as session:
        assert (await session.exec(select(Contract))).all() == []


async def test_a_period_in_the_past_is_kept_when_ticked(bot: Bot) -> None:
    editor = await create_draft(bot, **PAST_START, past_ok=["yes"])
    assert editor["callback_id"] == "contract_editor"
    async with bot.sessions() as session:
        contract = (await session.exec(select(Contract))).one()
    assert (contract.period_start.isoformat(), contract.period_end.isoformat()) == (
        "2027-01-04",
        "2027-12-17",
    )


async def test_an_end_before_the_start_is_refused_even_when_ticked(bot: Bot) -> None:
    modal = await open_new_modal(bot)
    values = {**NEW_CONTRACT, "period_start": "2027-02-01", "period_end": "2027-01-15"}
    response = await bot.driver.submit_view(modal, {**values, "past_ok": ["yes"]}, user=LEADER)
    assert response.json["response_action"] == "errors"
    assert set(response.json["errors"]) == {"period_end"}
    async with bot.sessions() as session:
        assert (await session.exec(select(Contract))).all() == []


async def _draft_with_an_indicator(bot: Bot) -> dict[str, Any]:
    editor = await create_draft(bot, **PAST_START, past_ok=["yes"])
    await add(
        bot,
        editor,
        "indicator",
        {
            "name": "NPS",
            "baseline": "10",
            "target": "40",
            "direction": "increase",
            "cadence": "quarterly",
        },
    )
    return await filled_modal(bot.fake, LEADER)


MILESTONE = {"title": "NPS 20", "due": "2027-02-26", "indicator": "I1", "threshold": "20"}


async def test_a_milestone_due_in_the_past_is_refused_without_the_tick(bot: Bot) -> None:
    editor = await _draft_with_an_indicator(bot)
    response = await add(bot, editor, "milestone", MILESTONE)
    assert response.json["response_action"] == "errors"
    assert set(response.json["errors"]) == {"due"}
    assert "2027-02-26) is in the past" in response.json["errors"]["due"]
    async with bot.sessions() as session:
        assert (await session.exec(select(Milestone))).all() == []


async def test_a_milestone_due_in_the_past_is_added_when_ticked(bot: Bot) -> None:
    editor = await _draft_with_an_indicator(bot)
    response = await add(bot, editor, "milestone", {**MILESTONE, "past_ok": ["yes"]})
    assert response.status == 200 and response.json is None
    async with bot.sessions() as session:
        milestone = (await session.exec(select(Milestone))).one()
    assert milestone.due.isoformat() == "2027-02-26"


async def test_a_title_already_used_by_the_leader_is_refused(bot: Bot) -> None:
    await create_draft(bot)
    modal = await open_new_modal(bot)
    response = await bot.driver.submit_view(modal, NEW_CONTRACT, user=LEADER)
    assert response.json["errors"] == {
        "title": "This leader already has a contract with this title."
    }


async def test_a_title_too_long_for_a_modal_still_makes_a_valid_editor(bot: Bot) -> None:
    editor = await create_draft(bot, title="A" * 200)
    assert len(editor["title"]["text"]) <= 24


async def test_indicator_modal_rejects_bad_numbers_and_equal_targets(bot: Bot) -> None:
    editor = await create_draft(bot)
    indicator = {
        "name": "Forecast accuracy",
        "unit": "%",
        "baseline": "60",
        "target": "60",
        "direction": "increase",
        "source": "CRM",
        "cadence": "monthly",
    }
    response = await add(bot, editor, "indicator", indicator)
    assert response.json == {
        "response_action": "errors",
        "errors": {"target": "The target must differ from baseline."},
    }
    pushed = await filled_modal(bot.fake, LEADER)
    response = await bot.driver.submit_view(
        pushed, {**indicator, "baseline": "sixty", "target": "1e400"}, user=LEADER
    )
    errors = response.json["errors"]
    assert errors["baseline"] == "“sixty” is not a number."
    assert "between" in errors["target"]
    response = await bot.driver.submit_view(pushed, {**indicator, "target": "40"}, user=LEADER)
    assert "above the baseline" in response.json["errors"]["target"]
    async with bot.sessions() as session:
        assert (await session.exec(select(SuccessIndicator))).all() == []


async def test_items_are_added_and_the_editor_refreshes(bot: Bot) -> None:
    editor = await create_draft(bot)
    response = await add(
        bot,
        editor,
        "indicator",
        {
            "name": "Forecast accuracy",
            "unit": "%",
            "baseline": "60",
            "target": "85,5",
            "direction": "increase",
            "cadence": "monthly",
        },
    )
    assert response.status == 200 and response.json is None
    update = (await bot.fake.wait_for("views.update"))[-1]
    assert update.response["ok"], update.response
    assert "Forecast accuracy" in str(update.args["view"])
    async with bot.sessions() as session:
        indicator = (await session.exec(select(SuccessIndicator))).one()
    assert (indicator.key, indicator.baseline, indicator.target) == ("I1", 60, 85.5)


async def test_a_due_date_outside_the_period_is_a_field_error(bot: Bot) -> None:
    editor = await create_draft(bot)
    response = await add(
        bot,
        editor,
        "activity",
        {
            "title": "Negotiation course",
            "modality": "formal_training",
            "due": "2028-05-01",
            "demonstration": "Closes the Q3 renewal without discounting.",
        },
    )
    assert "within the contract period" in response.json["errors"]["due"]


async def test_activation_needs_a_complete_draft(bot: Bot) -> None:
    editor = await create_draft(bot)
    before = len(bot.fake.calls_to("response_url"))
    await bot.driver.command("/contract", "activate", user=LEADER)
    await bot.fake.wait_for("response_url", count=before + 1)
    said = response_texts(bot.fake)[-1]
    assert "an expectation" in said and "a success indicator" in said

    await add(bot, editor, "expectation", {"kind": "impact", "text": "Forecast within 5%."})
    await add(
        bot,
        (await filled_modal(bot.fake, LEADER)),
        "activity",
        {
            "title": "Negotiation course",
            "modality": "formal_training",
            "due": "2027-06-01",
            "demonstration": "Closes a renewal without discounting.",
        },
    )
    await add(
        bot,
        (await filled_modal(bot.fake, LEADER)),
        "indicator",
        {
            "name": "Forecast accuracy",
            "baseline": "60",
            "target": "85",
            "direction": "increase",
            "cadence": "monthly",
        },
    )
    await add(
        bot,
        (await filled_modal(bot.fake, LEADER)),
        "milestone",
        {"title": "Accuracy at 70", "due": "2027-06-30", "indicator": "I1", "threshold": "70"},
    )
    # Complete: `/contract activate` sends it for agreement; the sponsor's agreement starts it.
    opened = len(bot.fake.calls_to("views.open"))
    await bot.driver.command("/contract", "activate", user=LEADER)
    await bot.fake.wait_for("views.open", count=opened + 1)
    await bot.driver.submit_view(bot.fake.last_view(LEADER), {}, user=LEADER)
    await click(bot, await request_to(bot, SPONSOR), "agree", user=SPONSOR)
    async with bot.sessions() as session:
        contract = (await session.exec(select(Contract))).one()
        versions = (await session.exec(select(ContractVersion))).all()
    assert contract.status == "active"
    assert [v.version for v in versions] == [1]
    assert versions[0].snapshot["success_indicators"][0]["key"] == "I1"


async def test_a_milestone_needs_what_meets_it(bot: Bot) -> None:
    editor = await create_draft(bot)
    await add(
        bot,
        editor,
        "indicator",
        {
            "name": "NPS",
            "baseline": "10",
            "target": "40",
            "direction": "increase",
            "cadence": "quarterly",
        },
    )
    response = await add(
        bot,
        (await filled_modal(bot.fake, LEADER)),
        "milestone",
        {"title": "NPS 80", "due": "2027-06-30", "indicator": "I1", "threshold": "80"},
    )
    assert "between the indicator's baseline and target" in response.json["errors"]["threshold"]


async def test_someone_else_cannot_edit_the_draft(bot: Bot) -> None:
    await create_draft(bot)
    before = len(bot.fake.calls_to("response_url"))
    await bot.driver.command("/contract", f"edit <@{LEADER}|raj>", user="U0OUTSIDE")
    await bot.fake.wait_for("response_url", count=before + 1)
    assert "Only the leader, sponsor or owner" in response_texts(bot.fake)[-1]
