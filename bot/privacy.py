"""Privacy: the key behind anonymous authors, and `northstar privacy export|erase USER`.

An anonymous feedback entry keeps no author id. It keeps a keyed hash (HMAC-SHA256) of the
person and the contract instead: enough for the weekly cap, the anonymity threshold and
`/feedback mine`, useless without the key. The hash is keyed on the person's user id, never
on the workspace a request came from: with Enterprise Grid or Slack Connect one person's
requests carry several team ids, and a hash per team would count them as several authors.
Hashing per contract keeps one author's entries to different leaders unlinkable.

Slack user ids are few and guessable, so the key must not travel with the data: an HMAC over
the workspace's member list would name every anonymous author. It is `FEEDBACK_HASH_KEY`
(a secret store, the same on every replica; required with PostgreSQL) or, when unset, a
generated file in the operator's configuration folder, `$XDG_CONFIG_HOME/northstar/` (else
`~/.config/northstar/`): outside the data folder, so neither a copy of `data/` nor
`northstar db backup` nor `pg_dump` carries it. Versions before this one kept it beside the
SQLite file; the bot moves it out at start-up, once, and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sqlite3
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import JSON, Column, String, Table, Text, TypeDecorator, cast, delete, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import storage.models  # noqa: F401  (every table on SQLModel.metadata)
from bot import delivery
from bot.contracts import Refusal
from bot.output import write_output
from bot.settings import Settings
from storage.db import SessionFactory, is_sqlite, sqlite_path
from storage.models import AuditEvent, Contract, Evidence, Feedback
from storage.queries import audit, load_bundle

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "feedback_hash.key"
CONFIG_FOLDER = "northstar"
HASH_VERSION = "v1"
AUTHOR_HASH_VERSION = "v2"  # v1 also hashed the team id of the request
ERASED = "[erased user]"
EXIT_OK, EXIT_PROBLEMS, EXIT_CONFIG = 0, 1, 2


class KeyUnavailable(Exception):
    """No usable key: anonymous authors cannot be matched (or the key cannot be kept)."""


@dataclass(frozen=True, slots=True)
class LoadedKey:
    key: bytes
    path: Path | None  # None: FEEDBACK_HASH_KEY


_keys: dict[tuple[str, str, bool], LoadedKey] = {}


def config_folder() -> Path:
    """The operator's configuration folder for North Star, never the data folder."""
    base = os.environ.get("XDG_CONFIG_HOME", "").strip()
    if base and Path(base).is_absolute():
        return Path(base) / CONFIG_FOLDER
    try:
        home = Path.home()
    except RuntimeError:
        home = Path("~")
    if not home.is_absolute():
        raise KeyUnavailable(
            "FEEDBACK_HASH_KEY is not set and there is no home folder to keep a generated key "
            "in: set FEEDBACK_HASH_KEY (or XDG_CONFIG_HOME)."
        )
    return home / ".config" / CONFIG_FOLDER


def key_file() -> Path:
    """Where a generated key lives: `$XDG_CONFIG_HOME/northstar/feedback_hash.key`."""
    return config_folder() / KEY_FILE_NAME


def legacy_key_file(settings: Settings) -> Path | None:
    """Where earlier versions generated the key: beside the SQLite database."""
    database = sqlite_path(settings.database_url) if is_sqlite(settings.database_url) else None
    return None if database is None else database.parent / KEY_FILE_NAME


def feedback_key(settings: Settings, *, create: bool = True) -> bytes:
    """The secret keying author hashes; generated and kept in a file when not configured.

    `create=False` (the CLI) never makes a new key, nor moves an old one: a fresh key would
    match no entry, and the CLI may run as another user than the bot.
    """
    return load_key(settings, create=create).key


def load_key(settings: Settings, *, create: bool = True) -> LoadedKey:
    """The key and where it came from (see `feedback_key`), once per process."""
    if settings.feedback_hash_key:
        return LoadedKey(settings.feedback_hash_key.encode(), None)
    if not is_sqlite(settings.database_url):
        raise KeyUnavailable(
            "FEEDBACK_HASH_KEY is not set: with PostgreSQL every replica needs the same key, "
            "so it must be configured."
        )
    path = key_file()
    legacy = legacy_key_file(settings)
    cache_key = (str(path), str(legacy.resolve()) if legacy is not None else "", create)
    if cache_key not in _keys:
        found = None
        if legacy is not None and legacy.exists():
            found = _legacy_key(legacy, path, move=create)
        _keys[cache_key] = found or LoadedKey(_key_from_file(path, create=create), path)
    return _keys[cache_key]


def announce_key(settings: Settings) -> None:
    """At start-up: load (or make) the key and say where it is kept, never what it is."""
    loaded = load_key(settings)
    if loaded.path is None:
        logger.info("Anonymous feedback authors are hashed with the key in FEEDBACK_HASH_KEY.")
    else:
        logger.info(
            "Anonymous feedback authors are hashed with the key in %s; back it up apart from "
            "the database (db backup does not copy it).",
            loaded.path,
        )


def _read_key(path: Path) -> bytes:
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except ValueError:
        raise KeyUnavailable(f"The key file {path} is not hexadecimal; restore it.") from None


def _legacy_key(legacy: Path, path: Path, *, move: bool) -> LoadedKey:
    """The key an earlier version left beside the database: moved out, once, when it can be."""
    old = _read_key(legacy)
    current = _read_key(path) if path.exists() else None
    if current is None and move:
        try:
            _write_key(path, old.hex())
        except FileExistsError:  # another process moved it meanwhile
            current = _read_key(path)
        else:
            legacy.unlink()
            logger.warning(
                "Moved the key for anonymous feedback hashes out of the data folder, from %s "
                "to %s. Back it up apart from the database.",
                legacy,
                path,
            )
            return LoadedKey(old, path)
    if current is None:
        logger.warning(
            "Reading the key for anonymous feedback hashes from %s, in the data folder; the "
            "bot moves it to %s when it next starts.",
            legacy,
            path,
        )
        return LoadedKey(old, legacy)
    if current == old:
        if move:
            legacy.unlink()
            logger.warning("Removed %s from the data folder: the same key is in %s.", legacy, path)
        return LoadedKey(old, path)
    logger.warning(
        "%s, in the data folder, holds this database's key for anonymous feedback hashes and "
        "differs from the key in %s, so it is still used. To move it out, give this bot a "
        "configuration folder of its own (XDG_CONFIG_HOME) and restart it.",
        legacy,
        path,
    )
    return LoadedKey(old, legacy)


def _write_key(path: Path, hex_key: str) -> None:
    """Create the key file, readable by its owner only, in a folder only they can enter."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(hex_key + "\n")


def _key_from_file(path: Path, *, create: bool) -> bytes:
    if path.exists():
        return _read_key(path)
    if not create:
        raise KeyUnavailable(
            f"FEEDBACK_HASH_KEY is not set and there is no key file at {path}: "
            "anonymous feedback authors cannot be matched. Run this as the user the bot runs "
            "as, or set FEEDBACK_HASH_KEY to the bot's key."
        )
    generated = secrets.token_hex(32)
    try:
        _write_key(path, generated)
    except FileExistsError:  # another process won the race: use its key
        return _read_key(path)
    except OSError as error:
        raise KeyUnavailable(
            f"FEEDBACK_HASH_KEY is not set and the key file {path} cannot be written "
            f"({error.strerror}): set FEEDBACK_HASH_KEY, or XDG_CONFIG_HOME to a writable folder."
        ) from None
    logger.warning(
        "FEEDBACK_HASH_KEY is not set: generated the key for anonymous feedback hashes in %s. "
        "Back it up apart from the database; losing or changing it unlinks authors from their "
        "anonymous entries.",
        path,
    )
    return bytes.fromhex(generated)


def keyed(key: bytes, purpose: str, *parts: object, version: str = HASH_VERSION) -> str:
    """HMAC-SHA256 of `parts` for one `purpose`, so hashes of different uses never match."""
    message = "\x1f".join([purpose, *(str(p) for p in parts)]).encode()
    return f"{version}:{hmac.new(key, message, hashlib.sha256).hexdigest()}"


def author_hash(key: bytes, *, user: str, contract_id: int) -> str:
    """What an anonymous entry keeps instead of its author: the person, whatever team they
    wrote from."""
    return keyed(key, "author", user, contract_id, version=AUTHOR_HASH_VERSION)


def legacy_author_hash(key: bytes, *, team: str, user: str, contract_id: int) -> str:
    """The v1 hash, which also keyed on a team id; only to find and rehash old entries."""
    return keyed(key, "author", team, user, contract_id)


def erasure_mark(key: bytes, *, team: str, user: str) -> str:
    """Lets an operator confirm that one given person was erased, without listing anyone."""
    return keyed(key, "erased", team, user)


_teams: dict[tuple[str, str], str] = {}


async def installation_team(client: AsyncWebClient) -> str | None:
    """The workspace the bot is installed in, from `auth.test`, asked once per process."""
    cache_key = (client.base_url, client.token or "")
    if cache_key not in _teams:
        try:
            answer = await client.auth_test()
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
            logger.warning("auth.test failed, so the installation's team is unknown: %s", error)
            return None
        team = answer.get("team_id")
        if not team:
            return None
        _teams[cache_key] = str(team)
    return _teams[cache_key]


async def _rehash_legacy(
    session: AsyncSession, *, user: str, team: str, key: bytes, contract_ids: list[int]
) -> None:
    """Entries an earlier version hashed with the installation's team: keyed on the person."""
    legacy = {
        legacy_author_hash(key, team=team, user=user, contract_id=cid): author_hash(
            key, user=user, contract_id=cid
        )
        for cid in contract_ids
    }
    found = (
        await session.exec(select(Feedback).where(col(Feedback.author_hash).in_(list(legacy))))
    ).all()
    for entry in found:
        entry.author_hash = legacy[entry.author_hash or ""]
        session.add(entry)
    if found:
        await session.commit()


async def authored_feedback(
    *, session: AsyncSession, user: str, key: bytes, team: str | None = None
) -> list[Feedback]:
    """Every entry `user` wrote: attributed by id, anonymous by the keyed hash.

    `team`, the installation's (auth.test), also finds the entries an earlier version hashed
    with it, and rehashes them on the person alone.
    """
    contract_ids = [cid for cid in (await session.exec(select(Contract.id))).all() if cid]
    if team and contract_ids:
        await _rehash_legacy(session, user=user, team=team, key=key, contract_ids=contract_ids)
    hashes = [author_hash(key, user=user, contract_id=cid) for cid in contract_ids]
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


# Columns naming who made a row: a row the person made is theirs to read in full.
AUTHORED_BY = frozenset(
    {"added_by", "recorded_by", "raised_by", "submitted_by", "proposer_id", "approver_id"}
)
SHORT_TEXT = 64  # a string column up to this long holds an id, a key or a status, not content


def _is_content(column: Column[Any]) -> bool:
    """Whether a column holds what a contract says (texts, titles, snapshots), not ids."""
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, JSON | Text):
        return True
    return isinstance(kind, String) and (kind.length or SHORT_TEXT + 1) > SHORT_TEXT


def _contract_of(found: Found) -> int | None:
    if found.table.name == "contract":
        return int(found.row["id"])
    value = found.row.get("contract_id")
    return int(value) if value else None


def _outline(found: Found, user: str) -> dict[str, Any]:
    """A row of a contract the person may not read: what ties it to them, none of its content."""
    row: dict[str, Any] = {}
    withheld = []
    for column in found.table.columns:
        value = found.row[column.name]
        if _is_content(column) and value != user:
            if any(c.name == column.name for c in found.columns):
                withheld.append(column.name)
            continue
        row[column.name] = _plain(value)
    if withheld:
        row["mentions_you_in"] = withheld
    return row


async def _records(session: AsyncSession, user: str) -> dict[str, list[dict[str, Any]]]:
    """Rows holding the person's id; of contracts they may not read, only an outline."""
    found_rows = await rows_holding(session, user, skip={"feedback"})
    readable: dict[int, bool] = {}
    for found in found_rows:
        contract_id = _contract_of(found)
        if contract_id is not None and contract_id not in readable:
            bundle = await load_bundle(session=session, contract_id=contract_id)
            readable[contract_id] = bundle is not None and bundle.may_read(user)
    records: dict[str, list[dict[str, Any]]] = {}
    for found in found_rows:
        contract_id = _contract_of(found)
        theirs = any(found.row.get(name) == user for name in AUTHORED_BY)
        if contract_id is None or readable[contract_id] or theirs:
            row = {name: _plain(value) for name, value in found.row.items()}
        else:
            row = _outline(found, user)
        records.setdefault(found.table.name, []).append(row)
    return records


async def export_person(
    *, session: AsyncSession, user: str, team: str, key: bytes, now: datetime
) -> dict[str, Any]:
    """Everything stored about `user` that they may read, as JSON-ready data.

    Never an anonymous author's name, and of a contract they may not read in Slack (a peer's,
    say) only the rows that name them, without the contract's content.
    """
    contracts = list((await session.exec(select(Contract))).all())
    leaders = {c.id or 0: (c.leader_id, c.title) for c in contracts}
    written = await authored_feedback(session=session, user=user, team=team, key=key)
    led = [c.id for c in contracts if c.leader_id == user]
    received_rows = await session.exec(
        select(Feedback).where(
            col(Feedback.contract_id).in_(led),
            or_(col(Feedback.anonymous).is_(False), col(Feedback.released_at).is_not(None)),
        )
    )
    named: list[tuple[datetime, dict[str, Any]]] = []
    anonymous: list[dict[str, Any]] = []
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
            anonymous.append(item)
        else:
            item["from"] = entry.author_id
            item["date"] = _plain(entry.created_at)
            named.append((entry.created_at, item))
    # Anonymous entries in an order that says nothing about when they came.
    anonymous.sort(key=lambda i: json.dumps(i, sort_keys=True, ensure_ascii=False))
    return {
        "subject": user,
        "workspace": team,
        "exported_at": now.astimezone(UTC).isoformat(),
        "feedback_written": [entry_for_author(e, leaders) for e in written],
        "feedback_received": [item for _, item in sorted(named, key=lambda n: n[0])] + anonymous,
        "feedback_received_note": (
            "Anonymous feedback is included once released; entries still held under the "
            "anonymity threshold are not."
        ),
        "records": await _records(session, user),
        "records_note": (
            "Rows of a contract you may not read in Slack show only what ties them to you; "
            "`mentions_you_in` names the fields that mention you."
        ),
    }


@dataclass(frozen=True, slots=True)
class Gone:
    """A deleted entry whose words the bot may have posted: a named one (the leader's DM) or
    a released anonymous one (the DM that released its group)."""

    feedback_id: int
    contract_id: int
    anonymous: bool
    released_at: datetime | None

    @classmethod
    def of(cls, entry: Feedback) -> Gone:
        return cls(entry.id or 0, entry.contract_id, entry.anonymous, entry.released_at)


@dataclass
class Erasure:
    deleted: dict[str, int] = field(default_factory=dict)
    anonymised: dict[str, int] = field(default_factory=dict)
    previously: list[datetime] = field(default_factory=list)
    # Deleted entries whose words the bot may have posted: named ones, released ones.
    posted: list[Gone] = field(default_factory=list)

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

    # A DM naming them that waits to be sent again (Slack was down) never goes out now.
    await delivery.cancel_naming(session=session, user=user)
    for entry in await authored_feedback(session=session, user=user, team=team, key=key):
        if not entry.anonymous or entry.released_at is not None:
            result.posted.append(Gone.of(entry))
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
    async with database(settings.database_url) as (_engine, sessions):
        async with sessions() as session:
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
    from bot.app import create_client
    from bot.clock import SystemClock
    from bot.feedback import retract_posted
    from bot.services import Services

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
