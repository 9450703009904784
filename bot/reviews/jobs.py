"""Sending the alignment review DMs: the `reviews` job, once per reviewer and period."""

from __future__ import annotations

import logging

from bot.core.calendar import local_instant
from bot.delivery import Message, Outgoing, Report, queue_of
from bot.reviews.blocks import build_review_dm
from bot.reviews.model import DueReview, reviewable
from bot.reviews.service import due_reviews
from bot.scheduler import JobRun
from bot.services import Services
from storage.db import read_only
from storage.models import Contract, Delivery

logger = logging.getLogger(__name__)


def review_outgoing(services: Services, due: DueReview) -> Outgoing:
    """The review DM, built when claimed: nothing goes for a contract closed meanwhile."""

    async def build(row: Delivery) -> Message | None:
        async with services.sessions() as session:
            await read_only(session)
            contract = await session.get(Contract, due.contract.id)
        if contract is None or not reviewable(contract):
            return None
        return build_review_dm(due)

    async def log(failed: Delivery, error: str) -> None:
        logger.warning(
            "Could not send the review %s to %s: %s", due.period.key, failed.recipient_id, error
        )

    return Outgoing(
        key=due.key,
        build=build,
        on_undeliverable=log,
        # Useful until the period ends: then the next period's review is the one to do.
        expires_at=local_instant(due.period.end, "23:59", due.zone),
    )


async def reviews_job(run: JobRun) -> Report:
    services = run.services
    queue = queue_of(services, run.client)
    try:
        due = await due_reviews(
            services=services, client=run.client, now=services.clock.now(), force=run.force
        )
        for one in due:
            if services.stopping.is_set():
                break
            await queue.deliver(review_outgoing(services, one))
    finally:
        await queue.close()
    return queue.report
