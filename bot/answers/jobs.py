"""Answers to check-ins, sent: the reply threaded under the leader's prompt, the nudge."""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot import delivery
from bot.answers.blocks import build_nudge_message, build_reply_message, build_risk_reply_message
from bot.answers.model import NUDGE_KIND, REPLY_KIND, Nudged, Shown
from bot.answers.service import prompt_of
from bot.delivery import DeliveryKey, Message, Outgoing, queue_of
from bot.services import Services
from storage.models import CheckInReply, Contract, Delivery, Risk

logger = logging.getLogger(__name__)


def _logged(what: str) -> delivery.OnUndeliverable:
    async def log(failed: Delivery, error: str) -> None:
        logger.warning("Could not deliver %s to %s: %s", what, failed.recipient_id, error)

    return log


async def _deliver(services: Services, client: AsyncWebClient, item: Outgoing) -> delivery.Result:
    queue = queue_of(services, client)
    try:
        return await queue.deliver(item)
    finally:
        await queue.close()


async def send_reply(
    *,
    services: Services,
    client: AsyncWebClient,
    shown: Shown,
    reply: CheckInReply,
    risk: Risk | None = None,
) -> delivery.Result:
    """The reply to the leader (on the check-in, or on `risk` raised in it), once per reply:
    in the thread of their prompt for that week, or as a DM when no prompt was sent."""
    contract = shown.bundle.contract
    prompt = await prompt_of(services=services, checkin=shown.checkin, leader=contract.leader_id)
    message = (
        build_reply_message(contract, shown.checkin, reply)
        if risk is None
        else build_risk_reply_message(contract, shown.checkin, risk, reply)
    )
    if prompt is not None:
        message = Message(message.text, message.blocks, thread_ts=prompt.slack_ts)
    return await _deliver(
        services,
        client,
        Outgoing(
            key=DeliveryKey(REPLY_KIND, contract.id or 0, contract.leader_id, f"reply:{reply.id}"),
            build=delivery.fixed(message),
            channel=prompt.slack_channel if prompt is not None else None,
            on_undeliverable=_logged("a reply to a check-in"),
            expires_at=services.clock.now() + delivery.NOTICE_USEFUL,
        ),
    )


async def send_nudge(
    *,
    services: Services,
    client: AsyncWebClient,
    contract: Contract,
    nudged: Nudged,
    answerable: bool,
) -> delivery.Result:
    """The week's one nudge to the leader (its key makes a second one impossible)."""
    return await _deliver(
        services,
        client,
        Outgoing(
            key=DeliveryKey(NUDGE_KIND, contract.id or 0, contract.leader_id, nudged.period),
            build=delivery.fixed(build_nudge_message(contract, nudged, answerable=answerable)),
            on_undeliverable=_logged("a check-in nudge"),
            expires_at=services.clock.now() + delivery.NOTICE_USEFUL,
        ),
    )
