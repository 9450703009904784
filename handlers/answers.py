"""Answering check-ins from the digest: More (the whole check-in), Reply and Nudge."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import delivery
from bot.answers import service as answers
from bot.answers.blocks import (
    CHECKIN_TITLE,
    REPLY_TITLE,
    RISK_REPLY_TITLE,
    build_checkin_view,
    build_reply_modal,
    build_risk_reply_modal,
    nudge_outcome_text,
)
from bot.answers.forms import parse_reply
from bot.answers.jobs import send_nudge, send_reply
from bot.answers.model import (
    MORE,
    NUDGE,
    REPLY,
    REPLY_INPUT,
    REPLY_MODAL,
)
from bot.core.permissions import Refusal
from bot.idempotency import request_key
from bot.risks.model import REPLY as RISK_REPLY
from bot.risks.model import REPLY_MODAL as RISK_REPLY_MODAL
from bot.services import services_of
from bot.ui.blocks import mention
from bot.ui.metadata import CheckinRecordRef, CheckinRef, RiskRef
from bot.ui.views import OUT_OF_DATE, fill, message_view, open_loading
from handlers.common import notify, reply

logger = logging.getLogger(__name__)


async def _refuse(
    body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient, text: str
) -> None:
    """A refusal where the click came from: under a message, else (a modal) as a DM."""
    if body.get("response_url"):
        await reply(respond, text)
    else:
        await notify(client, body["user"]["id"], text)


def _in_modal(body: dict[str, Any]) -> bool:
    """Whether the click came from a modal (a new one is pushed on top of it)."""
    return (body.get("container") or {}).get("type") == "view" or bool(body.get("view"))


async def _show(
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
    *,
    replying: bool,
) -> None:
    """The check-in a button names, whole (*More*) or with the reply form (*Reply*): the modal
    opens once the check-in's row and the contract's people allow it, on top of the modal
    the click came from if there is one, and is filled with the rest."""
    user = body["user"]["id"]
    ref = CheckinRecordRef.read(body["actions"][0].get("value"))
    if ref is None:
        await _refuse(body, respond, client, OUT_OF_DATE)
        return
    services = services_of(context)
    refused = await answers.may_open_checkin(
        services=services, checkin_id=ref.checkin_id, user=user, replying=replying
    )
    if refused is not None:
        await _refuse(body, respond, client, refused.text)
        return
    title = REPLY_TITLE if replying else CHECKIN_TITLE
    opened = await open_loading(
        client, trigger_id=body["trigger_id"], title=title, on_top=_in_modal(body)
    )
    if opened is None:
        return
    async with services.fill_slots:
        shown = await answers.checkin_to_show(
            services=services, checkin_id=ref.checkin_id, user=user
        )
        if not isinstance(shown, Refusal) and replying:
            shown = answers.refusal_to_reply(shown, user) or shown
        if isinstance(shown, Refusal):  # changed since the check above
            await fill(client, opened, message_view(title, shown.text))
            return
        await fill(
            client, opened, build_reply_modal(shown) if replying else build_checkin_view(shown)
        )


async def handle_more(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """The whole check-in in a modal, for whoever reads its contract (checked again here)."""
    await ack()
    await _show(body, respond, client, context, replying=False)


async def handle_reply(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Open the reply modal, for the contract's sponsor, owner and approvers only."""
    await ack()
    await _show(body, respond, client, context, replying=True)


async def handle_reply_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Keep the reply with the check-in, once, and thread it under the leader's prompt."""
    services = services_of(context)
    user = body["user"]["id"]
    text, errors = parse_reply(view)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    ref = CheckinRecordRef.of_view(view)
    key = request_key(body)
    if ref is None or key is None:
        await ack(response_action="errors", errors={REPLY_INPUT: OUT_OF_DATE})
        return
    saved = await answers.save_reply(
        services=services, checkin_id=ref.checkin_id, user=user, text=text, request_key=key
    )
    if isinstance(saved, Refusal):
        await ack(response_action="errors", errors={REPLY_INPUT: saved.text})
        return
    await ack(response_action="clear")
    shown, kept, _ = saved
    result = await send_reply(services=services, client=client, shown=shown, reply=kept)
    if result.outcome == delivery.Outcome.undeliverable:
        leader = mention(shown.bundle.contract.leader_id)
        await notify(
            client,
            user,
            f"Your reply is kept with the check-in, but I couldn't reach {leader} in Slack "
            f"({result.error}).",
        )


async def handle_risk_reply(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """*Reply* beside an open risk: the short modal, for the contract's sponsor, owner and
    approvers only (checked again here; a crafted risk id gets nothing it may not see)."""
    await ack()
    user = body["user"]["id"]
    ref = RiskRef.read(body["actions"][0].get("value"))
    if ref is None:
        await _refuse(body, respond, client, OUT_OF_DATE)
        return
    opened = await open_loading(
        client, trigger_id=body["trigger_id"], title=RISK_REPLY_TITLE, on_top=_in_modal(body)
    )
    if opened is None:
        return
    services = services_of(context)
    async with services.fill_slots:
        found = await answers.risk_to_answer(services=services, risk_id=ref.risk_id, user=user)
        if isinstance(found, Refusal):
            await fill(client, opened, message_view(RISK_REPLY_TITLE, found.text))
            return
        await fill(client, opened, build_risk_reply_modal(found))


async def handle_risk_reply_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Keep the reply with the check-in the risk was raised in, once, and thread it under
    the leader's prompt for that week."""
    services = services_of(context)
    user = body["user"]["id"]
    text, errors = parse_reply(view)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    ref = RiskRef.of_view(view)
    key = request_key(body)
    if ref is None or key is None:
        await ack(response_action="errors", errors={REPLY_INPUT: OUT_OF_DATE})
        return
    saved = await answers.save_risk_reply(
        services=services, risk_id=ref.risk_id, user=user, text=text, request_key=key
    )
    if isinstance(saved, Refusal):
        await ack(response_action="errors", errors={REPLY_INPUT: saved.text})
        return
    await ack(response_action="clear")
    found, kept, _ = saved
    result = await send_reply(
        services=services, client=client, shown=found.shown, reply=kept, risk=found.risk
    )
    if result.outcome == delivery.Outcome.undeliverable:
        leader = mention(found.shown.bundle.contract.leader_id)
        await notify(
            client,
            user,
            f"Your reply is kept with the check-in, but I couldn't reach {leader} in Slack "
            f"({result.error}).",
        )


async def handle_nudge(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """One friendly reminder to the leader about a missed week, however many clicks."""
    await ack()
    services = services_of(context)
    ref = CheckinRef.read(body["actions"][0].get("value"))
    if ref is None:
        await _refuse(body, respond, client, OUT_OF_DATE)
        return
    found = await answers.nudge(
        services=services, contract_id=ref.contract_id, period=ref.period, user=body["user"]["id"]
    )
    if isinstance(found, Refusal):
        await _refuse(body, respond, client, found.text)
        return
    nudged, contract, answerable = found
    if nudged.new:
        result = await send_nudge(
            services=services,
            client=client,
            contract=contract,
            nudged=nudged,
            answerable=answerable,
        )
        if result.outcome == delivery.Outcome.undeliverable:
            await _refuse(
                body,
                respond,
                client,
                f"I couldn't reach {mention(nudged.leader)} in Slack ({result.error}).",
            )
            return
    await _refuse(body, respond, client, nudge_outcome_text(nudged))


def register(app: AsyncApp) -> None:
    app.action(MORE)(handle_more)
    app.action(REPLY)(handle_reply)
    app.action(NUDGE)(handle_nudge)
    app.view(REPLY_MODAL)(handle_reply_submission)
    app.action(RISK_REPLY)(handle_risk_reply)
    app.view(RISK_REPLY_MODAL)(handle_risk_reply_submission)
