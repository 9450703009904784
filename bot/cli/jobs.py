"""`northstar jobs list|run NAME [--now]`: the scheduler's jobs, once, for operators and tests."""

from __future__ import annotations

import argparse
import sys

from bot.client import create_client
from bot.core.clock import SystemClock
from bot.jobs import JOBS
from bot.scheduler import JobRun
from bot.services import Services
from bot.settings import Settings
from storage.db import database
from storage.migrate import upgrade


async def run_jobs_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.jobs_command == "list":
        for name in sorted(JOBS):
            print(f"{name}\tevery {JOBS[name].every_seconds} s")
        return 0
    job = JOBS.get(args.name)
    if job is None:
        known = ", ".join(sorted(JOBS)) or "none"
        print(f"northstar: no job named {args.name!r} (known: {known}).", file=sys.stderr)
        return 2
    settings.require_slack()
    await upgrade(settings.database_url)
    async with database(settings.database_url) as (_engine, sessions):
        services = Services(settings=settings, sessions=sessions, clock=SystemClock())
        result = await job.run(
            JobRun(services=services, client=create_client(settings), force=args.now)
        )
    if result is not None:
        print(result)
    return 0
