"""Sending digests: the `digests` job, the first message built when claimed, the later parts.

A digest's delivery (kind `digest`) is built when it is claimed. When it needs more than one
message, the rest is stored with the first one's `sent` mark, in the same transaction, as a
`digest_part` delivery (`<period>#2`); each part schedules the next as it is marked sent, so
the parts go in order and a crash resumes with the part that had not gone, never rebuilding
what the first part began. A message Slack refuses as too long is cut smaller on each later
try. A recipient who cannot be reached gets none; the owners of their contracts are told once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import delivery
from bot.charts.model import charts_of
from bot.charts.service import show_charts
from bot.checkins.jobs import tell_owner
from bot.core.calendar import local_instant
from bot.delivery import DeliveryKey, DeliveryQueue, Message, Outgoing, Report, queue_of
from bot.digest.blocks import build_digest
from bot.digest.model import (
    DIGEST_PART,
    MAX_PARTS_PER_RUN,
    MIN_TEXT_BUDGET,
    TOO_LONG,
    Digest,
    DueDigest,
    progress_shown,
)
from bot.digest.service import all_recipients, due_digests, load_digest
from bot.people.service import ensure_reachable, refresh_zones
from bot.scheduler import JobRun
from bot.services import Services
from bot.ui.blocks import MESSAGE_BLOCKS, MESSAGE_TEXT_BUDGET, split_messages
from storage.db import read_only
from storage.models import Delivery, DeliveryStatus
from storage.queries.contracts import list_contracts
from storage.queries.digest import parts_to_send

logger = logging.getLogger(__name__)


def part_key(recipient: str, period: str, number: int) -> DeliveryKey:
    return DeliveryKey(DIGEST_PART, 0, recipient, f"{period}#{number}")


def _rest_after(
    recipient: str, period: str, number: int, rest: Sequence[dict[str, Any]]
) -> delivery.AfterSent:
    """An `after_sent` that schedules part `number` carrying `rest`, when there is any."""

    async def after_sent(session: AsyncSession, sent: Delivery) -> None:
        if rest:
            await delivery.schedule(
                session=session,
                key=part_key(recipient, period, number),
                due_at=sent.sent_at or sent.claimed_at,
                payload={"parts": list(rest), "number": number},
                expires_at=sent.expires_at,  # the parts are useful as long as the first
            )

    return after_sent


def _undeliverable(what: str) -> delivery.OnUndeliverable:
    async def log(failed: Delivery, error: str) -> None:
        logger.warning("Could not deliver %s to %s: %s", what, failed.recipient_id, error)

    return log


def _tell_owners(
    services: Services, queue: DeliveryQueue, due: DueDigest
) -> delivery.OnUndeliverable:
    """A recipient who can't be reached: each of their contracts' owner is told, once."""

    async def notify(failed: Delivery, error: str) -> None:
        await _undeliverable(f"the digest {due.period.key}")(failed, error)
        async with services.sessions() as session:
            await read_only(session)
            contracts = await list_contracts(session=session, contract_ids=due.contract_ids)
        for contract in contracts:
            await tell_owner(services, queue, contract, "the sponsor's digest")(failed, error)

    return notify


def text_budget(row: Delivery) -> int:
    """The block text a message may carry: less each time Slack refused it as too long,
    so a refused message is never sent again as it was."""
    if row.last_error != TOO_LONG:
        return MESSAGE_TEXT_BUDGET
    return max(MIN_TEXT_BUDGET, MESSAGE_TEXT_BUDGET >> max(1, row.attempts - 1))


# Indicator charts per contract in a digest (its confidence sparkline comes after them).
DIGEST_CHARTS = 2


async def attach_charts(services: Services, client: AsyncWebClient, digest: Digest) -> None:
    """Upload (once) the charts of the contracts whose progress the digest shows."""
    items = progress_shown(digest.contracts)
    charts = [chart for item in items for chart in charts_of(item.bundle, limit=DIGEST_CHARTS)]
    shown = await show_charts(services=services, client=client, charts=charts)
    for item in items:
        item.charts = [c for c in shown if c.contract_id == item.contract.id]


def digest_outgoing(
    services: Services, due: DueDigest, queue: DeliveryQueue, *, home: str | None = None
) -> Outgoing:
    """The digest's first message; building it stores the rest for after it is sent."""
    rest: list[dict[str, Any]] = []

    async def build(row: Delivery) -> Message | None:
        await ensure_reachable(services=services, client=queue.client, user_id=due.recipient)
        digest = await load_digest(services=services, due=due)
        if not digest.contracts:
            return None
        await attach_charts(services, queue.client, digest)
        messages = build_digest(digest, home=home, text_budget=text_budget(row))
        rest[:] = [m.stored() for m in messages[1:]]
        return messages[0]

    async def after_sent(session: AsyncSession, sent: Delivery) -> None:
        await _rest_after(due.recipient, due.period.key, 2, rest)(session, sent)

    return Outgoing(
        key=due.key,
        build=build,
        after_sent=after_sent,
        on_undeliverable=_tell_owners(services, queue, due),
        # Useful until its period ends: then the next digest is due, and its progress
        # reaches back to the last digest sent, so it covers this one's period too.
        expires_at=local_instant(due.period.end, "00:00", due.zone),
    )


def part_outgoing(row: Delivery) -> Outgoing:
    """A stored later part of a digest: sent as stored, then the next one is scheduled.

    A part Slack refused as too long is cut smaller when it is tried again; the pieces
    after the first go ahead of the parts still to come.
    """
    payload = row.payload or {}
    parts = list(payload.get("parts") or [])
    number = int(payload.get("number") or 2)
    period = row.period_key.rsplit("#", 1)[0]
    rest = parts[1:]

    async def build(claimed: Delivery) -> Message | None:
        if not parts:
            return None
        message = Message.restored(parts[0])
        if claimed.last_error == TOO_LONG:
            pieces = split_messages(
                list(message.blocks or []), MESSAGE_BLOCKS, text_budget(claimed)
            )
            rest[:0] = [Message(message.text, piece).stored() for piece in pieces[1:]]
            message = Message(message.text, pieces[0] if pieces else [])
        return message

    return Outgoing(
        key=DeliveryKey(row.kind, row.contract_id, row.recipient_id, row.period_key),
        build=build,
        after_sent=_rest_after(row.recipient_id, period, number + 1, rest),
        on_undeliverable=_undeliverable(f"part {number} of the digest {period}"),
    )


async def send_parts(*, services: Services, queue: DeliveryQueue) -> int:
    """Send every later part of a digest that is due, in order; how many were sent.

    A part whose sender crashed (claimed, lease over) or that failed is taken over as
    `claim` allows.
    """
    sent = 0
    for _ in range(MAX_PARTS_PER_RUN):
        if services.stopping.is_set():
            break
        now = services.clock.now()
        async with services.sessions() as session:
            rows = await parts_to_send(session=session, kind=DIGEST_PART, now=now)
        progressed = False
        for row in rows:
            if services.stopping.is_set():
                break
            if row.status == DeliveryStatus.scheduled:
                claimed = await delivery.claim_due(
                    sessions=services.sessions, delivery_id=row.id or 0, now=now, owner=queue.owner
                )
            else:
                claimed = await delivery.claim(
                    sessions=services.sessions,
                    key=DeliveryKey(row.kind, row.contract_id, row.recipient_id, row.period_key),
                    now=now,
                    owner=queue.owner,
                )
            if claimed is None:
                continue
            result = await queue.send_claimed(part_outgoing(claimed), claimed)
            if result.outcome == delivery.Outcome.sent:
                sent += 1
                progressed = True
        if not progressed:
            break
    return sent


async def send_digests(
    *,
    services: Services,
    client: AsyncWebClient,
    force: bool = False,
    queue: DeliveryQueue | None = None,
) -> Report:
    """Send every due digest once (and any part still to go), paced; what came of it.

    The digests of recipients whose zone is known go first; then a few recipients Slack
    was not asked about yet (or long ago) are looked up, and theirs go if due.
    """
    now = services.clock.now()
    queue = queue or queue_of(services, client)

    async def send() -> None:
        due = await due_digests(services=services, client=client, now=now, force=force)
        home = await app_home_link(queue.client) if due else None
        for one in due:
            if services.stopping.is_set():
                return
            await queue.deliver(digest_outgoing(services, one, queue, home=home))
            await send_parts(services=services, queue=queue)

    try:
        await send()
        recipients = await all_recipients(services)
        if (
            queue.stopped is None
            and not services.stopping.is_set()
            and await refresh_zones(
                sessions=services.sessions, client=client, user_ids=recipients, now=now
            )
        ):
            await send()
        await send_parts(services=services, queue=queue)
    finally:
        await queue.close()
    return queue.report


_HOME_LINKS: dict[tuple[str, str | None], str] = {}


async def app_home_link(client: AsyncWebClient) -> str | None:
    """`slack://app?team=…&id=…&tab=home`, which opens the bot's App Home; the team and app
    ids come from `auth.test` and `bots.info` once per process. None if Slack won't say."""
    key = (client.base_url, client.token)
    if key not in _HOME_LINKS:
        try:
            me = await client.auth_test()
            bot = (await client.bots_info(bot=str(me.get("bot_id") or ""))).get("bot") or {}
        except Exception:
            logger.warning("Could not learn the app's id for its App Home link", exc_info=True)
            return None
        team, app = me.get("team_id"), bot.get("app_id")
        if not team or not app:
            return None
        _HOME_LINKS[key] = f"slack://app?team={team}&id={app}&tab=home"
    return _HOME_LINKS[key]


async def digests_job(run: JobRun) -> Report:
    return await send_digests(services=run.services, client=run.client, force=run.force)
