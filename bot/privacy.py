"""Privacy: the key behind anonymous authors, and `northstar privacy export|erase USER`.

An anonymous feedback entry keeps no author id. It keeps a keyed hash (HMAC-SHA256) of the
workspace, the author and the contract instead: enough for the weekly cap and for
`/feedback mine`, useless without the key. Slack user ids are few and guessable, so an
unkeyed hash would name the author to anyone holding a database dump; the key therefore lives
apart from the database: `FEEDBACK_HASH_KEY` (a secret store, the same on every replica) or,
when unset, a generated file next to the SQLite database (never inside it, so `db backup` and
`pg_dump` do not carry it). Hashing per contract also keeps one author's anonymous entries to
different leaders from being linked to each other in the database.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, String, Table, Text, TypeDecorator, cast, delete, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import storage.models  # noqa: F401  (every table on SQLModel.metadata)
from bot.contracts import Refusal
from bot.settings import Settings
from storage.db import is_sqlite, sqlite_path
from storage.models import AuditEvent, Contract, Evidence, Feedback
from storage.queries import audit

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "feedback_hash.key"
HASH_VERSION = "v1"
ERASED = "[erased user]"
EXIT_OK, EXIT_PROBLEMS, EXIT_CONFIG = 0, 1, 2


class KeyUnavailable(Exception):
    """No FEEDBACK_HASH_KEY and no key file: anonymous authors cannot be matched."""


_keys: dict[tuple[str | None, str], bytes] = {}


def key_file(settings: Settings) -> Path:
    """Where the generated key lives: beside the SQLite database, else ./data."""
    database = sqlite_path(settings.database_url) if is_sqlite(settings.database_url) else None
    folder = database.parent if database is not None else Path("data")
    return folder / KEY_FILE_NAME


def feedback_key(settings: Settings, *, create: bool = True) -> bytes:
    """The secret keying author hashes; generated and kept in a file when not configured.

    `create=False` (the CLI) never makes a new key: a fresh key would match no entry.
    """
    path = key_file(settings)
    cache_key = (settings.feedback_hash_key, str(path.resolve()))
    if cache_key in _keys:
        return _keys[cache_key]
    if settings.feedback_hash_key:
        key = settings.feedback_hash_key.encode()
    else:
        key = _key_from_file(path, create=create, shared_db=not is_sqlite(settings.database_url))
    _keys[cache_key] = key
    return key


def _key_from_file(path: Path, *, create: bool, shared_db: bool) -> bytes:
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        if not create:
            raise KeyUnavailable(
                f"FEEDBACK_HASH_KEY is not set and there is no key file at {path}: "
                "anonymous feedback authors cannot be matched. Run where the bot runs, "
                "or set FEEDBACK_HASH_KEY to the bot's key."
            ) from None
    except ValueError:
        raise KeyUnavailable(f"The key file {path} is not hexadecimal; restore it.") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = secrets.token_hex(32)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(generated + "\n")
    logger.warning(
        "FEEDBACK_HASH_KEY is not set: generated the key for anonymous feedback hashes in %s. "
        "Back it up apart from the database; losing or changing it unlinks authors from their "
        "anonymous entries.%s",
        path,
        " Every replica must share one key: set FEEDBACK_HASH_KEY instead." if shared_db else "",
    )
    return bytes.fromhex(generated)


def keyed(key: bytes, purpose: str, *parts: object) -> str:
    """HMAC-SHA256 of `parts` for one `purpose`, so hashes of different uses never match."""
    message = "\x1f".join([purpose, *(str(p) for p in parts)]).encode()
    return f"{HASH_VERSION}:{hmac.new(key, message, hashlib.sha256).hexdigest()}"


def author_hash(key: bytes, *, team: str, user: str, contract_id: int) -> str:
    """What an anonymous entry keeps instead of its author."""
    return keyed(key, "author", team, user, contract_id)


def answer_mark(key: bytes, *, request_id: int) -> str:
    """Marks that a feedback request was answered anonymously, without saying by whom."""
    return keyed(key, "answered", request_id)


def erasure_mark(key: bytes, *, team: str, user: str) -> str:
    """Lets an operator confirm that one given person was erased, without listing anyone."""
    return keyed(key, "erased", team, user)


async def authored_feedback(
    *, session: AsyncSession, user: str, team: str, key: bytes
) -> list[Feedback]:
    """Every entry `user` wrote: attributed by id, anonymous by the keyed hash."""
    contract_ids = (await session.exec(select(Contract.id))).all()
    hashes = [
        author_hash(key, team=team, user=user, contract_id=cid)
        for cid in contract_ids
        if cid is not None
    ]
    condition = col(Feedback.author_id) == user
    if hashes:
        condition = or_(condition, col(Feedback.author_hash).in_(hashes))
    rows = await session.exec(
        select(Feedback).where(condition).order_by(col(Feedback.created_at), col(Feedback.id))
    )
    return list(rows.all())


# --- what is stored about a person ----------------------------------------------------------


def _mention_pattern(user: str) -> re.Pattern[str]:
    return re.compile(rf"<@{re.escape(user)}(?:\|[^>]*)?>|\b{re.escape(user)}\b")


def _text_columns(table: Table) -> list[Column[Any]]:
    """The columns that can hold a user id or a mention: strings, texts and JSON."""
    found = []
    for column in table.columns:
        kind = column.type
        if isinstance(kind, TypeDecorator):
            kind = kind.impl_instance
        if isinstance(kind, String | JSON):
            found.append(column)
    return found


def _holds(value: Any, user: str) -> bool:
    if isinstance(value, str):
        return user in value
    if isinstance(value, dict):
        return any(_holds(k, user) or _holds(v, user) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds(v, user) for v in value)
    return False


def _scrub(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(ERASED, value)
    if isinstance(value, dict):
        return {_scrub(k, pattern): _scrub(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, pattern) for v in value]
    return value


@dataclass
class Found:
    """One row of some table that holds the person's id somewhere."""

    table: Table
    row: dict[str, Any]
    columns: list[Column[Any]]

    def primary_key(self) -> Any:
        return [column == self.row[column.name] for column in self.table.primary_key.columns]


async def rows_holding(
    session: AsyncSession, user: str, *, skip: Iterable[str] = ()
) -> list[Found]:
    """Every row, in every table, with the user id in a string, text or JSON column."""
    skipped = set(skip)
    found: list[Found] = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name in skipped:
            continue
        columns = _text_columns(table)
        if not columns:
            continue
        query = table.select().where(
            or_(*(cast(column, Text).contains(user, autoescape=True) for column in columns))
        )
        connection = await session.connection()
        for mapping in (await connection.execute(query)).mappings():
            row = dict(mapping)
            holding = [c for c in columns if _holds(row[c.name], user)]
            if holding:
                found.append(Found(table=table, row=row, columns=holding))
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def entry_for_author(entry: Feedback, leaders: dict[int, tuple[str, str]]) -> dict[str, Any]:
    """A written entry as its author may see it (no hash, no other author)."""
    leader, title = leaders.get(entry.contract_id, ("", ""))
    status = (
        "attributed"
        if not entry.anonymous
        else ("anonymous, released" if entry.released_at else "anonymous, held")
    )
    return {
        "id": entry.id,
        "contract_id": entry.contract_id,
        "contract": title,
        "leader": leader,
        "expectation": entry.expectation_key,
        "polarity": entry.polarity,
        "situation": entry.situation,
        "behaviour": entry.behaviour,
        "impact": entry.impact,
        "status": status,
        "date": entry.created_at.date().isoformat(),
    }


async def export_person(
    *, session: AsyncSession, user: str, team: str, key: bytes, now: datetime
) -> dict[str, Any]:
    """Everything stored about `user`, as JSON-ready data; never an anonymous author's name."""
    contracts = list((await session.exec(select(Contract))).all())
    leaders = {c.id or 0: (c.leader_id, c.title) for c in contracts}
    written = await authored_feedback(session=session, user=user, team=team, key=key)
    led = [c.id for c in contracts if c.leader_id == user]
    received_rows = await session.exec(
        select(Feedback)
        .where(
            col(Feedback.contract_id).in_(led),
            or_(col(Feedback.anonymous).is_(False), col(Feedback.released_at).is_not(None)),
        )
        .order_by(col(Feedback.contract_id), col(Feedback.id))
    )
    received = []
    for entry in received_rows.all():
        item: dict[str, Any] = {
            "contract_id": entry.contract_id,
            "expectation": entry.expectation_key,
            "polarity": entry.polarity,
            "situation": entry.situation,
            "behaviour": entry.behaviour,
            "impact": entry.impact,
        }
        if entry.anonymous:
            item["from"] = "anonymous"
            item["released"] = _plain(entry.released_at.date() if entry.released_at else None)
        else:
            item["from"] = entry.author_id
            item["date"] = _plain(entry.created_at)
        received.append(item)
    records: dict[str, list[dict[str, Any]]] = {}
    for found in await rows_holding(session, user, skip={"feedback"}):
        row = {name: _plain(value) for name, value in found.row.items()}
        records.setdefault(found.table.name, []).append(row)
    return {
        "subject": user,
        "workspace": team,
        "exported_at": now.astimezone(UTC).isoformat(),
        "feedback_written": [entry_for_author(e, leaders) for e in written],
        "feedback_received": received,
        "feedback_received_note": (
            "Anonymous feedback is included once released; entries still held under the "
            "anonymity threshold are not."
        ),
        "records": records,
    }


@dataclass
class Erasure:
    deleted: dict[str, int] = field(default_factory=dict)
    anonymised: dict[str, int] = field(default_factory=dict)
    previously: list[datetime] = field(default_factory=list)

    def count(self, bucket: dict[str, int], table: str) -> None:
        bucket[table] = bucket.get(table, 0) + 1


async def erase_person(
    *, session: AsyncSession, user: str, team: str, key: bytes, now: datetime
) -> Erasure | Refusal:
    """Remove what `user` wrote, take their id out of every other row, and log it unnamed.

    A person who still leads or sponsors a contract is refused: those contracts need a new
    leader or sponsor first (a changed file through `northstar contract import`).
    """
    holding = (
        await session.exec(
            select(Contract).where(
                or_(col(Contract.leader_id) == user, col(Contract.sponsor_id) == user)
            )
        )
    ).all()
    if holding:
        names = "; ".join(f"#{c.id} “{c.title}”" for c in holding)
        return Refusal(
            f"{user} still leads or sponsors {names}. Give those contracts a new leader or "
            "sponsor first (re-import the changed file), then erase again."
        )
    result = Erasure()
    mark = erasure_mark(key, team=team, user=user)
    earlier = await session.exec(
        select(AuditEvent).where(
            AuditEvent.action == "privacy.erased", col(AuditEvent.contract_id).is_(None)
        )
    )
    result.previously = [e.created_at for e in earlier.all() if e.detail.get("subject") == mark]

    for entry in await authored_feedback(session=session, user=user, team=team, key=key):
        await session.delete(entry)
        result.count(result.deleted, "feedback")
    added = await session.exec(select(Evidence).where(Evidence.added_by == user))
    for evidence in added.all():
        await session.delete(evidence)
        result.count(result.deleted, "evidence")
    await session.flush()

    pattern = _mention_pattern(user)
    connection = await session.connection()
    for found in await rows_holding(session, user):
        exact = [c for c in found.columns if found.row[c.name] == user]
        if any(not c.nullable for c in exact):
            # The row is about them and means nothing without them (a role, a delivery).
            await connection.execute(delete(found.table).where(*found.primary_key()))
            result.count(result.deleted, found.table.name)
            continue
        values = {c.name: None for c in exact}
        for column in found.columns:
            if column.name not in values:
                values[column.name] = _scrub(found.row[column.name], pattern)
        await connection.execute(update(found.table).where(*found.primary_key()).values(**values))
        result.count(result.anonymised, found.table.name)

    audit(
        session,
        action="privacy.erased",
        contract_id=None,
        actor_id=None,
        detail={
            "subject": mark,
            "rows_deleted": sum(result.deleted.values()),
            "rows_anonymised": sum(result.anonymised.values()),
            "via": "northstar privacy erase",
        },
        at=now,
    )
    await session.commit()
    return result


# --- the command line -----------------------------------------------------------------------


async def _team_of(args: argparse.Namespace, settings: Settings) -> str | None:
    if args.team:
        return str(args.team)
    if not settings.slack_bot_token:
        return None
    from bot.app import create_client

    try:
        answer = await create_client(settings).auth_test()
    except Exception as error:  # any failure to reach Slack: say so, don't trace
        print(f"northstar: could not ask Slack for the workspace id: {error}", file=sys.stderr)
        return None
    team = answer.get("team_id")
    return str(team) if team else None


async def run_privacy_command(args: argparse.Namespace, settings: Settings) -> int:
    from bot.clock import SystemClock
    from storage.db import database
    from storage.migrate import require_current, upgrade

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
    async with database(settings.database_url) as (_engine, sessions), sessions() as session:
        if args.privacy_command == "export":
            data = await export_person(session=session, user=user, team=team, key=key, now=now)
            output = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
            if args.out is None:
                sys.stdout.write(output)
            else:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(output, encoding="utf-8")
                print(f"Wrote {args.out}.", file=sys.stderr)
            return EXIT_OK
        try:
            erased = await erase_person(session=session, user=user, team=team, key=key, now=now)
        except SQLAlchemyError:
            logger.exception("Erasure failed; nothing was changed")
            return EXIT_PROBLEMS
    if isinstance(erased, Refusal):
        print(f"northstar: {erased.text}", file=sys.stderr)
        return EXIT_PROBLEMS
    for label, counts in (("Deleted", erased.deleted), ("Unnamed", erased.anonymised)):
        listed = ", ".join(f"{n} {table}" for table, n in sorted(counts.items())) or "nothing"
        print(f"{label}: {listed}.")
    if erased.previously:
        print(f"{user} had been erased before ({len(erased.previously)} time(s)).")
    print("The erasure is in the audit log, under a keyed hash instead of the user id.")
    return EXIT_OK
