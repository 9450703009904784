"""The "Add as evidence" message shortcut, `/contract evidence`, and the evidence modal."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.evidence import (
    NewEvidence,
    SourceMessage,
    add_evidence,
    contracts_for_evidence,
    set_permalink,
    source_of,
)
from bot.evidence_blocks import (
    CONTRACT_PICK,
    EVIDENCE_MODAL,
    build_evidence_done,
    build_evidence_modal,
    parse_evidence,
    read_metadata,
)
from bot.services import services_of
from handlers.commands import CommandRequest, contract_subcommand, reply
from storage.queries import load_bundle

logger = logging.getLogger(__name__)

SHORTCUT = "add_evidence"
NOTHING_TO_ADD_TO = (
    "You have no active contract to add evidence to: evidence goes on a contract you lead, "
    "sponsor or own."
)


async def _permalink(client: AsyncWebClient, message: SourceMessage) -> str | None:
    try:
        answer = await client.chat_getPermalink(channel=message.channel, message_ts=message.ts)
    except SlackApiError as error:
        logger.warning("No permalink for a message: %s", error.response.get("error"))
        return None
    link = answer.get("permalink")
    return str(link) if link else None


async def handle_add_evidence_shortcut(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Open the modal at once; fetch the permalink after and put it into the open modal."""
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    message = source_of(body)
    async with services.sessions() as session:
        bundles = await contracts_for_evidence(session=session, user=user)
    if not bundles:
        await reply(respond, NOTHING_TO_ADD_TO)
        return
    opened = await client.views_open(
        trigger_id=body["trigger_id"],
        view=build_evidence_modal(bundles, viewer=user, selected=bundles[0], message=message),
    )
    link = await _permalink(client, message)
    if link is None:
        return
    view = opened["view"]
    try:
        await client.views_update(
            view_id=view["id"],
            hash=view["hash"],
            view=build_evidence_modal(
                bundles,
                viewer=user,
                selected=bundles[0],
                message=SourceMessage(message.channel, message.ts, message.excerpt, link),
            ),
        )
    except SlackApiError as error:  # changed or closed meanwhile: the submission fetches it
        logger.info("Evidence modal not updated with its link: %s", error.response.get("error"))


@contract_subcommand(
    "evidence",
    usage="evidence",
    summary="add a link or a note as evidence for an indicator, activity or expectation",
)
async def evidence_command(request: CommandRequest) -> None:
    async with request.services.sessions() as session:
        bundles = await contracts_for_evidence(session=session, user=request.viewer)
    if not bundles:
        await request.reply(NOTHING_TO_ADD_TO)
        return
    await request.client.views_open(
        trigger_id=request.trigger_id,
        view=build_evidence_modal(
            bundles, viewer=request.viewer, selected=bundles[0], message=None
        ),
    )


async def handle_contract_pick(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """Another contract picked in the modal: its items replace the old ones."""
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    view = body.get("view") or {}
    picked = (body["actions"][0].get("selected_option") or {}).get("value") or ""
    _, message = read_metadata(view)
    async with services.sessions() as session:
        bundles = await contracts_for_evidence(session=session, user=user)
    selected = next((b for b in bundles if str(b.contract.id) == picked), None)
    if selected is None:
        return
    try:
        await client.views_update(
            view_id=view["id"],
            hash=view.get("hash"),
            view=build_evidence_modal(bundles, viewer=user, selected=selected, message=message),
        )
    except SlackApiError as error:
        logger.info("Evidence modal not updated: %s", error.response.get("error"))


async def handle_evidence_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    services = services_of(context)
    user = body["user"]["id"]
    contract_id, message = read_metadata(view)
    parsed, errors = parse_evidence(view, has_message=message is not None)
    if parsed is None:
        await ack(response_action="errors", errors=errors)
        return
    picked, item_type, item_key, note, link = parsed
    new = NewEvidence(
        contract_id=picked or contract_id or 0,
        item_type=item_type,
        item_key=item_key,
        note=note,
        url=message.permalink if message is not None else link,
        excerpt=message.excerpt if message is not None else "",
        source="shortcut" if message is not None else "command",
    )
    async with services.sessions() as session:
        added = await add_evidence(session=session, user=user, new=new, now=services.clock.now())
        if isinstance(added, dict):
            await ack(response_action="errors", errors=added)
            return
        bundle = await load_bundle(session=session, contract_id=new.contract_id)
    assert bundle is not None
    await ack(response_action="update", view=build_evidence_done(bundle, item_type, item_key))
    if message is not None and message.permalink is None:
        link = await _permalink(client, message)
        if link is not None:
            async with services.sessions() as session:
                await set_permalink(session=session, evidence_id=added.id or 0, url=link)


def register(app: AsyncApp) -> None:
    app.shortcut(SHORTCUT)(handle_add_evidence_shortcut)
    app.action(CONTRACT_PICK)(handle_contract_pick)
    app.view(EVIDENCE_MODAL)(handle_evidence_submission)
