"""Agreement messages: each party's DM with the terms, updated in place as the agreement goes,
a new one when the terms change, and the comments of a party asking for a change.

Every DM goes through the delivery queue, keyed by the contract, the recipient and the terms
version (or the change request), so it goes once whatever runs twice. The `agreements` job
sends what a click could not (Slack down, a change made by an import) and activates a draft
that waited for its leader's active contract to close.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.contracts.agreement import activate_waiting, load_agreement, refresh_terms
from bot.contracts.blocks import (
    build_agreement_request,
    build_change_notice,
    build_superseded_request,
)
from bot.contracts.model import AgreementState, AgreeOutcome
from bot.delivery import (
    NOTICE_USEFUL,
    Clicked,
    DeliveryKey,
    Message,
    Outgoing,
    fixed,
    queue_of,
    unrecorded,
)
from bot.scheduler import JobRun
from bot.services import Services
from storage.db import read_only, writing
from storage.models import ContractStatus, Delivery, DeliveryStatus
from storage.queries.contracts import (
    contract_messages,
    drafts_out_for_agreement,
    load_bundle,
)

logger = logging.getLogger(__name__)

REQUEST_KIND = "agreement_request"
CHANGE_KIND = "agreement_change"


def request_period(contract_id: int, version: int) -> str:
    return f"agreement-{contract_id}-v{version}"


def _version_of(row: Delivery) -> int | None:
    number = row.period_key.rpartition("-v")[2]
    return int(number) if number.isdigit() else None


@dataclass(frozen=True)
class ClickedRequest:
    """The agreement DM a party just clicked (`message`, as Slack's payload names it) about
    terms `version`: updated in place even while its delivery is not yet recorded as sent (a
    click can beat that record)."""

    recipient: str
    version: int
    message: Clicked


def _being_recorded(clicked: ClickedRequest, rows: Sequence[Delivery]) -> bool:
    """Whether the clicked message is the clicker's own request whose sending is not yet
    recorded (so no row names its ts): the only case the payload's channel and ts stand in."""
    if unrecorded(clicked.message, rows) is None:
        return False
    return any(
        row.recipient_id == clicked.recipient
        and _version_of(row) == clicked.version
        and not row.slack_ts
        for row in rows
    )


async def sync_agreement(
    services: Services,
    client: AsyncWebClient,
    contract_id: int,
    *,
    clicked: ClickedRequest | None = None,
) -> None:
    """Every party's DM as the agreement now stands: the current terms sent once to each who
    has not agreed to them, and every DM already sent (and the one clicked) updated in place."""
    async with services.sessions() as session:
        await read_only(session)
        state = await load_agreement(session=session, contract_id=contract_id)
        bundle = await load_bundle(session=session, contract_id=contract_id)
        rows = await contract_messages(session=session, kind=REQUEST_KIND, contract_id=contract_id)
    if state is None or bundle is None or state.contract.agreement_sent_at is None:
        return
    today = services.today()
    c = state.contract
    current = request_period(contract_id, state.version)
    if c.status == ContractStatus.draft:
        asked = {row.recipient_id for row in rows if row.period_key == current}
        async with queue_of(services, client) as queue:
            for party in state.awaiting:
                if party in asked:
                    continue
                text, blocks = build_agreement_request(state, bundle, recipient=party, today=today)
                result = await queue.deliver(
                    Outgoing(
                        key=DeliveryKey(REQUEST_KIND, contract_id, party, current),
                        build=fixed(Message(text=text, blocks=blocks)),
                        expires_at=services.clock.now() + NOTICE_USEFUL,
                    )
                )
                logger.info(
                    "Agreement request for contract %s to %s: %s",
                    contract_id,
                    party,
                    result.outcome,
                )
    shown: list[tuple[str, str, str, int | None]] = [
        (row.recipient_id, row.slack_channel, row.slack_ts, _version_of(row))
        for row in rows
        if row.status == DeliveryStatus.sent and row.slack_channel and row.slack_ts
    ]
    if clicked is not None and _being_recorded(clicked, rows):
        message = clicked.message
        shown.append((clicked.recipient, message.channel, message.ts, clicked.version))
    for recipient, channel, ts, version in shown:
        if version == state.version or c.status != ContractStatus.draft:
            text, blocks = build_agreement_request(state, bundle, recipient=recipient, today=today)
        elif version is not None:
            text, blocks = build_superseded_request(c, version=version)
        else:
            continue
        try:
            await client.chat_update(
                channel=channel, ts=ts, text=text, blocks=[b.to_dict() for b in blocks]
            )
        except SlackApiError as error:
            logger.warning(
                "Could not update the agreement DM about contract %s to %s: %s",
                contract_id,
                recipient,
                error.response.get("error"),
            )


async def tell_change_request(
    services: Services,
    client: AsyncWebClient,
    state: AgreementState,
    *,
    event_id: int,
    by: str,
    version: int,
    comment: str,
) -> list[str]:
    """The comment of a party asking for a change, to the drafter and the other parties,
    once each; the people it went to."""
    c = state.contract
    drafter = c.agreement_sent_by or c.created_by
    recipients: Sequence[str] = [
        user
        for user in dict.fromkeys([*([drafter] if drafter else []), *(u for u, _ in state.parties)])
        if user != by
    ]
    text, blocks = build_change_notice(state, by=by, version=version, comment=comment)
    async with queue_of(services, client) as queue:
        for user in recipients:
            await queue.deliver(
                Outgoing(
                    key=DeliveryKey(CHANGE_KIND, c.id or 0, user, f"change-{event_id}"),
                    build=fixed(Message(text=text, blocks=blocks)),
                    expires_at=services.clock.now() + NOTICE_USEFUL,
                )
            )
    return list(recipients)


async def agreements_job(run: JobRun) -> int:
    """Drafts out for agreement: notice a change made outside the editor (it asks everyone
    again), activate one that waited and can now start, and send what is still unsent."""
    services = run.services
    async with services.sessions() as session:
        await read_only(session)
        drafts = [c.id or 0 for c in await drafts_out_for_agreement(session=session)]
    activated = 0
    for contract_id in drafts:
        async with services.sessions() as session:
            await writing(session)
            bundle = await load_bundle(session=session, contract_id=contract_id)
            if bundle is None:
                continue
            refresh_terms(session, bundle, actor=None, now=services.clock.now())
            result = await activate_waiting(
                session=session, contract_id=contract_id, now=services.clock.now()
            )
            await session.commit()
        if result.outcome in (AgreeOutcome.activated, AgreeOutcome.superseded):
            activated += 1
        await sync_agreement(services, run.client, contract_id)
    return activated
