"""Governance changes by amendment, through signed requests and the fake Slack: the form
pre-filled with the terms as they are, refusals of bad input as field errors, approval by
the current approvers, the change applied once with a version that says it in words, and
the check-in loop following the new schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select

from bot.checkins.service import due_prompts
from bot.sandbox.driver import _state_values
from storage.models import (
    Amendment,
    AuditEvent,
    Contract,
    ContractPerson,
    ContractVersion,
    Delivery,
    Role,
)
from tests.bot.checkins.test_support import at, run_job
from tests.conftest import Bot
from tests.handlers.test_amendments import (
    LEADER,
    OWNER,
    PEER,
    SPONSOR,
    WHY,
    buttons,
    click,
    dm,
    open_amend,
    reimport,
    request_to,
    stored,
    text_of,
)
from tests.security.test_bad_input import submit_with_state

NEW_OWNER, NEW_APPROVER, GONE = "U0NEWOWN1", "U0NEWAPP1", "U0GONE001"
A_BOT = "U0JIRA001"


def _people(bot: Bot) -> None:
    bot.fake.add_user(NEW_OWNER, name="nora", real_name="Nora Owner")
    bot.fake.add_user(NEW_APPROVER, name="alex", real_name="Alex Approver")
    bot.fake.add_user(A_BOT, name="jirabot", real_name="Jira", is_bot=True)
    bot.fake.add_user(GONE, name="gone", real_name="Gone Person", deleted=True)


async def open_governance(bot: Bot, *, user: str = LEADER) -> dict[str, Any]:
    chooser = await open_amend(bot, user=user)
    response = await bot.driver.submit_view(chooser, {"item": "governance:governance"}, user=user)
    assert response.json["response_action"] == "update", response.json
    return bot.fake.last_view(user)


def initial(form: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for block in form["blocks"]:
        if block["type"] != "input":
            continue
        e = block["element"]
        found[block["block_id"]] = (
            e.get("initial_value")
            or e.get("initial_user")
            or e.get("initial_users")
            or e.get("initial_time")
            or e.get("initial_conversation")
            or (e.get("initial_option") or {}).get("value")
        )
    return found


async def submit(bot: Bot, form: dict[str, Any], values: dict[str, Any], user: str = LEADER) -> Any:
    return await bot.driver.submit_view(form, {"rationale": WHY, **values}, user=user)


async def test_the_form_holds_the_governance_as_it_is(bot: Bot, example_contract: int) -> None:
    form = await open_governance(bot)
    assert form["callback_id"] == "amendment_item"
    found = initial(form)
    assert PEER in found.pop("reviewers")
    assert found == {
        "owner": OWNER,
        "approvers": [SPONSOR],
        "escalation": ["U0VP00001"],
        "escalation_days": "14",
        "anonymity_threshold": "3",
        "feedback_cadence": "monthly",
        "digest_cadence": "monthly",
        "review_cadence": "quarterly",
        "checkin_weekday": "friday",
        "checkin_time": "15:00",
        "checkin_timezone": "Europe/Berlin",
        "reminder_hours": "24",
        "peers": None,
        "direct_reports": None,
        "stakeholders": None,
        "report_cadence": "-",  # no scheduled report
        "report_channel": None,
        "report_readers": None,
        "rationale": None,
    }


async def test_proposed_approved_by_the_current_approvers_and_applied(
    bot: Bot, example_contract: int
) -> None:
    _people(bot)
    form = await open_governance(bot)
    response = await submit(
        bot,
        form,
        {
            "owner": NEW_OWNER,
            "approvers": [NEW_APPROVER],
            "checkin_weekday": "monday",
            "checkin_time": "09:30",
            "checkin_timezone": "America/New_York",
            "anonymity_threshold": "4",
            "escalation_days": "7",
        },
    )
    assert response.json["response_action"] == "update", response.json
    # The current approver decides, not the proposed one.
    request = await request_to(bot, SPONSOR)
    shown = text_of(request)
    assert f"Owner: <@{OWNER}> → <@{NEW_OWNER}>" in shown
    assert "Check-in time: 15:00 → 09:30" in shown
    assert buttons(request) == ["amendment_approve", "amendment_reject"]
    assert dm(bot, NEW_APPROVER) == []
    (amendment,) = await stored(bot, Amendment)
    assert amendment.item_type == "governance" and amendment.status == "pending"

    # The proposed approver cannot approve it.
    await click(bot, request, "approve", user=NEW_APPROVER)
    async with bot.sessions() as session:
        pending = await session.get(Amendment, amendment.id)
        assert pending is not None and pending.status == "pending"

    await click(bot, request, "approve", user=SPONSOR)
    await click(bot, request, "approve", user=SPONSOR)  # a double click
    await bot.fake.wait_for("chat.update")
    (contract,) = await stored(bot, Contract)
    assert (contract.owner_id, contract.checkin_weekday, contract.checkin_time) == (
        NEW_OWNER,
        0,
        "09:30",
    )
    assert (contract.checkin_timezone, contract.anonymity_threshold) == ("America/New_York", 4)
    assert contract.escalation_days == 7
    assert contract.version == 2
    approvers = [p.user_id for p in await stored(bot, ContractPerson) if p.role == Role.approver]
    assert approvers == [NEW_APPROVER]
    versions = {v.version: v for v in await stored(bot, ContractVersion)}
    assert versions[2].snapshot["governance"]["owner"] == NEW_OWNER
    assert versions[2].snapshot["checkin"]["time"] == "09:30"
    applied = [e for e in await stored(bot, AuditEvent) if e.action == "amendment.applied"]
    assert len(applied) == 1
    assert f"Owner: <@{OWNER}> → <@{NEW_OWNER}>" in applied[0].detail["words"]

    # The history says it in words.
    await bot.driver.command("/contract", "history", user=LEADER)
    (found,) = await bot.fake.wait_for("response_url", where=lambda c: "History:" in str(c.args))
    history = str(found.args)
    assert "change governance" in history and f"Owner: <@{OWNER}> → <@{NEW_OWNER}>" in history

    # The new approver decides the next change.
    form = await open_governance(bot)
    await submit(bot, form, {"reminder_hours": "12"})
    request = await request_to(bot, NEW_APPROVER)
    assert "Reminder after (hours): 24 → 12" in text_of(request)


async def test_the_check_in_loop_follows_the_new_schedule(bot: Bot, example_contract: int) -> None:
    """The harness's clock reads Wednesday 10 March 2027; the prompt is due Friday 15:00
    Berlin. Moved to Wednesday 09:00 New York, it is due today at 14:00 UTC."""
    form = await open_governance(bot)
    await submit(
        bot,
        form,
        {
            "checkin_weekday": "wednesday",
            "checkin_time": "09:00",
            "checkin_timezone": "America/New_York",
        },
    )
    request = await request_to(bot, SPONSOR)
    await click(bot, request, "approve", user=SPONSOR)
    await bot.fake.wait_for("chat.update")
    async with bot.sessions() as session:
        contract = (await session.exec(select(Contract))).one()
    assert contract.checkin_weekday == 2

    now = bot.clock.now()
    due = await due_prompts(services=bot.services, client=None, now=now.replace(hour=14, minute=1))
    assert [p.contract.id for p in due] == [contract.id]
    assert due[0].due_at.hour == 14 and due[0].due_at.weekday() == 2
    early = await due_prompts(services=bot.services, client=None, now=now.replace(hour=13))
    assert early == [] or all(p.due_at < now - timedelta(days=1) for p in early)


async def test_bad_governance_is_refused_field_by_field(bot: Bot, example_contract: int) -> None:
    _people(bot)
    form = await open_governance(bot)

    async def errors(values: dict[str, Any]) -> dict[str, str]:
        response = await submit(bot, form, values)
        assert response.json["response_action"] == "errors", response.json
        return dict(response.json["errors"])

    assert "a bot" in (await errors({"owner": A_BOT}))["owner"]
    assert "deactivated" in (await errors({"approvers": [SPONSOR, GONE]}))["approvers"]
    assert "The leader cannot own" in (await errors({"owner": LEADER}))["owner"]
    assert "at least one approver" in (await errors({"approvers": []}))["approvers"]
    assert "from 2 to 100" in (await errors({"anonymity_threshold": "1"}))["anonymity_threshold"]
    assert "from 2 to 100" in (await errors({"anonymity_threshold": "101"}))["anonymity_threshold"]
    assert "from 0 to 168" in (await errors({"reminder_hours": "-1"}))["reminder_hours"]
    assert "from 1 to 365" in (await errors({"escalation_days": "0"}))["escalation_days"]
    assert "from 1 to 365" in (await errors({"escalation_days": "366"}))["escalation_days"]
    assert (
        "not a time zone"
        in (await errors({"checkin_timezone": "Mars/Olympus"}))["checkin_timezone"]
    )
    assert "HH:MM" in (await errors({"checkin_time": "25:99"}))["checkin_time"]
    assert "Nothing changed" in str(await errors({}))
    assert (await errors({"rationale": " ", "reminder_hours": "12"})) == {
        "rationale": "Tell the approvers why."
    }
    assert await stored(bot, Amendment) == []


async def test_a_crafted_form_or_other_user_changes_nothing(
    bot: Bot, example_contract: int
) -> None:
    form = await open_governance(bot)
    # A peer may not propose, even with the leader's form.
    response = await submit(bot, form, {"reminder_hours": "12"}, user=PEER)
    assert response.json["response_action"] == "errors"
    # A crafted owner id is not a person; a crafted option is not a cadence.
    current = bot.fake.views[form["id"]]
    state = {"values": _state_values(current, {"rationale": WHY, "reminder_hours": "12"})}
    state["values"]["owner"]["owner"]["selected_user"] = "U1>|<!channel"
    state["values"]["digest_cadence"]["digest_cadence"]["selected_option"] = {"value": "hourly"}
    response = await submit_with_state(bot, form, LEADER, state)
    assert set(response.json["errors"]) == {"owner", "digest_cadence"}, response.json
    assert await stored(bot, Amendment) == []

    # A governance that changed while the form was open (an import).
    await reimport(bot, ("anonymity_threshold: 3", "anonymity_threshold: 4"))
    response = await submit(bot, form, {"reminder_hours": "6"})
    assert "changed while the form was open" in str(response.json["errors"])
    assert await stored(bot, Amendment) == []


async def test_the_digest_shows_a_pending_governance_change_in_words(
    bot: Bot, example_contract: int
) -> None:
    _people(bot)
    form = await open_governance(bot)
    await submit(bot, form, {"owner": NEW_OWNER, "review_cadence": "monthly"})
    await request_to(bot, SPONSOR)
    await run_job(bot, "digests")
    (digest,) = [m for m in dm(bot, SPONSOR) if "North Star digest" in m["text"]]
    shown = text_of(digest)
    assert "change governance" in shown
    assert f"Owner: <@{OWNER}> → <@{NEW_OWNER}>" in shown
    assert "Alignment review: quarterly → monthly" in shown
    assert "amendment_approve" in shown


async def test_a_new_reminder_delay_moves_the_scheduled_reminder(
    bot: Bot, example_contract: int
) -> None:
    bot.clock.set(at("2027-03-12 15:01", "Europe/Berlin"))
    await run_job(bot, "checkins")
    (reminder,) = [d for d in await stored(bot, Delivery) if d.kind == "checkin_reminder"]
    (prompt,) = [d for d in await stored(bot, Delivery) if d.kind == "checkin_prompt"]
    assert prompt.sent_at is not None
    assert reminder.due_at == prompt.sent_at + timedelta(hours=24)

    async def change(hours: str, count: int) -> Delivery:
        form = await open_governance(bot)
        await submit(bot, form, {"reminder_hours": hours})
        request = await request_to(bot, SPONSOR, count=count)
        await click(bot, request, "approve", user=SPONSOR)
        await bot.fake.wait_for("chat.update", count=count)
        (row,) = [d for d in await stored(bot, Delivery) if d.kind == "checkin_reminder"]
        return row

    moved = await change("6", 1)
    assert (moved.status, moved.due_at) == ("scheduled", prompt.sent_at + timedelta(hours=6))
    assert (await change("0", 2)).status == "cancelled"
