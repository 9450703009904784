"""The `northstar` command line: run the bot, manage the database, move contracts in and out."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.settings import Settings, SettingsError, configure_logging, load_settings
from storage.db import is_sqlite, sqlite_path

EXIT_OK, EXIT_PROBLEMS, EXIT_CONFIG = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="northstar", description="Leadership performance contracts, run inside Slack."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="start the bot with its scheduler")

    db = commands.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    db.add_parser("upgrade", help="apply the schema migrations")
    backup = db.add_parser("backup", help="copy a live SQLite database to PATH")
    backup.add_argument("path", type=Path)

    jobs = commands.add_parser("jobs", help="run a scheduled job once").add_subparsers(
        dest="jobs_command", required=True, metavar="ACTION"
    )
    run_job = jobs.add_parser("run", help="run one job now (see `northstar jobs list`)")
    run_job.add_argument("name")
    run_job.add_argument(
        "--now", action="store_true", help="every active contract counts as due this period"
    )
    jobs.add_parser("list", help="the jobs the scheduler runs")

    contract = commands.add_parser("contract", help="validate, import and export contracts")
    actions = contract.add_subparsers(dest="contract_command", required=True, metavar="ACTION")
    validate = actions.add_parser("validate", help="check a contract file without storing it")
    validate.add_argument("file", type=Path)
    importer = actions.add_parser("import", help="store (or update) the contracts of a file")
    importer.add_argument("file", type=Path)
    importer.add_argument("--draft", action="store_true", help="import as a draft")
    exporter = actions.add_parser("export", help="write contracts in the import format")
    exporter.add_argument("--format", choices=("yaml", "json", "csv"), default="yaml")
    exporter.add_argument("--out", type=Path, help="file to write (default: standard output)")
    exporter.add_argument("--contract", type=int, action="append", dest="contract_ids")
    exporter.add_argument("--leader", help="only this leader's contracts (Slack user id)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        for problem in error.problems:
            print(f"northstar: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings)
    try:
        return dispatch(args, settings)
    except SettingsError as error:
        for problem in error.problems:
            print(f"northstar: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        from bot.runner import run_bot

        asyncio.run(run_bot(settings))
        return EXIT_OK
    if args.command == "db":
        if args.db_command == "upgrade":
            from storage.migrate import upgrade

            asyncio.run(upgrade(settings.database_url))
            print("Database is up to date.")
            return EXIT_OK
        return backup(settings, args.path)
    if args.command == "jobs":
        from bot.jobs_cli import run_jobs_command

        return asyncio.run(run_jobs_command(args, settings))
    from bot.contract_cli import run_contract_command

    return asyncio.run(run_contract_command(args, settings))


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
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as live, sqlite3.connect(target) as copy:
        live.backup(copy)
    copy.close()
    live.close()
    print(f"Backed up {source} to {target}.")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
