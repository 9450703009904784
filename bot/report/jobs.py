"""Posting the period report in Slack: on request (`/contract report`) and on the cadence the
governance names (the `reports` job).

A report is Block Kit messages (the portfolio's totals, then each contract with its charts)
and two files, the CSV and the PDF, shared with `files_upload_v2`. People are named as
Slack names them (`users.info`); whoever it cannot name is "someone Slack could not name",
never an id.

On request the files go first: sharing them is what tells whether the bot may post in the
channel (`not_in_channel`, `channel_not_found`, `is_archived`), so a refused channel gets
nothing at all; then the messages.

On the cadence. Each contract whose governance has `report.cadence` reports to its channel,
or else by DM to each of its report readers; contracts with the same audience and cadence
share one report. When a period has ended, its report goes at 09:00 on the next day in the
audience's zone (a channel: the workspace's default zone; a reader: their own Slack zone).
It is one delivery keyed by the audience and the period (`report`, `#exec`, `2027Q2`), so
it is posted once however many times the job runs, restarts or replicas there are. The
scheduled message is the report cut to one message; its files follow in its thread as a
second delivery (`report_files`) scheduled in the same transaction that marks the message
sent, so a crash between the two resumes with the files, never posting the message again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import delivery
from bot.charts.model import ShownChart
from bot.charts.service import draw_png, show_charts
from bot.core.calendar import local_instant, zone_of
from bot.core.permissions import Refusal
from bot.delivery import DeliveryKey, DeliveryQueue, Message, Outgoing, Report, queue_of
from bot.people.service import cached_zones, real_names, refresh_zones
from bot.report.blocks import report_messages, title_of
from bot.report.model import NO_NAME, Period, Portfolio
from bot.report.render import render_csv
from bot.report.service import (
    build_report,
    overlaps,
    parse_period,
    previous_period,
    report_charts,
)
from bot.scheduler import JobRun
from bot.services import Services
from storage.db import read_only
from storage.models import Delivery, DeliveryStatus
from storage.queries.delivery import finish
from storage.queries.report import contracts_with_report_cadence, report_owners, report_readers

logger = logging.getLogger(__name__)

REPORT = "report"
REPORT_FILES = "report_files"
REPORT_PROBLEM = "report_problem"
MORNING = "09:00"
# A report not posted within a week of its morning (the bot was down) is given up: the
# next period's comes, and `/contract report PERIOD` still makes any period's.
USEFUL = timedelta(days=7)
FILES_RETRY = timedelta(minutes=5)
# On request, at most this many messages: the rest is in the PDF.
MOST_MESSAGES = 5

CHANNEL_REFUSALS = {
    "not_in_channel": "I'm not in {channel}: add me with `/invite @North Star` there, then "
    "ask again.",
    "channel_not_found": "I can't find {channel}, or it is private and I'm not in it: add me "
    "with `/invite @North Star` there, then ask again.",
    "is_archived": "{channel} is archived: pick another channel.",
}


# What a governance form says of a report channel the bot cannot report to.
CHANNEL_PROBLEMS = {
    "channel_not_found": "I can't find this channel, or it is private and I'm not in it: add "
    "me with /invite @North Star there, or choose another.",
    "is_archived": "This channel is archived: choose another.",
    "not_in_channel": "I'm not in this channel, so the report's PDF and CSV could not be "
    "shared there: add me with /invite @North Star there, or choose another.",
    "unchecked": "Slack did not answer about this channel in time: please submit again.",
}


async def report_channel_problem(client: AsyncWebClient, channel: str) -> str | None:
    """Why the report cannot go to `channel` (`conversations.info`), or None when it can:
    the channel must exist for the bot, not be archived, and have the bot in it."""
    try:
        answer = await client.conversations_info(channel=channel)
    except SlackApiError as error:
        code = error.response.get("error")
        if code not in CHANNEL_PROBLEMS:
            logger.warning("conversations.info for %s: %s", channel, code)
        return CHANNEL_PROBLEMS.get(str(code), CHANNEL_PROBLEMS["channel_not_found"])
    except (SlackClientError, aiohttp.ClientError, TimeoutError):
        logger.warning("conversations.info for %s failed", channel, exc_info=True)
        return CHANNEL_PROBLEMS["unchecked"]
    found = answer.get("channel")
    if not isinstance(found, dict) or found.get("is_im") or found.get("is_mpim"):
        return CHANNEL_PROBLEMS["channel_not_found"]
    if found.get("is_archived"):
        return CHANNEL_PROBLEMS["is_archived"]
    if not found.get("is_member"):
        return CHANNEL_PROBLEMS["not_in_channel"]
    return None


# --- making one -----------------------------------------------------------------------------


def pdf_of(portfolio: Portfolio) -> bytes:
    """`bot.report.pdf.render_pdf`, imported when a report is first made, not at start."""
    from bot.report.pdf import render_pdf

    return render_pdf(portfolio)


async def make_portfolio(
    *,
    services: Services,
    client: AsyncWebClient,
    period: Period,
    contract_ids: Sequence[int],
) -> tuple[Portfolio, list[Any]]:
    """The report of those contracts for the period, with names and chart images; and the
    charts, to be shown in Slack."""
    zone = ZoneInfo(services.settings.default_timezone)
    today = services.clock.now().astimezone(zone).date()
    async with services.sessions() as session:
        await read_only(session)
        reports = await build_report(
            session=session, period=period, today=today, zone=zone, contract_ids=contract_ids
        )
        charts = await report_charts(session=session, reports=reports)
    people = [p for r in reports for p in r.people] + [
        line.reviewer for r in reports for line in r.reviews
    ]
    names = await real_names(client, people)
    drawn = await asyncio.gather(*(asyncio.to_thread(draw_png, chart) for chart in charts))
    images: dict[int, list[tuple[str, bytes]]] = {}
    for chart, png in zip(charts, drawn, strict=True):
        images.setdefault(chart.contract_id, []).append((chart.title, png))
    portfolio = Portfolio(
        period=period,
        reports=reports,
        today=today,
        names={p: names.get(p, NO_NAME) for p in people},
        images=images,
    )
    return portfolio, charts


async def report_files(portfolio: Portfolio) -> list[dict[str, Any]]:
    """The CSV and the PDF, as `files_upload_v2` takes them."""
    pdf = await asyncio.to_thread(pdf_of, portfolio)
    csv = render_csv(portfolio.period, portfolio.reports, portfolio.names, ids=False)
    stem = f"northstar-report-{portfolio.period.key}"
    return [
        {"filename": f"{stem}.pdf", "content": pdf, "title": f"{title_of(portfolio)} (PDF)"[:250]},
        {
            "filename": f"{stem}.csv",
            "content": csv.encode(),
            "title": f"{title_of(portfolio)} (CSV)"[:250],
        },
    ]


def by_contract(shown: Sequence[ShownChart]) -> dict[int, list[ShownChart]]:
    found: dict[int, list[ShownChart]] = {}
    for chart in shown:
        found.setdefault(chart.contract_id, []).append(chart)
    return found


@dataclass(frozen=True, slots=True)
class Posted:
    channel: str
    ts: str
    messages: int


async def publish(
    *,
    services: Services,
    client: AsyncWebClient,
    portfolio: Portfolio,
    charts: Sequence[Any],
    channel: str,
    shown_as: str,
) -> Posted | Refusal:
    """Share the files in `channel`, then post the report's messages there; a Refusal (and
    nothing posted) when Slack will not let the bot post there. `shown_as`: how the channel
    is named to the person (`<#C123>`)."""
    files = await report_files(portfolio)
    try:
        await client.files_upload_v2(
            file_uploads=files,
            channel=channel,
            initial_comment=f"{title_of(portfolio)}: the PDF for the board pack, and the CSV.",
        )
    except SlackApiError as error:
        code = str(error.response.get("error") or "")
        if code in CHANNEL_REFUSALS:
            return Refusal(CHANNEL_REFUSALS[code].format(channel=shown_as))
        raise
    shown = await show_charts(services=services, client=client, charts=charts)
    messages = report_messages(portfolio, by_contract(shown), most=MOST_MESSAGES)
    first: dict[str, Any] = {}
    for blocks in messages:
        answer = await client.chat_postMessage(
            channel=channel, text=title_of(portfolio), blocks=[b.to_dict() for b in blocks]
        )
        first = first or {"channel": answer["channel"], "ts": answer["ts"]}
    return Posted(first.get("channel", channel), first.get("ts", ""), len(messages))


# --- on the cadence -------------------------------------------------------------------------


@dataclass
class DueReport:
    """One audience's report of one period: the contracts it covers, when it is due."""

    recipient: str  # a channel id, or a reader's user id (then it goes by DM)
    to_channel: bool
    period: Period
    due_at: datetime
    contract_ids: list[int] = field(default_factory=list)

    @property
    def key(self) -> DeliveryKey:
        return DeliveryKey(REPORT, 0, self.recipient, self.period.key)


async def due_reports(
    *, services: Services, client: AsyncWebClient | None, now: datetime
) -> list[DueReport]:
    """Every audience whose last period's report is due (its morning has come)."""
    default = ZoneInfo(services.settings.default_timezone)
    async with services.sessions() as session:
        await read_only(session)
        contracts = await contracts_with_report_cadence(session=session)
        readers = await report_readers(
            session=session, contract_ids=[c.id or 0 for c in contracts if not c.report_channel]
        )
    audiences: dict[tuple[str, bool, str], list[int]] = {}
    for c in contracts:
        cadence = c.report_cadence or "quarterly"
        targets = [(c.report_channel, True)] if c.report_channel else []
        targets += [(r, False) for r in readers.get(c.id or 0, []) if not c.report_channel]
        for recipient, to_channel in targets:
            audiences.setdefault((recipient, to_channel, cadence), []).append(c.id or 0)
    people = sorted({r for r, to_channel, _ in audiences if not to_channel})
    if client is not None and people:
        await refresh_zones(sessions=services.sessions, client=client, user_ids=people, now=now)
    async with services.sessions() as session:
        await read_only(session)
        known = await cached_zones(session=session, user_ids=people)
    by_id = {c.id or 0: c for c in contracts}
    due = []
    for (recipient, to_channel, cadence), ids in audiences.items():
        zone = default if to_channel else (zone_of(known.get(recipient)) or default)
        period = previous_period(cadence, now.astimezone(zone).date())
        due_at = local_instant(period.end + timedelta(days=1), MORNING, zone)
        ran = [cid for cid in ids if overlaps(by_id[cid], period, default)]
        if now >= due_at and ran:
            due.append(DueReport(recipient, to_channel, period, due_at, ran))
    return due


def report_outgoing(services: Services, queue: DeliveryQueue, due: DueReport) -> Outgoing:
    """The report cut to one message, built when claimed; its files are scheduled with it."""

    async def build(_: Delivery) -> Message | None:
        portfolio, charts = await make_portfolio(
            services=services, client=queue.client, period=due.period, contract_ids=due.contract_ids
        )
        if not portfolio.reports:
            return None
        shown = await show_charts(services=services, client=queue.client, charts=charts)
        (first,) = report_messages(portfolio, by_contract(shown), most=1)
        return Message(title_of(portfolio), first)

    async def after_sent(session: AsyncSession, sent: Delivery) -> None:
        await delivery.schedule(
            session=session,
            key=DeliveryKey(REPORT_FILES, 0, due.recipient, due.period.key),
            due_at=sent.sent_at or sent.claimed_at,
            payload={
                "channel": sent.slack_channel,
                "ts": sent.slack_ts,
                "contracts": due.contract_ids,
            },
            expires_at=due.due_at + USEFUL,
        )

    async def undeliverable(failed: Delivery, error: str) -> None:
        logger.warning("The report %s could not be posted: %s", due.key, error)
        where = f"in <#{due.recipient}>" if due.to_channel else f"to <@{due.recipient}>"
        await tell_owners(
            services,
            queue,
            due.contract_ids,
            key=f"{due.recipient}:{due.period.key}",
            text=(
                f"The {due.period.label} report could not be posted {where} ({error}). "
                + (
                    "Invite me there (`/invite @North Star`), or choose another channel with "
                    "`/contract amend` → Governance."
                    if due.to_channel
                    else "They may have left the workspace: change the report's readers "
                    "with `/contract amend` → Governance."
                )
            ),
        )

    return Outgoing(
        key=due.key,
        build=build,
        channel=due.recipient if due.to_channel else None,
        after_sent=after_sent,
        on_undeliverable=undeliverable,
        expires_at=due.due_at + USEFUL,
    )


async def tell_owners(
    services: Services, queue: DeliveryQueue, contract_ids: Sequence[int], *, key: str, text: str
) -> None:
    """DM the owners of the contracts a scheduled report covers (their sponsors where none)
    that it went wrong, once for each report (`key`): nobody else would notice."""
    async with services.sessions() as session:
        await read_only(session)
        owners = await report_owners(session=session, contract_ids=contract_ids)
    for owner in owners:
        await queue.deliver(
            Outgoing(
                key=DeliveryKey(REPORT_PROBLEM, 0, owner, key),
                build=delivery.fixed(Message(text)),
                expires_at=services.clock.now() + delivery.NOTICE_USEFUL,
            )
        )


async def send_files(
    *, services: Services, client: AsyncWebClient, owner: str, queue: DeliveryQueue | None = None
) -> int:
    """Share the files of every report posted whose files have not gone yet, in its thread."""
    now = services.clock.now()
    sent = 0
    for row in await delivery.due_scheduled(sessions=services.sessions, kind=REPORT_FILES, now=now):
        claimed = await delivery.claim_due(
            sessions=services.sessions, delivery_id=row.id or 0, now=now, owner=owner
        )
        if claimed is None:
            continue
        payload = claimed.payload or {}
        values: dict[str, Any]
        try:
            portfolio, _ = await make_portfolio(
                services=services,
                client=client,
                period=parse_period(claimed.period_key),
                contract_ids=[int(c) for c in payload.get("contracts") or []],
            )
            await client.files_upload_v2(
                file_uploads=await report_files(portfolio),
                channel=str(payload.get("channel") or ""),
                thread_ts=str(payload.get("ts") or "") or None,
                initial_comment="The PDF and the CSV of this report.",
            )
        except Exception as error:
            logger.warning("The files of %s did not go: %s", claimed.period_key, error)
            code = error.response.get("error") if isinstance(error, SlackApiError) else None
            if queue is not None and code in CHANNEL_REFUSALS:
                channel = str(payload.get("channel") or "")
                await tell_owners(
                    services,
                    queue,
                    [int(c) for c in payload.get("contracts") or []],
                    key=f"files:{channel}:{claimed.period_key}",
                    text=(
                        f"The {parse_period(claimed.period_key).label} report is in "
                        f"<#{channel}>, but its PDF and "
                        f"CSV could not be shared there ({code}): invite me to the channel "
                        f"(`/invite @North Star`), or run `/contract report "
                        f"{claimed.period_key}` to get them in your DM."
                    ),
                )
            values = {
                "status": DeliveryStatus.failed,
                "last_error": str(code or type(error).__name__)[:200],
                "retry_at": now + FILES_RETRY,
            }
        else:
            values = {"status": DeliveryStatus.sent, "sent_at": now, "last_error": None}
            sent += 1
        await finish(
            sessions=services.sessions, delivery_id=claimed.id or 0, owner=owner, values=values
        )
    return sent


async def send_reports(*, services: Services, client: AsyncWebClient) -> Report:
    """Post every report whose period has ended and whose morning has come, once; then the
    files of every report posted."""
    now = services.clock.now()
    queue = queue_of(services, client)
    try:
        for due in await due_reports(services=services, client=client, now=now):
            if services.stopping.is_set() or queue.stopped is not None:
                break
            await queue.deliver(report_outgoing(services, queue, due))
        await send_files(services=services, client=queue.client, owner=queue.owner, queue=queue)
    finally:
        await queue.close()
    return queue.report


async def reports_job(run: JobRun) -> Report:
    return await send_reports(services=run.services, client=run.client)
