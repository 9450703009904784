"""`northstar jobs list|run NAME [--now]|status`: the scheduler's jobs, once, and the state of
the delivery queue, for operators and tests."""

from __future__ import annotations

import argparse
import sys

from bot.client import create_client
from bot.core.clock import SystemClock
from bot.delivery import QueueStatus, queue_status, waiting_since
from bot.jobs import JOBS
from bot.leadership import leader_status
from bot.scheduler import JobRun
from bot.services import Services
from bot.settings import Settings
from storage.db import database, read_only
from storage.migrate import require_current, upgrade
from storage.models import Delivery


async def run_jobs_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.jobs_command == "list":
        for name in sorted(JOBS):
            print(f"{name}\tevery {JOBS[name].every_seconds} s")
        return 0
    if args.jobs_command == "status":
        await require_current(settings.database_url)  # it only reads: never migrates
        async with (
            database(settings.database_url) as (_engine, sessions),
            sessions() as session,
        ):
            await read_only(session)
            now = SystemClock().now()
            status = await queue_status(session=session, now=now)
            role = await leader_status(session=session, now=now)
        print(role)
        print()
        print(format_status(status))
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


def format_status(status: QueueStatus) -> str:
    """The delivery queue for an operator: counts, what waits longest, what was given up."""
    kinds = sorted({kind for kind, _ in status.counts})
    states = sorted({state for _, state in status.counts})
    lines = ["Deliveries by kind and status:"]
    if not kinds:
        lines.append("  none yet")
    else:
        width = max(len(k) for k in kinds)
        lines.append("  " + " " * width + "".join(f" {s:>13}" for s in states))
        for kind in kinds:
            cells = "".join(f" {status.counts.get((kind, s), 0):>13}" for s in states)
            lines.append(f"  {kind:<{width}}{cells}")
    lines += ["", "Oldest pending (due, not sent yet):"]
    lines += [f"  {_describe(row, since=True)}" for row in status.oldest] or ["  none"]
    lines += ["", f"Given up, no longer useful ({status.given_up_total}), newest first:"]
    lines += [f"  {_describe(row, since=False)}" for row in status.given_up] or ["  none"]
    return "\n".join(lines)


def _describe(row: Delivery, *, since: bool) -> str:
    what = f"{row.kind} to {row.recipient_id} for {row.period_key}"
    if row.contract_id:
        what += f" (contract {row.contract_id})"
    when = (
        f"{row.status} since {waiting_since(row):%Y-%m-%d %H:%M} UTC"
        if since
        else f"useful until {row.expires_at:%Y-%m-%d %H:%M} UTC"
        if row.expires_at
        else "no end set"
    )
    parts = [what, when]
    if since and row.expires_at is not None:
        parts.append(f"useful until {row.expires_at:%Y-%m-%d %H:%M} UTC")
    if row.last_error:
        parts.append(f"last error: {row.last_error}")
    return "; ".join(parts)
