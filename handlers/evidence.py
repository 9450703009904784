"""The "Add as evidence" message shortcut, `/contract evidence`, and the evidence modal."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.permissions import Refusal
from bot.evidence.blocks import (
    CONTRACT_PICK,
    EVIDENCE_MODAL,
    build_evidence_done,
    build_evidence_modal,
)
from bot.evidence.forms import parse_evidence, read_metadata, source_of
from bot.evidence.model import NewEvidence, SourceMessage
from bot.evidence.service import (
    add_evidence,
    contracts_for_evidence,
    kept_source,
    may_add_any,
    remember_source,
    set_permalink,
)
from bot.services import Services, services_of
from bot.ui.metadata import record_id
from bot.ui.views import Opened, fill, message_view, open_loading, update_view
from handlers.common import CommandRequest, Subcommand
from storage.db import read_only, writing
from storage.queries.contracts import load_bundle
from storage.queries.evidence import set_evidence_source_permalink

logger = logging.getLogger(__name__)

SHORTCUT = "add_evidence"
NOTHING_TO_ADD_TO = (
    "You have no active contract to add evidence to: evidence goes on a contract you lead, "
    "sponsor or own."
)
TITLE = "Add evidence"
EXPIRED = "This form has expired or was used already: use “Add as evidence” on the message again."


async def _permalink(client: AsyncWebClient, message: SourceMessage) -> str | None:
    try:
        answer = await client.chat_getPermalink(channel=message.channel, message_ts=message.ts)
    except SlackApiError as error:
        logger.warning("No permalink for a message: %s", error.response.get("error"))
        return None
    link = answer.get("permalink")
    return str(link) if link else None


async def handle_add_evidence_shortcut(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """Open the modal before reading anything; then, for someone with a contract to add to,
    keep the message the signed payload names under a token, fill the modal with their
    contracts and that token, and fetch the message's permalink into what is kept."""
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    message = source_of(body)
    opened = await open_loading(client, trigger_id=body["trigger_id"], title=TITLE)
    if opened is None:
        return
    async with services.sessions() as session:
        await read_only(session)
        may = await may_add_any(session=session, user=user)
    if not may:
        await fill(client, opened, message_view(TITLE, NOTHING_TO_ADD_TO))
        return
    async with services.sessions() as session:
        await writing(session)
        token = await remember_source(
            session=session, user=user, message=message, now=services.clock.now()
        )
    await _fill_chooser(services, client, opened, user=user, message=message, token=token)
    link = await _permalink(client, message)
    if link is not None:
        async with services.sessions() as session:
            await writing(session)
            await set_evidence_source_permalink(session=session, token=token, url=link)


async def evidence_command(request: CommandRequest) -> None:
    """Open the modal before reading anything; fill it with the contracts the person may add
    evidence to, or say they have none."""
    opened = await open_loading(request.client, trigger_id=request.trigger_id, title=TITLE)
    if opened is None:
        return
    await _fill_chooser(request.services, request.client, opened, user=request.viewer)


async def _fill_chooser(
    services: Services,
    client: AsyncWebClient,
    opened: Opened,
    *,
    user: str,
    message: SourceMessage | None = None,
    token: str | None = None,
) -> None:
    """The evidence modal for the contracts `user` may add to, into the opened modal."""
    async with services.fill_slots:
        async with services.sessions() as session:
            await read_only(session)
            bundles = await contracts_for_evidence(session=session, user=user)
        if not bundles:
            await fill(client, opened, message_view(TITLE, NOTHING_TO_ADD_TO))
            return
        await fill(
            client,
            opened,
            build_evidence_modal(
                bundles, viewer=user, selected=bundles[0], message=message, source=token
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
    picked = record_id((body["actions"][0].get("selected_option") or {}).get("value"))
    _, token = read_metadata(view)
    async with services.sessions() as session:
        bundles = await contracts_for_evidence(session=session, user=user)
        kept = (
            await kept_source(session=session, token=token, user=user, now=services.clock.now())
            if token is not None
            else None
        )
    selected = next((b for b in bundles if b.contract.id == picked), None)
    if selected is None or (token is not None and kept is None):
        return
    await update_view(
        client,
        view_id=view["id"],
        hash=view.get("hash"),
        view=build_evidence_modal(
            bundles,
            viewer=user,
            selected=selected,
            message=kept.message if kept else None,
            source=token,
        ),
    )


async def handle_evidence_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """What is added is what the server kept for the shortcut's token (its message, excerpt
    and permalink); nothing of the message is taken from the submitted view."""
    services = services_of(context)
    user = body["user"]["id"]
    now = services.clock.now()
    contract_id, token = read_metadata(view)
    kept = None
    if token is not None:
        async with services.sessions() as session:
            kept = await kept_source(session=session, token=token, user=user, now=now)
        if kept is None:
            await ack(response_action="errors", errors={"item": EXPIRED})
            return
    parsed, errors = parse_evidence(view, has_message=kept is not None)
    if parsed is None:
        await ack(response_action="errors", errors=errors)
        return
    picked, item_type, item_key, note, link = parsed
    message = kept.message if kept is not None else None
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
        await writing(session)
        added = await add_evidence(
            session=session,
            user=user,
            new=new,
            now=now,
            source_id=kept.id if kept is not None else None,
        )
        if isinstance(added, Refusal):
            await ack(response_action="errors", errors={added.field or "item": added.text})
            return
        bundle = await load_bundle(session=session, contract_id=new.contract_id)
    assert bundle is not None
    await ack(response_action="update", view=build_evidence_done(bundle, item_type, item_key))
    if message is not None and message.permalink is None:
        link = await _permalink(client, message)
        if link is not None:
            async with services.sessions() as session:
                await writing(session)
                await set_permalink(session=session, evidence_id=added.id or 0, url=link)


SUBCOMMANDS = (
    Subcommand(
        "evidence",
        evidence_command,
        usage="evidence",
        summary="add a link or a note as evidence for an indicator, activity or expectation",
    ),
)


def register(app: AsyncApp) -> None:
    app.shortcut(SHORTCUT)(handle_add_evidence_shortcut)
    app.action(CONTRACT_PICK)(handle_contract_pick)
    app.view(EVIDENCE_MODAL)(handle_evidence_submission)
