"""The `northstar` command line: run the bot, manage the database, move contracts in and out."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.cli.output import EXIT_CONFIG, EXIT_OK
from bot.settings import Settings, SettingsError, configure_logging, load_settings
from storage.db import DatabaseNotWritable

SANDBOX_HINT = (
    "No Slack workspace yet? `northstar sandbox` (or `make run` with no Slack token set) runs "
    "the bot with a local Slack in your browser."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="northstar", description="Leadership performance contracts, run inside Slack."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "run", help="start the bot with its scheduler (needs the Slack tokens; see `sandbox`)"
    )
    sandbox = commands.add_parser(
        "sandbox", help="the bot in a local Slack in your browser: no workspace or token needed"
    )
    sandbox.add_argument(
        "--empty", action="store_true", help="a blank workspace: the people, no contract"
    )
    sandbox.add_argument(
        "--reset", action="store_true", help="forget the sandbox's data and start afresh"
    )
    sandbox.add_argument(
        "--port", type=int, help="the page's port on 127.0.0.1 (default SANDBOX_PORT, 8080)"
    )

    db = commands.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    db.add_parser("upgrade", help="apply the schema migrations (one process at a time)")
    backup = db.add_parser("backup", help="copy a live SQLite database to PATH")
    backup.add_argument("path", type=Path)

    jobs = commands.add_parser(
        "jobs", help="run a scheduled job once, or see the delivery queue"
    ).add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    run_job = jobs.add_parser("run", help="run one job now (see `northstar jobs list`)")
    run_job.add_argument("name")
    run_job.add_argument(
        "--now", action="store_true", help="every active contract counts as due this period"
    )
    jobs.add_parser("list", help="the jobs the scheduler runs")
    jobs.add_parser(
        "status",
        help="deliveries per kind and status, the oldest pending, and those given up",
    )

    contract = commands.add_parser("contract", help="validate, import and export contracts")
    actions = contract.add_subparsers(dest="contract_command", required=True, metavar="ACTION")
    validate = actions.add_parser("validate", help="check a contract file without storing it")
    validate.add_argument("file", type=Path)
    importer = actions.add_parser("import", help="store (or update) the contracts of a file")
    importer.add_argument("file", type=Path)
    how = importer.add_mutually_exclusive_group()
    how.add_argument(
        "--agreed",
        action="store_true",
        help="its leader, sponsor and owner agreed outside Slack: store it active "
        "(recorded in the audit log, naming who ran the import)",
    )
    how.add_argument(
        "--draft", action="store_true", help="import as a draft, not sent for agreement"
    )
    exporter = actions.add_parser("export", help="write contracts in the import format")
    exporter.add_argument("--format", choices=("yaml", "json", "csv"), default="yaml")
    exporter.add_argument("--out", type=Path, help="file to write (default: standard output)")
    exporter.add_argument("--contract", type=int, action="append", dest="contract_ids")
    exporter.add_argument("--leader", help="only this leader's contracts (Slack user id)")
    closer = actions.add_parser("close", help="close an active contract: its loops stop")
    closer.add_argument("contract_id", type=int, metavar="ID", help="the contract's id")
    closer.add_argument("--reason", default="", help="why it closes (kept in its record)")

    privacy = commands.add_parser("privacy", help="export or erase what is stored about a person")
    steps = privacy.add_subparsers(dest="privacy_command", required=True, metavar="ACTION")
    person_export = steps.add_parser("export", help="everything stored about USER, as JSON")
    person_export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    person_erase = steps.add_parser("erase", help="remove what USER wrote; unname them elsewhere")
    for step in (person_export, person_erase):
        step.add_argument("user", help="Slack user id (U…)")
        step.add_argument("--team", help="workspace id (T…); default: asked of Slack (auth.test)")

    report = commands.add_parser("report", help="each contract's figures for a period, in brief")
    report.add_argument(
        "--period", required=True, type=_period, help="a quarter (2027Q2), month (2027-05) or year"
    )
    report.add_argument("--format", choices=("md", "csv"), default="md")
    report.add_argument("--out", type=Path, help="file to write (default: standard output)")
    return parser


def _period(text: str) -> object:
    """`--period`, read by bot.report (imported only when a report is asked for)."""
    from bot.cli.report import period_argument

    return period_argument(text)


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
    except DatabaseNotWritable as error:
        print(f"northstar: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "sandbox":
        from bot.sandbox.runtime import SandboxOptions, run_sandbox

        port = getattr(args, "port", None)
        return run_sandbox(
            settings,
            SandboxOptions(
                port=settings.sandbox_port if port is None else port,
                empty=getattr(args, "empty", False),
                reset=getattr(args, "reset", False),
            ),
        )
    if args.command == "run":
        from bot.runtime import run_bot

        # A deploy whose secrets did not load must fail, not come up talking to a fake Slack.
        try:
            settings.require_slack()
        except SettingsError as error:
            raise SettingsError([*error.problems, SANDBOX_HINT]) from None
        asyncio.run(run_bot(settings))
        return EXIT_OK
    if args.command == "db":
        from bot.cli.db import run_db_command

        return run_db_command(args, settings)
    if args.command == "jobs":
        from bot.cli.jobs import run_jobs_command

        return _current_schema(lambda: asyncio.run(run_jobs_command(args, settings)))
    if args.command == "privacy":
        from bot.cli.privacy import run_privacy_command

        return _current_schema(lambda: asyncio.run(run_privacy_command(args, settings)))
    if args.command == "report":
        from bot.cli.report import run_report_command

        return _current_schema(lambda: asyncio.run(run_report_command(args, settings)))
    from bot.cli.contract import run_contract_command

    return _current_schema(lambda: asyncio.run(run_contract_command(args, settings)))


def _current_schema(command: Callable[[], int]) -> int:
    """Run a command whose read-only actions refuse a schema that is not at the head."""
    from storage.migrate import SchemaNotCurrent

    try:
        return command()
    except SchemaNotCurrent as error:
        print(f"northstar: {error}.", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    raise SystemExit(main())
