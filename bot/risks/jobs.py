"""The `risks` job: escalate open risks that needed help too long, and record the values of
the `north-star:` indicators for the current period.

An escalation is a delivery keyed by its kind, the contract, the contact and the risk, so each
contact hears of each risk once, whatever runs twice or restarts; its message is built when it
is sent, and not sent if the risk was resolved in between.
"""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot import delivery
from bot.delivery import DeliveryKey, Message, Outgoing, Report, queue_of
from bot.people.service import zone_for
from bot.risks.blocks import build_escalation
from bot.risks.model import RISK_ESCALATION, RiskStatus
from bot.risks.service import Escalation, due_escalations, escalation_period, record_computed_values
from bot.scheduler import JobRun
from bot.services import Services
from storage.db import read_only
from storage.models import Contract, Delivery, Risk
from storage.queries.contracts import active_contract_pages

logger = logging.getLogger(__name__)


def _still_open(services: Services, item: Escalation) -> delivery.Build:
    async def build(_: Delivery) -> Message | None:
        async with services.sessions() as session:
            await read_only(session)
            risk = await session.get(Risk, item.risk.id)
            contract = await session.get(Contract, item.contract.id)
            if risk is None or contract is None or risk.status == RiskStatus.resolved:
                return None
            zone = await zone_for(
                session=session, contract=contract, default=services.settings.default_timezone
            )
        now = services.clock.now()
        return build_escalation(risk, contract, item.age, zone, now)

    return build


def _logged(what: str) -> delivery.OnUndeliverable:
    async def log(failed: Delivery, error: str) -> None:
        logger.warning("Could not deliver %s to %s: %s", what, failed.recipient_id, error)

    return log


async def escalate(*, services: Services, client: AsyncWebClient) -> Report:
    """Send each due escalation that has not gone yet, once per risk and contact."""
    now = services.clock.now()
    queue = queue_of(services, client)
    try:
        for item in await due_escalations(services=services, now=now):
            for recipient in item.recipients:
                if services.stopping.is_set():
                    return queue.report
                await queue.deliver(
                    Outgoing(
                        key=DeliveryKey(
                            RISK_ESCALATION,
                            item.contract.id or 0,
                            recipient,
                            escalation_period(item.risk),
                        ),
                        build=_still_open(services, item),
                        on_undeliverable=_logged(f"the escalation of risk {item.risk.id}"),
                        expires_at=now + delivery.NOTICE_USEFUL,
                    )
                )
    finally:
        await queue.close()
    return queue.report


async def record_values(*, services: Services) -> int:
    """This period's computed indicator values of every active contract, a page of
    contracts at a time."""
    now = services.clock.now()
    recorded = 0
    async for contracts in active_contract_pages(sessions=services.sessions):
        recorded += await record_computed_values(services=services, contracts=contracts, now=now)
    return recorded


async def after_checkin(*, services: Services, contract: Contract) -> None:
    """A check-in was saved: record the contract's computed values for the period, if any.
    Never fails the check-in: the hourly job records them anyway."""
    try:
        await record_computed_values(
            services=services, contracts=[contract], now=services.clock.now()
        )
    except Exception:
        logger.exception("Recording the computed values of contract %s failed", contract.id)


async def risks_job(run: JobRun) -> Report:
    """Hourly: escalations first, then the computed values."""
    report = await escalate(services=run.services, client=run.client)
    await record_values(services=run.services)
    return report
