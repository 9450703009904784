"""The `deliveries` job: gives up what is no longer useful, and sends again the one-off
messages whose text was fixed when they were asked for (`fixed`): their producer (a click, a
command) never comes back for them."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery.claims import claim_due, expire_overdue
from bot.delivery.model import Fixed, Message, Outcome, Outgoing, Report, Result, key_of
from bot.delivery.queue import queue_of
from bot.scheduler import JobRun
from bot.services import Services
from storage.queries.delivery import stored_to_resend

REDELIVER_LIMIT = 500


async def redeliver(*, services: Services, client: AsyncWebClient) -> Report:
    """Give up what is no longer useful; send again the fixed messages a failure or a crash
    left unsent (their producer, a click or a command, never comes back for them)."""
    now = services.clock.now()
    async with queue_of(services, client) as queue:
        for row in await expire_overdue(sessions=services.sessions, now=now, lease=queue.lease):
            queue.report.add(Result(key_of(row), Outcome.expired, error=row.last_error))
        candidates = await stored_to_resend(
            sessions=services.sessions, now=now, lease=queue.lease, limit=REDELIVER_LIMIT
        )
        stored = [r for r in candidates if isinstance((r.payload or {}).get("message"), dict)]
        for row in stored:
            if queue.stopped is not None or services.stopping.is_set():
                break
            if queue.slack_down() and queue.probed:
                break
            claimed = await claim_due(
                sessions=services.sessions,
                delivery_id=row.id or 0,
                now=now,
                owner=queue.owner,
                lease=queue.lease,
            )
            if claimed is not None:
                message = Message.restored((claimed.payload or {})["message"])
                await queue.send_claimed(Outgoing(key_of(claimed), Fixed(message)), claimed)
    return queue.report


async def deliveries_job(run: JobRun) -> Report:
    return await redeliver(services=run.services, client=run.client)
