"""`/contract amend` through signed requests and the fake Slack: proposing, approving,
rejecting, refusals, the double click and stale proposals."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest
from sqlmodel import select

from bot.contracts.io import import_text
from storage.db import writing
from storage.models import (
    Amendment,
    AmendmentApproval,
    AuditEvent,
    Barrier,
    Contract,
    ContractVersion,
    Measurement,
    Milestone,
    SuccessIndicator,
)
from tests.conftest import EXAMPLE_CONTRACT, Bot, response_texts
from tests.harness import filled_modal, loading_while_fills_wait

LEADER, SPONSOR, OWNER, ESCALATION, PEER = (
    "U0LEAD001",
    "U0SPON001",
    "U0HRBP001",
    "U0VP00001",
    "U0PEER001",
)
I2 = {
    "name": "Median project cycle time",
    "unit": "days",
    "baseline": "45",
    "target": "30",
    "direction": "decrease",
    "source": "Delivery dashboard",
    "cadence": "monthly",
}
WHY = "The dashboard showed we can go further."


async def ask(bot: Bot, text: str, *, user: str) -> str:
    before = len(bot.fake.calls_to("response_url"))
    response = await bot.driver.command("/contract", text, user=user)
    assert response.status == 200
    await bot.fake.wait_for("response_url", count=before + 1)
    return "\n".join(response_texts(bot.fake)[before:])


async def open_amend(bot: Bot, *, user: str = LEADER, text: str = "amend") -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.open"))
    response = await bot.driver.command("/contract", text, user=user)
    assert response.status == 200
    calls = await bot.fake.wait_for("views.open", count=before + 1)
    assert calls[-1].response["ok"], calls[-1].response
    return await filled_modal(bot.fake, user)


async def open_form(
    bot: Bot, item: str, *, action: str = "change", user: str = LEADER
) -> dict[str, Any]:
    chooser = await open_amend(bot, user=user)
    response = await bot.driver.submit_view(chooser, {"item": item, "action": action}, user=user)
    assert response.json["response_action"] == "update", response.json
    return await filled_modal(bot.fake, user)


async def propose(
    bot: Bot,
    item: str = "indicator:I2",
    values: dict[str, str] | None = None,
    *,
    action: str = "change",
    user: str = LEADER,
    rationale: str = WHY,
) -> Any:
    form = await open_form(bot, item, action=action, user=user)
    return await bot.driver.submit_view(form, {**(values or {}), "rationale": rationale}, user=user)


def dm(bot: Bot, user: str) -> list[dict[str, Any]]:
    return bot.fake.messages.get(bot.fake.dm_id(user), [])


async def request_to(bot: Bot, approver: str, count: int = 1) -> dict[str, Any]:
    """The newest amendment request in the approver's DM, once `count` have arrived."""
    channel = bot.fake.dm_id(approver)
    await bot.fake.wait_for(
        "chat.postMessage", count=count, where=lambda c: c.response.get("channel") == channel
    )
    return copy.deepcopy(dm(bot, approver)[-1])  # as the client showed it then


def text_of(message: dict[str, Any]) -> str:
    return str(message["blocks"])


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        element["action_id"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def click(bot: Bot, message: dict[str, Any], action: str, *, user: str) -> Any:
    response = await bot.driver.block_action(
        user=user, action_id=f"amendment_{action}", message=message
    )
    assert response.status == 200
    return response


async def stored(bot: Bot, model: Any) -> list[Any]:
    async with bot.sessions() as session:
        return list((await session.exec(select(model))).all())


async def indicator(bot: Bot, key: str) -> SuccessIndicator:
    async with bot.sessions() as session:
        return (
            await session.exec(select(SuccessIndicator).where(SuccessIndicator.key == key))
        ).one()


async def reimport(bot: Bot, *replacements: tuple[str, str]) -> None:
    """Import the example again with some text replaced: an administrative amendment."""
    text = EXAMPLE_CONTRACT.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    results, problems = await import_text(
        text,
        filename="contract.yml",
        sessions=bot.sessions,
        client=bot.app.client,
        draft=False,
        now=bot.clock.now(),
    )
    assert problems == [], problems
    assert results[0].outcome == "updated"


async def test_a_contract_deleted_while_its_amend_modal_loads_gets_a_note(
    bot: Bot, example_contract: int
) -> None:
    """The chooser opens loading on the leader's check alone and is filled afterwards: a
    contract erased meanwhile gets a note in the modal, not a form for what is gone."""
    async with (
        loading_while_fills_wait(bot, "/contract", "amend", user=LEADER),
        bot.services.sessions() as session,
    ):
        await writing(session)
        await session.delete(await session.get(Contract, example_contract))
        await session.commit()
    modal = await filled_modal(bot.fake, LEADER)
    assert "That contract is gone." in json.dumps(modal["blocks"])
    assert modal.get("submit") is None and modal.get("callback_id") != "amendment_choose"


# --- proposing --------------------------------------------------------------------------------


async def test_the_form_is_the_item_as_it_is(bot: Bot, example_contract: int) -> None:
    chooser = await open_amend(bot)
    assert chooser["callback_id"] == "amendment_choose"
    options = [
        option["value"]
        for group in chooser["blocks"][1]["element"]["option_groups"]
        for option in group["options"]
    ]
    for value in ("expectation:E1", "activity:D3", "indicator:I2", "milestone:M3", "resource:R3"):
        assert value in options
    assert "barrier:+" in options and "indicator:+" in options

    await bot.driver.submit_view(chooser, {"item": "indicator:I2"}, user=LEADER)
    form = await filled_modal(bot.fake, LEADER)
    assert form["callback_id"] == "amendment_item"
    initial = {
        b["block_id"]: b["element"].get("initial_value")
        or (b["element"].get("initial_option") or {}).get("value")
        for b in form["blocks"]
        if b["type"] == "input"
    }
    assert initial == {**I2, "rationale": None}


async def test_leader_proposes_and_the_sponsor_approves(bot: Bot, example_contract: int) -> None:
    response = await propose(bot, values={"target": "28"})
    assert response.json["response_action"] == "update", response.json
    assert "waiting for <@U0SPON001>" in str((await filled_modal(bot.fake, LEADER))["blocks"])

    request = await request_to(bot, SPONSOR)
    shown = text_of(request)
    assert "Amendment #1" in shown and "~30~ → *28*" in shown and WHY in shown
    assert buttons(request) == ["amendment_approve", "amendment_reject"]
    (amendment,) = await stored(bot, Amendment)
    assert (amendment.status, amendment.base_version, amendment.item_key) == ("pending", 1, "I2")
    assert amendment.before is not None and amendment.before["target"] == 30
    assert amendment.after is not None and amendment.after["target"] == 28

    await click(bot, request, "approve", user=SPONSOR)
    (update,) = await bot.fake.wait_for("chat.update")
    assert update.args["ts"] == request["ts"] and update.response["ok"]
    updated = dm(bot, SPONSOR)[-1]
    assert "applied: the contract is now at version 2" in text_of(updated)
    assert buttons(updated) == []
    told = await request_to(bot, LEADER)
    assert "was approved and applied" in told["text"]

    assert (await indicator(bot, "I2")).target == 28
    (contract,) = await stored(bot, Contract)
    assert contract.version == 2
    versions = {v.version: v for v in await stored(bot, ContractVersion)}
    assert versions[2].amendment_id == amendment.id
    assert versions[2].reason == "amendment #1: change success indicator I2"
    assert versions[2].snapshot["success_indicators"][1]["target"] == 28
    assert versions[1].snapshot["success_indicators"][1]["target"] == 30
    actions = [e.action for e in await stored(bot, AuditEvent)]
    assert actions[-2:] == ["amendment.proposed", "amendment.applied"]


async def test_field_errors_follow_the_import_rules(bot: Bot, example_contract: int) -> None:
    form = await open_form(bot, "indicator:I2")

    async def errors(values: dict[str, str], rationale: str = WHY) -> dict[str, str]:
        response = await bot.driver.submit_view(
            form, {**values, "rationale": rationale}, user=LEADER
        )
        assert response.json["response_action"] == "errors", response.json
        return dict(response.json["errors"])

    assert await errors({"target": "45"}) == {"target": "Must differ from baseline."}
    assert "below the baseline" in (await errors({"target": "50"}))["target"]
    assert "above the baseline" in (await errors({"direction": "increase"}))["target"]
    found = await errors({"baseline": "sixty", "target": "1e400"})
    assert found["baseline"] == "“sixty” is not a number."
    assert "between" in found["target"]
    assert await errors({}) == {"name": "Nothing changed: edit a field, or close this form."}
    assert await errors({"target": "28"}, rationale="   ") == {
        "rationale": "Tell the approvers why."
    }
    assert await stored(bot, Amendment) == []
    assert bot.fake.calls_to("chat.postMessage") == []


async def test_dates_must_fall_in_the_period(bot: Bot, example_contract: int) -> None:
    response = await propose(bot, "milestone:M3", {"due": "2028-01-15"})
    assert "within the contract period" in response.json["errors"]["due"]
    form = await filled_modal(bot.fake, LEADER)
    response = await bot.driver.submit_view(
        form, {"due": "2027-10-15", "rationale": WHY}, user=LEADER
    )
    assert response.json["response_action"] == "update"


async def test_a_due_date_moved_into_the_past_needs_the_tick(
    bot: Bot, example_contract: int
) -> None:
    """The harness's clock reads 10 March 2027."""
    response = await propose(bot, "milestone:M3", {"due": "2027-02-15"})
    assert response.json["response_action"] == "errors"
    (message,) = response.json["errors"].values()
    assert "2027-02-15) is in the past: tick *Yes, in the past* to keep it" in message
    assert "due" in response.json["errors"]
    assert await stored(bot, Amendment) == []
    assert bot.fake.calls_to("chat.postMessage") == []

    form = await filled_modal(bot.fake, LEADER)
    response = await bot.driver.submit_view(
        form, {"due": "2027-02-15", "past_ok": ["yes"], "rationale": WHY}, user=LEADER
    )
    assert response.json["response_action"] == "update", response.json
    (amendment,) = await stored(bot, Amendment)
    assert amendment.after is not None and amendment.after["due"] == "2027-02-15"


async def test_a_new_milestone_due_in_the_past_needs_the_tick(
    bot: Bot, example_contract: int
) -> None:
    values = {"title": "Survey sent", "due": "2027-03-01", "activity": "D2", "rationale": WHY}
    form = await open_form(bot, "milestone:+")
    response = await bot.driver.submit_view(form, values, user=LEADER)
    assert "is in the past" in response.json["errors"]["due"]
    assert await stored(bot, Amendment) == []
    response = await bot.driver.submit_view(form, {**values, "past_ok": ["yes"]}, user=LEADER)
    assert response.json["response_action"] == "update", response.json
    assert len(await stored(bot, Amendment)) == 1


async def test_a_change_that_breaks_another_item_is_named(bot: Bot, example_contract: int) -> None:
    """M1 is met at 68 on I1: a target of 66 would put the threshold past the target."""
    response = await propose(bot, "indicator:I1", {"target": "66"})
    (message,) = response.json["errors"].values()
    assert message.startswith("M1 threshold: 68 must lie between the indicator's baseline")


async def test_a_milestone_is_decided_one_way(bot: Bot, example_contract: int) -> None:
    response = await propose(bot, "milestone:M2", {"indicator": "I1", "threshold": "70"})
    assert "not both" in response.json["errors"]["indicator"]
    response = await propose(bot, "milestone:M1", {"threshold": "80"})
    assert "between the indicator's baseline and target" in response.json["errors"]["threshold"]
    form = await filled_modal(bot.fake, LEADER)
    response = await bot.driver.submit_view(
        form, {"activity": "D2", "threshold": "", "rationale": WHY}, user=LEADER
    )
    assert "not both" in response.json["errors"]["indicator"]
    response = await bot.driver.submit_view(
        form, {"indicator": "-", "activity": "D2", "threshold": "", "rationale": WHY}, user=LEADER
    )
    assert response.json["response_action"] == "update", response.json
    (amendment,) = await stored(bot, Amendment)
    assert amendment.after == {
        "key": "M1",
        "title": "Engagement at 68 or above",
        "due": "2027-04-01",
        "activity": "D2",
    }


async def test_a_new_item_gets_the_next_key(bot: Bot, example_contract: int) -> None:
    values = {
        "title": "Cycle time at 32",
        "due": "2027-11-30",
        "indicator": "I2",
        "threshold": "32",
    }
    response = await propose(bot, "milestone:+", values)
    assert response.json["response_action"] == "update", response.json
    request = await request_to(bot, SPONSOR)
    assert "New milestone: M4" in text_of(request)
    await click(bot, request, "approve", user=SPONSOR)
    await request_to(bot, LEADER)
    async with bot.sessions() as session:
        milestone = (await session.exec(select(Milestone).where(Milestone.key == "M4"))).one()
    assert (milestone.title, milestone.threshold, milestone.position) == (
        "Cycle time at 32",
        32,
        3,
    )


async def test_two_pending_additions_do_not_share_a_key(bot: Bot, example_contract: int) -> None:
    values = {"kind": "decision", "text": "Decide the on-call model by June."}
    await propose(bot, "expectation:+", values)
    await propose(bot, "expectation:+", {**values, "text": "Decide the hiring plan by May."})
    keys = sorted(a.item_key or "" for a in await stored(bot, Amendment))
    assert keys == ["E4", "E5"]


async def test_removing_an_item(bot: Bot, example_contract: int) -> None:
    response = await propose(bot, "barrier:B2", action="remove")
    assert response.json["response_action"] == "update", response.json
    request = await request_to(bot, SPONSOR)
    assert "Remove barrier B2" in text_of(request)
    await click(bot, request, "approve", user=SPONSOR)
    await request_to(bot, LEADER)
    risks = [b.risk for b in await stored(bot, Barrier)]
    assert risks == ["Q3 launch competes for the leader's time"]


async def test_an_item_with_recorded_data_is_not_removed(bot: Bot, example_contract: int) -> None:
    async with bot.sessions() as session:
        await writing(session)
        i3 = (
            await session.exec(select(SuccessIndicator).where(SuccessIndicator.key == "I3"))
        ).one()
        session.add(Measurement(indicator_id=i3.id or 0, value=55, measured_at=bot.clock.now()))
        await session.commit()
    response = await propose(bot, "indicator:I3", action="remove")
    assert response.json["errors"] == {
        "rationale": "I3 has 1 recorded measurement and cannot be removed; propose a change "
        "instead."
    }
    response = await propose(bot, "expectation:E1", action="remove")
    assert "no expectation with key E1" in response.json["errors"]["rationale"]


async def test_a_new_item_cannot_be_removed(bot: Bot, example_contract: int) -> None:
    chooser = await open_amend(bot)
    response = await bot.driver.submit_view(
        chooser, {"item": "resource:+", "action": "remove"}, user=LEADER
    )
    assert response.json["errors"] == {
        "action": "A new item cannot be removed: choose “Change it”."
    }


async def test_the_item_changed_while_the_form_was_open(bot: Bot, example_contract: int) -> None:
    form = await open_form(bot, "indicator:I2")
    await reimport(bot, ("target: 30", "target: 32"))
    response = await bot.driver.submit_view(form, {"target": "28", "rationale": WHY}, user=LEADER)
    assert "changed while the form was open" in response.json["errors"]["rationale"]


# --- who may propose --------------------------------------------------------------------------


@pytest.mark.parametrize("user", [PEER, ESCALATION])
async def test_only_leader_sponsor_or_owner_propose(
    bot: Bot, example_contract: int, user: str
) -> None:
    said = await ask(bot, f"amend <@{LEADER}|dana>", user=user)
    assert "Only the leader, sponsor or owner" in said
    assert bot.fake.calls_to("views.open") == []


async def test_the_sponsor_names_the_leader_or_gets_their_only_contract(
    bot: Bot, example_contract: int
) -> None:
    chooser = await open_amend(bot, user=SPONSOR)
    assert "Head of Platform" in str(chooser["blocks"][0])
    chooser = await open_amend(bot, user=OWNER, text=f"amend <@{LEADER}>")
    assert chooser["callback_id"] == "amendment_choose"


async def test_a_draft_is_edited_directly(bot: Bot) -> None:
    text = EXAMPLE_CONTRACT.read_text(encoding="utf-8")
    _, problems = await import_text(
        text,
        filename="c.yml",
        sessions=bot.sessions,
        client=bot.app.client,
        draft=True,
        now=bot.clock.now(),
    )
    assert problems == []
    said = await ask(bot, "amend", user=LEADER)
    assert "still a draft" in said and "/contract edit" in said


async def test_bad_arguments(bot: Bot, example_contract: int) -> None:
    assert "couldn't find a Slack user" in await ask(bot, "amend dana", user=LEADER)
    assert "has no contract" in await ask(bot, f"amend <@{PEER}>", user=LEADER)
    assert "no active contract to amend" in await ask(bot, "amend", user=PEER)


# --- deciding -------------------------------------------------------------------------------


async def test_reject_needs_a_reason_and_the_proposer_hears_it(
    bot: Bot, example_contract: int
) -> None:
    await propose(bot, values={"target": "28"})
    request = await request_to(bot, SPONSOR)
    opened = len(bot.fake.calls_to("views.open"))
    await click(bot, request, "reject", user=SPONSOR)
    await bot.fake.wait_for("views.open", count=opened + 1)
    modal = await filled_modal(bot.fake, SPONSOR)
    assert modal["callback_id"] == "amendment_reject_reason"
    response = await bot.driver.submit_view(modal, {"reason": "  "}, user=SPONSOR)
    assert response.json["errors"] == {"reason": "Tell the proposer why."}
    response = await bot.driver.submit_view(
        modal, {"reason": "Not before the Q2 review."}, user=SPONSOR
    )
    assert response.json is None

    told = await request_to(bot, LEADER)
    assert "was rejected" in told["text"]
    assert "Rejected by <@U0SPON001>: Not before the Q2 review." in text_of(told)
    await bot.fake.wait_for("chat.update")
    assert "❌ Rejected" in text_of(dm(bot, SPONSOR)[-1]) and buttons(dm(bot, SPONSOR)[-1]) == []
    (amendment,) = await stored(bot, Amendment)
    assert (amendment.status, amendment.decision_reason) == (
        "rejected",
        "Not before the Q2 review.",
    )
    assert (await indicator(bot, "I2")).target == 30

    await click(bot, request, "approve", user=SPONSOR)
    await bot.fake.wait_for("response_url")
    assert "decided for you already" in response_texts(bot.fake)[-1]
    assert (await indicator(bot, "I2")).target == 30


@pytest.mark.parametrize("action", ["approve", "reject"])
async def test_a_forwarded_request_clicked_by_someone_else_is_refused(
    bot: Bot, example_contract: int, action: str
) -> None:
    await propose(bot, values={"target": "28"})
    request = await request_to(bot, SPONSOR)
    await click(bot, request, action, user=PEER)
    (call,) = await bot.fake.wait_for("response_url")
    assert call.args["response_type"] == "ephemeral"
    assert call.args["replace_original"] is False
    assert call.args["text"] == "Only the approvers of amendment #1 can approve or reject it."
    assert "<@" not in call.args["text"]  # names no approver, leader or item to an outsider
    assert len(bot.fake.calls_to("views.open")) == 1  # the proposer's; no reject modal
    assert await stored(bot, AmendmentApproval) == []
    assert (await stored(bot, Amendment))[0].status == "pending"
    assert bot.fake.calls_to("chat.update") == []


async def test_a_double_click_applies_once(bot: Bot, example_contract: int) -> None:
    await propose(bot, values={"target": "28"})
    request = await request_to(bot, SPONSOR)
    first, second = await asyncio.gather(
        click(bot, request, "approve", user=SPONSOR),
        click(bot, request, "approve", user=SPONSOR),
    )
    assert first.status == second.status == 200
    await bot.fake.wait_for("response_url")  # the second click is told it was done already
    assert "decided for you already" in response_texts(bot.fake)[-1]
    await request_to(bot, LEADER)
    await asyncio.sleep(0.2)
    (contract,) = await stored(bot, Contract)
    assert contract.version == 2
    assert len(await stored(bot, AmendmentApproval)) == 1
    assert [v.version for v in await stored(bot, ContractVersion)] == [1, 2]
    assert len(dm(bot, LEADER)) == 1
    actions = [e.action for e in await stored(bot, AuditEvent)]
    assert actions.count("amendment.applied") == 1


async def test_every_approver_must_approve(bot: Bot, example_contract: int) -> None:
    await reimport(bot, ("approvers: [U0SPON001]", "approvers: [U0SPON001, U0HRBP001]"))
    await propose(bot, values={"target": "28"})
    to_sponsor = await request_to(bot, SPONSOR)
    to_owner = await request_to(bot, OWNER)
    await click(bot, to_sponsor, "approve", user=SPONSOR)
    await bot.fake.wait_for("chat.update", count=2)
    assert "You approved it; waiting for <@U0HRBP001>." in text_of(dm(bot, SPONSOR)[-1])
    assert "Approved by <@U0SPON001>; waiting for <@U0HRBP001>." in text_of(dm(bot, OWNER)[-1])
    assert buttons(dm(bot, SPONSOR)[-1]) == []
    assert buttons(dm(bot, OWNER)[-1]) == ["amendment_approve", "amendment_reject"]
    assert (await indicator(bot, "I2")).target == 30

    await click(bot, to_owner, "approve", user=OWNER)
    await request_to(bot, LEADER)
    assert (await indicator(bot, "I2")).target == 28
    (contract,) = await stored(bot, Contract)
    assert contract.version == 3  # the import made version 2


async def test_a_second_amendment_to_the_same_item_is_refused_once_the_first_applied(
    bot: Bot, example_contract: int
) -> None:
    await propose(bot, values={"target": "28"})
    first = await request_to(bot, SPONSOR)
    await propose(bot, values={"target": "25"}, user=OWNER)
    second = await request_to(bot, SPONSOR, count=2)
    await click(bot, first, "approve", user=SPONSOR)
    await request_to(bot, LEADER)

    await click(bot, second, "approve", user=SPONSOR)
    told = await request_to(bot, OWNER)
    assert "was not applied" in told["text"]
    assert "I2 changed after this amendment was proposed" in text_of(told)
    (call,) = await bot.fake.wait_for("response_url")
    assert "Not applied: I2 changed" in call.args["text"]
    assert (await indicator(bot, "I2")).target == 28
    statuses = sorted((a.id, a.status) for a in await stored(bot, Amendment))
    assert statuses == [(1, "applied"), (2, "stale")]


async def test_an_import_elsewhere_does_not_void_a_proposal_but_one_of_the_item_does(
    bot: Bot, example_contract: int
) -> None:
    await propose(bot, values={"target": "28"})
    request = await request_to(bot, SPONSOR)
    await propose(bot, "indicator:I3", {"target": "95"})
    other = await request_to(bot, SPONSOR, count=2)
    await reimport(bot, ("target: 90", "target: 92"))  # I3 changes, version 2

    await click(bot, request, "approve", user=SPONSOR)
    await request_to(bot, LEADER)
    assert (await indicator(bot, "I2")).target == 28
    await click(bot, other, "approve", user=SPONSOR)
    await request_to(bot, LEADER, count=2)
    assert (await indicator(bot, "I3")).target == 92
    assert [a.status for a in await stored(bot, Amendment)] == ["applied", "stale"]
    (contract,) = await stored(bot, Contract)
    assert contract.version == 3


async def test_a_new_date_reopens_a_missed_milestone(bot: Bot, example_contract: int) -> None:
    async with bot.sessions() as session:
        await writing(session)
        m1 = (await session.exec(select(Milestone).where(Milestone.key == "M1"))).one()
        m1.status, m1.missed_count = "missed", 1
        session.add(m1)
        await session.commit()
    await propose(bot, "milestone:M1", {"due": "2027-06-30"})
    await click(bot, await request_to(bot, SPONSOR), "approve", user=SPONSOR)
    await request_to(bot, LEADER)
    async with bot.sessions() as session:
        m1 = (await session.exec(select(Milestone).where(Milestone.key == "M1"))).one()
    assert (m1.due.isoformat(), m1.status, m1.missed_count) == ("2027-06-30", "pending", 1)


# --- summaries and history ----------------------------------------------------------------


async def test_pending_amendments_show_in_the_summary(bot: Bot, example_contract: int) -> None:
    await propose(bot, values={"target": "28"})
    said = await ask(bot, f"summary <@{LEADER}>", user=SPONSOR)
    assert "Pending amendments" in said
    assert "#1* change success indicator I2 · Median project cycle time" in said
    assert "0 of 1 approvals, waiting for <@U0SPON001>" in said


async def test_an_old_version_reads_as_it_stood(bot: Bot, example_contract: int) -> None:
    await propose(bot, values={"target": "28"})
    await click(bot, await request_to(bot, SPONSOR), "approve", user=SPONSOR)
    await request_to(bot, LEADER)

    now = await ask(bot, f"summary <@{LEADER}>", user=SPONSOR)
    assert "baseline 45 → latest _no value yet_ → target 28 days" in now
    assert "version 2" in now
    old = await ask(bot, f"summary <@{LEADER}|dana> v1", user=SPONSOR)
    assert "baseline 45 → latest _no value yet_ → target 30 days" in old
    assert "Version 1* of 2" in old and "The terms as they stood then" in old
    assert "Pending amendments" not in old
    mine = await ask(bot, "summary V2", user=LEADER)
    assert "baseline 45 → latest _no value yet_ → target 28 days" in mine
    assert "Version 2* of 2" in mine

    said = await ask(bot, f"summary <@{LEADER}> v7", user=SPONSOR)
    assert "has no version 7. Its versions: v1, v2." in said
    assert "Only <@U0LEAD001>" in await ask(bot, f"summary <@{LEADER}> v1", user=PEER)


async def test_history_lists_versions_and_the_audit_log(bot: Bot, example_contract: int) -> None:
    await propose(bot, values={"target": "28"})
    await click(bot, await request_to(bot, SPONSOR), "approve", user=SPONSOR)
    await request_to(bot, LEADER)

    said = await ask(bot, f"history <@{LEADER}>", user=OWNER)
    versions = said[said.index("*Versions*") : said.index("*Audit log*")]
    assert versions.index("*v2*") < versions.index("*v1*")
    assert "amendment #1: change success indicator I2 · proposed by <@U0LEAD001>" in versions
    assert "· import" in versions
    assert "_the command line_ imported the contract" in said
    log = said[said.index("*Audit log*") :]
    assert log.index("approved and applied amendment #1: version 2") < log.index(
        "proposed amendment #1 (change I2)"
    )
    assert log.index("proposed amendment #1") < log.index("imported the contract")
    assert "Only <@U0LEAD001>" in await ask(bot, f"history <@{LEADER}>", user=PEER)
    assert "couldn't find a Slack user" in await ask(bot, "history dana", user=OWNER)


async def test_a_long_audit_log_is_capped(bot: Bot, example_contract: int) -> None:
    async with bot.sessions() as session:
        await writing(session)
        for n in range(20):
            session.add(
                AuditEvent(
                    contract_id=example_contract,
                    actor_id=PEER,
                    action="feedback.given",
                    detail={"n": n},
                    created_at=bot.clock.now(),
                )
            )
        await session.commit()
    said = await ask(bot, "history", user=LEADER)
    # 20 + the import's two events (imported; agreed outside Slack), of which 15 are shown.
    assert "…and 7 more" in said
    assert PEER not in said  # other features' events never name their actor here


async def test_help_names_the_new_subcommands(bot: Bot) -> None:
    said = await ask(bot, "help", user=PEER)
    assert "/contract amend [@leader]" in said and "/contract history [@leader]" in said
    assert "/contract summary [@leader] [v3]" in said


async def test_a_draft_has_no_versions_to_show(bot: Bot) -> None:
    _, problems = await import_text(
        EXAMPLE_CONTRACT.read_text(encoding="utf-8"),
        filename="c.yml",
        sessions=bot.sessions,
        client=bot.app.client,
        draft=True,
        now=bot.clock.now(),
    )
    assert problems == []
    said = await ask(bot, "summary v1", user=LEADER)
    assert "has no versions yet: a contract gets version 1 when it is activated" in said


async def test_reject_on_a_decided_amendment_opens_nothing(bot: Bot, example_contract: int) -> None:
    await propose(bot, values={"target": "28"})
    request = await request_to(bot, SPONSOR)
    await click(bot, request, "approve", user=SPONSOR)
    await request_to(bot, LEADER)
    opened = len(bot.fake.calls_to("views.open"))
    await click(bot, request, "reject", user=SPONSOR)
    (call,) = await bot.fake.wait_for("response_url")
    assert "decided for you already" in call.args["text"] and "applied" in call.args["text"]
    assert len(bot.fake.calls_to("views.open")) == opened
