"""Governance changes by amendment, through signed requests and the fake Slack: the form
pre-filled with the terms as they are, refusals of bad input as field errors, approval by
the current approvers, the change applied once with a version that says it in words, and
the check-in loop following the new schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select

from bot.amendments.model import GovernanceTerms
from bot.checkins.service import due_prompts
from bot.sandbox.driver import _state_values
from storage.db import writing
from storage.models import (
    Amendment,
    AuditEvent,
    Contract,
    ContractPerson,
    ContractVersion,
    Delivery,
    Role,
)
from tests.bot.checkins.test_support import at, run_job, virtual_time
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
from tests.handlers.test_feedback_support import DANA
from tests.handlers.test_feedback_support import open_modal as open_feedback
from tests.handlers.test_report import ask as ask_report
from tests.harness import filled_modal
from tests.security.test_bad_input import submit_with_state

NEW_OWNER, NEW_APPROVER, GONE = "U0NEWOWN1", "U0NEWAPP1", "U0GONE001"
A_BOT = "U0JIRA001"
REPORT_AND_GROUPS = (
    "report_cadence",
    "report_channel",
    "report_readers",
    "peers",
    "direct_reports",
    "stakeholders",
)


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


def _inputs(modal: dict[str, Any]) -> set[str]:
    return {b.get("block_id", "") for b in modal["blocks"] if b.get("type") == "input"}


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
    assert [p.contract_id for p in due] == [contract.id]
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


# --- the report's audience and the rater groups -------------------------------------------------

EXEC, ARCHIVED, OUTSIDE, SECRET = "C0EXEC001", "C0OLD0001", "C0NOTIN01", "G0SECRET1"
REPORT_TERMS = {
    "report_cadence": "monthly",
    "report_channel": EXEC,
    "report_readers": [NEW_APPROVER],
    "peers": [PEER],
}


def _channels(bot: Bot) -> None:
    bot.fake.add_channel(EXEC, name="exec")
    bot.fake.add_channel(ARCHIVED, name="old-exec")["is_archived"] = True
    bot.fake.add_channel(OUTSIDE, name="no-bot", is_member=False)
    bot.fake.add_channel(SECRET, name="secret", is_private=True, is_member=False)


def _report_posts(bot: Bot, channel: str) -> list[str]:
    return [
        m["text"] for m in bot.fake.messages.get(channel, []) if "North Star report:" in m["text"]
    ]


async def _roles(bot: Bot, role: Role) -> list[str]:
    return [p.user_id for p in await stored(bot, ContractPerson) if p.role == role]


async def test_the_report_audience_and_a_rater_group_change_by_amendment(
    bot: Bot, example_contract: int
) -> None:
    """Cadence, channel, readers and a group proposed, shown in words, applied on approval;
    then the report job posts to the new channel, the new reader may ask for the report, and
    the feedback modal places the new peer without asking."""
    _people(bot)
    _channels(bot)
    virtual_time(bot.services)
    modal = await open_feedback(bot, "/feedback", DANA, user=PEER)
    assert "relation" in _inputs(modal)  # a plain reviewer: asked how they work with Dana
    refused = await ask_report(bot, "report 2027Q1", user=NEW_APPROVER)
    assert "Only a contract's owner, and the report readers" in refused[0]

    form = await open_governance(bot)
    response = await submit(bot, form, REPORT_TERMS)
    assert response.json["response_action"] == "update", response.json
    request = await request_to(bot, SPONSOR)
    shown = text_of(request)
    assert "Scheduled report: no scheduled report → monthly" in shown
    assert f"Report channel: none → <#{EXEC}>" in shown
    assert f"Report readers: nobody → <@{NEW_APPROVER}>" in shown
    assert f"Peers: nobody → <@{PEER}>" in shown
    (contract,) = await stored(bot, Contract)
    assert contract.report_cadence is None and await _roles(bot, Role.peer) == []

    await click(bot, request, "approve", user=SPONSOR)
    await bot.fake.wait_for("chat.update")
    (contract,) = await stored(bot, Contract)
    assert (contract.report_cadence, contract.report_channel) == ("monthly", EXEC)
    assert await _roles(bot, Role.report_reader) == [NEW_APPROVER]
    assert await _roles(bot, Role.peer) == [PEER]
    versions = {v.version: v for v in await stored(bot, ContractVersion)}
    assert versions[2].snapshot["governance"]["report"] == {
        "cadence": "monthly",
        "channel": EXEC,
        "readers": [NEW_APPROVER],
    }
    assert versions[2].snapshot["feedback"]["peers"] == [PEER]
    await bot.driver.command("/contract", "history", user=LEADER)
    (found,) = await bot.fake.wait_for("response_url", where=lambda c: "History:" in str(c.args))
    assert f"Report channel: none → <#{EXEC}>" in str(found.args)

    # The feedback modal: the new peer is placed, not asked.
    modal = await open_feedback(bot, "/feedback", DANA, user=PEER)
    assert "relation" not in _inputs(modal) and "anonymity" in _inputs(modal)

    # The new reader may ask for the report; the job posts March's in the new channel.
    said = await ask_report(bot, "report 2027Q1", user=NEW_APPROVER)
    assert "Making the report for 2027 Q1" in said[0]
    bot.clock.set(at("2027-04-01 09:05", "Europe/Berlin"))
    await run_job(bot, "reports")
    assert _report_posts(bot, EXEC) == ["North Star report: March 2027 (1 Mar 2027 – 31 Mar 2027)"]


async def test_no_scheduled_report_any_more(bot: Bot, example_contract: int) -> None:
    _people(bot)
    _channels(bot)
    await _apply_terms(bot, REPORT_TERMS, count=1)
    form = await open_governance(bot)
    assert initial(form)["report_channel"] == EXEC
    response = await submit(
        bot, form, {"report_cadence": "-", "report_channel": None, "report_readers": []}
    )
    # Slack sends an emptied conversations_select as null: the driver keeps the initial one.
    assert response.json["response_action"] == "errors"
    assert "leave both empty" in response.json["errors"]["report_cadence"]
    current = bot.fake.views[form["id"]]
    state = {"values": _state_values(current, {"rationale": WHY, "report_cadence": "-"})}
    state["values"]["report_channel"]["report_channel"]["selected_conversation"] = None
    state["values"]["report_readers"]["report_readers"]["selected_users"] = []
    response = await submit_with_state(bot, form, LEADER, state)
    assert response.json["response_action"] == "update", response.json
    request = await request_to(bot, SPONSOR, count=2)
    assert "Scheduled report: monthly → no scheduled report" in text_of(request)
    await click(bot, request, "approve", user=SPONSOR)
    await bot.fake.wait_for("chat.update", count=2)
    (contract,) = await stored(bot, Contract)
    assert (contract.report_cadence, contract.report_channel) == (None, None)
    assert await _roles(bot, Role.report_reader) == []
    versions = {v.version: v for v in await stored(bot, ContractVersion)}
    assert "report" not in versions[3].snapshot["governance"]


async def _apply_terms(bot: Bot, values: dict[str, Any], *, count: int) -> None:
    form = await open_governance(bot)
    response = await submit(bot, form, values)
    assert response.json["response_action"] == "update", response.json
    request = await request_to(bot, SPONSOR, count=count)
    await click(bot, request, "approve", user=SPONSOR)
    await bot.fake.wait_for("chat.update", count=count)


async def test_bad_report_and_group_terms_are_field_errors(bot: Bot, example_contract: int) -> None:
    _people(bot)
    _channels(bot)
    form = await open_governance(bot)

    async def errors(values: dict[str, Any]) -> dict[str, str]:
        response = await submit(bot, form, values)
        assert response.json["response_action"] == "errors", response.json
        return dict(response.json["errors"])

    assert "is the leader" in (await errors({"peers": [PEER, LEADER]}))["peers"]
    assert "2nd person" in (await errors({"peers": [PEER, LEADER]}))["peers"]
    assert "is the sponsor" in (await errors({"direct_reports": [SPONSOR]}))["direct_reports"]
    twice = await errors({"peers": [PEER], "stakeholders": [NEW_OWNER, PEER]})
    assert twice == {
        "stakeholders": "The 2nd person chosen is already in “Peers”: one group per person."
    }
    assert "a bot" in (await errors({"stakeholders": [A_BOT]}))["stakeholders"]
    assert (
        "deactivated"
        in (await errors({"report_cadence": "yearly", "report_readers": [GONE]}))["report_readers"]
    )
    assert "leave both empty" in (await errors({"report_channel": EXEC}))["report_cadence"]
    nowhere = await errors({"report_cadence": "quarterly"})
    assert nowhere == {
        "report_channel": "Needs a channel or readers: a report on a cadence goes to them."
    }
    quarterly = {"report_cadence": "quarterly"}
    assert "archived" in (await errors({**quarterly, "report_channel": ARCHIVED}))["report_channel"]
    assert (
        "I'm not in this channel"
        in (await errors({**quarterly, "report_channel": OUTSIDE}))["report_channel"]
    )
    assert (
        "can't find this channel"
        in (await errors({**quarterly, "report_channel": SECRET}))["report_channel"]
    )
    assert await stored(bot, Amendment) == []


async def test_crafted_channels_people_and_too_many_are_refused(
    bot: Bot, example_contract: int
) -> None:
    form = await open_governance(bot)
    current = bot.fake.views[form["id"]]

    async def crafted(**changes: Any) -> dict[str, str]:
        state = {"values": _state_values(current, {"rationale": WHY, "report_cadence": "monthly"})}
        for block_id, (key, value) in changes.items():
            state["values"][block_id][block_id][key] = value
        response = await submit_with_state(bot, form, LEADER, state)
        assert response.json["response_action"] == "errors", response.json
        return dict(response.json["errors"])

    found = await crafted(report_channel=("selected_conversation", "C0NOWHERE"))
    assert found == {"report_channel": found["report_channel"]}
    assert "can't find this channel" in found["report_channel"]
    for value in ("<#C0EXEC001>", "D0LEAD001", "C0EXEC001|exec", "#exec"):
        found = await crafted(report_channel=("selected_conversation", value))
        assert found == {"report_channel": "Choose a channel from the list."}, value
    found = await crafted(report_readers=("selected_users", ["U0NOBODY1"]))
    assert found == {
        "report_readers": "This user is not a member of this workspace: choose a person."
    }
    found = await crafted(peers=("selected_users", ["U1>|<!channel"]))
    assert found == {"peers": "Choose people from the list."}
    many = [f"U0MANY{n:03d}" for n in range(51)]
    found = await crafted(
        report_readers=("selected_users", [PEER]), direct_reports=("selected_users", many)
    )
    assert found == {"direct_reports": "Choose at most 50 people (51 are chosen)."}
    assert await stored(bot, Amendment) == []


async def test_a_rejected_change_changes_nothing_and_a_double_submit_proposes_once(
    bot: Bot, example_contract: int
) -> None:
    _people(bot)
    _channels(bot)
    form = await open_governance(bot)
    values = {**REPORT_TERMS, "direct_reports": [NEW_OWNER]}
    # Someone who may not propose is refused, even with the leader's form.
    response = await submit(bot, form, values, user=PEER)
    assert response.json["response_action"] == "errors"
    first = await submit(bot, form, values)
    body, headers = bot.driver.last_sent
    again = await bot.driver.post_raw(body, headers)
    assert again.status == 200 and again.json == first.json
    (amendment,) = await stored(bot, Amendment)

    request = await request_to(bot, SPONSOR)
    opened = len(bot.fake.calls_to("views.open"))
    await click(bot, request, "reject", user=SPONSOR)
    await bot.fake.wait_for("views.open", count=opened + 1)
    reject = await filled_modal(bot.fake, SPONSOR)
    await bot.driver.submit_view(reject, {"reason": "Not this quarter."}, user=SPONSOR)
    await request_to(bot, LEADER)
    (amendment,) = await stored(bot, Amendment)
    assert amendment.status == "rejected"
    (contract,) = await stored(bot, Contract)
    assert (contract.report_cadence, contract.report_channel, contract.version) == (None, None, 1)
    for role in (Role.report_reader, Role.peer, Role.direct_report):
        assert await _roles(bot, role) == []


async def test_an_amendment_proposed_before_these_terms_leaves_them_as_they_are(
    bot: Bot, example_contract: int
) -> None:
    """A pending governance amendment stored without the report and group terms applies
    the terms it names and keeps the groups and the report as they are."""
    _people(bot)
    _channels(bot)
    await _apply_terms(bot, REPORT_TERMS, count=1)
    form = await open_governance(bot)
    await submit(bot, form, {"reminder_hours": "12"})
    async with bot.sessions() as session:
        await writing(session)
        pending = (await session.exec(select(Amendment).where(Amendment.status == "pending"))).one()
        old_terms = set(GovernanceTerms.model_fields) - set(REPORT_AND_GROUPS)
        pending.before = {k: v for k, v in (pending.before or {}).items() if k in old_terms}
        pending.after = {k: v for k, v in (pending.after or {}).items() if k in old_terms}
        session.add(pending)
        await session.commit()
    request = await request_to(bot, SPONSOR, count=2)
    await click(bot, request, "approve", user=SPONSOR)
    await bot.fake.wait_for("chat.update", count=2)
    (contract,) = await stored(bot, Contract)
    assert (contract.reminder_hours, contract.report_cadence) == (12, "monthly")
    assert await _roles(bot, Role.peer) == [PEER]
    assert await _roles(bot, Role.report_reader) == [NEW_APPROVER]
