"""Renewal and agreement as one lifecycle, through signed requests and the fake Slack: *Renew*
makes the renewal draft and sends it for agreement; the old contract stays active (and quiet,
its period over) until the leader, sponsor and owner agree, then the renewal replaces it and
the old one closes, readable by version and in the history. A renewal decides the end of the
period; discarding it opens the decision again. App Home shows where agreements stand, and
`northstar privacy` exports and erases a person's agreements and change requests."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from bot.core.permissions import Refusal
from bot.jobs import JOBS
from bot.privacy.service import ERASED, ERASED_TEXT, erase_person, export_person
from bot.renewal.blocks import END_CLOSE, END_RENEW
from bot.scheduler import JobRun
from storage.db import writing
from storage.models import (
    Agreement,
    AuditEvent,
    Contract,
    ContractStatus,
    Delivery,
    Milestone,
    MilestoneStatus,
)
from tests.bot.checkins.test_support import at, run_job
from tests.conftest import Bot
from tests.handlers.test_agreement import agreed, request_to, requests_in
from tests.handlers.test_closing import (
    ENDED,
    LEADER,
    OWNER,
    PEER,
    SPONSOR,
    actions_of,
    click,
    contract_of,
    decision,
    dm,
    end_period,
    rows,
    say,
    text_of,
)
from tests.harness import filled_modal

TEAM = "T0TEST001"
KEY = b"k" * 32


def end_message(bot: Bot, user: str) -> dict[str, Any]:
    """The end-of-period message in `user`'s DM, as it now stands (updated in place)."""
    found = [
        m
        for m in dm(bot, user)
        if any(
            b.get("block_id") in ("contract_end", "renewal_draft") for b in m.get("blocks") or []
        )
        or "Contract renewed" in text_of(m)
        or "everyone agreed to the new one" in text_of(m)
    ]
    assert found, dm(bot, user)
    return found[-1]


async def renewal_of(bot: Bot, contract_id: int) -> Contract:
    (draft,) = await rows(bot, Contract, col(Contract.replaces_contract_id) == contract_id)
    return draft


async def agree(bot: Bot, user: str) -> None:
    """`user` clicks Agree in their newest agreement DM, and it is stored."""
    message = await request_to(bot, user)
    updates = len(bot.fake.calls_to("chat.update"))
    response = await bot.driver.block_action(
        user=user, action_id="contract_agree", message=message, block_id="agreement"
    )
    assert response.status == 200
    await agreed(bot, message, user)
    await bot.fake.wait_for("chat.update", count=updates + 1)


async def renew(bot: Bot, contract_id: int, *, by: str = OWNER) -> tuple[str, Contract]:
    await end_period(bot)
    answered = await click(bot, decision(bot, by), END_RENEW, user=by)
    return answered, await renewal_of(bot, contract_id)


async def home_of(bot: Bot, user: str) -> str:
    def theirs(call: Any) -> bool:
        return call.args.get("user_id") == user and bool(call.response.get("ok"))

    before = len([c for c in bot.fake.calls_to("views.publish") if theirs(c)])
    await bot.driver.app_home_opened(user)
    await bot.fake.wait_for("views.publish", count=before + 1, where=theirs)
    return json.dumps(bot.fake.home_views[user], ensure_ascii=False)


# --- renew, agree, supersede ------------------------------------------------------------------


async def test_renew_sends_for_agreement_and_the_last_agreement_supersedes_the_old(
    bot: Bot, example_contract: int
) -> None:
    answered, draft = await renew(bot, example_contract)
    assert "Renewed" in answered and "Sent for agreement" in answered
    assert f"<@{LEADER}>" in answered and f"<@{SPONSOR}>" in answered
    assert draft.replaces_current and draft.status == ContractStatus.draft
    # The owner renewed it: that is her agreement. The leader and sponsor get the terms.
    given = await rows(bot, Agreement, Agreement.contract_id == draft.id)
    assert [(a.user_id, a.terms_version) for a in given] == [(OWNER, 1)]
    to_leader = await request_to(bot, LEADER)
    assert "Replaces the current contract" in text_of(to_leader)
    assert requests_in(bot, OWNER) == []

    # Until everyone agreed the old contract stays active, and says its renewal is waiting.
    old = await contract_of(bot, example_contract)
    assert old.status == ContractStatus.active and old.superseded_by is None
    summary = await say(bot, "/contract", f"summary <@{LEADER}|dana>", user=LEADER)
    assert "Renewal awaiting agreement" in summary and f"waiting for <@{LEADER}>" in summary

    await agree(bot, LEADER)
    assert (await contract_of(bot, example_contract)).status == ContractStatus.active
    await agree(bot, SPONSOR)

    old, new = await contract_of(bot, example_contract), await contract_of(bot, draft.id or 0)
    assert (old.status, new.status) == (ContractStatus.closed, ContractStatus.active)
    assert old.superseded_by == new.id and new.replaces_contract_id == old.id
    assert new.version == old.version + 1
    # The sponsor's end-of-period message says how it ended, in place.
    await bot.fake.wait_for(
        "chat.update", count=2, where=lambda c: "everyone agreed to the new one" in str(c.args)
    )
    ended = text_of(end_message(bot, SPONSOR))
    assert "was renewed: everyone agreed" in ended and "Closed on" in ended
    events = [e.action for e in await rows(bot, AuditEvent, AuditEvent.contract_id == old.id)]
    assert "contract.renewed" in events and events[-1] == "contract.closed"

    # The old contract stays readable: by its version number, and in the line's history.
    said = await say(bot, "/contract", f"summary <@{LEADER}|dana> v{old.version}", user=SPONSOR)
    assert f"Version {old.version}" in said and "Head of Platform: FY2027" in said
    said = await say(bot, "/contract", f"summary <@{LEADER}|dana>", user=LEADER)
    assert "(renewed 18 Dec 2027)" in said and "Renewal awaiting" not in said
    history = await say(bot, "/contract", f"history <@{LEADER}|dana>", user=OWNER)
    assert "renewed the contract" in history and "closed the contract" in history
    assert f"*v{old.version}*" in history and f"*v{new.version}*" in history


async def test_renew_of_an_incomplete_contract_tells_what_the_draft_needs(
    bot: Bot, example_contract: int
) -> None:
    async with bot.sessions() as session:  # every milestone met: none is carried over
        await writing(session)
        for m in (
            await session.exec(select(Milestone).where(Milestone.contract_id == example_contract))
        ).all():
            m.status = MilestoneStatus.met
            session.add(m)
        await session.commit()
    answered, draft = await renew(bot, example_contract)
    assert "still needs a milestone" in answered and "Send for agreement" in answered
    assert draft.agreement_sent_at is None
    assert await rows(bot, Agreement, Agreement.contract_id == draft.id) == []
    assert requests_in(bot, LEADER) == []
    assert "home_edit_draft" in actions_of(end_message(bot, OWNER))
    # The sponsor's message says a renewal is being prepared, without buttons.
    await bot.fake.wait_for(
        "chat.update", where=lambda c: "Contract renewed" in json.dumps(c.args.get("blocks"))
    )
    assert "still to be completed" in text_of(end_message(bot, SPONSOR))
    assert END_CLOSE not in actions_of(end_message(bot, SPONSOR))


async def test_a_renewal_agreed_after_the_owner_closed_the_old_contract_carries_the_line_on(
    bot: Bot, example_contract: int
) -> None:
    _, draft = await renew(bot, example_contract, by=SPONSOR)
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.command("/contract", f"close <@{LEADER}|dana>", user=OWNER)
    await bot.fake.wait_for("views.open", count=before + 1)
    await bot.driver.submit_view(await filled_modal(bot.fake, OWNER), {}, user=OWNER)
    old = await contract_of(bot, example_contract)
    assert old.status == ContractStatus.closed and old.superseded_by is None
    await agree(bot, LEADER)
    await agree(bot, OWNER)
    new = await contract_of(bot, draft.id or 0)
    assert new.status == ContractStatus.active and new.version == old.version + 1
    assert new.replaces_contract_id == old.id


# --- the end-of-period decision ---------------------------------------------------------------


async def test_a_renewal_decides_the_end_of_the_period_for_both_deciders(
    bot: Bot, example_contract: int
) -> None:
    await end_period(bot)
    sponsors = decision(bot, SPONSOR)  # the button as it was before the owner renewed
    await click(bot, decision(bot, OWNER), END_RENEW, user=OWNER)
    draft = await renewal_of(bot, example_contract)
    # The sponsor's message now says who renewed it, in place.
    await bot.fake.wait_for(
        "chat.update", where=lambda c: "Contract renewed" in json.dumps(c.args.get("blocks"))
    )
    assert f"was renewed by <@{OWNER}>" in text_of(end_message(bot, SPONSOR))

    for action in (END_RENEW, END_CLOSE):
        answered = await click(bot, sponsors, action, user=SPONSOR)
        assert f"was renewed by <@{OWNER}>" in answered and "awaiting agreement" in answered
    answered = await click(bot, sponsors, END_RENEW, user=PEER)
    assert "Only the contract's owner or sponsor" in answered
    assert [c.id for c in await rows(bot, Contract)] == [example_contract, draft.id]
    assert (await contract_of(bot, example_contract)).status == ContractStatus.active
    renewed = await rows(
        bot,
        AuditEvent,
        AuditEvent.contract_id == example_contract,
        AuditEvent.action == "contract.renewed",
    )
    assert len(renewed) == 1 and renewed[0].actor_id == OWNER

    # Decided: no reminder a fortnight later, nor ever.
    for days in (14, 15, 40):
        bot.clock.set(ENDED + timedelta(days=days))
        await run_job(bot, "contract_ends")
    reminders = await rows(bot, Delivery, Delivery.kind == "contract_end_reminder")
    assert reminders == []


async def test_a_discarded_renewal_opens_the_decision_again(
    bot: Bot, example_contract: int
) -> None:
    await end_period(bot)
    owners = decision(bot, OWNER)
    await click(bot, owners, END_RENEW, user=OWNER)
    draft = await renewal_of(bot, example_contract)

    said = await say(bot, "/contract", f"discard <@{LEADER}|dana>", user=SPONSOR)
    assert "Discarded the draft" in said and "close or renew it again" in said
    assert await rows(bot, Contract, Contract.id == draft.id) == []
    # Both messages show Close / Renew again, in place.
    await bot.fake.wait_for(
        "chat.update",
        count=2,
        where=lambda c: END_CLOSE in json.dumps(c.args.get("blocks")),
    )
    for user in (OWNER, SPONSOR):
        assert actions_of(end_message(bot, user)) == [END_CLOSE, END_RENEW]

    # The reminder still goes at most once, now that it is undecided again.
    for days in (14, 15, 40):
        bot.clock.set(ENDED + timedelta(days=days))
        await run_job(bot, "contract_ends")
    reminders = await rows(bot, Delivery, Delivery.kind == "contract_end_reminder")
    assert sorted(r.recipient_id for r in reminders) == sorted([OWNER, SPONSOR])

    answered = await click(bot, decision(bot, SPONSOR), END_CLOSE, user=SPONSOR)
    assert "is closed" in answered
    assert (await contract_of(bot, example_contract)).status == ContractStatus.closed


async def test_the_old_contract_asks_nothing_after_its_period_while_the_renewal_waits(
    bot: Bot, example_contract: int
) -> None:
    await renew(bot, example_contract)
    await request_to(bot, LEADER)
    await request_to(bot, SPONSOR)
    posted = len(bot.fake.calls_to("chat.postMessage"))
    # The old contract's Friday check-in, its reminder, a feedback month, a milestone hour.
    for when in (
        at("2027-12-24 15:05", "Europe/Berlin"),
        at("2027-12-27 10:00", "Europe/Berlin"),
        at("2028-01-03 10:00", "Europe/Berlin"),
        at("2028-01-21 16:00", "Europe/Berlin"),
    ):
        bot.clock.set(when)
        for job in ("checkins", "reminders", "feedback", "milestones", "deliveries"):
            await JOBS[job].run(JobRun(services=bot.services, client=bot.app.client))
    assert len(bot.fake.calls_to("chat.postMessage")) == posted
    kinds = {d.kind for d in await rows(bot, Delivery, Delivery.contract_id == example_contract)}
    assert kinds <= {"contract_end", "contract_end_reflection"}, kinds


# --- App Home ---------------------------------------------------------------------------------


async def test_app_home_shows_where_the_agreement_stands(bot: Bot, example_contract: int) -> None:
    await renew(bot, example_contract)
    await request_to(bot, LEADER)
    home = await home_of(bot, LEADER)
    assert "Renewal awaiting agreement" in home and f"waiting for <@{LEADER}>" in home
    assert "Sent for agreement" in home and f"agreed by <@{OWNER}> (owner)" in home
    await agree(bot, LEADER)
    home = await home_of(bot, SPONSOR)
    assert f"agreed by <@{OWNER}> (owner), <@{LEADER}> (leader)" in home
    assert f"waiting for <@{SPONSOR}> (sponsor)" in home
    # A reader who is no party sees the contract, not the draft's agreement.
    home = await home_of(bot, "U0VP00001")
    assert "Sent for agreement" not in home


# --- privacy ------------------------------------------------------------------------------------


async def ask_change(bot: Bot, message: dict[str, Any], comment: str, *, user: str) -> None:
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.block_action(
        user=user,
        action_id="contract_ask_change",
        message=copy.deepcopy(message),
        block_id="agreement",
    )
    await bot.fake.wait_for("views.open", count=before + 1)
    modal = bot.fake.last_view(user)
    assert modal["callback_id"] == "contract_ask_change"
    response = await bot.driver.submit_view(modal, {"comment": comment}, user=user)
    assert response.status == 200 and not (response.json or {}).get("errors")


async def test_privacy_export_and_erase_cover_agreements_and_change_requests(
    bot: Bot, example_contract: int
) -> None:
    await renew(bot, example_contract)  # the owner (Hana) agrees by renewing
    message = await request_to(bot, LEADER)
    await ask_change(bot, message, "Hana, I'd rather aim for 80.", user=LEADER)
    await ask_change(bot, message, "Mine: keep the dates.", user=OWNER)

    async with bot.sessions() as session:
        exported = await export_person(
            session=session, user=OWNER, team=TEAM, key=KEY, now=bot.clock.now()
        )
    given = [a for a in exported["agreements_given"] if a["via"] == "slack"]
    assert [(a["terms_version"], a["via"]) for a in given] == [(1, "slack")]
    assert "(renewed 18 Dec 2027)" in given[0]["contract"]
    written = exported["change_requests_written"]
    assert [c["comment"] for c in written] == ["Mine: keep the dates."]

    async with bot.sessions() as session:
        await writing(session)
        erased = await erase_person(
            session=session, user=OWNER, team=TEAM, key=KEY, now=bot.clock.now()
        )
    assert not isinstance(erased, Refusal)
    assert erased.anonymised["agreement"] == 2  # the imported contract's, and the renewal's
    assert OWNER not in {a.user_id for a in await rows(bot, Agreement)}
    assert [a.user_id for a in await rows(bot, Agreement, Agreement.contract_id > 1)] == [ERASED]
    changes = await rows(bot, AuditEvent, AuditEvent.action == "contract.change_requested")
    comments = {(e.actor_id, e.detail["comment"]) for e in changes}
    assert comments == {(None, ERASED_TEXT), (LEADER, "Hana, I'd rather aim for 80.")}
    async with bot.sessions() as session:
        again = await export_person(
            session=session, user=OWNER, team=TEAM, key=KEY, now=bot.clock.now()
        )
    assert again["agreements_given"] == [] and again["change_requests_written"] == []
