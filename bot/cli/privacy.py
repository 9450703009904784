"""`northstar privacy export|erase USER`: what is kept about a person, as JSON, or erased."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sqlite3
import sys

from sqlalchemy.exc import SQLAlchemyError

from bot.cli.output import EXIT_CONFIG, EXIT_OK, EXIT_PROBLEMS, write_output
from bot.client import create_client
from bot.core.clock import SystemClock
from bot.core.permissions import Refusal
from bot.feedback.jobs import retract_posted
from bot.privacy.keys import KeyUnavailable, feedback_key
from bot.privacy.model import Gone
from bot.privacy.service import erase_person, export_person
from bot.services import Services
from bot.settings import Settings
from storage.db import SessionFactory, database, is_sqlite, sqlite_path, writing
from storage.migrate import require_current, upgrade

logger = logging.getLogger(__name__)


async def _team_of(args: argparse.Namespace, settings: Settings) -> str | None:
    if args.team:
        return str(args.team)
    if not settings.slack_bot_token:
        return None
    try:
        answer = await create_client(settings).auth_test()
    except Exception as error:  # any failure to reach Slack: say so, don't trace
        print(f"northstar: could not ask Slack for the workspace id: {error}", file=sys.stderr)
        return None
    team = answer.get("team_id")
    return str(team) if team else None


async def run_privacy_command(args: argparse.Namespace, settings: Settings) -> int:
    user = str(args.user).strip()
    if not re.fullmatch(r"[UW][A-Z0-9]{2,31}", user):
        print(f"northstar: {user!r} is not a Slack user id (U…).", file=sys.stderr)
        return EXIT_PROBLEMS
    team = await _team_of(args, settings)
    if team is None:
        print(
            "northstar: the workspace id is needed to find anonymous entries: pass --team T… "
            "or set SLACK_BOT_TOKEN.",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        key = feedback_key(settings, create=False)
    except KeyUnavailable as problem:
        print(f"northstar: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if args.privacy_command == "export":
        await require_current(settings.database_url)  # an export only reads: it never migrates
    else:
        await upgrade(settings.database_url)
    now = SystemClock().now()
    async with database(settings.database_url) as (_engine, sessions):
        async with sessions() as session:
            await writing(session)
            if args.privacy_command == "export":
                data = await export_person(session=session, user=user, team=team, key=key, now=now)
                output = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
                write_output(output, args.out)
                return EXIT_OK
            try:
                erased = await erase_person(session=session, user=user, team=team, key=key, now=now)
            except SQLAlchemyError:
                logger.exception("Erasure failed; nothing was changed")
                return EXIT_PROBLEMS
        if isinstance(erased, Refusal):
            print(f"northstar: {erased.text}", file=sys.stderr)
            return EXIT_PROBLEMS
        left_in_slack = await _retract(settings, sessions, erased.posted)
    journal_emptied = _empty_journal(settings)
    for label, counts in (("Deleted", erased.deleted), ("Unnamed", erased.anonymised)):
        listed = ", ".join(f"{n} {table}" for table, n in sorted(counts.items())) or "nothing"
        print(f"{label}: {listed}.")
    if erased.previously:
        print(f"{user} had been erased before ({len(erased.previously)} time(s)).")
    print("The erasure is in the audit log, under a keyed hash instead of the user id.")
    code = EXIT_OK
    if erased.posted and not left_in_slack:
        print("The bot's messages in Slack that carried their feedback are redacted.")
    if left_in_slack:
        print(
            "northstar: these messages of the bot still carry their feedback (channel/ts); "
            f"delete them in Slack: {', '.join(left_in_slack)}",
            file=sys.stderr,
        )
        code = EXIT_PROBLEMS
    if journal_emptied is False:
        print(
            "northstar: the SQLite write-ahead log could not be emptied while another process "
            "read it: stop the bot and run `northstar privacy erase` again to clear it.",
            file=sys.stderr,
        )
        code = EXIT_PROBLEMS
    elif journal_emptied is None:
        print(
            "On PostgreSQL the deleted rows stay on disk until VACUUM reuses their space; "
            "VACUUM FULL feedback, evidence and audit_event to drop them now."
        )
    return code


async def _retract(settings: Settings, sessions: SessionFactory, posted: list[Gone]) -> list[str]:
    """Redact the bot's messages that carried erased words; the ones it could not."""
    if not posted:
        return []
    services = Services(settings=settings, sessions=sessions, clock=SystemClock())
    client = create_client(settings) if settings.slack_bot_token else None
    return await retract_posted(services, client, posted)


def _empty_journal(settings: Settings) -> bool | None:
    """SQLite: move the write-ahead log into the database and truncate it, so erased text is
    in neither file (secure_delete zeroed it in the pages). None on PostgreSQL."""
    path = sqlite_path(settings.database_url) if is_sqlite(settings.database_url) else None
    if path is None:
        return None
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
        busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    return not busy
