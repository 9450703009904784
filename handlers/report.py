"""`/contract report [2027Q2|2027-05|2027] [#channel]`: the period report of the contracts the
requester governs (owns, or reads the report of), posted in a channel or in their DM."""

from __future__ import annotations

import logging
import re
from zoneinfo import ZoneInfo

from bot.core.permissions import Refusal
from bot.core.text import escape, truncate
from bot.report.jobs import make_portfolio, publish
from bot.report.model import Period
from bot.report.service import PERIOD_HELP, contracts_for_reader, parse_period, quarter_period
from handlers.common import CommandRequest, Subcommand
from storage.db import read_only

logger = logging.getLogger(__name__)

EXAMPLE = "`/contract report 2027Q2 #exec-reports`"
# A channel as Slack escapes it in a command's text: <#C0123ABCD|name> or <#C0123ABCD>.
CHANNEL = re.compile(r"^<#([CG][A-Z0-9]{2,31})(?:\|([^>]*))?>$")


def parse_arguments(args: list[str], default: Period) -> tuple[Period, str | None] | Refusal:
    """The period (`default` when none is given) and the channel id, or why they can't be read."""
    period: Period | None = None
    channel: str | None = None
    for arg in args:
        shown = escape(truncate(arg, 40))
        if match := CHANNEL.fullmatch(arg):
            if channel is not None:
                return Refusal(f"Name one channel at most, like {EXAMPLE}.")
            channel = match[1]
        elif arg.startswith("#"):
            return Refusal(
                f"I can't find the channel “{shown}”: pick it from Slack's list as you type "
                f"`#`, like {EXAMPLE}."
            )
        elif arg.startswith("<"):
            return Refusal(f"“{shown}” is not a period or a channel: try {EXAMPLE}.")
        else:
            if period is not None:
                return Refusal(f"Give one period at most: {PERIOD_HELP}.")
            try:
                period = parse_period(arg)
            except ValueError:
                return Refusal(f"“{shown}” is not a period: give {PERIOD_HELP}, like {EXAMPLE}.")
    return period or default, channel


async def report_command(request: CommandRequest) -> None:
    services = request.services
    parsed = parse_arguments(request.args, quarter_period(services.today()))
    if isinstance(parsed, Refusal):
        await request.reply(parsed.text)
        return
    period, channel = parsed
    zone = ZoneInfo(services.settings.default_timezone)
    async with services.sessions() as session:
        await read_only(session)
        contract_ids = await contracts_for_reader(
            session=session, viewer=request.viewer, period=period, zone=zone
        )
    if isinstance(contract_ids, Refusal):
        await request.reply(contract_ids.text)
        return
    where = f"<#{channel}>" if channel else "your DM with me"
    count = len(contract_ids)
    await request.reply(
        f"Making the report for {period.label} ({count} contract{'s' if count != 1 else ''}); "
        f"it goes to {where} with its PDF and CSV in a moment."
    )
    try:
        portfolio, charts = await make_portfolio(
            services=services, client=request.client, period=period, contract_ids=contract_ids
        )
        target = channel
        if target is None:
            opened = await request.client.conversations_open(users=request.viewer)
            target = str(opened["channel"]["id"])
        posted = await publish(
            services=services,
            client=request.client,
            portfolio=portfolio,
            charts=charts,
            channel=target,
            shown_as=where,
        )
    except Exception:
        logger.exception("The report for %s could not be posted", period.key)
        await request.reply("Something went wrong posting the report; please try again.")
        return
    if isinstance(posted, Refusal):
        await request.reply(posted.text)
        return
    if channel is not None:
        await request.reply(f"The report for {period.label} is in <#{channel}>.")


SUBCOMMANDS = (
    Subcommand(
        "report",
        report_command,
        usage="report [2027Q2|2027-05|2027] [#channel]",
        summary="the period report of the contracts you own or read the report of, with its "
        "PDF and CSV (default: this quarter; to your DM when no channel is named)",
    ),
)
