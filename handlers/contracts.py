"""Contract drafts: `/contract new|edit|activate|discard`, the draft modals, the editor's
buttons (add, edit and remove items, edit details, discard, activate)."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.contracts.blocks import (
    ACTIVATE,
    ADD_ITEM,
    DETAILS,
    DISCARD,
    DRAFT_EDITOR,
    EDIT_DETAILS,
    EDIT_ITEM,
    ITEM_EDIT,
    ITEM_KINDS,
    ITEM_LABEL,
    ITEM_REMOVE,
    NEW_CONTRACT,
    build_details_modal,
    build_discarded,
    build_draft_editor,
    build_item_modal,
    build_new_contract_modal,
    build_notice,
)
from bot.contracts.forms import parse_details, parse_item, parse_new_contract
from bot.contracts.model import find_item, item_label, not_in_draft
from bot.contracts.service import (
    ACTIVE_NOT_DISCARDED,
    activate_draft,
    add_item,
    create_draft,
    discard_draft,
    draft_to_change,
    editable_draft,
    remove_item,
    title_taken,
    update_details,
    update_item,
)
from bot.core.permissions import Refusal, may_edit
from bot.core.text import escape
from bot.people.service import check_people_quickly, field_errors
from bot.services import Services, services_of
from bot.summary.home import EDIT_DRAFT, NEW_CONTRACT_BUTTON
from bot.ui.metadata import ContractRef, DraftItemRef
from bot.ui.views import OUT_OF_DATE, refuse_submission, update_view
from handlers.common import CommandRequest, Subcommand, notify, target_of
from storage.db import read_only, writing
from storage.queries.contracts import ContractBundle, load_bundle

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
        draft = await editable_draft(session=session, viewer=request.viewer, leader=target)
        if isinstance(draft, Refusal):
            await request.reply(draft.text)
            return
        activated = await activate_draft(
            session=session,
            contract_id=draft.contract.id or 0,
            actor=request.viewer,
            now=services.clock.now(),
        )
    if isinstance(activated, Refusal):
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
    if fields.owner_id:
        chosen["owner"] = fields.owner_id
    problems = await check_people_quickly(client, chosen.values(), seconds=PEOPLE_CHECK_SECONDS)
    errors = field_errors(chosen, problems)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    async with services.sessions() as session:
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


async def discard_command(request: CommandRequest) -> None:
    target = target_of(request.args, example="/contract discard @dana")
    if isinstance(target, Refusal):
        await request.reply(target.text)
        return
    services = request.services
    async with services.sessions() as session:
        await writing(session)
        draft = await editable_draft(
            session=session, viewer=request.viewer, leader=target, active=ACTIVE_NOT_DISCARDED
        )
        discarded = (
            draft
            if isinstance(draft, Refusal)
            else await discard_draft(
                session=session,
                contract_id=draft.contract.id or 0,
                actor=request.viewer,
                now=services.clock.now(),
            )
        )
    if isinstance(discarded, Refusal):
        await request.reply(discarded.text)
        return
    await request.reply(
        f"Discarded the draft “{escape(discarded.title)}” of <@{discarded.leader_id}> with all "
        "its items."
    )


# --- editing and removing items, the draft's details, discarding ------------------------------


async def _answer_in_editor(
    client: AsyncWebClient,
    body: dict[str, Any],
    *,
    services: Services,
    contract_id: int,
    bundle: ContractBundle | None,
    notice: str,
) -> None:
    """Show `notice` in the editor the click came from, refreshed; a DM when the click did
    not come from this draft's editor (a crafted value)."""
    view = body.get("view") or {}
    user = body["user"]["id"]
    from_editor = (
        view.get("callback_id") == DRAFT_EDITOR
        and _contract_of(ContractRef.of_view(view)) == contract_id
    )
    if bundle is None or not from_editor:
        await notify(client, user, notice)
        return
    await update_view(
        client,
        view_id=view["id"],
        hash=view.get("hash"),
        view=build_draft_editor(bundle, today=services.today(), notice=notice),
    )


async def handle_edit_item(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    ref = DraftItemRef.read(body["actions"][0].get("value"))
    if ref is None:
        await notify(client, user, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await read_only(session)
        bundle = await draft_to_change(session=session, contract_id=ref.contract_id, actor=user)
    if isinstance(bundle, Refusal):
        await notify(client, user, bundle.text)
        return
    item = find_item(bundle, ref.kind, ref.item_id)
    if item is None:
        await _answer_in_editor(
            client,
            body,
            services=services,
            contract_id=ref.contract_id,
            bundle=bundle,
            notice=not_in_draft(ref.kind),
        )
        return
    form = build_item_modal(ref.kind, bundle, item)
    if body.get("view"):
        await client.views_push(trigger_id=body["trigger_id"], view=form)
    else:  # a click from outside the editor: the form opens on its own
        await client.views_open(trigger_id=body["trigger_id"], view=form)


async def handle_remove_item(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    ref = DraftItemRef.read(body["actions"][0].get("value"))
    if ref is None:
        await notify(client, user, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await writing(session)
        bundle = await draft_to_change(
            session=session, contract_id=ref.contract_id, actor=user, lock=True
        )
        if isinstance(bundle, Refusal):
            removed: str | Refusal = bundle
            fresh = None
        else:
            removed = await remove_item(
                session=session,
                bundle=bundle,
                kind=ref.kind,
                item_id=ref.item_id,
                actor=user,
                now=services.clock.now(),
            )
            fresh = await load_bundle(session=session, contract_id=ref.contract_id)
    if isinstance(bundle, Refusal):
        await notify(client, user, bundle.text)
        return
    notice = removed.text if isinstance(removed, Refusal) else f"Removed {removed}."
    await _answer_in_editor(
        client, body, services=services, contract_id=ref.contract_id, bundle=fresh, notice=notice
    )


async def handle_edit_item_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    services = services_of(context)
    user = body["user"]["id"]
    kind = view["callback_id"].split(":", 1)[1]
    ref = DraftItemRef.of_view(view)
    if ref is None or ref.kind != kind:
        await refuse_submission(ack, view, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await writing(session)
        bundle = await draft_to_change(
            session=session, contract_id=ref.contract_id, actor=user, lock=True
        )
        if isinstance(bundle, Refusal):
            await refuse_submission(ack, view, bundle.text)
            return
        item = find_item(bundle, kind, ref.item_id)
        if item is None:
            await refuse_submission(
                ack,
                view,
                f"This {ITEM_LABEL[kind]} was removed from the draft meanwhile: close this form.",
            )
            return
        label = item_label(bundle, kind, item)
        parsed = parse_item(kind, view, bundle, today=services.today(), item=item)
        if parsed.errors:
            await ack(response_action="errors", errors=parsed.errors)
            return
        await update_item(
            session=session,
            bundle=bundle,
            kind=kind,
            item=item,
            values=parsed.values,
            actor=user,
            now=services.clock.now(),
        )
        fresh = await load_bundle(session=session, contract_id=ref.contract_id)
    await ack()
    previous = view.get("previous_view_id")
    if previous and fresh is not None:
        await update_view(
            client,
            view_id=previous,
            view=build_draft_editor(fresh, today=services.today(), notice=f"Saved {label}."),
        )


async def handle_edit_details(
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
        await read_only(session)
        bundle = await draft_to_change(session=session, contract_id=contract_id, actor=user)
    if isinstance(bundle, Refusal):
        await notify(client, user, bundle.text)
        return
    form = build_details_modal(bundle)
    if body.get("view"):
        await client.views_push(trigger_id=body["trigger_id"], view=form)
    else:  # a click from outside the editor: the form opens on its own
        await client.views_open(trigger_id=body["trigger_id"], view=form)


async def handle_details_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    services = services_of(context)
    user = body["user"]["id"]
    contract_id = _contract_of(ContractRef.of_view(view))
    if contract_id is None:
        await refuse_submission(ack, view, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await read_only(session)
        bundle = await draft_to_change(session=session, contract_id=contract_id, actor=user)
    if isinstance(bundle, Refusal):
        await refuse_submission(ack, view, bundle.text)
        return
    fields, errors = parse_details(view, bundle, today=services.today())
    if fields is None:
        await ack(response_action="errors", errors=errors)
        return
    c = bundle.contract
    chosen = {}
    if fields.sponsor_id != c.sponsor_id:
        chosen["sponsor"] = fields.sponsor_id
    if fields.owner_id and fields.owner_id != c.owner_id:
        chosen["owner"] = fields.owner_id
    problems = await check_people_quickly(client, chosen.values(), seconds=PEOPLE_CHECK_SECONDS)
    errors = field_errors(chosen, problems)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    async with services.sessions() as session:
        await writing(session)
        bundle = await draft_to_change(
            session=session, contract_id=contract_id, actor=user, lock=True
        )
        if isinstance(bundle, Refusal):
            await refuse_submission(ack, view, bundle.text)
            return
        if await title_taken(
            session=session, leader_id=c.leader_id, title=fields.title, other_than=contract_id
        ):
            await ack(
                response_action="errors",
                errors={"title": "This leader already has a contract with this title."},
            )
            return
        await update_details(
            session=session, bundle=bundle, fields=fields, actor=user, now=services.clock.now()
        )
        fresh = await load_bundle(session=session, contract_id=contract_id)
    await ack()
    previous = view.get("previous_view_id")
    if previous and fresh is not None:
        await update_view(
            client,
            view_id=previous,
            view=build_draft_editor(fresh, today=services.today(), notice="Saved the details."),
        )


async def handle_discard(
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
        await writing(session)
        discarded = await discard_draft(
            session=session, contract_id=contract_id, actor=user, now=services.clock.now()
        )
    view = body.get("view") or {}
    from_editor = (
        view.get("callback_id") == DRAFT_EDITOR
        and _contract_of(ContractRef.of_view(view)) == contract_id
    )
    if isinstance(discarded, Refusal):
        if from_editor:
            # A double click finds the editor already showing the first click's answer.
            await update_view(
                client, view_id=view["id"], hash=view.get("hash"), view=build_notice(discarded.text)
            )
        else:
            await notify(client, user, discarded.text)
        return
    if from_editor:
        await update_view(
            client, view_id=view["id"], hash=view.get("hash"), view=build_discarded(discarded)
        )
    else:
        await notify(client, user, f"Discarded the draft “{escape(discarded.title)}”.")


SUBCOMMANDS = (
    Subcommand("new", new_command, usage="new", summary="draft a contract in a few modals"),
    Subcommand("edit", edit_command, usage="edit [@leader]", summary="add to a draft"),
    Subcommand(
        "discard",
        discard_command,
        usage="discard [@leader]",
        summary="delete a draft and its items",
    ),
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
    app.action(re.compile(f"^{re.escape(ITEM_EDIT)}:"))(handle_edit_item)
    app.action(re.compile(f"^{re.escape(ITEM_REMOVE)}:"))(handle_remove_item)
    app.view(re.compile(f"^{re.escape(EDIT_ITEM)}:"))(handle_edit_item_submission)
    app.action(EDIT_DETAILS)(handle_edit_details)
    app.view(DETAILS)(handle_details_submission)
    app.action(DISCARD)(handle_discard)
