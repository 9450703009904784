"""Block actions: the draft editor's buttons and App Home's buttons."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.amendments.blocks import build_contract_summary
from bot.amendments.service import summary_view
from bot.contracts.blocks import (
    ACTIVATE,
    ADD_ITEM,
    ITEM_KINDS,
    build_draft_editor,
    build_item_modal,
    build_new_contract_modal,
)
from bot.contracts.service import activate_draft
from bot.core.permissions import Refusal, may_edit, may_read
from bot.services import services_of
from bot.summary.home import EDIT_DRAFT, NEW_CONTRACT_BUTTON, OPEN_SUMMARY, build_summary_modal
from bot.ui.metadata import ContractRef
from bot.ui.views import OUT_OF_DATE, update_view
from storage.db import read_only
from storage.queries.contracts import load_bundle

logger = logging.getLogger(__name__)


def _contract_of(ref: ContractRef | None) -> int | None:
    return ref.contract_id if ref is not None else None


async def _notify(client: AsyncWebClient, user: str, text: str) -> None:
    """A refusal for a click: a DM is the only channel a modal or App Home click has."""
    opened = await client.conversations_open(users=user)
    await client.chat_postMessage(channel=opened["channel"]["id"], text=text)


async def handle_add_item(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    services = services_of(context)
    kind = body["actions"][0].get("value", "")
    user = body["user"]["id"]
    contract_id = _contract_of(ContractRef.of_view(body.get("view") or {}))
    if kind not in ITEM_KINDS or contract_id is None:
        await _notify(client, user, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        bundle = await load_bundle(session=session, contract_id=contract_id)
    if bundle is None or not may_edit(bundle, user) or bundle.contract.status != "draft":
        await _notify(client, user, "Only the leader, sponsor or owner can change this draft.")
        return
    await client.views_push(trigger_id=body["trigger_id"], view=build_item_modal(kind, bundle))


async def handle_activate(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    view = body.get("view") or {}
    contract_id = _contract_of(ContractRef.of_view(view))
    if contract_id is None:
        await _notify(client, user, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        activated = await activate_draft(
            session=session, contract_id=contract_id, actor=user, now=services.clock.now()
        )
        bundle = (
            await load_bundle(session=session, contract_id=contract_id)
            if isinstance(activated, Refusal)
            else activated
        )
    if isinstance(activated, Refusal):
        if bundle is None or not may_edit(bundle, user):
            await _notify(client, user, activated.text)
            return
        notice = activated.text  # shown in the editor, where the click came from
    else:
        notice = "✅ Active: check-ins, feedback and digests now run on its cadence."
    if bundle is None:
        return
    await update_view(
        client,
        view_id=view["id"],
        hash=view.get("hash"),
        view=build_draft_editor(bundle, today=services.today(), notice=notice),
    )


async def handle_open_summary(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    contract_id = _contract_of(ContractRef.read(body["actions"][0].get("value")))
    if contract_id is None:
        await _notify(client, user, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await read_only(session)
        bundle = await load_bundle(session=session, contract_id=contract_id)
        if bundle is None or not may_read(bundle, user):
            await _notify(client, user, "You can't read that contract.")
            return
        shown = await summary_view(session=session, bundle=bundle, version=None)
    if isinstance(shown, Refusal):
        await _notify(client, user, shown.text)
        return
    blocks = build_contract_summary(shown, today=services.today())
    await client.views_open(
        trigger_id=body["trigger_id"],
        view=build_summary_modal(blocks, title="Contract summary"),
    )


async def handle_edit_draft(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    contract_id = _contract_of(ContractRef.read(body["actions"][0].get("value")))
    if contract_id is None:
        await _notify(client, user, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        bundle = await load_bundle(session=session, contract_id=contract_id)
    if bundle is None or not may_edit(bundle, user) or bundle.contract.status != "draft":
        await _notify(client, user, "That contract is not a draft you can edit.")
        return
    await client.views_open(
        trigger_id=body["trigger_id"], view=build_draft_editor(bundle, today=services.today())
    )


async def handle_new_contract_button(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    services = services_of(context)
    await client.views_open(
        trigger_id=body["trigger_id"],
        view=build_new_contract_modal(viewer=body["user"]["id"], today=services.today()),
    )


def register(app: AsyncApp) -> None:
    app.action(re.compile(f"^{re.escape(ADD_ITEM)}:"))(handle_add_item)
    app.action(ACTIVATE)(handle_activate)
    app.action(OPEN_SUMMARY)(handle_open_summary)
    app.action(EDIT_DRAFT)(handle_edit_draft)
    app.action(NEW_CONTRACT_BUTTON)(handle_new_contract_button)
