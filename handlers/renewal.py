"""A contract's end: `/contract close`, the end-of-period *Close* / *Renew* buttons, the
leader's closing reflection."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.contracts.agreement import send_for_agreement
from bot.contracts.jobs import sync_agreement
from bot.contracts.model import AgreeResult, missing_for_activation
from bot.core.mentions import user_id_of
from bot.core.permissions import Refusal
from bot.core.text import escape
from bot.delivery import Message, queue_of
from bot.renewal.blocks import (
    CLOSE_MODAL,
    CLOSE_TITLE,
    END_CLOSE,
    END_RENEW,
    REASON,
    REFLECTION,
    REFLECTION_MODAL,
    WRITE_REFLECTION,
    build_close_modal,
    build_decided,
    build_reflection_modal,
    build_renewed,
)
from bot.renewal.jobs import show_decision, show_reflection, tell_closed
from bot.renewal.model import final_figures
from bot.renewal.service import Closed, closable, close_as, closed_text, record_reflection, renew
from bot.services import Services, services_of
from bot.ui.blocks import section
from bot.ui.forms import Form, modal_title
from bot.ui.metadata import ContractRef
from bot.ui.views import OUT_OF_DATE, open_loading, refuse_submission
from handlers.common import CommandRequest, Subcommand, fill_with_contract, reply
from storage.db import read_only, writing
from storage.models import Contract, ContractStatus
from storage.queries.contracts import ContractBundle, load_bundle

logger = logging.getLogger(__name__)

END_OF_PERIOD = "Closed at the end of its period."


async def _tell_closed(services: Services, client: AsyncWebClient, closed: Closed, by: str) -> None:
    if closed.already:
        return
    queue = queue_of(services, client)
    try:
        await tell_closed(services=services, queue=queue, contract=closed.bundle.contract, by=by)
    except Exception:
        logger.exception("Telling of contract %s's closing failed", closed.bundle.contract.id)
    finally:
        await queue.close()


async def _replace(respond: AsyncRespond, message: Message) -> None:
    await respond(replace_original=True, **message.arguments())


# --- /contract close ------------------------------------------------------------------------


async def close_command(request: CommandRequest) -> None:
    args = list(request.args)
    leader = user_id_of(args[0]) if args else None
    if leader is not None:
        args = args[1:]
    services = request.services
    async with services.sessions() as session:
        await read_only(session)
        found = await closable(session=session, viewer=request.viewer, leader=leader)
    if isinstance(found, Refusal):
        await request.reply(found.text)
        return
    opened = await open_loading(request.client, trigger_id=request.trigger_id, title=CLOSE_TITLE)
    if opened is None:
        return
    reason = " ".join(args).strip()

    def close_modal(bundle: ContractBundle) -> View | str:
        if bundle.contract.status != ContractStatus.active:
            return "That contract is no longer active: there is nothing to close."
        figures = final_figures(bundle, services.today())
        return build_close_modal(bundle, figures, reason=reason)

    await fill_with_contract(
        request.client,
        services,
        opened,
        title=CLOSE_TITLE,
        contract_id=found.id or 0,
        build=close_modal,
    )


async def handle_close_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    services = services_of(context)
    user = body["user"]["id"]
    ref = ContractRef.of_view(view)
    if ref is None:
        await refuse_submission(ack, view, OUT_OF_DATE)
        return
    reason = Form(view).text(REASON)
    async with services.sessions() as session:
        await writing(session)
        closed = await close_as(
            session=session,
            contract_id=ref.contract_id,
            user=user,
            now=services.clock.now(),
            reason=reason,
            owner_only=True,
        )
    if isinstance(closed, Refusal):
        await refuse_submission(ack, view, closed.text)
        return
    c = closed.bundle.contract
    text = closed_text(c) + (
        "" if closed.already else " Its check-ins, feedback and digests have stopped."
    )
    await ack(
        response_action="update",
        view=View(
            type="modal",
            title=modal_title("Contract closed"),
            close="Done",
            blocks=[section(text)],
        ),
    )
    await _tell_closed(services, client, closed, user)


# --- the end-of-period buttons --------------------------------------------------------------


async def handle_end_close(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    ref = ContractRef.read(body["actions"][0].get("value"))
    if ref is None:
        await reply(respond, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await writing(session)
        closed = await close_as(
            session=session,
            contract_id=ref.contract_id,
            user=user,
            now=services.clock.now(),
            reason=END_OF_PERIOD,
            owner_only=False,
        )
    if isinstance(closed, Refusal):
        await reply(respond, closed.text)
        return
    c = closed.bundle.contract
    if closed.already:
        await reply(respond, closed_text(c))
        return
    await _replace(respond, build_decided(c, f"“{escape(c.title)}” is closed."))
    await _tell_closed(services, client, closed, user)


async def handle_end_renew(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Renew: the renewal draft, sent for agreement at once when it is complete (the renewer
    agreeing, as a party); the old contract stays active until the renewal is agreed."""
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    ref = ContractRef.read(body["actions"][0].get("value"))
    if ref is None:
        await reply(respond, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await writing(session)
        renewed = await renew(
            session=session, contract_id=ref.contract_id, user=user, now=services.clock.now()
        )
    if isinstance(renewed, Refusal):
        await reply(respond, renewed.text)
        return
    old = renewed.old.contract
    if renewed.already:
        message = build_renewed(old, renewed.draft, already=True)
        await respond(response_type="ephemeral", replace_original=False, **message.arguments())
        return
    draft_id = renewed.draft.id or 0
    async with services.sessions() as session:
        await read_only(session)
        draft = await load_bundle(session=session, contract_id=draft_id)
    missing = missing_for_activation(draft) if draft is not None else []
    awaiting: list[str] = []
    sent: AgreeResult | Refusal | None = None
    if draft is not None and not missing:
        async with services.sessions() as session:
            sent = await send_for_agreement(
                session=session,
                contract_id=draft_id,
                actor=user,
                replaces_current=True,
                now=services.clock.now(),
            )
        if isinstance(sent, Refusal):
            logger.warning("Renewal draft %s could not be sent: %s", draft_id, sent.text)
            sent = None
        elif sent.state is not None:
            awaiting = sent.state.awaiting
    await _replace(
        respond,
        build_renewed(old, renewed.draft, already=False, missing=missing, awaiting=awaiting),
    )
    if isinstance(sent, AgreeResult):
        await sync_agreement(services, client, draft_id)
    queue = queue_of(services, client)
    try:
        await show_decision(services=services, queue=queue, contract_id=old.id or 0, skip=user)
        if isinstance(sent, AgreeResult) and sent.closed is not None:
            await tell_closed(services=services, queue=queue, contract=sent.closed, by=user)
    except Exception:
        logger.exception("Telling of contract %s's renewal failed", old.id)
    finally:
        await queue.close()


# --- the leader's reflection ----------------------------------------------------------------


async def handle_write_reflection(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    ref = ContractRef.read(body["actions"][0].get("value"))
    if ref is None:
        await reply(respond, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await read_only(session)
        contract = await session.get(Contract, ref.contract_id)
    if contract is None or contract.leader_id != user:
        await reply(respond, "Only the contract's leader writes its closing reflection.")
        return
    await client.views_open(trigger_id=body["trigger_id"], view=build_reflection_modal(contract))


async def handle_reflection_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    services = services_of(context)
    user = body["user"]["id"]
    ref = ContractRef.of_view(view)
    if ref is None:
        await refuse_submission(ack, view, OUT_OF_DATE)
        return
    text = Form(view).text(REFLECTION)
    if not text:
        await ack(response_action="errors", errors={REFLECTION: "Write a few words, or Cancel."})
        return
    async with services.sessions() as session:
        await writing(session)
        saved = await record_reflection(
            session=session,
            contract_id=ref.contract_id,
            user=user,
            text=text,
            now=services.clock.now(),
        )
    if isinstance(saved, Refusal):
        await refuse_submission(ack, view, saved.text)
        return
    await ack(
        response_action="update",
        view=View(
            type="modal",
            title=modal_title("Reflection saved"),
            close="Done",
            blocks=[
                section(
                    "Thank you. Your owner and sponsor see it with the final figures, and it "
                    "stays in the contract's record."
                )
            ],
        ),
    )
    queue = queue_of(services, client)
    try:
        await show_reflection(services=services, queue=queue, contract_id=ref.contract_id)
    except Exception:
        logger.exception("Showing the reflection of contract %s failed", ref.contract_id)
    finally:
        await queue.close()


SUBCOMMANDS = (
    Subcommand(
        "close",
        close_command,
        usage="close [@leader] [reason]",
        summary="close a contract you own, with its final figures",
    ),
)


def register(app: AsyncApp) -> None:
    app.action(END_CLOSE)(handle_end_close)
    app.action(END_RENEW)(handle_end_renew)
    app.action(WRITE_REFLECTION)(handle_write_reflection)
    app.view(CLOSE_MODAL)(handle_close_submission)
    app.view(REFLECTION_MODAL)(handle_reflection_submission)
