"""`northstar db upgrade|backup PATH`: migrate the schema, copy a live SQLite database."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from pathlib import Path

from bot.cli.output import EXIT_CONFIG, EXIT_OK, EXIT_PROBLEMS
from bot.settings import Settings
from storage.db import create_private_file, is_sqlite, sqlite_path
from storage.migrate import MigrationError, upgrade


def run_db_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.db_command == "upgrade":
        try:
            asyncio.run(upgrade(settings.database_url))
        except MigrationError as error:
            print(f"northstar: {error}.", file=sys.stderr)
            return EXIT_PROBLEMS
        print("Database is up to date.")
        return EXIT_OK
    return backup(settings, args.path)


def backup(settings: Settings, target: Path) -> int:
    """SQLite's online backup: a consistent copy while the bot keeps writing."""
    source = sqlite_path(settings.database_url) if is_sqlite(settings.database_url) else None
    if source is None:
        print(
            "northstar: db backup copies a SQLite file; back PostgreSQL up with pg_dump.",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if not source.exists():
        print(f"northstar: no database at {source}.", file=sys.stderr)
        return EXIT_PROBLEMS
    create_private_file(target)  # a copy of everything people wrote: for this user only
    with sqlite3.connect(source) as live, sqlite3.connect(target) as copy:
        live.backup(copy)
    copy.close()
    live.close()
    print(f"Backed up {source} to {target}.")
    return EXIT_OK
