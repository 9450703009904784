"""Telling people about amendments: each approver's DM, updated in place after every decision,
and the proposer's outcome.

The approvers' DMs go through the delivery table (`bot.delivery`): one per approver and
amendment, whatever retries happen, and each remembers its channel and ts so every decision
updates all of them in place. The proposer hears the outcome once, the same way.
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.amendments.blocks import build_outcome, build_request
from bot.amendments.model import AmendmentState
from bot.amendments.service import load_state
from bot.delivery import NOTICE_USEFUL, DeliveryKey, Message, Outgoing, fixed, queue_of
from bot.services import Services
from storage.db import read_only
from storage.models import Delivery, DeliveryStatus
from storage.queries.amendments import request_messages

logger = logging.getLogger(__name__)

REQUEST_KIND = "amendment_request"
OUTCOME_KIND = "amendment_outcome"
IN_FLIGHT_WAIT = 3.0  # seconds to wait for a request DM that is being sent


def _period(amendment_id: int) -> str:
    return f"amendment-{amendment_id}"


async def _requests(
    services: Services, amendment_id: int
) -> tuple[AmendmentState | None, list[Delivery]]:
    """The amendment and its request DMs, once none is still being sent (for a moment:
    a click can come before the sender has recorded the ts to update)."""
    deadline = asyncio.get_running_loop().time() + IN_FLIGHT_WAIT
    while True:
        async with services.sessions() as session:
            await read_only(session)
            state = await load_state(session=session, amendment_id=amendment_id)
            rows = await request_messages(
                session=session, kind=REQUEST_KIND, period=_period(amendment_id)
            )
        in_flight = any(row.status == DeliveryStatus.claimed for row in rows)
        if not in_flight or asyncio.get_running_loop().time() > deadline:
            return state, rows
        await asyncio.sleep(0.05)


async def sync_requests(services: Services, client: AsyncWebClient, amendment_id: int) -> None:
    """Every approver's DM as the amendment now stands: sent once to each approver while it
    is pending, and updated in place (chat.update) after every decision."""
    state, rows = await _requests(services, amendment_id)
    if state is None:
        return
    sent = {
        row.recipient_id: row
        for row in rows
        if row.status == DeliveryStatus.sent and row.slack_channel and row.slack_ts
    }
    if state.pending:
        async with queue_of(services, client) as queue:
            for approver in state.approvers:
                if approver in sent or any(row.recipient_id == approver for row in rows):
                    continue
                text, blocks = build_request(state, recipient=approver)
                result = await queue.deliver(
                    Outgoing(
                        key=DeliveryKey(
                            REQUEST_KIND, state.contract.id or 0, approver, _period(state.id)
                        ),
                        build=fixed(Message(text=text, blocks=blocks)),
                        expires_at=services.clock.now() + NOTICE_USEFUL,
                    )
                )
                logger.info("Amendment #%s to %s: %s", state.id, approver, result.outcome)
    for recipient, row in sent.items():
        text, blocks = build_request(state, recipient=recipient)
        try:
            await client.chat_update(
                channel=row.slack_channel or "",
                ts=row.slack_ts or "",
                text=text,
                blocks=[b.to_dict() for b in blocks],
            )
        except SlackApiError as error:
            logger.warning(
                "Could not update amendment #%s's DM to %s: %s",
                state.id,
                recipient,
                error.response.get("error"),
            )


async def tell_proposer(services: Services, client: AsyncWebClient, state: AmendmentState) -> None:
    """The proposer's DM with the outcome, once."""
    proposer = state.amendment.proposer_id
    if proposer is None:
        return
    text, blocks = build_outcome(state)
    async with queue_of(services, client) as queue:
        await queue.deliver(
            Outgoing(
                key=DeliveryKey(OUTCOME_KIND, state.contract.id or 0, proposer, _period(state.id)),
                build=fixed(Message(text=text, blocks=blocks)),
                expires_at=services.clock.now() + NOTICE_USEFUL,
            )
        )
