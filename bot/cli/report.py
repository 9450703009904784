"""`northstar report --period 2027Q2|2027-05|2027 [--format md|csv] [--out FILE]`.

People are named as Slack names them (`users.info`, with SLACK_BOT_TOKEN), or by their user
ids, said so, without it. Against a sandbox's database, "today" is the sandbox's clock and
the names are its people's (`bot.sandbox.state`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from bot.cli.output import EXIT_OK, write_output
from bot.client import create_client
from bot.core.clock import SystemClock
from bot.people.service import real_names
from bot.report.model import ContractReport, Period
from bot.report.render import Names, day_text, render_csv, render_markdown
from bot.report.service import build_report, parse_period
from bot.sandbox.state import SavedSandbox, saved_beside
from bot.settings import Settings
from storage.db import database
from storage.migrate import require_current


def period_argument(text: str) -> Period:
    """argparse's `type` for --period: a bad period exits 2 with the sentence."""
    try:
        return parse_period(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


async def people_names(
    reports: Sequence[ContractReport], settings: Settings, sandbox: SavedSandbox | None
) -> Names:
    """The names of the reports' people: the sandbox's, Slack's, or None without a token."""
    if sandbox is not None:
        return sandbox.names
    if settings.slack_bot_token is None:
        return None
    people = sorted({r.leader for r in reports} | {r.sponsor for r in reports})
    return await real_names(create_client(settings), people)


async def run_report_command(args: argparse.Namespace, settings: Settings) -> int:
    zone = ZoneInfo(settings.default_timezone)
    sandbox = saved_beside(settings.database_url)
    today = (sandbox.clock if sandbox else SystemClock().now()).astimezone(zone).date()
    if sandbox is not None:
        print(
            f"northstar: this is the sandbox's database: today is {day_text(today)} by its "
            f"clock, and its people are named from {sandbox.path}.",
            file=sys.stderr,
        )
    await require_current(settings.database_url)
    async with database(settings.database_url) as (_engine, sessions), sessions() as session:
        reports = await build_report(session=session, period=args.period, today=today, zone=zone)
    names = await people_names(reports, settings, sandbox)
    if args.format == "csv":
        output = render_csv(args.period, reports, names)
    else:
        output = render_markdown(args.period, reports, today=today, names=names)
    write_output(output, args.out)
    return EXIT_OK
