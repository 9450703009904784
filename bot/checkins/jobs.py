"""Check-in deliveries: the prompts and reminders jobs, and the messages that follow an answer.

The `checkins` job sends each due prompt once through the delivery queue (kind
`checkin_prompt`), which schedules one reminder (`checkin_reminder`, `reminder_hours` after
it; a snooze moves it); the `reminders` job sends due reminders. An answer or a skip cancels
the reminder. A leader whose account is deactivated (or a bot) gets neither: `users.info`
says so when their message is about to go (Slack itself would accept the DM), and the
contract's owner is told once. Leaders Slack was not asked about yet are looked up a few a
run, after the prompts already known went out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import delivery
from bot.checkins.blocks import (
    build_period_message,
    build_reminder_message,
    build_sponsor_help,
    build_submitted,
    build_undeliverable_notice,
)
from bot.checkins.model import PROMPT, REMINDER, SPONSOR_HELP, UNDELIVERABLE_NOTICE, DuePrompt, Plan
from bot.checkins.service import (
    due_prompts,
    leaders_of_implicit_zones,
    load_plan,
    load_plans,
    period_messages,
    prompt_key,
    reload_plan,
    reminder_key,
)
from bot.core.calendar import answerable_until, late_until
from bot.delivery import DeliveryKey, DeliveryQueue, Message, Outgoing, Report, queue_of
from bot.milestones.jobs import after_checkin
from bot.people.service import ensure_reachable, refresh_zones, zone_for
from bot.scheduler import JobRun
from bot.services import Services
from storage.models import Contract, ContractStatus, Delivery, Risk
from storage.queries.contracts import active_contracts

PROMPT_BATCH = 50


def tell_owner(
    services: Services, queue: DeliveryQueue, contract: Contract, what: str
) -> delivery.OnUndeliverable:
    """When a leader can't be reached: tell the contract's owner, else its sponsor, once."""

    async def notify(failed: Delivery, error: str) -> None:
        candidates = [
            u
            for u in dict.fromkeys([contract.owner_id, contract.sponsor_id])
            if u and u != failed.recipient_id
        ]
        for recipient in candidates:
            message = build_undeliverable_notice(contract, failed.recipient_id, what, error)
            result = await queue.deliver(
                Outgoing(
                    key=DeliveryKey(
                        UNDELIVERABLE_NOTICE, contract.id or 0, recipient, failed.recipient_id
                    ),
                    build=delivery.fixed(message),
                    expires_at=services.clock.now() + delivery.NOTICE_USEFUL,
                )
            )
            if result.outcome != delivery.Outcome.undeliverable:
                return

    return notify


def prompt_outgoing(
    services: Services,
    queue: DeliveryQueue,
    contract: Contract,
    due: DuePrompt,
    plan: Plan | None = None,
) -> Outgoing:
    """The prompt of `due`, of `contract`; `plan`, if given, was loaded just before (with its
    batch)."""
    period = due.period

    async def build(_: Delivery) -> Message | None:
        now = services.clock.now()
        if now >= answerable_until(period, due.zone):
            return None  # it can no longer be answered
        await ensure_reachable(services=services, client=queue.client, user_id=contract.leader_id)
        current = plan
        if current is None:
            async with services.sessions() as session:
                fresh = await session.get(Contract, contract.id)
                if fresh is None or fresh.status != ContractStatus.active:
                    return None
                current = await load_plan(
                    session=session, contract=fresh, period=period, zone=due.zone
                )
        if current.skipped:
            return None
        current.open_until = late_until(period, due.zone, now)
        return build_period_message(current)

    async def after_sent(session: AsyncSession, sent: Delivery) -> None:
        if contract.reminder_hours > 0 and sent.sent_at is not None:
            await delivery.schedule(
                session=session,
                key=reminder_key(contract, period),
                due_at=sent.sent_at + timedelta(hours=contract.reminder_hours),
                expires_at=answerable_until(period, due.zone),
            )

    return Outgoing(
        key=prompt_key(contract, period),
        build=build,
        after_sent=after_sent,
        on_undeliverable=tell_owner(services, queue, contract, f"the check-in prompt for {period}"),
        expires_at=answerable_until(period, due.zone),
    )


async def send_prompts(
    *,
    services: Services,
    client: AsyncWebClient,
    force: bool = False,
    queue: DeliveryQueue | None = None,
    batch: int = PROMPT_BATCH,
) -> Report:
    """Send every due check-in prompt once, paced; what came of it.

    The prompts whose zone is known go first; then a few leaders whose Slack zone is not
    known (or is stale) are looked up, and whichever of theirs is due goes too. Prompts are
    claimed and their contents loaded `batch` at a time (each batch is sent within seconds,
    far inside the claim's lease); each is marked sent on its own.
    """
    now = services.clock.now()
    queue = queue or queue_of(services, client)

    async def batches(due: Sequence[DuePrompt]) -> AsyncIterator[list[Outgoing]]:
        start = 0
        while start < len(due) and not services.stopping.is_set():
            # What goes out well within a claim's lease, at the pace and measured call time.
            chunk = due[start : start + queue.batch_size(batch)]
            start += len(chunk)
            async with services.sessions() as session:
                # Read now, a batch at a time: a contract closed since it was found due is
                # not prompted.
                found = await active_contracts(
                    session=session, contract_ids=[d.contract_id for d in chunk]
                )
                contracts = {c.id or 0: c for c in found}
                still = [d for d in chunk if d.contract_id in contracts]
                plans = await load_plans(
                    session=session,
                    wanted=[(contracts[d.contract_id], d.period, d.zone) for d in still],
                )
            yield [
                prompt_outgoing(services, queue, contracts[d.contract_id], d, p)
                for d, p in zip(still, plans, strict=True)
            ]

    async def send(due: Sequence[DuePrompt]) -> None:
        await queue.deliver_batches(batches(due))

    try:
        await send(await due_prompts(services=services, client=client, now=now, force=force))
        implicit = await leaders_of_implicit_zones(services)
        if (
            queue.stopped is None
            and not services.stopping.is_set()
            and await refresh_zones(
                sessions=services.sessions, client=client, user_ids=implicit, now=now
            )
        ):
            await send(await due_prompts(services=services, client=client, now=now, force=force))
    finally:
        await queue.close()
    return queue.report


async def send_reminders(
    *,
    services: Services,
    client: AsyncWebClient,
    force: bool = False,
    queue: DeliveryQueue | None = None,
) -> Report:
    """Send every reminder whose time has come (`force`: every pending one), once each."""
    now = services.clock.now()
    horizon = now + timedelta(days=8) if force else now
    queue = queue or queue_of(services, client)
    try:
        for row in await delivery.due_scheduled(
            sessions=services.sessions, kind=REMINDER, now=horizon
        ):
            if services.stopping.is_set():
                break
            claimed = await delivery.claim_due(
                sessions=services.sessions, delivery_id=row.id or 0, now=horizon, owner=queue.owner
            )
            if claimed is not None:
                await queue.send_claimed(_reminder_outgoing(services, queue, claimed), claimed)
    finally:
        await queue.close()
    return queue.report


def _reminder_outgoing(services: Services, queue: DeliveryQueue, row: Delivery) -> Outgoing:
    key = DeliveryKey(row.kind, row.contract_id, row.recipient_id, row.period_key)

    async def build(_: Delivery) -> Message | None:
        await ensure_reachable(services=services, client=queue.client, user_id=row.recipient_id)
        async with services.sessions() as session:
            contract = await session.get(Contract, row.contract_id)
            if contract is None or contract.status != ContractStatus.active:
                return None
            zone = await zone_for(
                session=session, contract=contract, default=services.settings.default_timezone
            )
            now = services.clock.now()
            if now >= answerable_until(row.period_key, zone):
                return None  # it can no longer be answered
            plan = await load_plan(
                session=session, contract=contract, period=row.period_key, zone=zone
            )
        if plan.checkin is not None:
            return None
        plan.open_until = late_until(row.period_key, zone, now)
        return build_reminder_message(plan)

    async def undeliverable(failed: Delivery, error: str) -> None:
        async with services.sessions() as session:
            contract = await session.get(Contract, row.contract_id)
        if contract is not None:
            what = f"the check-in reminder for {row.period_key}"
            await tell_owner(services, queue, contract, what)(failed, error)

    return Outgoing(key=key, build=build, on_undeliverable=undeliverable)


async def checkins_job(run: JobRun) -> Report:
    return await send_prompts(services=run.services, client=run.client, force=run.force)


async def reminders_job(run: JobRun) -> Report:
    return await send_reminders(services=run.services, client=run.client, force=run.force)


async def show_state(
    *,
    services: Services,
    client: AsyncWebClient,
    plan: Plan,
    notice: str | None = None,
    clicked: delivery.Clicked | None = None,
) -> int:
    """Bring the period's prompt and reminder up to date in place; how many were updated.

    An answered period with no message yet (answered from `/checkin` before its prompt)
    gets its message now, as the period's one prompt, so it has an "Edit" button too.
    After an answer (saved and committed) the contract's milestones are evaluated.
    `clicked`: the message of this period the leader clicked, which stands in for one whose
    sending is not yet recorded.
    """
    plan = await reload_plan(services=services, plan=plan)
    queue = queue_of(services, client)
    async with services.sessions() as session:
        sent = await period_messages(session=session, plan=plan)
    stand_in = delivery.unrecorded(clicked, sent)
    updated = 0
    try:
        for row in sent:
            where = delivery.where_posted(row, stand_in)
            if where is None:
                continue
            if stand_in is not None and where == (stand_in.channel, stand_in.ts):
                stand_in = None  # it is one message: it stands in once
            message = build_period_message(plan, notice=notice if row.kind == PROMPT else None)
            if await queue.update(*where, message):
                updated += 1
        if plan.answered and not any(row.kind == PROMPT for row in sent):
            await queue.deliver(
                Outgoing(
                    key=prompt_key(plan.contract, plan.period),
                    build=delivery.fixed(build_submitted(plan)),
                    expires_at=answerable_until(plan.period, plan.zone),
                )
            )
    finally:
        await queue.close()
    if plan.answered:  # saved and committed: its values may meet (or settle) a milestone
        await after_checkin(services=services, client=client, contract_id=plan.contract_id)
    return updated


async def ask_sponsor_for_help(
    *, services: Services, client: AsyncWebClient, plan: Plan, risks: Sequence[Risk]
) -> Report:
    """DM the sponsor at once about each risk that newly needs their help (once per risk)."""
    queue = queue_of(services, client)
    sponsor = plan.contract.sponsor_id
    try:
        for risk in risks:
            await queue.deliver(
                Outgoing(
                    key=DeliveryKey(SPONSOR_HELP, plan.contract_id, sponsor, f"risk:{risk.id}"),
                    build=delivery.fixed(build_sponsor_help(plan, risk.text)),
                    on_undeliverable=tell_owner(
                        services, queue, plan.contract, "a request for sponsor help"
                    ),
                    expires_at=services.clock.now() + delivery.NOTICE_USEFUL,
                )
            )
    finally:
        await queue.close()
    return queue.report
