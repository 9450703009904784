"""Feedback deliveries: the leader's DM of a named entry, releases of anonymous groups, requests
and their reminders, the `feedback` job, and taking deleted words out of what was posted."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import delivery
from bot.core.calendar import feedback_window_start, zone_of
from bot.delivery import (
    Clicked,
    DeliveryKey,
    DeliveryQueue,
    Message,
    Outgoing,
    Report,
    queue_of,
    where_posted,
)
from bot.feedback.blocks import (
    build_ack_notice,
    build_attributed_message,
    build_release_message,
    build_removed_message,
    build_request_message,
    fit_message,
)
from bot.feedback.model import (
    ACK_NOTICE,
    ATTRIBUTED_NOTICE,
    CADENCE,
    EXPIRED,
    OPEN,
    RELEASE,
    RELEASE_RESEND_DAYS,
    REMINDER,
    REMINDER_AFTER,
    REQUEST,
    REQUEST_OPEN_FOR,
    Acked,
    CadenceAsk,
    Given,
    Shown,
    closes_at,
    notice_period,
    release_period,
    reminder_key,
    working_moment,
)
from bot.feedback.service import (
    RequestFor,
    cadence_due,
    cadence_people,
    feedback_target,
    release_held,
    responses_of,
    reviewer_zone,
)
from bot.people.service import cached_zones, refresh_zones
from bot.privacy.model import Gone
from bot.scheduler import JobRun
from bot.services import Services
from storage.db import read_only, writing
from storage.models import (
    Contract,
    ContractStatus,
    Delivery,
    DeliveryStatus,
    Feedback,
    FeedbackRequest,
)
from storage.queries.contracts import active_contracts
from storage.queries.feedback import (
    cadence_contracts,
    contracts_to_release,
    deliveries_of,
    entries_of_amendment,
    expire_requests,
    find_expectation,
    periods_told,
    recipients_told,
    released_together,
    releases_since,
    reviewers_of,
)

logger = logging.getLogger(__name__)


async def _skip(_: Delivery, __: str) -> None:
    return None


async def _notice(
    services: Services, client: AsyncWebClient, key: DeliveryKey, message: Message
) -> None:
    """One notice, sent once by its key; nobody is told if it cannot go."""
    async with queue_of(services, client) as queue:
        await queue.deliver(
            Outgoing(
                key=key,
                build=delivery.fixed(message),
                on_undeliverable=_skip,
                expires_at=services.clock.now() + delivery.NOTICE_USEFUL,
            )
        )


async def notify_leader(services: Services, client: AsyncWebClient, given: Given) -> None:
    """Attributed feedback reaches the leader at once, with the giver's name (their own self
    view needs no message)."""
    if given.giver is None or given.giver == given.target.leader_id:
        return
    blocks = build_attributed_message(
        given.entry,
        giver=given.giver,
        target=given.target,
        relation=given.relation,
        feedback_id=given.feedback_id,
    )
    message = Message(text=f"New feedback from <@{given.giver}>", blocks=blocks)
    key = DeliveryKey(
        ATTRIBUTED_NOTICE,
        given.target.contract_id,
        given.target.leader_id,
        notice_period(given.feedback_id),
    )
    await _notice(services, client, key, message)


async def retract_posted(
    services: Services, client: AsyncWebClient | None, gone: Sequence[Gone]
) -> list[str]:
    """Take deleted entries out of what the bot posted; the messages it could not ("C/ts").

    A named entry's DM to the leader is redacted. A released anonymous entry's group DM is
    rebuilt from the entries of that release still kept, or redacted when none is left.
    Without a client (no Slack token) nothing is changed and every message is returned.
    """
    named = [notice_period(g.feedback_id) for g in gone if not g.anonymous]
    releases = {
        (g.contract_id, released) for g in gone if g.anonymous and (released := g.released_at)
    }
    edits: list[tuple[str, str, Message]] = []
    async with services.sessions() as session:
        if named:
            notices = await deliveries_of(session=session, kind=ATTRIBUTED_NOTICE, periods=named)
            edits += [
                (d.slack_channel, d.slack_ts, removed_message())
                for d in notices
                if d.slack_channel and d.slack_ts
            ]
        for contract_id, released_at in sorted(releases):
            found = await deliveries_of(
                session=session,
                kind=RELEASE,
                periods=[release_period(released_at)],
                contract_id=contract_id,
            )
            sent = found[0] if found else None
            contract = await session.get(Contract, contract_id)
            if sent is None or not sent.slack_channel or not sent.slack_ts or contract is None:
                continue
            rebuilt = await release_message(session, contract, released_at)
            edits.append((sent.slack_channel, sent.slack_ts, rebuilt or removed_message()))
    if client is None:
        return [f"{channel}/{ts}" for channel, ts, _ in edits]
    async with queue_of(services, client) as queue:
        return [
            f"{channel}/{ts}"
            for channel, ts, message in edits
            if not await queue.update(channel, ts, message)
        ]


def removed_message() -> Message:
    return Message(text="Feedback removed", blocks=build_removed_message())


async def release_message(
    session: AsyncSession, contract: Contract, released_at: datetime
) -> Message | None:
    """The leader's DM for one release: its entries still kept, or None when none is."""
    rows = await released_together(
        session=session, contract_id=contract.id, released_at=released_at
    )
    entries = [Shown.of(f) for f in rows]
    if not entries:
        return None
    target = await feedback_target(session, contract)
    blocks = build_release_message(
        entries,
        expectations=target.expectations,
        threshold=contract.anonymity_threshold,
        rng=random.SystemRandom(),
        responses=await responses_of(session=session, ids=[f.id or 0 for f in rows]),
    )
    return Message(
        text=f"Anonymous feedback for you: {len(entries)} entries",
        blocks=fit_message(blocks, "More than fits here: `/feedback received` shows all."),
    )


def release_outgoing(services: Services, contract: Contract, released_at: datetime) -> Outgoing:
    async def build(_: Delivery) -> Message | None:
        async with services.sessions() as session:
            return await release_message(session, contract, released_at)

    key = DeliveryKey(RELEASE, contract.id or 0, contract.leader_id, release_period(released_at))
    # As long as `_release` looks for releases not told yet.
    until = released_at + timedelta(days=RELEASE_RESEND_DAYS)
    return Outgoing(key=key, build=build, on_undeliverable=_skip, expires_at=until)


async def release_all(*, services: Services, client: AsyncWebClient, force: bool = False) -> Report:
    """Release whatever is due on every active contract and tell each leader, once."""
    now = services.clock.now()
    async with services.sessions() as session:
        await read_only(session)
        pending = await contracts_to_release(
            session=session, since=now - timedelta(days=RELEASE_RESEND_DAYS)
        )
        contracts = await active_contracts(session=session, contract_ids=pending) if pending else []
    async with queue_of(services, client) as queue:
        for contract in contracts:
            if services.stopping.is_set():
                break
            await _release(services, queue, contract, now=now, force=force)
    return queue.report


async def _release(
    services: Services, queue: DeliveryQueue, contract: Contract, *, now: datetime, force: bool
) -> None:
    """Release what is due on one contract and tell its leader of each release not told yet."""
    async with services.sessions() as session:
        await writing(session)
        await release_held(session=session, contract=contract, now=now, force=force)
        stamps = await releases_since(
            session=session,
            contract_id=contract.id,
            since=now - timedelta(days=RELEASE_RESEND_DAYS),
        )
        done = await periods_told(
            session=session,
            kind=RELEASE,
            contract_id=contract.id,
            statuses=[DeliveryStatus.sent, DeliveryStatus.undeliverable],
        )
    for stamp in sorted(stamps):
        if services.stopping.is_set():
            return
        if release_period(stamp) not in done:
            await queue.deliver(release_outgoing(services, contract, stamp))


def request_outgoing(
    services: Services,
    key: DeliveryKey,
    request_for: RequestFor,
    *,
    reminder: bool = False,
    expires_at: datetime | None = None,
) -> Outgoing:
    """A request DM (or its reminder); built when sent, from the request as it then is,
    worded in the reviewer's zone; its reminder falls in their working hours.

    Useful while the request is open (`expires_at`, `REQUEST_OPEN_FOR` after it was made)."""
    created: list[FeedbackRequest] = []
    default = ZoneInfo(services.settings.default_timezone)

    async def build(_: Delivery) -> Message | None:
        async with services.sessions() as session:
            await writing(session)
            request = await request_for(session)
            if request is None:
                return None
            contract = await session.get(Contract, request.contract_id)
            if contract is None or contract.status != ContractStatus.active:
                return None
            expectation = None
            if request.expectation_key:
                found = await find_expectation(
                    session=session, contract_id=contract.id, key=request.expectation_key
                )
                expectation = (request.expectation_key, found.text if found else "")
            zone = await reviewer_zone(session, request.reviewer_id, default)
        created.append(request)
        return Message(
            text=f"{'Reminder: ' if reminder else ''}feedback asked on <@{contract.leader_id}>",
            blocks=build_request_message(
                request_id=request.id or 0,
                leader=contract.leader_id,
                requester=request.requester_id,
                expectation=expectation,
                reminder=reminder,
                open_until=closes_at(request).astimezone(zone),
                self_view=request.reviewer_id == contract.leader_id,
            ),
        )

    async def after_sent(session: AsyncSession, sent: Delivery) -> None:
        if not created or sent.sent_at is None:
            return
        request = await session.get(FeedbackRequest, created[-1].id)
        if request is None:
            return
        if reminder:
            request.reminded_at = sent.sent_at
            session.add(request)
        else:
            zone = await reviewer_zone(session, request.reviewer_id, default)
            due_at = working_moment(sent.sent_at + REMINDER_AFTER, zone)
            await delivery.schedule(
                session=session,
                key=reminder_key(request),
                due_at=due_at,
                expires_at=request.created_at + REQUEST_OPEN_FOR,
            )

    return Outgoing(
        key=key,
        build=build,
        after_sent=after_sent,
        on_undeliverable=_skip,
        expires_at=expires_at,
    )


async def send_requests(
    services: Services, client: AsyncWebClient, requests: Sequence[FeedbackRequest]
) -> Report:
    await refresh_zones(
        sessions=services.sessions,
        client=client,
        user_ids=[r.reviewer_id for r in requests],
        now=services.clock.now(),
    )
    async with queue_of(services, client) as queue:
        for request in requests:
            key = DeliveryKey(
                REQUEST, request.contract_id, request.reviewer_id, f"request-{request.id}"
            )
            until = request.created_at + REQUEST_OPEN_FOR
            await queue.deliver(
                request_outgoing(services, key, RequestFor(request.id), expires_at=until)
            )
    return queue.report


async def ask_on_cadence(
    *, services: Services, client: AsyncWebClient, force: bool = False
) -> Report:
    """Ask each active contract's reviewers once per feedback window, each in their own zone
    (`users.info`): on a working day from `CADENCE_HOUR`, the window read on their calendar.
    Someone Slack was never asked about waits for a later run (`force`: the default zone)."""
    now = services.clock.now()
    default = ZoneInfo(services.settings.default_timezone)
    async with services.sessions() as session:
        contracts = await cadence_contracts(session=session)
        listed = await reviewers_of(session=session, contract_ids=[c.id or 0 for c in contracts])
    reviewers = {c.id or 0: cadence_people(c, listed.get(c.id or 0, [])) for c in contracts}
    everyone = {r for people in reviewers.values() for r in people}
    await refresh_zones(sessions=services.sessions, client=client, user_ids=everyone, now=now)
    due: list[tuple[Contract, str, str, datetime]] = []
    async with services.sessions() as session:
        cached = await cached_zones(session=session, user_ids=everyone)
        for contract in contracts:
            windows: dict[str, tuple[str, datetime]] = {}
            for reviewer in reviewers[contract.id or 0]:
                known = cached.get(reviewer)
                zone = (zone_of(known) or default) if known else (default if force else None)
                window = cadence_due(contract, now, zone, force=force) if zone else None
                if zone is None or window is None:
                    continue
                first = feedback_window_start(
                    contract.feedback_cadence, now.astimezone(zone).date()
                )
                since = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
                windows[reviewer] = (window, since)
            done = await _asked_already(session, contract, windows)
            due += [(contract, r, w, since) for r, (w, since) in windows.items() if r not in done]
    async with queue_of(services, client) as queue:
        for contract, reviewer, window, since in due:
            if services.stopping.is_set():
                return queue.report
            ask = CadenceAsk(
                contract_id=contract.id or 0,
                reviewer=reviewer,
                batch=f"cadence:{contract.id}:{window}",
                now=now,
                since=since,
            )
            key = DeliveryKey(CADENCE, contract.id or 0, reviewer, window)
            until = now + REQUEST_OPEN_FOR
            await queue.deliver(
                request_outgoing(services, key, RequestFor(cadence=ask), expires_at=until)
            )
    return queue.report


async def _asked_already(
    session: AsyncSession, contract: Contract, windows: dict[str, tuple[str, datetime]]
) -> set[str]:
    """The reviewers whose request for their window was sent, given up or cancelled."""
    if not windows:
        return set()
    told = await recipients_told(
        session=session,
        kind=CADENCE,
        contract_id=contract.id,
        recipients=list(windows),
        statuses=[DeliveryStatus.sent, DeliveryStatus.undeliverable, DeliveryStatus.cancelled],
    )
    return {user for user, period in told if windows[user][0] == period}


async def send_reminders(
    *, services: Services, client: AsyncWebClient, force: bool = False
) -> Report:
    """One reminder per open request, once it is due (`force`: every pending one); and each
    request DM a failure or a crash left unsent, again."""
    now = services.clock.now()
    async with services.sessions() as session:
        await writing(session)
        await expire_requests(
            session=session, status=OPEN, expired=EXPIRED, before=now - REQUEST_OPEN_FOR, now=now
        )
        await session.commit()
    horizon = now + REQUEST_OPEN_FOR if force else now
    due = await delivery.due_scheduled(sessions=services.sessions, kind=REMINDER, now=horizon)
    due += await delivery.due_scheduled(sessions=services.sessions, kind=REQUEST, now=now)
    async with queue_of(services, client) as queue:
        for row in due:
            if services.stopping.is_set():
                break
            claimed = await delivery.claim_due(
                sessions=services.sessions,
                delivery_id=row.id or 0,
                now=horizon if row.kind == REMINDER else now,
                owner=queue.owner,
            )
            if claimed is None:
                continue
            request_id = int(claimed.period_key.removeprefix("request-") or 0)
            key = DeliveryKey(
                claimed.kind, claimed.contract_id, claimed.recipient_id, claimed.period_key
            )
            reminder = claimed.kind == REMINDER
            outgoing = request_outgoing(services, key, RequestFor(request_id), reminder=reminder)
            await queue.send_claimed(outgoing, claimed)
    return queue.report


async def refresh_posted(
    services: Services,
    client: AsyncWebClient,
    feedback_ids: Sequence[int],
    *,
    clicked: Clicked | None = None,
) -> list[str]:
    """Show in the leader's DMs what they did with the entries (acknowledged, made an
    activity): each one's DM (its own, or its release's) rebuilt, once; the messages not
    updated ("C/ts"). `clicked`: the channel and ts of the DM the leader clicked, which stands
    in for a DM whose sending is not yet recorded (a click can beat that record)."""
    edits: dict[tuple[str, str], Message] = {}
    async with services.sessions() as session:
        for feedback_id in dict.fromkeys(feedback_ids):
            entry = await session.get(Feedback, feedback_id)
            found = await _posted_with(session, entry, clicked) if entry is not None else None
            if found is not None:
                edits[found[:2]] = found[2]
    async with queue_of(services, client) as queue:
        return [
            f"{channel}/{ts}"
            for (channel, ts), message in edits.items()
            if not await queue.update(channel, ts, message)
        ]


async def _posted_with(
    session: AsyncSession, entry: Feedback, clicked: Clicked | None = None
) -> tuple[str, str, Message] | None:
    """The DM that carried `entry` to its leader, rebuilt as it now reads; None if none was.
    A DM claimed but not yet recorded as sent is the `clicked` one, when there is one."""
    contract = await session.get(Contract, entry.contract_id)
    if contract is None:
        return None
    if entry.anonymous:
        if entry.released_at is None:
            return None
        kind, period = RELEASE, release_period(entry.released_at)
    else:
        kind, period = ATTRIBUTED_NOTICE, notice_period(entry.id or 0)
    found = await deliveries_of(
        session=session, kind=kind, periods=[period], contract_id=contract.id
    )
    posted = where_posted(found[0], clicked) if found else None
    if posted is None:
        return None
    if entry.anonymous and entry.released_at is not None:
        message = await release_message(session, contract, entry.released_at)
    else:
        target = await feedback_target(session, contract)
        response = (await responses_of(session=session, ids=[entry.id or 0]))[entry.id or 0]
        blocks = build_attributed_message(
            Shown.of(entry),
            giver=entry.author_id or "",
            target=target,
            feedback_id=entry.id,
            response=response,
        )
        message = Message(text=f"New feedback from <@{entry.author_id}>", blocks=blocks)
    if message is None:
        return None
    return posted[0], posted[1], message


async def refresh_for_amendment(
    services: Services, client: AsyncWebClient, amendment_id: int
) -> None:
    """After an amendment made from feedback is decided, its entry's DM says so."""
    async with services.sessions() as session:
        entries = await entries_of_amendment(session=session, amendment_id=amendment_id)
    if entries:
        await refresh_posted(services, client, [e.id or 0 for e in entries])


async def tell_giver(services: Services, client: AsyncWebClient, acked: Acked) -> None:
    """The giver of a named entry hears, once, that the leader acknowledged it. The giver of
    an anonymous one is nobody the bot knows: nothing is sent."""
    if acked.giver is None or not acked.first:
        return
    message = Message(
        text=f"<@{acked.leader_id}> acknowledged your feedback",
        blocks=build_ack_notice(
            leader=acked.leader_id, given_on=acked.given_on, expectation_key=acked.expectation_key
        ),
    )
    key = DeliveryKey(ACK_NOTICE, acked.contract_id, acked.giver, notice_period(acked.feedback_id))
    await _notice(services, client, key, message)


async def feedback_job(run: JobRun) -> str:
    """Release anonymous feedback that is due, ask reviewers on cadence, send reminders."""
    released = await release_all(services=run.services, client=run.client, force=run.force)
    asked = await ask_on_cadence(services=run.services, client=run.client, force=run.force)
    reminded = await send_reminders(services=run.services, client=run.client, force=run.force)
    return f"releases: {released}; requests: {asked}; reminders: {reminded}"
