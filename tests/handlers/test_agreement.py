"""Agreement before anything runs, through signed requests and the fake Slack: a complete draft
is sent for agreement, its leader, sponsor and owner each agree to the current terms version
in a DM, a change asks them again, and a new contract waits for, or replaces, the leader's
active one."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

from sqlmodel import col, select

from bot.contracts.closing import close_contract
from bot.contracts.io import import_text
from bot.contracts.jobs import agreements_job
from bot.scheduler import JobRun
from storage.db import writing
from storage.models import (
    Agreement,
    AuditEvent,
    Contract,
    ContractVersion,
    Delivery,
)
from tests.conftest import EXAMPLE_CONTRACT, Bot, import_example, response_texts
from tests.handlers.test_feedback_support import not_yet_recorded, settled

# Raj leads the new draft, Sam sponsors it and Hana drafts it (so she owns it).
LEADER, SPONSOR, OWNER, OUTSIDER = "U0PEER002", "U0SPON001", "U0HRBP001", "U0PEER003"
DANA = "U0LEAD001"  # the example contract's leader; Sam sponsors it and Hana owns it

FIELDS = {
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
            "due": "2027-06-01",
            "demonstration": "Closes a renewal without discounting.",
        },
    ),
    (
        "indicator",
        {
            "name": "Forecast accuracy",
            "baseline": "60",
            "target": "85",
            "direction": "increase",
            "cadence": "monthly",
        },
    ),
    (
        "milestone",
        {"title": "Accuracy at 70", "due": "2027-06-30", "indicator": "I1", "threshold": "70"},
    ),
]


# --- helpers --------------------------------------------------------------------------------


async def add(bot: Bot, user: str, kind: str, values: dict[str, Any]) -> None:
    editor = bot.fake.last_view(user)
    before = len(bot.fake.calls_to("views.push"))
    await bot.driver.block_action(
        user=user, action_id=f"contract_add_item:{kind}", view=editor, block_id="add_items"
    )
    await bot.fake.wait_for("views.push", count=before + 1)

    def editor_updates() -> int:
        return len(
            [c for c in bot.fake.calls_to("views.update") if c.args.get("view_id") == editor["id"]]
        )

    updated = editor_updates()
    response = await bot.driver.submit_view(bot.fake.last_view(user), values, user=user)
    assert response.status == 200 and not (response.json or {}).get("errors"), response.json
    # the editor below shows the new item before the user goes on, as it would on screen
    await bot.fake.wait_for(
        "views.update", count=updated + 1, where=lambda c: c.args.get("view_id") == editor["id"]
    )


async def complete_draft(bot: Bot, *, by: str = OWNER, **changes: Any) -> int:
    """A draft made in Slack by `by`, with an item of each kind it needs; its id."""
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.command("/contract", "new", user=by)
    await bot.fake.wait_for("views.open", count=before + 1)
    response = await bot.driver.submit_view(bot.fake.last_view(by), {**FIELDS, **changes}, user=by)
    assert response.json["response_action"] == "update", response.json
    for kind, values in ITEMS:
        await add(bot, by, kind, values)
    async with bot.sessions() as session:
        contract = (
            await session.exec(
                select(Contract).where(Contract.title == {**FIELDS, **changes}["title"])
            )
        ).one()
    return contract.id or 0


async def send(bot: Bot, *, by: str = OWNER, replaces: bool = False) -> Any:
    """Click the editor's Send for agreement and submit the pushed modal."""
    editor = bot.fake.last_view(by)
    before = len(bot.fake.calls_to("views.push"))
    await bot.driver.block_action(
        user=by, action_id="contract_send", view=editor, block_id="activate"
    )
    await bot.fake.wait_for("views.push", count=before + 1)
    modal = bot.fake.last_view(by)
    assert modal["callback_id"] == "contract_send"
    values = {"replaces": ["yes"]} if replaces else {}
    return await bot.driver.submit_view(modal, values, user=by)


def dm(bot: Bot, user: str) -> list[dict[str, Any]]:
    return bot.fake.messages.get(bot.fake.dm_id(user), [])


def requests_in(bot: Bot, user: str) -> list[dict[str, Any]]:
    return [m for m in dm(bot, user) if "For your agreement" in str(m.get("blocks"))]


async def request_to(bot: Bot, user: str, count: int = 1) -> dict[str, Any]:
    """The newest agreement request in `user`'s DM, once `count` have arrived."""
    channel = bot.fake.dm_id(user)
    await bot.fake.wait_for(
        "chat.postMessage",
        count=count,
        where=lambda c: (
            c.response.get("channel") == channel
            and "For your agreement" in str(c.args.get("blocks"))
        ),
    )
    return copy.deepcopy(requests_in(bot, user)[-1])


async def click(
    bot: Bot, message: dict[str, Any], action: str, *, user: str, told: bool = False
) -> str:
    """Click Agree (`agree`) or Ask for a change (`ask_change`); what the clicker was told
    (`told`: wait for it)."""
    before = len(bot.fake.calls_to("response_url"))
    updates = len(bot.fake.calls_to("chat.update"))
    response = await bot.driver.block_action(
        user=user, action_id=f"contract_{action}", message=message, block_id="agreement"
    )
    assert response.status == 200
    if told:
        await bot.fake.wait_for("response_url", count=before + 1)
    elif action == "agree":  # the agreement is recorded, and the DMs updated after it
        await agreed(bot, message, user)
        await bot.fake.wait_for("chat.update", count=updates + 1)
    said = response_texts(bot.fake)[before:]
    return "\n".join(said)


async def agreed(bot: Bot, message: dict[str, Any], user: str) -> None:
    """Wait until `user`'s agreement to the draft of `message` is stored."""
    ref = next(
        json.loads(element["value"])
        for block in message["blocks"]
        for element in block.get("elements") or []
        if element.get("action_id") == "contract_agree"
    )
    for _ in range(200):
        async with bot.sessions() as session:
            found = await session.exec(
                select(Agreement).where(
                    Agreement.contract_id == ref["contract_id"],
                    Agreement.terms_version == ref["version"],
                    Agreement.user_id == user,
                )
            )
            if found.first() is not None:
                return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{user}'s agreement was not recorded")


async def ask(bot: Bot, text: str, *, user: str) -> str:
    before = len(bot.fake.calls_to("response_url"))
    await bot.driver.command("/contract", text, user=user)
    await bot.fake.wait_for("response_url", count=before + 1)
    return "\n".join(response_texts(bot.fake)[before:])


async def contract(bot: Bot, contract_id: int) -> Contract:
    async with bot.sessions() as session:
        found = await session.get(Contract, contract_id)
    assert found is not None
    return found


async def agreements(bot: Bot, contract_id: int) -> list[tuple[int, str, str]]:
    async with bot.sessions() as session:
        rows = await session.exec(
            select(Agreement)
            .where(Agreement.contract_id == contract_id)
            .order_by(col(Agreement.id))
        )
        return [(a.terms_version, a.user_id, a.via) for a in rows.all()]


async def actions(bot: Bot, contract_id: int) -> list[str]:
    async with bot.sessions() as session:
        rows = await session.exec(
            select(AuditEvent)
            .where(AuditEvent.contract_id == contract_id)
            .order_by(col(AuditEvent.id))
        )
        return [e.action for e in rows.all()]


async def run_agreements(bot: Bot) -> object:
    return await agreements_job(JobRun(services=bot.services, client=bot.app.client))


# --- sending and agreeing -------------------------------------------------------------------


async def test_each_party_agrees_and_the_last_agreement_activates(bot: Bot) -> None:
    contract_id = await complete_draft(bot)
    response = await send(bot)
    assert response.json["response_action"] == "update"
    sent = str(response.json["view"]["blocks"])
    assert "Sent for agreement" in sent and f"<@{LEADER}>" in sent

    # Hana drafted and sent it: that is her agreement. Raj and Sam each get the terms.
    assert await agreements(bot, contract_id) == [(1, OWNER, "slack")]
    to_leader = await request_to(bot, LEADER)
    to_sponsor = await request_to(bot, SPONSOR)
    assert requests_in(bot, OWNER) == []
    terms = str(to_leader["blocks"])
    for text in ("Forecast within 5%", "Negotiation course", "Forecast accuracy", "Accuracy at 70"):
        assert text in terms
    assert "you are asked as leader" in terms and "terms version 1" in terms

    said = await click(bot, to_leader, "agree", user=LEADER)
    assert said == ""
    assert (await contract(bot, contract_id)).status == "draft"
    assert await agreements(bot, contract_id) == [(1, OWNER, "slack"), (1, LEADER, "slack")]
    # Every DM now says who agreed and who is awaited.
    await bot.fake.wait_for(
        "chat.update", where=lambda u: f"waiting for <@{SPONSOR}>" in str(u.args)
    )

    await click(bot, to_sponsor, "agree", user=SPONSOR)
    activated = await contract(bot, contract_id)
    assert activated.status == "active"
    async with bot.sessions() as session:
        (version,) = (await session.exec(select(ContractVersion))).all()
    assert version.version == 1 and "agreed (terms version 1)" in version.reason
    assert (await actions(bot, contract_id))[-2:] == ["contract.agreed", "contract.activated"]

    history = await ask(bot, f"history <@{LEADER}|raj>", user=SPONSOR)
    assert "agreed to terms version 1" in history
    assert f"<@{OWNER}> sent terms version 1 for agreement" in history
    assert "agreed (terms version 1)" in history


async def test_the_leader_drafting_their_own_contract_agrees_by_sending(bot: Bot) -> None:
    contract_id = await complete_draft(bot, by=LEADER)
    await send(bot, by=LEADER)
    assert await agreements(bot, contract_id) == [(1, LEADER, "slack")]
    to_sponsor = await request_to(bot, SPONSOR)
    assert requests_in(bot, LEADER) == []
    await click(bot, to_sponsor, "agree", user=SPONSOR)
    assert (await contract(bot, contract_id)).status == "active"


async def test_contract_activate_sends_for_agreement_and_explains(bot: Bot) -> None:
    await complete_draft(bot, by=LEADER)
    before = len(bot.fake.calls_to("views.open"))
    said = await ask(bot, "activate", user=LEADER)
    assert "sends it for agreement" in said
    await bot.fake.wait_for("views.open", count=before + 1)
    assert bot.fake.last_view(LEADER)["callback_id"] == "contract_send"


async def test_an_incomplete_draft_cannot_be_sent(bot: Bot) -> None:
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.command("/contract", "new", user=LEADER)
    await bot.fake.wait_for("views.open", count=before + 1)
    await bot.driver.submit_view(bot.fake.last_view(LEADER), FIELDS, user=LEADER)
    said = await ask(bot, "send", user=LEADER)
    assert "still needs an expectation" in said
    editor = bot.fake.last_view(LEADER)
    assert "contract_send" not in str(editor["blocks"])
    assert "Before it can be sent for agreement" in str(editor["blocks"])


# --- asking for a change --------------------------------------------------------------------


async def test_asking_for_a_change_reaches_the_drafter_and_the_draft_stays(bot: Bot) -> None:
    contract_id = await complete_draft(bot)
    await send(bot)
    to_sponsor = await request_to(bot, SPONSOR)
    before = len(bot.fake.calls_to("views.open"))
    await click(bot, to_sponsor, "ask_change", user=SPONSOR)
    await bot.fake.wait_for("views.open", count=before + 1)
    modal = bot.fake.last_view(SPONSOR)
    assert modal["callback_id"] == "contract_ask_change"

    empty = await bot.driver.submit_view(modal, {"comment": "   "}, user=SPONSOR)
    assert empty.json["response_action"] == "errors" and "comment" in empty.json["errors"]
    long = await bot.driver.submit_view(modal, {"comment": "x" * 2001}, user=SPONSOR)
    assert long.json["response_action"] == "errors"

    comment = "Make the target 80 <@U0LEAD001> *please*: 85 is a stretch."
    response = await bot.driver.submit_view(modal, {"comment": comment}, user=SPONSOR)
    assert response.status == 200
    await bot.fake.wait_for(
        "chat.postMessage", count=2, where=lambda c: "asks for a change" in str(c.args)
    )
    told = [m for m in dm(bot, OWNER) if "asks for a change" in m["text"]]
    assert len(told) == 1
    shown = str(told[0]["blocks"])
    assert "Make the target 80" in shown and "&lt;@U0LEAD001&gt;" in shown  # escaped
    assert any("asks for a change" in m["text"] for m in dm(bot, LEADER))
    assert not any("asks for a change" in m["text"] for m in dm(bot, SPONSOR))
    assert (await contract(bot, contract_id)).status == "draft"
    assert "contract.change_requested" in await actions(bot, contract_id)


async def test_an_outsider_cannot_ask_for_a_change(bot: Bot) -> None:
    contract_id = await complete_draft(bot)
    await send(bot)
    to_sponsor = await request_to(bot, SPONSOR)
    said = await click(bot, to_sponsor, "ask_change", user=OUTSIDER, told=True)
    assert "Only the leader, sponsor and owner" in said
    # The sponsor's modal, its submission forged by someone else.
    before = len(bot.fake.calls_to("views.open"))
    await click(bot, to_sponsor, "ask_change", user=SPONSOR)
    await bot.fake.wait_for("views.open", count=before + 1)
    forged = bot.fake.last_view(SPONSOR)
    response = await bot.driver.submit_view(forged, {"comment": "Let me in"}, user=OUTSIDER)
    assert response.json["response_action"] == "errors"
    assert "contract.change_requested" not in await actions(bot, contract_id)


# --- changes after agreement ----------------------------------------------------------------


async def test_a_change_after_agreement_asks_everyone_again(bot: Bot) -> None:
    contract_id = await complete_draft(bot)
    await send(bot)
    old = await request_to(bot, LEADER)
    await click(bot, old, "agree", user=LEADER)
    assert await agreements(bot, contract_id) == [(1, OWNER, "slack"), (1, LEADER, "slack")]

    # Hana adds a resource in the editor: terms version 2, asked of all three again.
    bot.fake.close_view(bot.fake.top_view(OWNER)["id"])  # Done: back to the editor
    await add(bot, OWNER, "resource", {"kind": "budget", "text": "EUR 5,000 for coaching"})
    assert (await contract(bot, contract_id)).terms_version == 2
    new = await request_to(bot, LEADER, count=2)
    assert "terms version 2" in str(new["blocks"]) and "EUR 5,000" in str(new["blocks"])
    assert "terms version 2" in str((await request_to(bot, OWNER))["blocks"])
    await bot.fake.wait_for("views.update", where=lambda c: "The terms changed" in str(c.args))

    # The old message's Agree is refused, and says where the new version is.
    said = await click(bot, old, "agree", user=LEADER, told=True)
    assert "changed after the version you clicked" in said and "terms version 2" in said
    assert await agreements(bot, contract_id) == [(1, OWNER, "slack"), (1, LEADER, "slack")]

    for user in (LEADER, SPONSOR):
        await click(bot, await request_to(bot, user, count=2), "agree", user=user)
    assert (await contract(bot, contract_id)).status == "draft"  # Hana has not agreed to v2
    await click(bot, await request_to(bot, OWNER), "agree", user=OWNER)
    assert (await contract(bot, contract_id)).status == "active"
    assert "contract.terms_changed" in await actions(bot, contract_id)


async def test_a_change_by_import_is_noticed_by_the_job(bot: Bot) -> None:
    text = EXAMPLE_CONTRACT.read_text(encoding="utf-8")
    _, problems = await import_text(
        text,
        filename="c.yml",
        sessions=bot.sessions,
        client=bot.app.client,
        draft=True,
        for_agreement=True,
        now=bot.clock.now(),
    )
    assert problems == []
    await run_agreements(bot)
    for user in (DANA, SPONSOR, OWNER):
        await request_to(bot, user)
    # Agreeing twice more is harmless; re-importing a changed file asks again.
    await click(bot, await request_to(bot, DANA), "agree", user=DANA)
    changed = text.replace("target: 75", "target: 78")
    assert changed != text
    _, problems = await import_text(
        changed,
        filename="c.yml",
        sessions=bot.sessions,
        client=bot.app.client,
        draft=True,
        for_agreement=True,
        now=bot.clock.now(),
    )
    assert problems == []
    await run_agreements(bot)
    again = await request_to(bot, DANA, count=2)
    assert "terms version 2" in str(again["blocks"])


# --- attacks --------------------------------------------------------------------------------


async def test_clicks_that_are_not_yours_record_nothing(bot: Bot) -> None:
    contract_id = await complete_draft(bot)
    await send(bot)
    to_leader = await request_to(bot, LEADER)

    # Someone else clicks the leader's Agree (a forwarded or crafted message).
    said = await click(bot, to_leader, "agree", user=OUTSIDER, told=True)
    assert "Only the leader, sponsor and owner" in said
    # A crafted value: another contract, a version that never was, garbage.
    crafted = copy.deepcopy(to_leader)
    for value, expected in (
        (f'{{"contract_id": {contract_id}, "version": 7}}', "changed after the version"),
        ('{"contract_id": 99999, "version": 1}', "no longer exists"),
        ('{"contract_id": "1; drop", "version": 1}', "out of date"),
        ("not json", "out of date"),
    ):
        for block in crafted["blocks"]:
            for element in block.get("elements") or []:
                if element.get("action_id") == "contract_agree":
                    element["value"] = value
        said = await click(bot, crafted, "agree", user=LEADER, told=True)
        assert expected in said, (value, said)
    assert await agreements(bot, contract_id) == [(1, OWNER, "slack")]

    # The sponsor clicking Agree on the leader's message agrees only for the sponsor.
    await click(bot, to_leader, "agree", user=SPONSOR)
    assert await agreements(bot, contract_id) == [(1, OWNER, "slack"), (1, SPONSOR, "slack")]


async def test_a_double_click_agrees_once(bot: Bot) -> None:
    contract_id = await complete_draft(bot)
    await send(bot)
    to_leader = await request_to(bot, LEADER)
    await click(bot, to_leader, "agree", user=LEADER)
    said = await click(bot, to_leader, "agree", user=LEADER, told=True)
    assert "agreed to terms version 1" in said and "already" in said
    assert await agreements(bot, contract_id) == [(1, OWNER, "slack"), (1, LEADER, "slack")]


async def test_a_click_before_the_dm_is_recorded_as_sent_still_updates_it(bot: Bot) -> None:
    """Slack can deliver a click on the DM before the bot has recorded the DM as sent: the
    message clicked is updated all the same, from the channel and ts of Slack's payload."""
    contract_id = await complete_draft(bot)
    await send(bot)
    to_leader = await request_to(bot, LEADER)
    await settled(bot)
    await not_yet_recorded(
        bot, Delivery.contract_id == contract_id, Delivery.recipient_id == LEADER
    )

    await click(bot, to_leader, "agree", user=LEADER)
    (update,) = await bot.fake.wait_for(
        "chat.update", where=lambda c: c.args.get("ts") == to_leader["ts"]
    )
    assert update.args["channel"] == bot.fake.dm_id(LEADER)
    assert "You agreed to this version" in str(update.args["blocks"])


# --- one active contract per leader ---------------------------------------------------------


async def test_a_replacing_contract_closes_the_old_one_on_agreement(bot: Bot) -> None:
    old_id = await import_example(bot)
    new_id = await complete_draft(bot, leader=DANA, title="Head of Platform: FY2028")
    response = await send(bot, replaces=True)
    assert response.status == 200
    to_dana = await request_to(bot, DANA)
    assert "Replaces the current contract" in str(to_dana["blocks"])
    await click(bot, to_dana, "agree", user=DANA)
    assert (await contract(bot, old_id)).status == "active"
    await click(bot, await request_to(bot, SPONSOR), "agree", user=SPONSOR)

    old, new = await contract(bot, old_id), await contract(bot, new_id)
    assert (old.status, new.status) == ("closed", "active")
    assert new.replaces_contract_id == old_id and new.version == old.version + 1
    async with bot.sessions() as session:
        (started,) = (
            await session.exec(select(ContractVersion).where(ContractVersion.contract_id == new_id))
        ).all()
    assert (
        started.reason
        == "agreed (terms version 1); replaces “Head of Platform: FY2027 leadership contract”"
    )
    assert "contract.closed" in await actions(bot, old_id)

    # The old contract stays readable: its version by number, and the history of the line.
    said = await ask(bot, f"summary <@{DANA}|dana> v1", user=SPONSOR)
    assert "Version 1" in said and "Head of Platform: FY2027" in said
    said = await ask(bot, f"summary <@{DANA}|dana>", user=DANA)
    assert "FY2028" in said
    history = await ask(bot, f"history <@{DANA}|dana>", user=OWNER)
    assert "closed the contract (replaced by a new contract)" in history
    assert "*v1*" in history and "*v2*" in history
    said = await ask(bot, f"summary <@{DANA}|dana> v1", user=OUTSIDER)
    assert "Head of Platform" not in said


async def test_a_contract_that_does_not_replace_waits_for_the_active_one(bot: Bot) -> None:
    old_id = await import_example(bot)
    new_id = await complete_draft(bot, leader=DANA, title="Head of Platform: FY2028")
    modal_check = bot.fake.last_view(OWNER)
    assert modal_check["callback_id"] == "contract_editor"
    response = await send(bot)
    assert response.status == 200
    await click(bot, await request_to(bot, DANA), "agree", user=DANA)
    await click(bot, await request_to(bot, SPONSOR), "agree", user=SPONSOR)
    old, new = await contract(bot, old_id), await contract(bot, new_id)
    assert (old.status, new.status) == ("active", "draft")
    assert "contract.agreement_waiting" in await actions(bot, new_id)
    await bot.fake.wait_for(
        "chat.update", where=lambda u: "Everyone agreed; it waits" in str(u.args)
    )

    await run_agreements(bot)  # nothing changes while the old one is active
    assert (await contract(bot, new_id)).status == "draft"
    assert (await actions(bot, new_id)).count("contract.agreement_waiting") == 1

    async with bot.sessions() as session:
        await writing(session)
        found = await session.get(Contract, old_id)
        assert found is not None
        await close_contract(
            session, contract=found, by=OWNER, now=bot.clock.now(), reason="period over"
        )
        await session.commit()
    await run_agreements(bot)
    assert (await contract(bot, new_id)).status == "active"


async def test_the_send_modal_offers_to_replace_only_when_there_is_an_active_contract(
    bot: Bot,
) -> None:
    await complete_draft(bot)
    before = len(bot.fake.calls_to("views.push"))
    await bot.driver.block_action(
        user=OWNER, action_id="contract_send", view=bot.fake.last_view(OWNER), block_id="activate"
    )
    await bot.fake.wait_for("views.push", count=before + 1)
    assert "replaces" not in {b.get("block_id") for b in bot.fake.last_view(OWNER)["blocks"]}


# --- import ---------------------------------------------------------------------------------


async def test_import_agreed_records_agreement_outside_slack(bot: Bot) -> None:
    contract_id = await import_example(bot)
    assert (await contract(bot, contract_id)).status == "active"
    assert sorted(await agreements(bot, contract_id)) == sorted(
        (1, user, "outside") for user in (DANA, SPONSOR, OWNER)
    )
    assert "contract.agreed_outside_slack" in await actions(bot, contract_id)
    history = await ask(bot, "history", user=DANA)
    assert "was given outside Slack, as recorded by" in history


async def test_a_forged_send_for_someone_elses_draft_is_refused(bot: Bot) -> None:
    contract_id = await complete_draft(bot)
    before = len(bot.fake.calls_to("views.push"))
    await bot.driver.block_action(
        user=OWNER, action_id="contract_send", view=bot.fake.last_view(OWNER), block_id="activate"
    )
    await bot.fake.wait_for("views.push", count=before + 1)
    response = await bot.driver.submit_view(bot.fake.last_view(OWNER), {}, user=OUTSIDER)
    # The modal (no input to put an error on) is replaced by the refusal.
    assert response.json["response_action"] == "update"
    assert "Only the leader, sponsor or owner" in str(response.json["view"])
    found = await contract(bot, contract_id)
    assert found.agreement_sent_at is None and found.terms_version == 0
    assert await agreements(bot, contract_id) == []
