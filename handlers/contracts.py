"""Contract drafts: `/contract new|edit|send|discard`, the draft modals, the editor's
buttons (add, edit and remove items, edit details, discard, send for agreement), and the
parties' Agree / Ask for a change (their DMs are sent by `bot.contracts.jobs`)."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.contracts.agreement import agree, load_agreement, request_change, send_for_agreement
from bot.contracts.blocks import (
    ACTIVATE,
    ADD_ITEM,
    AGREE,
    ASK_CHANGE,
    COMMENT,
    COMMENT_MAX,
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
    REPLACES,
    SEND,
    agreement_status,
    build_change_modal,
    build_details_modal,
    build_discarded,
    build_draft_editor,
    build_item_modal,
    build_new_contract_modal,
    build_notice,
    build_send_modal,
    build_sent_view,
)
from bot.contracts.forms import parse_details, parse_item, parse_new_contract
from bot.contracts.jobs import ClickedRequest, sync_agreement, tell_change_request
from bot.contracts.model import (
    AgreeOutcome,
    AgreeResult,
    find_item,
    item_label,
    missing_for_activation,
    not_in_draft,
    parties_of,
)
from bot.contracts.service import (
    ACTIVE_NOT_DISCARDED,
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
from bot.delivery import queue_of
from bot.people.service import check_people_quickly, field_errors
from bot.renewal.jobs import show_decision
from bot.services import Services, services_of
from bot.summary.home import EDIT_DRAFT, NEW_CONTRACT_BUTTON
from bot.ui.blocks import mention
from bot.ui.forms import Form
from bot.ui.metadata import AgreementRef, ContractRef, DraftItemRef
from bot.ui.views import OUT_OF_DATE, refuse_submission, update_view
from handlers.common import CommandRequest, Subcommand, clicked_message, notify, reply, target_of
from storage.db import read_only, writing
from storage.models import Contract, ContractStatus
from storage.queries.contracts import ContractBundle, active_contract_for_leader, load_bundle

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
        await read_only(session)
        draft = await editable_draft(session=session, viewer=request.viewer, leader=target)
    if isinstance(draft, Refusal):
        await request.reply(draft.text)
        return
    await request.client.views_open(
        trigger_id=request.trigger_id, view=await _editor(request.services, draft)
    )


async def _editor(services: Services, bundle: ContractBundle, *, notice: str | None = None) -> Any:
    """The editor of `bundle`, with where its agreement stands once it was sent."""
    state = None
    if bundle.contract.agreement_sent_at is not None:
        async with services.sessions() as session:
            await read_only(session)
            state = await load_agreement(session=session, contract_id=bundle.contract.id or 0)
    return build_draft_editor(bundle, today=services.today(), notice=notice, agreement=state)


async def _changed(
    services: Services, client: AsyncWebClient, bundle: ContractBundle, notice: str
) -> str:
    """After a change to a draft's terms: a draft out for agreement asks its parties again
    now (the agreements job would within a minute); the notice says so."""
    if bundle.contract.agreement_sent_at is None:
        return notice
    await sync_agreement(services, client, bundle.contract.id or 0)
    return f"{notice} The terms changed: everyone is asked to agree again."


async def _send_modal(services: Services, bundle: ContractBundle, sender: str) -> Any:
    async with services.sessions() as session:
        await read_only(session)
        current = await active_contract_for_leader(
            session=session, leader_id=bundle.contract.leader_id
        )
    return build_send_modal(
        bundle,
        current=current if current is not None and current.id != bundle.contract.id else None,
        parties=parties_of(bundle.contract),
        sender=sender,
    )


async def send_command(request: CommandRequest, *, note: str = "") -> None:
    """`/contract send` (and `/contract activate`, with `note`): the send modal."""
    target = target_of(request.args, example="/contract send @dana")
    if isinstance(target, Refusal):
        await request.reply(note + target.text)
        return
    services = request.services
    async with services.sessions() as session:
        await read_only(session)
        draft = await editable_draft(session=session, viewer=request.viewer, leader=target)
    if isinstance(draft, Refusal):
        await request.reply(note + draft.text)
        return
    missing = missing_for_activation(draft)
    if missing:
        await request.reply(
            f"{note}“{escape(draft.contract.title)}” still needs {', '.join(missing)}. Add "
            "them with `/contract edit`."
        )
        return
    await request.client.views_open(
        trigger_id=request.trigger_id, view=await _send_modal(services, draft, request.viewer)
    )
    if note:
        await request.reply(note.strip())


async def activate_command(request: CommandRequest) -> None:
    """A contract starts only when its leader, sponsor and owner agree: say so, and send."""
    await send_command(
        request,
        note="A contract starts once its leader, sponsor and owner have agreed to it, so "
        "`/contract activate` sends it for agreement (as `/contract send` does). ",
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
        await read_only(session)
        bundle = await load_bundle(session=session, contract_id=contract_id)
    if bundle is None or not may_edit(bundle, user) or bundle.contract.status != "draft":
        await notify(client, user, "Only the leader, sponsor or owner can change this draft.")
        return
    await client.views_push(trigger_id=body["trigger_id"], view=build_item_modal(kind, bundle))


async def handle_send_button(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """The editor's Send for agreement: the send modal, pushed over the editor."""
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    contract_id = _contract_of(ContractRef.of_view(body.get("view") or {}))
    if contract_id is None:
        await notify(client, user, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await read_only(session)
        bundle = await load_bundle(session=session, contract_id=contract_id)
    if bundle is None or not may_edit(bundle, user):
        await notify(client, user, "Only the leader, sponsor or owner can send this draft.")
        return
    if bundle.contract.status != ContractStatus.draft:
        await notify(client, user, f"“{escape(bundle.contract.title)}” is not a draft.")
        return
    await client.views_push(
        trigger_id=body["trigger_id"], view=await _send_modal(services, bundle, user)
    )


def _sent_text(result: AgreeResult) -> str:
    state = result.state
    if result.outcome == AgreeOutcome.activated:
        return "✅ Everyone has agreed: the contract is active."
    if result.outcome == AgreeOutcome.superseded:
        return (
            "✅ Everyone has agreed: the contract is active, and the one it replaces is "
            "closed (still readable)."
        )
    if result.outcome == AgreeOutcome.waiting:
        return (
            "Everyone has agreed. It waits: the leader has an active contract, and a leader "
            "has one at a time. It starts when that one closes."
        )
    waiting = ", ".join(mention(u) for u in state.awaiting) if state else ""
    return f"Sent for agreement: {waiting} each got the terms in a DM."


async def handle_send_submission(
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
    replaces = "yes" in Form(view).options(REPLACES)
    async with services.sessions() as session:
        result = await send_for_agreement(
            session=session,
            contract_id=contract_id,
            actor=user,
            replaces_current=replaces,
            now=services.clock.now(),
        )
    if isinstance(result, Refusal):
        await refuse_submission(ack, view, result.text)
        return
    assert result.state is not None
    await ack(
        response_action="update", view=build_sent_view(result.state, outcome=_sent_text(result))
    )
    await sync_agreement(services, client, contract_id)
    if result.closed is not None:
        await _show_end_decision(services, client, result.closed.id or 0)
    previous = view.get("previous_view_id")
    if previous:
        async with services.sessions() as session:
            await read_only(session)
            bundle = await load_bundle(session=session, contract_id=contract_id)
        if bundle is not None and bundle.contract.status == ContractStatus.draft:
            await update_view(
                client,
                view_id=previous,
                view=await _editor(services, bundle, notice=_sent_text(result)),
            )


# --- the parties' DMs ----------------------------------------------------------------------


def _agree_refusal(result: AgreeResult, user: str) -> str | None:
    """What a click that recorded nothing tells the clicker, or None."""
    state = result.state
    title = f"“{escape(state.contract.title)}”" if state is not None else "This contract"
    if result.outcome == AgreeOutcome.missing or state is None:
        return "That contract no longer exists."
    if result.outcome == AgreeOutcome.not_party:
        return f"Only the leader, sponsor and owner of {title} agree to it, each for themselves."
    if result.outcome == AgreeOutcome.stale:
        return (
            f"The terms of {title} changed after the version you clicked: here is the new "
            f"version, terms version {state.version}, in a new message. Nothing was recorded."
        )
    if result.outcome == AgreeOutcome.already:
        return f"You agreed to terms version {state.version} of {title} already."
    if result.outcome == AgreeOutcome.conflict:
        return (
            f"Another change to {title} or its leader's contracts was saved at the same "
            "moment; nothing was recorded. Please click again."
        )
    if result.outcome == AgreeOutcome.closed:
        if state.contract.status == ContractStatus.active:
            return f"{title} is active already."
        return f"{title} is closed."
    if result.outcome == AgreeOutcome.not_sent:
        return f"{title} is not out for agreement."
    return None


async def handle_agree(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    ref = AgreementRef.read(body["actions"][0].get("value"))
    if ref is None:
        await reply(respond, OUT_OF_DATE)
        return
    result = await agree(
        sessions=services.sessions,
        contract_id=ref.contract_id,
        user=user,
        version=ref.version,
        now=services.clock.now(),
    )
    refusal = _agree_refusal(result, user)
    if refusal is not None:
        await reply(respond, refusal)
    if result.outcome != AgreeOutcome.not_party and result.state is not None:
        await sync_agreement(
            services, client, ref.contract_id, clicked=_clicked_request(body, user, ref.version)
        )
    if result.closed is not None:
        await _show_end_decision(services, client, result.closed.id or 0)


def _clicked_request(body: dict[str, Any], user: str, version: int) -> ClickedRequest | None:
    clicked = clicked_message(body)
    if clicked is None:
        return None
    return ClickedRequest(recipient=user, version=version, message=clicked)


async def handle_ask_change(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Ask for a change: a modal for the comment, for a party of a draft out for agreement."""
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    ref = AgreementRef.read(body["actions"][0].get("value"))
    if ref is None:
        await reply(respond, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await read_only(session)
        state = await load_agreement(session=session, contract_id=ref.contract_id)
    if state is None:
        await reply(respond, "That contract no longer exists.")
        return
    if state.role_of(user) is None:
        await reply(
            respond, "Only the leader, sponsor and owner of this contract are asked to agree to it."
        )
        return
    if state.contract.status != ContractStatus.draft:
        await reply(respond, agreement_status(state))
        return
    await client.views_open(trigger_id=body["trigger_id"], view=build_change_modal(state))


async def handle_change_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    services = services_of(context)
    user = body["user"]["id"]
    ref = AgreementRef.of_view(view)
    if ref is None:
        await refuse_submission(ack, view, OUT_OF_DATE)
        return
    comment = Form(view).text(COMMENT)
    if not comment:
        await ack(response_action="errors", errors={COMMENT: "Say what should change."})
        return
    if len(comment) > COMMENT_MAX:
        await ack(
            response_action="errors",
            errors={COMMENT: f"Keep it to {COMMENT_MAX} characters (this is {len(comment)})."},
        )
        return
    async with services.sessions() as session:
        found = await request_change(
            session=session,
            contract_id=ref.contract_id,
            user=user,
            version=ref.version,
            comment=comment,
            now=services.clock.now(),
        )
    if isinstance(found, Refusal):
        await ack(response_action="errors", errors={COMMENT: found.text})
        return
    await ack()
    state, event_id = found
    told = await tell_change_request(
        services, client, state, event_id=event_id, by=user, version=ref.version, comment=comment
    )
    names = ", ".join(mention(u) for u in told) or "nobody else"
    await notify(
        client,
        user,
        f"Your comment on “{escape(state.contract.title)}” went to {names}. The draft stays "
        "a draft; you will be asked again when it changes.",
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
    await client.views_open(trigger_id=body["trigger_id"], view=await _editor(services, bundle))


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
        notice = await _changed(services, client, bundle, f"Added the {ITEM_LABEL[kind]}.")
        await update_view(
            client, view_id=previous, view=await _editor(services, bundle, notice=notice)
        )


async def _show_end_decision(services: Services, client: AsyncWebClient, contract_id: int) -> None:
    """The owner's and sponsor's end-of-period messages about `contract_id`, as it now stands."""
    queue = queue_of(services, client)
    try:
        await show_decision(services=services, queue=queue, contract_id=contract_id)
    except Exception:
        logger.exception("Showing the end-of-period decision of contract %s failed", contract_id)
    finally:
        await queue.close()


async def _decision_reopened(
    services: Services, client: AsyncWebClient, discarded: Contract
) -> str:
    """A discarded renewal draft opens its old contract's end-of-period decision again: the
    owner's and sponsor's messages show Close / Renew once more. What to tell the discarder."""
    old_id = discarded.replaces_contract_id
    if old_id is None:
        return ""
    async with services.sessions() as session:
        await read_only(session)
        old = await session.get(Contract, old_id)
    if old is None or old.status != ContractStatus.active:
        return ""
    await _show_end_decision(services, client, old_id)
    return (
        f" “{escape(old.title)}” is no longer being renewed: its owner and sponsor can close "
        "or renew it again from their end-of-period messages."
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
    reopened = await _decision_reopened(services, request.client, discarded)
    await request.reply(
        f"Discarded the draft “{escape(discarded.title)}” of <@{discarded.leader_id}> with all "
        f"its items.{reopened}"
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
        view=await _editor(services, bundle, notice=notice),
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
    if isinstance(removed, Refusal):
        notice = removed.text
    elif fresh is not None:
        notice = await _changed(services, client, fresh, f"Removed {removed}.")
    else:
        notice = f"Removed {removed}."
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
            view=await _editor(
                services, fresh, notice=await _changed(services, client, fresh, f"Saved {label}.")
            ),
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
            view=await _editor(
                services,
                fresh,
                notice=await _changed(services, client, fresh, "Saved the details."),
            ),
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
    reopened = await _decision_reopened(services, client, discarded)
    if from_editor:
        await update_view(
            client, view_id=view["id"], hash=view.get("hash"), view=build_discarded(discarded)
        )
        if reopened:
            await notify(client, user, reopened.strip())
    else:
        await notify(client, user, f"Discarded the draft “{escape(discarded.title)}”.{reopened}")


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
        "send",
        send_command,
        usage="send [@leader]",
        summary="send a complete draft for agreement: it starts when leader, sponsor and "
        "owner all agree",
    ),
    Subcommand(
        "activate",
        activate_command,
        usage="activate [@leader]",
        summary="the same as `send`",
    ),
)


def register(app: AsyncApp) -> None:
    app.action(re.compile(f"^{re.escape(ADD_ITEM)}:"))(handle_add_item)
    app.action(SEND)(handle_send_button)
    app.action(ACTIVATE)(handle_send_button)
    app.action(AGREE)(handle_agree)
    app.action(ASK_CHANGE)(handle_ask_change)
    app.view(SEND)(handle_send_submission)
    app.view(ASK_CHANGE)(handle_change_submission)
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
