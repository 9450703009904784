"""`northstar report --period 2027Q2|2027-05|2027 [--format md|csv] [--out FILE]`."""

from __future__ import annotations

import argparse
from zoneinfo import ZoneInfo

from bot.cli.output import EXIT_OK, write_output
from bot.core.clock import SystemClock
from bot.report.model import Period
from bot.report.render import render_csv, render_markdown
from bot.report.service import build_report, parse_period
from bot.settings import Settings
from storage.db import database
from storage.migrate import require_current


def period_argument(text: str) -> Period:
    """argparse's `type` for --period: a bad period exits 2 with the sentence."""
    try:
        return parse_period(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


async def run_report_command(args: argparse.Namespace, settings: Settings) -> int:
    zone = ZoneInfo(settings.default_timezone)
    today = SystemClock().now().astimezone(zone).date()
    await require_current(settings.database_url)
    async with database(settings.database_url) as (_engine, sessions), sessions() as session:
        reports = await build_report(session=session, period=args.period, today=today, zone=zone)
    if args.format == "csv":
        output = render_csv(args.period, reports)
    else:
        output = render_markdown(args.period, reports, today=today)
    write_output(output, args.out)
    return EXIT_OK
