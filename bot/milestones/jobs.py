"""Milestone deliveries: the hourly job, the evaluation after a check-in, notices, support.

Every notice of a decision is a delivery keyed by its kind, the contract, the recipient and
the decision, so it goes once whatever runs twice; a notice that failed is tried again by
later runs for `NOTICE_WINDOW`. A notice whose decision was undone since (a recalibration) is
not sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from slack_sdk.web.async_client import AsyncWebClient

from bot import delivery
from bot.core.calendar import current_period
from bot.delivery import DeliveryKey, DeliveryQueue, Message, Outgoing, Report, queue_of
from bot.milestones.blocks import build_notice, build_recalibration, build_support_request
from bot.milestones.model import FINAL, MET_POST, NOTICE_KINDS, NOTICE_WINDOW, Decided
from bot.milestones.service import (
    decide_milestones,
    load_decided,
    missed_key,
    notices_of,
    support_asked,
    support_key,
    worth_telling,
)
from bot.people.service import zone_for
from bot.scheduler import JobRun
from bot.services import Services
from storage.db import read_only, writing
from storage.models import Delivery, Milestone
from storage.queries.contracts import audit
from storage.queries.milestones import notices_given

logger = logging.getLogger(__name__)


def _still(services: Services, decided: Decided, message: Message) -> delivery.Build:
    """The notice, unless the decision it tells of has been undone (a recalibration) since."""
    expected = (decided.milestone.status, decided.milestone.missed_count)

    async def build(_: Delivery) -> Message | None:
        async with services.sessions() as session:
            now = await session.get(Milestone, decided.milestone.id)
        if now is None or (now.status, now.missed_count) != expected:
            return None
        return message

    return build


def _logged(what: str) -> delivery.OnUndeliverable:
    async def log(failed: Delivery, error: str) -> None:
        logger.warning("Could not deliver %s to %s: %s", what, failed.recipient_id, error)

    return log


def outgoing(services: Services, decided: Decided, kind: str, recipient: str) -> Outgoing:
    """One notice of a decision as a delivery."""
    channel = decided.contract.recognition_channel if kind == MET_POST else None
    return Outgoing(
        key=DeliveryKey(kind, decided.contract.id or 0, recipient, decided.period),
        build=_still(services, decided, build_notice(kind, decided, recipient=recipient)),
        channel=channel,
        on_undeliverable=_logged(
            f"the {kind.replace('_', ' ')} notice of {decided.milestone.key} "
            f"(contract {decided.contract.id})"
        ),
        # As long as a decision is announced at all (`worth_telling`).
        expires_at=(decided.milestone.decided_at or services.clock.now()) + NOTICE_WINDOW,
    )


async def notify(
    *,
    services: Services,
    client: AsyncWebClient,
    contract_ids: Sequence[int] | None = None,
    queue: DeliveryQueue | None = None,
) -> Report:
    """Send every notice of the recent decisions that has not gone yet, once each."""
    now = services.clock.now()
    own = queue is None
    queue = queue or queue_of(services, client)
    try:
        async with services.sessions() as session:
            decided = [
                d
                for d in await load_decided(
                    session=session, since=now - NOTICE_WINDOW, contract_ids=contract_ids
                )
                if worth_telling(d)
            ]
            if not decided:
                return queue.report
            done = await notices_given(
                session=session,
                kinds=NOTICE_KINDS,
                contract_ids={d.contract.id or 0 for d in decided},
                final=FINAL,
            )
        for item in decided:
            for kind, recipient, _ in notices_of(item):
                if services.stopping.is_set():
                    return queue.report
                if (kind, item.contract.id, recipient, item.period) in done:
                    continue
                await queue.deliver(outgoing(services, item, kind, recipient))
    finally:
        if own:
            await queue.close()
    return queue.report


async def evaluate(
    *,
    services: Services,
    client: AsyncWebClient,
    contract_ids: Sequence[int] | None = None,
    refresh_zones: bool = False,
) -> Report:
    """Decide what can be decided, then tell everyone concerned what has not been told."""
    await decide_milestones(
        services=services, client=client if refresh_zones else None, contract_ids=contract_ids
    )
    return await notify(services=services, client=client, contract_ids=contract_ids)


async def after_checkin(*, services: Services, client: AsyncWebClient, contract_id: int) -> None:
    """A check-in saved values or activity changes: evaluate its contract's milestones.

    Never fails the check-in: a problem is logged, and the hourly job decides it anyway.
    """
    try:
        await evaluate(services=services, client=client, contract_ids=[contract_id])
    except Exception:
        logger.exception("Evaluating the milestones of contract %s failed", contract_id)


async def milestones_job(run: JobRun) -> Report:
    """Hourly, so a milestone whose due day ended in any zone is decided within the hour."""
    return await evaluate(services=run.services, client=run.client, refresh_zones=True)


async def ask_sponsor(
    *,
    services: Services,
    client: AsyncWebClient,
    decided: Decided,
    miss: int,
    user: str,
    need: str = "",
) -> delivery.Result:
    """DM the sponsor the leader's request for support with a missed milestone (with what
    they need, and the leader's week it was asked in), once per miss."""
    async with services.sessions() as session:
        await read_only(session)
        zone = await zone_for(
            session=session, contract=decided.contract, default=services.settings.default_timezone
        )
    week = current_period(services.clock.now(), zone)
    queue = queue_of(services, client)
    try:
        result = await queue.deliver(
            Outgoing(
                key=support_key(decided, miss),
                build=delivery.fixed(build_support_request(decided, need, week)),
                on_undeliverable=_logged(f"the support request on {decided.milestone.key}"),
                expires_at=services.clock.now() + delivery.NOTICE_USEFUL,
            )
        )
        if result.outcome == delivery.Outcome.sent:
            async with services.sessions() as session:
                await writing(session)
                audit(
                    session,
                    action="milestone.support_requested",
                    contract_id=decided.contract.id,
                    actor_id=user,
                    detail={"milestone": decided.milestone.key, "missed_count": miss},
                    at=services.clock.now(),
                )
                await session.commit()
        async with services.sessions() as session:
            shown = await delivery.find(session=session, key=missed_key(decided, miss))
        if shown is not None and shown.slack_channel and shown.slack_ts:
            asked = await support_asked(services=services, decided=decided, miss=miss)
            await queue.update(
                shown.slack_channel,
                shown.slack_ts,
                build_recalibration(decided, asked=asked),
            )
    finally:
        await queue.close()
    return result
