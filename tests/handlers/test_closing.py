"""Closing and renewing through signed requests and the fake Slack: the end-of-period DMs
(once, across restarts; one reminder), Close and Renew and who may click them, the closing
reflection, `/contract close`, and a closed contract's loops stopped while it stays readable."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from typing import Any

from sqlmodel import col, select

from bot.contracts.io import import_file
from bot.core.permissions import Refusal
from bot.jobs import JOBS
from bot.renewal.blocks import END_CLOSE, END_RENEW, WRITE_REFLECTION
from bot.renewal.service import close_as
from bot.scheduler import JobRun
from bot.ui.metadata import ContractRef
from storage.db import writing
from storage.models import (
    Amendment,
    AuditEvent,
    Contract,
    ContractStatus,
    Delivery,
    DeliveryStatus,
    Measurement,
    Milestone,
    SuccessIndicator,
)
from tests.bot.checkins.test_support import at, run_job, virtual_time
from tests.conftest import EXAMPLE_CONTRACT, Bot, response_texts
from tests.fakes import FakeSlack
from tests.harness import filled_modal, loading_while_fills_wait, modal_says, running_bot

LEADER, SPONSOR, OWNER, ESCALATION, PEER = (
    "U0LEAD001",
    "U0SPON001",
    "U0HRBP001",
    "U0VP00001",
    "U0PEER001",
)
# The example contract's last day is 17 Dec 2027, in Europe/Berlin.
LAST_EVENING = at("2027-12-17 23:00", "Europe/Berlin")
ENDED = at("2027-12-18 00:30", "Europe/Berlin")


def dm(bot: Bot, user: str) -> list[dict[str, Any]]:
    return bot.fake.messages.get(bot.fake.dm_id(user), [])


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks") or message.get("text"), ensure_ascii=False)


def actions_of(message: dict[str, Any]) -> list[str]:
    return [
        e.get("action_id", "")
        for b in message.get("blocks") or []
        if b.get("type") == "actions"
        for e in b["elements"]
    ]


async def say(bot: Bot, command: str, text: str, *, user: str) -> str:
    before = len(bot.fake.calls_to("response_url"))
    response = await bot.driver.command(command, text, user=user)
    assert response.status == 200
    await bot.fake.wait_for("response_url", count=before + 1)
    return "\n".join(response_texts(bot.fake)[before:])


async def click(
    bot: Bot, message: dict[str, Any], action: str, *, user: str, value: str | None = None
) -> str:
    """Click a button of a message; what the app answered through the response URL."""
    before = len(bot.fake.calls_to("response_url"))
    response = await bot.driver.block_action(
        user=user, action_id=action, message=message, value=value
    )
    assert response.status == 200
    await bot.fake.wait_for("response_url", count=before + 1)
    return "\n".join(response_texts(bot.fake)[before:])


async def contract_of(bot: Bot, contract_id: int) -> Contract:
    async with bot.sessions() as session:
        found = await session.get(Contract, contract_id)
    assert found is not None
    return found


async def rows(bot: Bot, model: Any, *where: Any) -> list[Any]:
    async with bot.sessions() as session:
        return list((await session.exec(select(model).where(*where))).all())


async def end_period(bot: Bot) -> None:
    virtual_time(bot.services)
    bot.clock.set(ENDED)
    await run_job(bot, "contract_ends")


def decision(bot: Bot, user: str) -> dict[str, Any]:
    found = [m for m in dm(bot, user) if END_CLOSE in actions_of(m)]
    assert found, dm(bot, user)
    return copy.deepcopy(found[-1])


# --- the end of the period ------------------------------------------------------------------


async def test_the_period_end_tells_owner_sponsor_and_leader_once_across_restarts(
    fake_slack: FakeSlack, sqlite_url: str
) -> None:
    async with running_bot(fake_slack, sqlite_url) as bot:
        _results, problems = await import_file(
            EXAMPLE_CONTRACT,
            sessions=bot.sessions,
            client=bot.app.client,
            draft=False,
            now=bot.clock.now(),
        )
        assert problems == []
        virtual_time(bot.services)
        bot.clock.set(LAST_EVENING)
        await run_job(bot, "contract_ends")
        assert not dm(bot, OWNER) and not dm(bot, SPONSOR) and not dm(bot, LEADER)

        await end_period(bot)
        for user in (OWNER, SPONSOR):
            message = decision(bot, user)
            text = text_of(message)
            assert "Final figures" in text and "baseline 62" in text and "target 75" in text
            assert "milestones met" in text
            assert actions_of(message) == [END_CLOSE, END_RENEW]
        assert WRITE_REFLECTION in actions_of(dm(bot, LEADER)[-1])
        await run_job(bot, "contract_ends")
        counts = {u: len(dm(bot, u)) for u in (OWNER, SPONSOR, LEADER)}
        assert counts == {OWNER: 1, SPONSOR: 1, LEADER: 1}

    async with running_bot(fake_slack, sqlite_url) as again:  # a restart, on the same database
        virtual_time(again.services)
        again.clock.set(ENDED + timedelta(hours=3))
        await run_job(again, "contract_ends")
        assert {u: len(dm(again, u)) for u in (OWNER, SPONSOR, LEADER)} == counts


async def test_an_undecided_contract_gets_one_reminder_never_more(
    bot: Bot, example_contract: int
) -> None:
    await end_period(bot)
    bot.clock.set(ENDED + timedelta(days=13))
    await run_job(bot, "contract_ends")
    assert len(dm(bot, SPONSOR)) == 1
    for days in (14, 15, 40):
        bot.clock.set(ENDED + timedelta(days=days))
        await run_job(bot, "contract_ends")
    for user in (OWNER, SPONSOR):
        assert len(dm(bot, user)) == 2
        assert "Reminder" in text_of(dm(bot, user)[-1])
    assert len(dm(bot, LEADER)) == 1


async def test_a_bot_that_comes_late_asks_first_and_reminds_a_fortnight_later(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    bot.clock.set(ENDED + timedelta(days=30))  # deployed (or down) long after the end
    await run_job(bot, "contract_ends")
    assert [len(dm(bot, u)) for u in (OWNER, SPONSOR)] == [1, 1]
    bot.clock.set(ENDED + timedelta(days=43))
    await run_job(bot, "contract_ends")
    assert [len(dm(bot, u)) for u in (OWNER, SPONSOR)] == [1, 1]
    bot.clock.set(ENDED + timedelta(days=44, hours=1))
    await run_job(bot, "contract_ends")
    assert [len(dm(bot, u)) for u in (OWNER, SPONSOR)] == [2, 2]


async def test_a_closed_contract_gets_no_period_end_messages(
    bot: Bot, example_contract: int
) -> None:
    await bot.driver.command("/contract", "close", user=OWNER)
    await bot.fake.wait_for("views.open", count=1)
    await bot.driver.submit_view(await filled_modal(bot.fake, OWNER), {}, user=OWNER)
    await bot.fake.wait_for("chat.postMessage", count=2)  # the leader and sponsor are told
    before = {u: len(dm(bot, u)) for u in (OWNER, SPONSOR, LEADER)}
    assert before == {OWNER: 0, SPONSOR: 1, LEADER: 1}
    await end_period(bot)
    bot.clock.set(ENDED + timedelta(days=20))
    await run_job(bot, "contract_ends")
    assert {u: len(dm(bot, u)) for u in (OWNER, SPONSOR, LEADER)} == before


# --- Close, the reflection, who may click ----------------------------------------------------


async def test_the_leader_reflects_and_the_sponsor_closes_once(
    bot: Bot, example_contract: int
) -> None:
    await end_period(bot)
    ask = copy.deepcopy(dm(bot, LEADER)[-1])
    response = await bot.driver.block_action(user=LEADER, action_id=WRITE_REFLECTION, message=ask)
    assert response.status == 200
    await bot.fake.wait_for("views.open", count=1)
    modal = bot.fake.last_view(LEADER)
    response = await bot.driver.submit_view(modal, {"reflection": "   "}, user=LEADER)
    assert "reflection" in response.json["errors"]
    response = await bot.driver.submit_view(
        modal, {"reflection": "Delegating <roadmap> work *paid off*."}, user=LEADER
    )
    assert response.json["response_action"] == "update"

    message = decision(bot, SPONSOR)
    answered = await click(bot, message, END_CLOSE, user=SPONSOR)
    assert "is closed" in answered
    closed = await contract_of(bot, example_contract)
    assert closed.status == ContractStatus.closed and closed.closed_by == SPONSOR
    assert closed.closing_reflection == "Delegating <roadmap> work *paid off*."
    shown = text_of(dm(bot, SPONSOR)[-1])  # the message, replaced in place
    assert "&lt;roadmap&gt;" in shown and END_CLOSE not in shown

    answered = await click(bot, message, END_CLOSE, user=SPONSOR)  # the double click
    assert "was closed on" in answered
    answered = await click(bot, decision(bot, OWNER), END_CLOSE, user=OWNER)
    assert "was closed on" in answered
    events = await rows(bot, AuditEvent, col(AuditEvent.action) == "contract.closed")
    assert len(events) == 1
    assert events[0].detail["summary"].startswith(f"Closed by <@{SPONSOR}>")
    await bot.fake.wait_for(
        "chat.postMessage",
        where=lambda c: c.response.get("channel") == bot.fake.dm_id(LEADER),
        count=2,
    )
    assert "is closed" in text_of(dm(bot, LEADER)[-1])


async def test_close_is_refused_to_the_leader_a_peer_and_a_crafted_button(
    bot: Bot, example_contract: int
) -> None:
    await end_period(bot)
    message = decision(bot, SPONSOR)
    for user in (LEADER, PEER, ESCALATION):
        answered = await click(bot, message, END_CLOSE, user=user)
        assert "Only the contract's owner or sponsor" in answered
        answered = await click(bot, message, END_RENEW, user=user)
        assert "Only the contract's owner or sponsor" in answered
    crafted = ContractRef.write(contract_id=example_contract)
    answered = await click(bot, message, END_CLOSE, user=PEER, value=crafted)
    assert "Only the contract's owner or sponsor" in answered
    answered = await click(bot, message, END_CLOSE, user=SPONSOR, value='{"contract_id": "x"}')
    assert "out of date" in answered
    assert (await contract_of(bot, example_contract)).status == ContractStatus.active
    assert not await rows(bot, Contract, col(Contract.replaces_contract_id).is_not(None))


# --- /contract close --------------------------------------------------------------------------


async def test_the_owner_closes_with_a_reason_and_everything_pending_stops(
    bot: Bot, example_contract: int
) -> None:
    async with bot.sessions() as session:
        await writing(session)
        session.add(
            Delivery(
                kind="checkin_reminder",
                contract_id=example_contract,
                recipient_id=LEADER,
                period_key="2027-W11",
                status=DeliveryStatus.scheduled,
                due_at=bot.clock.now() + timedelta(days=1),
            )
        )
        session.add(
            Amendment(
                contract_id=example_contract,
                proposer_id=LEADER,
                item_type="indicator",
                item_key="I2",
                after={"target": 25},
                rationale="Further.",
                base_version=1,
            )
        )
        await session.commit()
    before = len(bot.fake.calls_to("views.open"))
    response = await bot.driver.command("/contract", "close Reorganised <team>", user=OWNER)
    assert response.status == 200
    await bot.fake.wait_for("views.open", count=before + 1)
    modal = await filled_modal(bot.fake, OWNER)
    shown = json.dumps(modal["blocks"], ensure_ascii=False)
    assert "Final figures" in shown and "I1" in shown and "milestones met" in shown
    response = await bot.driver.submit_view(modal, {"reason": "Reorganised <team>"}, user=OWNER)
    assert response.json["response_action"] == "update"
    assert "was closed" in json.dumps(response.json["view"])
    closed = await contract_of(bot, example_contract)
    assert (closed.status, closed.closed_by, closed.close_reason) == (
        ContractStatus.closed,
        OWNER,
        "Reorganised <team>",
    )
    reminder = await rows(bot, Delivery, col(Delivery.kind) == "checkin_reminder")
    assert [r.status for r in reminder] == [DeliveryStatus.cancelled]
    amendment = (await rows(bot, Amendment))[0]
    assert amendment.status == "stale" and "closed" in amendment.decision_reason

    assert "own no active contract" in await say(bot, "/contract", "close", user=OWNER)
    events = await rows(bot, AuditEvent, col(AuditEvent.action) == "contract.closed")
    assert len(events) == 1 and (await contract_of(bot, example_contract)).close_reason == (
        "Reorganised <team>"
    )


async def test_only_the_owner_closes_with_the_command(bot: Bot, example_contract: int) -> None:
    for user in (LEADER, SPONSOR, ESCALATION):
        said = await say(bot, "/contract", "close", user=user)
        assert "Only the contract's owner can close it" in said
    said = await say(bot, "/contract", "close", user=PEER)
    assert "own no active contract" in said
    said = await say(bot, "/contract", f"close <@{LEADER}> fine", user=PEER)
    assert "Only the contract's owner" in said
    assert (await contract_of(bot, example_contract)).status == ContractStatus.active


async def test_a_crafted_close_submission_by_the_sponsor_is_refused(
    bot: Bot, example_contract: int
) -> None:
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.command("/contract", "close", user=OWNER)
    await bot.fake.wait_for("views.open", count=before + 1)
    modal = copy.deepcopy(await filled_modal(bot.fake, OWNER))
    response = await bot.driver.submit_view(modal, {}, user=SPONSOR)
    assert "Only the contract's owner" in json.dumps(response.json)
    assert (await contract_of(bot, example_contract)).status == ContractStatus.active


async def test_a_contract_closed_while_its_close_modal_loads_is_not_offered_again(
    bot: Bot, example_contract: int
) -> None:
    """The modal opens on the owner's check alone; what fills it is read afterwards, so a
    contract closed meanwhile (another tab, the sponsor's *Close*) gets a note, not a form."""
    async with loading_while_fills_wait(bot, "/contract", "close", user=OWNER):
        async with bot.services.sessions() as session:
            await writing(session)
            closed = await close_as(
                session=session,
                contract_id=example_contract,
                user=OWNER,
                now=bot.clock.now(),
                reason="",
                owner_only=True,
            )
        assert not isinstance(closed, Refusal)
    modal = await filled_modal(bot.fake, OWNER)
    assert "no longer active" in json.dumps(modal["blocks"])
    assert modal.get("submit") is None  # nothing to confirm


# --- a closed contract: every loop stops, it stays readable -----------------------------------


async def test_a_closed_contract_stops_its_loops_and_stays_readable(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    bot.clock.set(at("2027-03-12 15:00", "Europe/Berlin"))
    await run_job(bot, "checkins")
    prompt = copy.deepcopy(dm(bot, LEADER)[-1])
    await bot.driver.command("/contract", "close", user=OWNER)
    await bot.fake.wait_for("views.open", count=1)
    await bot.driver.submit_view(
        await filled_modal(bot.fake, OWNER), {"reason": "Role ended"}, user=OWNER
    )
    assert (await contract_of(bot, example_contract)).status == ContractStatus.closed
    await bot.fake.wait_for(
        "chat.postMessage",
        where=lambda c: c.response.get("channel") == bot.fake.dm_id(LEADER),
        count=2,
    )
    assert "Role ended" in text_of(dm(bot, LEADER)[-1])

    bot.clock.set(at("2027-03-19 15:00", "Europe/Berlin"))
    sent = len(dm(bot, LEADER))
    for job in ("checkins", "reminders", "feedback", "digests", "milestones"):
        await JOBS[job].run(JobRun(services=bot.services, client=bot.app.client, force=True))
    assert len(dm(bot, LEADER)) == sent

    start = next(a for a in actions_of(prompt) if a == "checkin_start")
    opened = len(bot.fake.calls_to("views.open"))
    clicked = await bot.driver.block_action(user=LEADER, action_id=start, message=prompt)
    assert clicked.status == 200
    assert "closed" in await modal_says(bot.fake, LEADER, opened=opened + 1)
    assert "no active" in await say(bot, "/feedback", f"<@{LEADER}>", user=PEER)
    opened = len(bot.fake.calls_to("views.open"))
    assert (await bot.driver.command("/contract", "evidence", user=LEADER)).status == 200
    assert "no active contract" in await modal_says(bot.fake, LEADER, opened=opened + 1)
    amend = await say(bot, "/contract", "amend", user=LEADER)
    assert "is closed and no longer changes" in amend, amend

    summary = await say(bot, "/contract", f"summary <@{LEADER}>", user=SPONSOR)
    assert "Closed" in summary and "Role ended" in summary and "Success indicators" in summary
    summary = await say(bot, "/contract", "summary", user=LEADER)
    assert "Closed on" in summary
    history = await say(bot, "/contract", f"history <@{LEADER}>", user=SPONSOR)
    assert f"<@{OWNER}> closed the contract: Role ended" in history, history
    before = len(bot.fake.calls_to("views.publish"))
    await bot.driver.app_home_opened(SPONSOR)
    await bot.fake.wait_for("views.publish", count=before + 1)
    home = json.dumps(bot.fake.home_views[SPONSOR], ensure_ascii=False)
    assert "*Closed*" in home and "Head of Platform" in home


# --- Renew ------------------------------------------------------------------------------------


async def test_renew_carries_the_latest_values_as_baselines_and_sends_for_agreement(
    bot: Bot, example_contract: int
) -> None:
    async with bot.sessions() as session:
        await writing(session)
        i1 = (
            await session.exec(
                select(SuccessIndicator).where(
                    SuccessIndicator.contract_id == example_contract, SuccessIndicator.key == "I1"
                )
            )
        ).one()
        session.add(Measurement(indicator_id=i1.id or 0, value=70, measured_at=bot.clock.now()))
        await session.commit()
    await end_period(bot)
    message = decision(bot, OWNER)
    answered = await click(bot, message, END_RENEW, user=OWNER)
    assert "Renewed" in answered and "Sent for agreement" in answered
    old = await contract_of(bot, example_contract)
    drafts = await rows(bot, Contract, col(Contract.replaces_contract_id) == example_contract)
    assert len(drafts) == 1
    draft = drafts[0]
    # The old contract stays active until the renewal is agreed; the draft replaces it then.
    assert old.status == ContractStatus.active and old.superseded_by is None
    assert draft.status == ContractStatus.draft and draft.leader_id == LEADER
    assert draft.replaces_current and draft.agreement_sent_at is not None
    assert (draft.sponsor_id, draft.owner_id) == (SPONSOR, OWNER)
    assert draft.period_start == date(2027, 12, 18)
    assert draft.period_end - draft.period_start == old.period_end - old.period_start
    indicators = {
        i.key: (i.baseline, i.target)
        for i in await rows(bot, SuccessIndicator, SuccessIndicator.contract_id == draft.id)
    }
    assert indicators["I1"] == (70, 75) and indicators["I2"] == (45, 30)
    milestones = await rows(bot, Milestone, Milestone.contract_id == draft.id)
    assert all(m.due >= draft.period_start and m.status == "pending" for m in milestones)
    shown = dm(bot, OWNER)[-1]
    assert "home_edit_draft" in actions_of(shown)

    answered = await click(bot, message, END_RENEW, user=OWNER)  # the double click
    assert f"was renewed by <@{OWNER}> on <!date^" in answered and "|17 Dec 2027 UTC>" in answered
    assert "awaiting agreement" in answered
    drafts = await rows(bot, Contract, col(Contract.replaces_contract_id) == example_contract)
    assert len(drafts) == 1

    before = len(bot.fake.calls_to("views.open"))
    response = await bot.driver.block_action(
        user=OWNER, action_id="home_edit_draft", message=copy.deepcopy(dm(bot, OWNER)[-1])
    )
    assert response.status == 200
    await bot.fake.wait_for("views.open", count=before + 1)
    assert "renewed" in json.dumps(bot.fake.last_view(OWNER))


async def test_only_the_leader_writes_the_reflection(bot: Bot, example_contract: int) -> None:
    await end_period(bot)
    ask = copy.deepcopy(dm(bot, LEADER)[-1])
    for user in (SPONSOR, PEER):
        answered = await click(bot, ask, WRITE_REFLECTION, user=user)
        assert "Only the contract's leader" in answered
    response = await bot.driver.block_action(user=LEADER, action_id=WRITE_REFLECTION, message=ask)
    assert response.status == 200
    await bot.fake.wait_for("views.open", count=1)
    modal = copy.deepcopy(bot.fake.last_view(LEADER))
    response = await bot.driver.submit_view(modal, {"reflection": "Mine."}, user=SPONSOR)
    assert "Only the contract's leader" in json.dumps(response.json)
    assert (await contract_of(bot, example_contract)).closing_reflection is None
