"""`northstar contract validate|import|export|close`: contracts in and out of the database."""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
from typing import Literal

from slack_sdk.web.async_client import AsyncWebClient

from bot.cli.output import EXIT_OK, EXIT_PROBLEMS, write_output
from bot.client import create_client
from bot.contracts.closing import close_contract
from bot.contracts.export import count_contracts, dump_documents, export_contracts, export_csv
from bot.contracts.io import ImportResult, emails_to_look_up, import_file, validate_file
from bot.core.clock import SystemClock
from bot.settings import Settings
from storage.db import SessionFactory, database, writing
from storage.migrate import require_current, upgrade
from storage.models import Contract, ContractStatus

MAX_PRINTED = 100  # problems listed; the count says how many there are


def _client(settings: Settings) -> AsyncWebClient | None:
    """A Web API client to resolve e-mail addresses, when a bot token is configured."""
    return create_client(settings) if settings.slack_bot_token else None


UNCHECKED_NOTE = (
    "Note: without SLACK_BOT_TOKEN nobody was checked with Slack (bots, deactivated and "
    "unknown users are refused only when it is set)."
)


def _report_problems(problems: list[str]) -> int:
    for problem in problems[:MAX_PRINTED]:
        print(problem, file=sys.stderr)
    count = len(problems)
    if count > MAX_PRINTED:
        print(f"…and {count - MAX_PRINTED} more.", file=sys.stderr)
    print(f"{count} problem{'s' if count != 1 else ''}; nothing was written.", file=sys.stderr)
    return EXIT_PROBLEMS


def _count_of(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _nothing_to_export(args: argparse.Namespace) -> str:
    filters = [f"--contract {n}" for n in args.contract_ids or []]
    filters += [f"--leader {args.leader}"] if args.leader else []
    if filters:
        return f"northstar: no contract matches {' '.join(filters)}; nothing was exported."
    return (
        "northstar: no contracts: this database holds none, so nothing was exported "
        "(check DATABASE_URL; `northstar contract import FILE` stores one)."
    )


def _operator() -> str:
    """Who ran the command, for the audit log: the system account and host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"[:64]


def _describe(result: ImportResult) -> str:
    line = f"{result.title} (leader {result.leader_id}): {result.outcome}, version {result.version}"
    details = [f"  {change}" for change in result.changes + result.notes]
    return "\n".join([line, *details])


async def close_by_operator(sessions: SessionFactory, contract_id: int, reason: str) -> int:
    """`northstar contract close ID --reason`: close an active contract, by no Slack user."""
    async with sessions() as session:
        await writing(session)
        contract = await session.get(Contract, contract_id)
        if contract is None:
            print(f"northstar: there is no contract {contract_id}.", file=sys.stderr)
            return EXIT_PROBLEMS
        if contract.status == ContractStatus.closed:
            when = contract.closed_at.date().isoformat() if contract.closed_at else "before"
            print(f"“{contract.title}” (contract {contract_id}) was closed on {when} already.")
            return EXIT_OK
        if contract.status != ContractStatus.active:
            print(
                f"northstar: “{contract.title}” (contract {contract_id}) is a draft, not an "
                "active contract; nothing was closed.",
                file=sys.stderr,
            )
            return EXIT_PROBLEMS
        await close_contract(
            session,
            contract=contract,
            by=None,
            now=SystemClock().now(),
            reason=reason.strip() or "Closed by an operator.",
        )
        await session.commit()
    print(f"“{contract.title}” (contract {contract_id}) is closed: its loops have stopped.")
    return EXIT_OK


async def run_contract_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.contract_command in ("validate", "import") and not settings.slack_bot_token:
        print(UNCHECKED_NOTE, file=sys.stderr)
    if args.contract_command == "validate":
        # Offline, the form is checked and e-mail addresses are left for the import to look up.
        docs, problems = await validate_file(
            args.file, client=_client(settings), defer_lookups=True
        )
        if problems:
            return _report_problems(problems)
        for valid in docs:
            print(f"{args.file}: “{valid.title}” for {valid.leader} is valid.")
            emails = emails_to_look_up(valid)
            if emails:
                print(
                    f"  {_count_of(len(emails), 'e-mail address', 'e-mail addresses')} will be "
                    "looked up in Slack at import (which needs SLACK_BOT_TOKEN): "
                    + ", ".join(f"{email} ({path})" for path, email in emails)
                )
        return EXIT_OK

    if args.contract_command == "close":
        await require_current(settings.database_url)
        async with database(settings.database_url) as (_engine, sessions):
            return await close_by_operator(sessions, args.contract_id, args.reason)

    if args.contract_command == "import":
        await upgrade(settings.database_url)
    else:
        await require_current(settings.database_url)  # an export only reads: it never migrates
    async with database(settings.database_url) as (_engine, sessions):
        if args.contract_command == "import":
            results, problems = await import_file(
                args.file,
                sessions=sessions,
                client=_client(settings),
                draft=not args.agreed,
                for_agreement=not args.draft and not args.agreed,
                operator=_operator(),
                now=SystemClock().now(),
            )
            if problems:
                return _report_problems(problems)
            for result in results:
                print(_describe(result))
            return EXIT_OK

        fmt: Literal["yaml", "json", "csv"] = args.format
        async with sessions() as session:
            if not await count_contracts(
                session=session, contract_ids=args.contract_ids, leader_id=args.leader
            ):
                # Not a header alone and status 0: an empty export is most often the wrong
                # database or filter, and --out would replace a good file with nothing.
                print(_nothing_to_export(args), file=sys.stderr)
                return EXIT_PROBLEMS
            if fmt == "csv":
                output = await export_csv(
                    session=session, contract_ids=args.contract_ids, leader_id=args.leader
                )
            else:
                exported = await export_contracts(
                    session=session, contract_ids=args.contract_ids, leader_id=args.leader
                )
                output = dump_documents(exported, fmt)
    write_output(output, args.out)
    return EXIT_OK
