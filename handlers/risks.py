"""The Resolve button on an open risk and the resolve modal."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.permissions import Refusal
from bot.risks import service as risks
from bot.risks.blocks import (
    NOTE_BLOCK,
    RESOLVE,
    RESOLVE_MODAL,
    build_resolve_modal,
    build_resolved_view,
)
from bot.services import services_of
from bot.ui.forms import Form
from bot.ui.metadata import RiskRef
from bot.ui.views import OUT_OF_DATE
from handlers.common import notify

logger = logging.getLogger(__name__)


async def handle_resolve(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """Resolve on an open risk (in the summary, a message or a modal): the note's modal."""
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    ref = RiskRef.read(body["actions"][0].get("value"))
    if ref is None:
        await notify(client, user, OUT_OF_DATE)
        return
    found = await risks.risk_to_resolve(services=services, risk_id=ref.risk_id, user_id=user)
    if isinstance(found, Refusal):
        await notify(client, user, found.text)
        return
    modal = build_resolve_modal(
        found, found.zone, services.clock.now().astimezone(found.zone).date()
    )
    if body.get("view"):
        await client.views_push(trigger_id=body["trigger_id"], view=modal)
    else:
        await client.views_open(trigger_id=body["trigger_id"], view=modal)


async def handle_resolve_submission(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
) -> None:
    services = services_of(context)
    user = body["user"]["id"]
    ref = RiskRef.of_view(view)
    if ref is None:
        await ack(response_action="errors", errors={NOTE_BLOCK: "This form is broken."})
        return
    note = Form(view).text(NOTE_BLOCK)
    try:
        done = await risks.resolve(services=services, risk_id=ref.risk_id, user_id=user, note=note)
    except Exception:
        logger.exception("Resolving risk %s failed", ref.risk_id)
        await ack(
            response_action="errors",
            errors={NOTE_BLOCK: "Sorry, saving failed on our side; nothing was saved."},
        )
        return
    if isinstance(done, Refusal):
        await ack(response_action="errors", errors={NOTE_BLOCK: done.text})
        return
    await ack(response_action="update", view=build_resolved_view(done, done.zone))


def register(app: AsyncApp) -> None:
    app.action(RESOLVE)(handle_resolve)
    app.view(RESOLVE_MODAL)(handle_resolve_submission)
