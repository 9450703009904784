"""Risks with a life through signed requests: noticed-on and owner asked in the check-in,
carried into the next one and resolved there, resolved from the summary, escalated once,
shown until resolved, and the computed resilience indicators recorded without typing."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from bot.risks.blocks import RESOLVE, RESOLVE_MODAL
from bot.risks.model import RISK_ESCALATION, SURFACING
from storage.db import writing
from storage.models import AuditEvent, ContractStatus, Measurement, Risk, SuccessIndicator
from storage.queries import contracts as contract_queries
from tests.bot.checkins.test_support import (
    add_contract,
    at,
    deliveries,
    posts_to,
    run_job,
    set_status,
    virtual_time,
)
from tests.conftest import response_texts
from tests.harness import Bot, filled_modal, running_bot

LEADER, SPONSOR, OWNER, ESCALATION, PEER, OUTSIDER = (
    "U0LEAD001",
    "U0SPON001",
    "U0HRBP001",
    "U0VP00001",
    "U0PEER001",
    "U0OUTSIDE",
)
CLOSING: dict[str, Any] = {"confidence": "4"}


async def open_checkin(bot: Bot) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.command("/checkin", "", user=LEADER)
    calls = await bot.fake.wait_for("views.open", count=before + 1)
    assert calls[-1].response["ok"], calls[-1].response
    return await filled_modal(bot.fake, LEADER)


async def stored(bot: Bot, model: Any) -> list[Any]:
    async with bot.sessions() as session:
        return list((await session.exec(select(model).order_by(col(model.id)))).all())


async def raise_risk(bot: Bot, **values: Any) -> Risk:
    modal = await open_checkin(bot)
    answers = {**CLOSING, "risk1": "The Q3 launch takes two engineers.", **values}
    response = await bot.driver.submit_view(modal, answers, user=LEADER)
    assert response.json == {"response_action": "clear"}, response.json
    return (await stored(bot, Risk))[-1]


def ids(view: dict[str, Any]) -> list[str]:
    return [b["block_id"] for b in view["blocks"] if b["type"] == "input"]


# --- noticed-on and owner -----------------------------------------------------------------


async def test_the_checkin_asks_when_a_risk_was_first_seen_and_who_owns_it(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    modal = await open_checkin(bot)
    blocks = {b["block_id"]: b for b in modal["blocks"] if b["type"] == "input"}
    noticed = blocks["risk1_noticed"]
    assert noticed["label"]["text"] == "When did you first see this?"
    assert noticed["element"]["type"] == "datepicker"
    assert noticed["element"]["initial_date"] == "2027-03-10"  # today by default
    assert blocks["risk1_owner"]["element"] == {
        "type": "users_select",
        "action_id": "risk1_owner",
        "initial_user": LEADER,
    }
    response = await bot.driver.submit_view(
        modal,
        {
            **CLOSING,
            "risk1": "Launch takes two engineers.",
            "risk1_noticed": "2027-03-04",
            "risk1_owner": PEER,
            "risk2": "Budget review slips.",
        },
        user=LEADER,
    )
    assert response.json == {"response_action": "clear"}
    first, second = await stored(bot, Risk)
    assert (first.noticed_on, first.owner_id, first.status) == (date(2027, 3, 4), PEER, "open")
    assert (second.noticed_on, second.owner_id) == (date(2027, 3, 10), LEADER)


async def test_a_noticed_on_date_in_the_future_or_before_the_contract_is_refused(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    modal = await open_checkin(bot)
    for bad, words in (
        ("2027-03-11", "is in the future"),
        ("2026-12-20", "Your contract started on 4 Jan 2027"),
    ):
        response = await bot.driver.submit_view(
            modal, {**CLOSING, "risk1": "Late data.", "risk1_noticed": bad}, user=LEADER
        )
        assert response.json["response_action"] == "errors"
        assert words in response.json["errors"]["risk1_noticed"]
    assert await stored(bot, Risk) == []


async def test_a_crafted_owner_or_date_is_refused(bot: Bot, example_contract: int) -> None:
    virtual_time(bot.services)
    modal = await open_checkin(bot)
    response = await bot.driver.submit_view(
        modal,
        {**CLOSING, "risk1": "Late data.", "risk1_owner": "<script>", "risk1_noticed": "soon"},
        user=LEADER,
    )
    errors = response.json["errors"]
    assert set(errors) == {"risk1_owner", "risk1_noticed"}
    assert await stored(bot, Risk) == []


# --- carried into the next check-in -------------------------------------------------------


async def test_an_open_risk_is_carried_into_the_next_checkin_and_resolved_there_with_a_note(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    risk = await raise_risk(bot, risk1_noticed="2027-03-08")
    bot.clock.set(at("2027-03-17 10:00", "Europe/Berlin"))
    modal = await open_checkin(bot)
    still = f"still:{risk.id}"
    assert still in ids(modal) and f"{still}:note" in ids(modal)
    block = next(b for b in modal["blocks"] if b.get("block_id") == still)
    assert "The Q3 launch takes two engineers." in block["label"]["text"]
    assert block["element"]["initial_option"]["value"] == "open"
    assert "risk1" in ids(modal)  # new risks can still be raised

    response = await bot.driver.submit_view(modal, {**CLOSING, still: "resolved"}, user=LEADER)
    assert response.json["response_action"] == "errors"
    assert "how it was resolved" in response.json["errors"][f"{still}:note"]
    assert (await stored(bot, Risk))[0].status == "open"

    response = await bot.driver.submit_view(
        modal,
        {**CLOSING, still: "resolved", f"{still}:note": "Hired a contractor for Q3."},
        user=LEADER,
    )
    assert response.json == {"response_action": "clear"}
    (saved,) = await stored(bot, Risk)
    assert (saved.status, saved.resolution_note, saved.resolved_by) == (
        "resolved",
        "Hired a contractor for Q3.",
        LEADER,
    )
    assert saved.resolved_at == at("2027-03-17 10:00", "Europe/Berlin")
    audit = [e for e in await stored(bot, AuditEvent) if e.action == "checkin.submitted"][-1]
    assert audit.detail["risk_updates"][str(risk.id)]["to"] == "resolved"

    # Resolved, it is carried no more.
    bot.clock.set(at("2027-03-24 10:00", "Europe/Berlin"))
    assert still not in ids(await open_checkin(bot))


async def test_mitigating_keeps_a_risk_open_with_its_note(bot: Bot, example_contract: int) -> None:
    virtual_time(bot.services)
    risk = await raise_risk(bot)
    bot.clock.set(at("2027-03-17 10:00", "Europe/Berlin"))
    still = f"still:{risk.id}"
    await bot.driver.submit_view(
        await open_checkin(bot),
        {**CLOSING, still: "mitigating", f"{still}:note": "Borrowing one engineer."},
        user=LEADER,
    )
    (saved,) = await stored(bot, Risk)
    assert (saved.status, saved.resolution_note, saved.resolved_at) == (
        "mitigating",
        "Borrowing one engineer.",
        None,
    )
    bot.clock.set(at("2027-03-24 10:00", "Europe/Berlin"))
    modal = await open_checkin(bot)
    block = next(b for b in modal["blocks"] if b.get("block_id") == still)
    assert block["element"]["initial_option"]["value"] == "mitigating"


async def test_a_crafted_still_open_answer_for_another_risk_changes_nothing(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    risk = await raise_risk(bot)
    bot.clock.set(at("2027-03-17 10:00", "Europe/Berlin"))
    modal = await open_checkin(bot)
    # A block id the bot did not write (another contract's risk) is not part of the form.
    for block in bot.fake.views[modal["id"]]["blocks"]:
        if block.get("block_id") == f"still:{risk.id}":
            block["block_id"] = block["element"]["action_id"] = "still:999999"
        elif block.get("block_id") == f"still:{risk.id}:note":
            block["block_id"] = block["element"]["action_id"] = "still:999999:note"
    response = await bot.driver.submit_view(
        modal, {**CLOSING, "still:999999": "resolved", "still:999999:note": "x"}, user=LEADER
    )
    assert response.json == {"response_action": "clear"}
    assert (await stored(bot, Risk))[0].status == "open"


# --- resolving from the summary -----------------------------------------------------------


async def refusals_to(bot: Bot, user: str, count: int = 1) -> list[Any]:
    dm = bot.fake.dm_id(user)
    return await bot.fake.wait_for(
        "chat.postMessage", count=count, where=lambda c: c.response.get("channel") == dm
    )


async def resolve_modal(bot: Bot, user: str, risk_id: int | None) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.block_action(
        user=user, action_id=RESOLVE, value=json.dumps({"risk_id": risk_id})
    )
    await bot.fake.wait_for("views.open", count=before + 1)
    return await filled_modal(bot.fake, user)


async def summary_modal(bot: Bot, user: str) -> dict[str, Any]:
    published = len(bot.fake.calls_to("views.publish"))
    await bot.driver.app_home_opened(user)
    await bot.fake.wait_for("views.publish", count=published + 1)
    home = bot.fake.home_views[user]
    before = len(bot.fake.calls_to("views.open"))
    block = next(
        b["block_id"]
        for b in home["blocks"]
        if any(e.get("action_id") == "home_open_summary" for e in b.get("elements") or [])
    )
    await bot.driver.block_action(
        user=user, action_id="home_open_summary", view=home, block_id=block
    )
    await bot.fake.wait_for("views.open", count=before + 1)
    return await filled_modal(bot.fake, user)


async def test_the_sponsor_resolves_a_risk_from_the_summary_once(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    risk = await raise_risk(bot, risk1_help=["help"])
    summary = await summary_modal(bot, SPONSOR)
    text = json.dumps(summary)
    assert "Open risks" in text and "The Q3 launch takes two engineers." in text
    assert "Resilience" in text

    await bot.driver.block_action(
        user=SPONSOR, action_id=RESOLVE, view=summary, block_id=f"risk_{risk.id}"
    )
    (pushed,) = await bot.fake.wait_for("views.push")
    assert pushed.response["ok"], pushed.response
    modal = bot.fake.last_view(SPONSOR)
    assert modal["callback_id"] == RESOLVE_MODAL

    empty = await bot.driver.submit_view(modal, {"note": "   "}, user=SPONSOR)
    assert empty.json["response_action"] == "errors"
    assert (await stored(bot, Risk))[0].status == "open"

    # The leader opens the same risk's modal meanwhile.
    leaders = await resolve_modal(bot, LEADER, risk.id)
    assert leaders["callback_id"] == RESOLVE_MODAL

    bot.clock.advance(timedelta(days=3))
    done = await bot.driver.submit_view(modal, {"note": "Moved the launch."}, user=SPONSOR)
    assert done.json["response_action"] == "update"
    assert "Resolved on" in json.dumps(done.json["view"])
    (saved,) = await stored(bot, Risk)
    assert (saved.status, saved.resolved_by, saved.resolution_note) == (
        "resolved",
        SPONSOR,
        "Moved the launch.",
    )
    first_resolved = saved.resolved_at

    # The leader's submission a moment later: how it was resolved first, unchanged.
    bot.clock.advance(timedelta(minutes=1))
    again = await bot.driver.submit_view(leaders, {"note": "Something else."}, user=LEADER)
    assert "already resolved" in json.dumps(again.json)
    (saved,) = await stored(bot, Risk)
    assert (saved.resolution_note, saved.resolved_at) == ("Moved the launch.", first_resolved)
    resolved = [e for e in await stored(bot, AuditEvent) if e.action == "risk.resolved"]
    assert len(resolved) == 1

    # Resolved, it leaves the summary's open risks and counts in its resilience.
    text = json.dumps(await summary_modal(bot, LEADER))
    assert "The Q3 launch takes two engineers." not in text
    assert "Resolution: 3 days" in text


async def test_who_may_resolve_is_checked_on_click_and_on_submit(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    risk = await raise_risk(bot)
    value = json.dumps({"risk_id": risk.id})
    # An outsider (and an escalation contact, who reads but does not resolve) gets no modal.
    opened = len(bot.fake.calls_to("views.open"))
    for user, words in (
        (OUTSIDER, "not one you can see"),
        (ESCALATION, "Only the contract's leader, sponsor or owner"),
    ):
        await bot.driver.block_action(user=user, action_id=RESOLVE, value=value)
        (refusal,) = await refusals_to(bot, user)
        assert words in refusal.args["text"]
    assert len(bot.fake.calls_to("views.open")) == opened

    # The owner's modal, replayed by someone else with its private_metadata: refused.
    modal = await resolve_modal(bot, OWNER, risk.id)
    assert modal["callback_id"] == RESOLVE_MODAL
    modal["user"] = OUTSIDER
    bot.fake.views[modal["id"]]["user"] = OUTSIDER
    crafted = await bot.driver.submit_view(modal, {"note": "Not mine."}, user=OUTSIDER)
    assert crafted.json["response_action"] == "errors"
    assert (await stored(bot, Risk))[0].status == "open"

    # Broken values and metadata: out of date, or a broken form; nothing changes.
    await bot.driver.block_action(user=OWNER, action_id=RESOLVE, value='{"risk_id": "1e9"}')
    (stale,) = await refusals_to(bot, OWNER)
    assert "out of date" in stale.args["text"].lower()
    modal = await resolve_modal(bot, OWNER, risk.id)
    bot.fake.views[modal["id"]]["private_metadata"] = '{"risk_id": -1}'
    broken = await bot.driver.submit_view(modal, {"note": "x"}, user=OWNER)
    assert broken.json == {"response_action": "errors", "errors": {"note": "This form is broken."}}
    assert (await stored(bot, Risk))[0].status == "open"


async def test_a_risk_owner_who_reads_the_contract_may_resolve_it(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    risk = await raise_risk(bot, risk1_owner=ESCALATION)
    modal = await resolve_modal(bot, ESCALATION, risk.id)
    done = await bot.driver.submit_view(modal, {"note": "Done."}, user=ESCALATION)
    assert done.json["response_action"] == "update"
    assert (await stored(bot, Risk))[0].resolved_by == ESCALATION


# --- escalation -----------------------------------------------------------------------------


async def test_a_risk_needing_help_escalates_once_after_the_contracts_days(
    bot: Bot, example_contract: int, sqlite_url: str
) -> None:
    virtual_time(bot.services)
    await raise_risk(bot, risk1_help=["help"])
    await raise_risk(bot, risk2="No help needed here.")  # an edit: a second risk, no help
    bot.clock.advance(timedelta(days=13, hours=23))
    await run_job(bot, "risks")
    assert await deliveries(bot.sessions, RISK_ESCALATION) == []

    bot.clock.advance(timedelta(hours=2))
    await run_job(bot, "risks")
    (sent,) = await deliveries(bot.sessions, RISK_ESCALATION)
    assert (sent.recipient_id, sent.status) == (ESCALATION, "sent")
    (dm,) = posts_to(bot.fake, ESCALATION)
    text = json.dumps(dm.args)
    assert "needed help for 14 days" in text and "The Q3 launch takes two engineers." in text
    assert "No help needed here." not in text
    assert "Head of Platform" in text and f"<@{LEADER}>" in text

    await run_job(bot, "risks")
    # A restart: a new process on the same database sends nothing again.
    async with running_bot(bot.fake, sqlite_url) as again:
        again.clock.set(bot.clock.now() + timedelta(days=1))
        await run_job(again, "risks")
    assert len(posts_to(bot.fake, ESCALATION)) == 1
    assert len(await deliveries(bot.sessions, RISK_ESCALATION)) == 1


async def test_a_resolved_risk_does_not_escalate(bot: Bot, example_contract: int) -> None:
    virtual_time(bot.services)
    risk = await raise_risk(bot, risk1_help=["help"])
    async with bot.sessions() as session:
        await writing(session)
        row = await session.get(Risk, risk.id)
        assert row is not None
        row.status = "resolved"
        session.add(row)
        await session.commit()
    bot.clock.advance(timedelta(days=20))
    await run_job(bot, "risks")
    assert posts_to(bot.fake, ESCALATION) == []


# --- shown until resolved -------------------------------------------------------------------


async def test_open_risks_stay_in_every_digest_until_resolved(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    risk = await raise_risk(bot)

    async def digest_text() -> str:
        await run_job(bot, "digests", force=True)
        sent = [c for c in posts_to(bot.fake, SPONSOR) if "digest" in c.args["text"].lower()]
        return json.dumps(sent[-1].args) if sent else ""

    bot.clock.set(at("2027-04-05 09:30", "Europe/Berlin"))
    assert "The Q3 launch takes two engineers." in await digest_text()
    bot.clock.set(at("2027-05-03 09:30", "Europe/Berlin"))
    assert "The Q3 launch takes two engineers." in await digest_text()  # a month later: still
    async with bot.sessions() as session:
        await writing(session)
        row = await session.get(Risk, risk.id)
        assert row is not None
        row.status, row.resolved_at = "resolved", bot.clock.now()
        session.add(row)
        await session.commit()
    bot.clock.set(at("2027-06-07 09:30", "Europe/Berlin"))
    assert "The Q3 launch takes two engineers." not in await digest_text()


async def test_the_summary_command_lists_open_risks_with_resolve(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    await raise_risk(bot, risk1_noticed="2027-03-07")
    await bot.driver.command("/contract", f"summary <@{LEADER}|dana>", user=SPONSOR)
    await bot.fake.wait_for("response_url")
    said = "\n".join(response_texts(bot.fake))
    assert "Open risks" in said and "noticed 7 Mar 2027" in said
    assert "Surfacing: 3 days" in said


# --- computed indicators --------------------------------------------------------------------

# An indicator the bot computes from the contract's risks (what `add_contract` takes).
SURFACING_INDICATOR: dict[str, Any] = {
    "key": "I9",
    "name": "Risk surfacing",
    "unit": "days",
    "baseline": 10,
    "target": 2,
    "source": SURFACING,
    "cadence": "weekly",
}


async def test_a_computed_indicator_is_recorded_each_period_without_being_asked(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    async with bot.sessions() as session:
        await writing(session)
        session.add(
            SuccessIndicator(
                contract_id=example_contract,
                direction="decrease",
                position=9,
                **SURFACING_INDICATOR,
            )
        )
        await session.commit()
    modal = await open_checkin(bot)
    assert "ind:I9" not in ids(modal)  # the leader is not asked for it
    await raise_risk(bot, risk1_noticed="2027-03-06")

    async def computed() -> list[Measurement]:
        return [m for m in await stored(bot, Measurement) if m.computed_period is not None]

    # Recorded after the check-in is acknowledged: wait for it (on its own, not by the job).
    for _ in range(100):
        if await computed():
            break
        await asyncio.sleep(0.05)
    (first,) = await computed()
    assert (first.value, first.computed_period, first.source, first.recorded_by) == (
        4.0,
        "2027-W10",
        SURFACING,
        "north-star",
    )
    await run_job(bot, "risks")
    await raise_risk(bot, risk1_noticed="2027-03-06")  # an edit: still one this period
    assert len(await computed()) == 1

    bot.clock.set(at("2027-03-17 10:00", "Europe/Berlin"))
    await run_job(bot, "risks")
    assert [m.computed_period for m in await computed()] == ["2027-W10", "2027-W11"]


async def test_a_whole_organisation_gets_its_computed_values_a_page_of_contracts_at_a_time(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hourly job reads the active contracts two at a time here: each active contract's
    computed indicator gets this period's value once, from its own risks; the closed
    contract's gets none, and a second run records nothing more."""
    virtual_time(bot.services)
    monkeypatch.setattr(contract_queries, "ACTIVE_PAGE", 2)
    contracts = []
    for days, leader in enumerate((LEADER, PEER, "U0PEER003", "U0PEER004", "U0PEER005"), 1):
        cid = await add_contract(bot.sessions, leader=leader, indicators=[SURFACING_INDICATOR])
        async with bot.sessions() as session:
            await writing(session)
            session.add(
                Risk(
                    contract_id=cid,
                    text="A risk",
                    created_at=at("2027-03-09 10:00"),
                    noticed_on=date(2027, 3, 9) - timedelta(days=days),
                )
            )
            await session.commit()
        contracts.append(cid)
    await set_status(bot.sessions, contracts[2], ContractStatus.closed)

    async def recorded() -> list[tuple[int, float, str | None]]:
        async with bot.sessions() as session:
            rows = await session.exec(
                select(SuccessIndicator.contract_id, Measurement.value, Measurement.computed_period)
                .join(SuccessIndicator, col(SuccessIndicator.id) == col(Measurement.indicator_id))
                .order_by(col(SuccessIndicator.contract_id))
            )
            return list(rows.all())

    await run_job(bot, "risks")
    expected = [(cid, float(days), "2027-W10") for days, cid in enumerate(contracts, 1)]
    del expected[2]
    assert await recorded() == expected
    await run_job(bot, "risks")
    assert await recorded() == expected


async def test_notes_longer_than_their_limit_are_field_errors(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    risk = await raise_risk(bot)
    modal = await resolve_modal(bot, LEADER, risk.id)
    bot.fake.views[modal["id"]]["blocks"][-1]["element"].pop("max_length", None)
    long = await bot.driver.submit_view(modal, {"note": "x" * 1001}, user=LEADER)
    assert long.json == {
        "response_action": "errors",
        "errors": {"note": "Keep the note to 1000 characters."},
    }
    bot.clock.set(at("2027-03-17 10:00", "Europe/Berlin"))
    checkin = await open_checkin(bot)
    note = f"still:{risk.id}:note"
    for block in bot.fake.views[checkin["id"]]["blocks"]:
        if block.get("block_id") == note:
            block["element"].pop("max_length", None)
    response = await bot.driver.submit_view(
        checkin, {**CLOSING, f"still:{risk.id}": "resolved", note: "y" * 1001}, user=LEADER
    )
    assert response.json["errors"] == {note: "Keep the note to 1000 characters."}
    assert (await stored(bot, Risk))[0].status == "open"


async def test_a_risk_the_leader_resolved_can_be_shared_as_a_lesson(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    risk = await raise_risk(bot)
    modal = await resolve_modal(bot, LEADER, risk.id)
    done = await bot.driver.submit_view(modal, {"note": "Split the launch in two."}, user=LEADER)
    assert done.json["response_action"] == "update"
    buttons = [
        e
        for b in done.json["view"]["blocks"]
        for e in b.get("elements") or []
        if e.get("action_id") == "lesson_share"
    ]
    assert [json.loads(b["value"]) for b in buttons] == [{"kind": "risk", "source_id": risk.id}]
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.block_action(user=LEADER, action_id="lesson_share", value=buttons[0]["value"])
    await bot.fake.wait_for("views.open", count=before + 1)
    assert bot.fake.last_view(LEADER)["callback_id"] == "lesson_share_modal"


async def test_a_risk_the_sponsor_resolved_offers_no_lesson_to_the_sponsor(
    bot: Bot, example_contract: int
) -> None:
    virtual_time(bot.services)
    risk = await raise_risk(bot)
    modal = await resolve_modal(bot, SPONSOR, risk.id)
    done = await bot.driver.submit_view(modal, {"note": "Moved the launch."}, user=SPONSOR)
    assert "lesson_share" not in json.dumps(done.json)
