"""Contract drafts: `/contract new|edit|activate`, the draft modals, the editor's buttons."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.contracts.blocks import (
    ACTIVATE,
    ADD_ITEM,
    ITEM_KINDS,
    ITEM_LABEL,
    NEW_CONTRACT,
    build_draft_editor,
    build_item_modal,
    build_new_contract_modal,
)
from bot.contracts.forms import parse_item, parse_new_contract
from bot.contracts.service import (
    activate_draft,
    add_item,
    create_draft,
    editable_draft,
    title_taken,
)
from bot.core.permissions import Refusal, may_edit
from bot.core.text import escape
from bot.people.service import check_people_quickly, field_errors
from bot.services import services_of
from bot.summary.home import EDIT_DRAFT, NEW_CONTRACT_BUTTON
from bot.ui.metadata import ContractRef
from bot.ui.views import OUT_OF_DATE, refuse_submission, update_view
from handlers.common import CommandRequest, Subcommand, notify, target_of
from storage.db import writing
from storage.queries.contracts import load_bundle

logger = logging.getLogger(__name__)

PEOPLE_CHECK_SECONDS = 2.0


def _contract_of(ref: ContractRef | None) -> int | None:
    return ref.contract_id if ref is not None else None


# --- commands -------------------------------------------------------------------------------


async def new_command(request: CommandRequest) -> None:
    await request.client.views_open(
        trigger_id=request.trigger_id,
        view=build_new_contract_modal(viewer=request.viewer, today=request.services.today()),
    )


async def edit_command(request: CommandRequest) -> None:
    target = target_of(request.args, example="/contract edit @dana")
    if isinstance(target, Refusal):
        await request.reply(target.text)
        return
    async with request.services.sessions() as session:
        draft = await editable_draft(session=session, viewer=request.viewer, leader=target)
    if isinstance(draft, Refusal):
        await request.reply(draft.text)
        return
    await request.client.views_open(
        trigger_id=request.trigger_id,
        view=build_draft_editor(draft, today=request.services.today()),
    )


async def activate_command(request: CommandRequest) -> None:
    target = target_of(request.args, example="/contract activate @dana")
    if isinstance(target, Refusal):
        await request.reply(target.text)
        return
    services = request.services
    async with services.sessions() as session:
        await writing(session)
        draft = await editable_draft(session=session, viewer=request.viewer, leader=target)
        activated = (
            draft
            if isinstance(draft, Refusal)
            else await activate_draft(
                session=session,
                contract_id=draft.contract.id or 0,
                actor=request.viewer,
                now=services.clock.now(),
            )
        )
    if isinstance(activated, Refusal):  # answered once the session (and its lock) is gone
        await request.reply(activated.text)
        return
    await request.reply(
        f"“{escape(activated.contract.title)}” is active: check-ins, feedback and digests "
        "now run on its cadence."
    )


# --- the editor's buttons ------------------------------------------------------------------


async def handle_add_item(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    services = services_of(context)
    kind = body["actions"][0].get("value", "")
    user = body["user"]["id"]
    contract_id = _contract_of(ContractRef.of_view(body.get("view") or {}))
    if kind not in ITEM_KINDS or contract_id is None:
        await notify(client, user, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        bundle = await load_bundle(session=session, contract_id=contract_id)
    if bundle is None or not may_edit(bundle, user) or bundle.contract.status != "draft":
        await notify(client, user, "Only the leader, sponsor or owner can change this draft.")
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
        await notify(client, user, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await writing(session)
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
            await notify(client, user, activated.text)
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


async def handle_edit_draft(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    contract_id = _contract_of(ContractRef.read(body["actions"][0].get("value")))
    if contract_id is None:
        await notify(client, user, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        bundle = await load_bundle(session=session, contract_id=contract_id)
    if bundle is None or not may_edit(bundle, user) or bundle.contract.status != "draft":
        await notify(client, user, "That contract is not a draft you can edit.")
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


# --- the modals ----------------------------------------------------------------------------


async def handle_new_contract(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    services = services_of(context)
    user = body["user"]["id"]
    fields, errors = parse_new_contract(view, today=services.today())
    if fields is None:
        await ack(response_action="errors", errors=errors)
        return
    chosen = {"leader": fields.leader_id, "sponsor": fields.sponsor_id}
    problems = await check_people_quickly(client, chosen.values(), seconds=PEOPLE_CHECK_SECONDS)
    errors = field_errors(chosen, problems)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    async with services.sessions() as session:
        await writing(session)
        if await title_taken(session=session, leader_id=fields.leader_id, title=fields.title):
            await ack(
                response_action="errors",
                errors={"title": "This leader already has a contract with this title."},
            )
            return
        contract = await create_draft(
            session=session, fields=fields, creator=user, now=services.clock.now()
        )
        bundle = await load_bundle(session=session, contract_id=contract.id or 0)
    assert bundle is not None
    await ack(
        response_action="update",
        view=build_draft_editor(
            bundle, today=services.today(), notice="Draft created. Add its items below."
        ),
    )


async def handle_add_item_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    services = services_of(context)
    user = body["user"]["id"]
    kind = view["callback_id"].split(":", 1)[1]
    ref = ContractRef.of_view(view)
    contract_id = ref.contract_id if ref is not None else None
    if kind not in ITEM_KINDS or contract_id is None:
        await refuse_submission(ack, view, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await writing(session)
        bundle = await load_bundle(session=session, contract_id=contract_id)
        if bundle is None or not may_edit(bundle, user) or bundle.contract.status != "draft":
            await refuse_submission(ack, view, "This contract is no longer a draft you can edit.")
            return
        parsed = parse_item(kind, view, bundle, today=services.today())
        if parsed.errors:
            await ack(response_action="errors", errors=parsed.errors)
            return
        await add_item(
            session=session,
            bundle=bundle,
            kind=kind,
            values=parsed.values,
            actor=user,
            now=services.clock.now(),
        )
        bundle = await load_bundle(session=session, contract_id=contract_id)
    await ack()
    previous = view.get("previous_view_id")
    if previous and bundle is not None:
        await update_view(
            client,
            view_id=previous,
            view=build_draft_editor(
                bundle, today=services.today(), notice=f"Added the {ITEM_LABEL[kind]}."
            ),
        )


SUBCOMMANDS = (
    Subcommand("new", new_command, usage="new", summary="draft a contract in a few modals"),
    Subcommand("edit", edit_command, usage="edit [@leader]", summary="add to a draft"),
    Subcommand(
        "activate",
        activate_command,
        usage="activate [@leader]",
        summary="start a complete draft's check-ins and digests",
    ),
)


def register(app: AsyncApp) -> None:
    app.action(re.compile(f"^{re.escape(ADD_ITEM)}:"))(handle_add_item)
    app.action(ACTIVATE)(handle_activate)
    app.action(EDIT_DRAFT)(handle_edit_draft)
    app.action(NEW_CONTRACT_BUTTON)(handle_new_contract_button)
    app.view(NEW_CONTRACT)(handle_new_contract)
    app.view(re.compile(f"^{re.escape(ADD_ITEM)}:"))(handle_add_item_submission)
