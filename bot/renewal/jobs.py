"""The `contract_ends` job: when a contract's period is over in its zone, its owner and sponsor
get the final figures with *Close* / *Renew*, its leader a request for a closing reflection;
a contract nobody decided on `DECIDE_WITHIN` after its end gets one reminder, never more.
A contract renewed (its renewal draft waiting for agreement) is decided: no reminder, and the
messages already sent say who renewed it; discarding the draft opens the decision again.

Each message is a delivery keyed by its kind, the contract, the recipient and the period's
last day, so it goes once however often, late or on however many replicas the job runs. A
message built after the contract was closed is not sent.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot import delivery
from bot.core.text import escape, truncate
from bot.delivery import DeliveryKey, DeliveryQueue, Message, Outgoing, Report, queue_of
from bot.renewal.blocks import (
    build_closed_notice,
    build_decided,
    build_end_decision,
    build_reflection_request,
    build_renewal_pending,
)
from bot.renewal.model import (
    DECIDE_WITHIN,
    END_DECISION,
    END_REFLECTION,
    END_REMINDER,
    end_key,
    final_figures,
)
from bot.renewal.service import Ended, ended_contracts, pending_renewal
from bot.scheduler import JobRun
from bot.services import Services
from storage.db import read_only
from storage.models import Contract, ContractStatus, Delivery
from storage.queries.contracts import load_bundle

logger = logging.getLogger(__name__)

CLOSED_NOTICE = "contract_closed"


def _logged(what: str) -> delivery.OnUndeliverable:
    async def log(failed: Delivery, error: str) -> None:
        logger.warning("Could not deliver %s to %s: %s", what, failed.recipient_id, error)

    return log


def _while_active(services: Services, contract_id: int, kind: str) -> delivery.Build:
    """The message of `kind`, built from the contract as it is when sent; none once closed."""

    async def build(_: Delivery) -> Message | None:
        async with services.sessions() as session:
            await read_only(session)
            bundle = await load_bundle(session=session, contract_id=contract_id)
            renewing = (
                await pending_renewal(session=session, contract_id=contract_id)
                if kind != END_REFLECTION
                else None
            )
        if bundle is None or bundle.contract.status != ContractStatus.active:
            return None
        if kind == END_REFLECTION:
            return build_reflection_request(bundle)
        if renewing is not None:
            return None  # renewed before it went: decided, nothing to ask
        figures = final_figures(bundle, services.today())
        return build_end_decision(bundle, figures, reminder=kind == END_REMINDER)

    return build


def deciders(contract: Contract) -> list[str]:
    """Who decides at the end: the owner and the sponsor (once each)."""
    return [u for u in dict.fromkeys([contract.owner_id, contract.sponsor_id]) if u]


async def _to_remind(services: Services, c: Contract, now: datetime) -> list[str]:
    """Who has had the Close / Renew message for `DECIDE_WITHIN` without a decision: a bot
    that was down at the period's end (or deployed long after it) waits from its message."""
    due = []
    async with services.sessions() as session:
        await read_only(session)
        for recipient in deciders(c):
            sent = await delivery.find(
                session=session,
                key=DeliveryKey(END_DECISION, c.id or 0, recipient, end_key(c.period_end)),
            )
            if (
                sent is not None
                and sent.sent_at is not None
                and now >= sent.sent_at + DECIDE_WITHIN
            ):
                due.append(recipient)
    return due


async def announce(
    services: Services, queue: DeliveryQueue, ended: Ended, *, renewing: bool = False
) -> None:
    """The end-of-period DMs of one contract; with `renewing` (a renewal draft waits for
    agreement) only the leader's request for a reflection: the decision is made."""
    c = ended.contract
    now = services.clock.now()
    period = end_key(c.period_end)
    wanted = [] if renewing else [(END_DECISION, u) for u in deciders(c)]
    wanted.append((END_REFLECTION, c.leader_id))
    if not renewing and now >= ended.ended_at + DECIDE_WITHIN:
        wanted += [(END_REMINDER, u) for u in await _to_remind(services, c, now)]
    for kind, recipient in wanted:
        if services.stopping.is_set():
            return
        expires = (
            ended.ended_at + 2 * DECIDE_WITHIN
            if kind == END_REMINDER
            else ended.ended_at + DECIDE_WITHIN
        )
        await queue.deliver(
            Outgoing(
                key=DeliveryKey(kind, c.id or 0, recipient, period),
                build=_while_active(services, c.id or 0, kind),
                on_undeliverable=_logged(f"the end-of-period {kind} of contract {c.id}"),
                expires_at=max(expires, now + delivery.DEFAULT_USEFUL),
            )
        )


async def send_period_ends(*, services: Services, queue: DeliveryQueue) -> Report:
    async with services.sessions() as session:
        await read_only(session)
        ended = await ended_contracts(
            session=session,
            now=services.clock.now(),
            default_zone=services.settings.default_timezone,
        )
        renewing = {
            item.contract.id
            for item in ended
            if await pending_renewal(session=session, contract_id=item.contract.id or 0)
        }
    for item in ended:
        await announce(services, queue, item, renewing=item.contract.id in renewing)
    return queue.report


async def contract_ends_job(run: JobRun) -> Report:
    """Hourly: the contracts whose period ended in their zone get their end-of-period DMs."""
    queue = queue_of(run.services, run.client)
    try:
        return await send_period_ends(services=run.services, queue=queue)
    finally:
        await queue.close()


async def tell_closed(
    *, services: Services, queue: DeliveryQueue, contract: Contract, by: str | None
) -> None:
    """Tell the leader, sponsor and owner (not the one who closed it) that it closed, once."""
    for recipient in dict.fromkeys([contract.leader_id, contract.sponsor_id, contract.owner_id]):
        if not recipient or recipient == by:
            continue
        await queue.deliver(
            Outgoing(
                key=DeliveryKey(CLOSED_NOTICE, contract.id or 0, recipient, "closed"),
                build=delivery.fixed(build_closed_notice(contract, recipient)),
                on_undeliverable=_logged(f"the closing notice of contract {contract.id}"),
                expires_at=services.clock.now() + delivery.NOTICE_USEFUL,
            )
        )


async def show_reflection(*, services: Services, queue: DeliveryQueue, contract_id: int) -> None:
    """The leader wrote (or rewrote) the reflection: the owner's and sponsor's end-of-period
    messages already sent show it in place, while the contract waits for their decision."""
    await show_decision(services=services, queue=queue, contract_id=contract_id)


async def show_decision(
    *, services: Services, queue: DeliveryQueue, contract_id: int, skip: str | None = None
) -> None:
    """The owner's and sponsor's end-of-period messages already sent (but `skip`'s), as the
    decision now stands: who renewed it, while the renewal draft waits for agreement; Close /
    Renew again, when there is none (never made, or discarded)."""
    async with services.sessions() as session:
        await read_only(session)
        bundle = await load_bundle(session=session, contract_id=contract_id)
        if bundle is None or bundle.contract.status == ContractStatus.draft:
            return
        c = bundle.contract
        if c.status == ContractStatus.closed and c.superseded_by is None:
            return  # closed by Close: the message that closed it says so already
        renewing = await pending_renewal(session=session, contract_id=contract_id)
        sent = []
        for kind in (END_DECISION, END_REMINDER):
            for recipient in deciders(c):
                if recipient == skip:
                    continue
                row = await delivery.find(
                    session=session,
                    key=DeliveryKey(kind, contract_id, recipient, end_key(c.period_end)),
                )
                if row is not None and row.slack_channel and row.slack_ts:
                    sent.append((kind, row.slack_channel, row.slack_ts))
    figures = final_figures(bundle, services.today())
    for kind, channel, ts in sent:
        if c.status == ContractStatus.closed:
            title = escape(truncate(c.title, 200))
            message = build_decided(c, f"“{title}” was renewed: everyone agreed to the new one.")
        elif renewing is not None:
            message = build_renewal_pending(bundle, renewing)
        else:
            message = build_end_decision(bundle, figures, reminder=kind == END_REMINDER)
        await queue.update(channel, ts, message)
