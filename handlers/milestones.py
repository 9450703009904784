"""The recalibration DM's buttons: "Propose a new date or target", "Ask my sponsor for support"."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import delivery
from bot.amendments.blocks import build_amend_form
from bot.amendments.model import KINDS, approvers_of, find_item, fingerprint, refusal_to_amend
from bot.amendments.service import pending_on_item
from bot.contracts.document import snapshot
from bot.core.permissions import may_propose
from bot.milestones.blocks import (
    ASK_SUPPORT,
    PROPOSE,
    SUPPORT_INPUT,
    SUPPORT_LIMIT,
    SUPPORT_MODAL,
    build_support_modal,
)
from bot.milestones.jobs import ask_sponsor
from bot.milestones.model import Decided
from bot.milestones.service import decided_one, support_asked
from bot.services import Services, services_of
from bot.ui.blocks import mention
from bot.ui.forms import Form, required_text
from bot.ui.metadata import MissRef
from bot.ui.views import OUT_OF_DATE, fill, message_view, open_loading
from handlers.common import notify, reply
from storage.db import read_only
from storage.models import MilestoneStatus
from storage.queries.contracts import load_bundle, load_governance

logger = logging.getLogger(__name__)

GONE = "That milestone is no longer in the contract."
PROPOSE_TITLE = "Propose an amendment"


async def handle_propose(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Open the amendment form for the missed milestone, as `/contract amend` would."""
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    target = MissRef.read(body["actions"][0].get("value"))
    if target is None:
        await reply(respond, OUT_OF_DATE)
        return
    kind = KINDS["milestone"]
    async with services.sessions() as session:
        await read_only(session)
        decided = await decided_one(session=session, milestone_id=target.milestone)
        governance = (
            await load_governance(session=session, contract_id=decided.contract.id or 0)
            if decided is not None
            else None
        )
    if decided is None or governance is None:
        await reply(respond, GONE)
        return
    if not may_propose(governance, user):
        await reply(
            respond,
            "Only the contract's leader, sponsor or owner can propose a new date or target "
            "for this milestone.",
        )
        return
    refusal = refusal_to_amend(governance, proposer=user)
    if refusal is not None:
        await reply(respond, refusal.text)
        return
    opened = await open_loading(client, trigger_id=body["trigger_id"], title=PROPOSE_TITLE)
    if opened is None:
        return
    async with services.fill_slots:
        key = decided.milestone.key
        async with services.sessions() as session:
            await read_only(session)
            bundle = await load_bundle(session=session, contract_id=decided.contract.id or 0)
            item = find_item(snapshot(bundle), kind, key) if bundle is not None else None
            waiting = []
            if bundle is not None and item is not None:
                waiting = await pending_on_item(
                    session=session, contract=bundle.contract, kind=kind.name, key=key
                )
        if bundle is None or item is None:
            await fill(client, opened, message_view(PROPOSE_TITLE, GONE))
            return
        await fill(
            client,
            opened,
            build_amend_form(
                bundle,
                kind=kind,
                handle=key,
                item=item,
                remove=False,
                fingerprint=fingerprint(item),
                approvers=approvers_of(bundle, user),
                pending=waiting,
            ),
        )


def _support_refusal(decided: Decided | None, user: str, miss: int) -> str | None:
    """Why `user` may not ask for support with this miss, or None."""
    if decided is None:
        return GONE
    c, m = decided.contract, decided.milestone
    if user != c.leader_id:
        # Whoever reads the contract may hear whose it is; anyone else (a forwarded DM) not.
        insider = user in {c.sponsor_id, c.owner_id}
        whose = f"{mention(c.leader_id)}, whose milestone this is," if insider else "the leader"
        return f"Only {whose} can ask their sponsor for support with it."
    if (m.status, m.missed_count) != (MilestoneStatus.missed, miss):
        return (
            f"{m.key} has been recalibrated since this message ({m.status} now), "
            "so there is nothing to ask support for here."
        )
    return None


async def _decided(services: Services, milestone_id: int) -> Decided | None:
    async with services.sessions() as session:
        await read_only(session)
        return await decided_one(session=session, milestone_id=milestone_id)


async def handle_ask_support(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """The leader asks their sponsor for support with a missed milestone: a modal asks what
    they need first (one request per miss)."""
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    target = MissRef.read(body["actions"][0].get("value"))
    if target is None:
        await reply(respond, OUT_OF_DATE)
        return
    decided = await _decided(services, target.milestone)
    refused = _support_refusal(decided, user, target.miss)
    if refused is not None or decided is None:
        await reply(respond, refused or GONE)
        return
    if await support_asked(services=services, decided=decided, miss=target.miss):
        sponsor = mention(decided.contract.sponsor_id)
        await reply(
            respond, f"You already asked {sponsor} for support with {decided.milestone.key}."
        )
        return
    await client.views_open(trigger_id=body["trigger_id"], view=build_support_modal(decided))


async def handle_support_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Send the sponsor what the leader needs, once per miss; the leader is told it went."""
    services = services_of(context)
    user = body["user"]["id"]
    errors: dict[str, str] = {}
    need = required_text(Form(view), errors, SUPPORT_INPUT, SUPPORT_LIMIT)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    target = MissRef.of_view(view)
    if target is None:
        await ack(response_action="errors", errors={SUPPORT_INPUT: OUT_OF_DATE})
        return
    decided = await _decided(services, target.milestone)
    refused = _support_refusal(decided, user, target.miss)
    if refused is not None or decided is None:
        await ack(response_action="errors", errors={SUPPORT_INPUT: refused or GONE})
        return
    m, sponsor = decided.milestone, mention(decided.contract.sponsor_id)
    if await support_asked(services=services, decided=decided, miss=target.miss):
        await ack(
            response_action="errors",
            errors={SUPPORT_INPUT: f"You already asked {sponsor} for support with {m.key}."},
        )
        return
    await ack(response_action="clear")
    result = await ask_sponsor(
        services=services, client=client, decided=decided, miss=target.miss, user=user, need=need
    )
    if result.outcome == delivery.Outcome.sent:
        told = f"✅ I've asked {sponsor} for support with {m.key}, with what you need."
    elif result.outcome == delivery.Outcome.taken:
        told = f"You already asked {sponsor} for support with {m.key}."
    elif result.outcome == delivery.Outcome.undeliverable:
        told = f"I couldn't reach {sponsor} in Slack ({result.error})."
    else:
        told = "Sorry, I couldn't send that just now. Please try again in a minute."
    await notify(client, user, told)


def register(app: AsyncApp) -> None:
    app.action(PROPOSE)(handle_propose)
    app.action(ASK_SUPPORT)(handle_ask_support)
    app.view(SUPPORT_MODAL)(handle_support_submission)
