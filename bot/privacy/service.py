"""What is kept about a person: finding it, exporting it (`northstar privacy export`) and
erasing it (`northstar privacy erase`), and the anonymous entries a person wrote.

An anonymous feedback entry keeps no author id, only a keyed hash (`bot.privacy.keys`), so a
person's own anonymous entries are found by hashing them again with the key.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import JSON, Column, String, Table, Text, TypeDecorator
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import storage.models  # noqa: F401  (every table on SQLModel.metadata)
from bot import delivery
from bot.core.permissions import Refusal, may_read
from bot.privacy.keys import author_hash, erasure_mark, legacy_author_hash, lesson_author_hash
from bot.privacy.model import Erasure, Found, Gone
from storage.models import Feedback, Lesson
from storage.queries.contracts import audit, list_contracts, load_bundle
from storage.queries.lessons import compact_search_index, lessons_named_by, unnamed_lessons
from storage.queries.privacy import (
    agreements_by,
    change_requests_by,
    contract_ids,
    delete_row,
    erasures,
    evidence_added_by,
    feedback_by,
    feedback_hashed,
    feedback_readable_in,
    led_or_sponsored,
    rows_containing,
    update_row,
)

logger = logging.getLogger(__name__)

ERASED = "[erased user]"
ERASED_TEXT = "[erased]"  # the words of an erased person, where a row keeps its place


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
    found = await feedback_hashed(session=session, hashes=list(legacy))
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
    ids = await contract_ids(session=session)
    if team and ids:
        await _rehash_legacy(session, user=user, team=team, key=key, contract_ids=ids)
    hashes = [author_hash(key, user=user, contract_id=cid) for cid in ids]
    return await feedback_by(session=session, user=user, hashes=hashes)


async def lessons_shared(*, session: AsyncSession, user: str, key: bytes) -> list[Lesson]:
    """Every lesson `user` shared: named by id, unnamed by the keyed hash of each lesson."""
    unnamed = [
        lesson
        for lesson in await unnamed_lessons(session=session)
        if lesson.author_hash == lesson_author_hash(key, user=user, source_key=lesson.source_key)
    ]
    return [*await lessons_named_by(session=session, user=user), *unnamed]


def lesson_for_author(lesson: Lesson) -> dict[str, Any]:
    """A shared lesson as its author may see it (no hash, no source key)."""
    return {
        "title": lesson.title,
        "what_happened": lesson.happened,
        "again_or_differently": lesson.takeaway,
        "theme": lesson.theme,
        "activity_type": lesson.activity_type,
        "tags": list(lesson.tags),
        "shared": "with your name" if lesson.named else "without your name",
        "date": lesson.created_at.date().isoformat(),
    }


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
        for row in await rows_containing(session=session, table=table, columns=columns, text=user):
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
            readable[contract_id] = bundle is not None and may_read(bundle, user)
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
    contracts = await list_contracts(session=session)
    leaders = {c.id or 0: (c.leader_id, c.title) for c in contracts}
    written = await authored_feedback(session=session, user=user, team=team, key=key)
    led = [c.id for c in contracts if c.leader_id == user]
    received_rows = await feedback_readable_in(session=session, contract_ids=led)
    named: list[tuple[datetime, dict[str, Any]]] = []
    anonymous: list[dict[str, Any]] = []
    for entry in received_rows:
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
        "lessons_shared": [
            lesson_for_author(lesson)
            for lesson in await lessons_shared(session=session, user=user, key=key)
        ],
        "feedback_received": [item for _, item in sorted(named, key=lambda n: n[0])] + anonymous,
        "feedback_received_note": (
            "Anonymous feedback is included once released; entries still held under the "
            "anonymity threshold are not."
        ),
        "agreements_given": [
            {
                "contract_id": a.contract_id,
                "contract": leaders.get(a.contract_id, ("", ""))[1],
                "terms_version": a.terms_version,
                "via": a.via,
                "agreed_at": _plain(a.agreed_at),
            }
            for a in await agreements_by(session=session, user=user)
        ],
        "change_requests_written": [
            {
                "contract_id": e.contract_id,
                "contract": leaders.get(e.contract_id or 0, ("", ""))[1],
                "terms_version": (e.detail or {}).get("version"),
                "comment": (e.detail or {}).get("comment"),
                "at": _plain(e.created_at),
            }
            for e in await change_requests_by(session=session, user=user)
        ],
        "records": await _records(session, user),
        "records_note": (
            "Rows of a contract you may not read in Slack show only what ties them to you; "
            "`mentions_you_in` names the fields that mention you."
        ),
    }


async def erase_person(
    *, session: AsyncSession, user: str, team: str, key: bytes, now: datetime
) -> Erasure | Refusal:
    """Remove what `user` wrote, take their id out of every other row, and log it unnamed.

    A person who still leads or sponsors a contract is refused: those contracts need a new
    leader or sponsor first (a changed file through `northstar contract import`).
    """
    holding = await led_or_sponsored(session=session, user=user)
    if holding:
        names = "; ".join(f"#{c.id} “{c.title}”" for c in holding)
        return Refusal(
            f"{user} still leads or sponsors {names}. Give those contracts a new leader or "
            "sponsor first (re-import the changed file), then erase again."
        )
    result = Erasure()
    mark = erasure_mark(key, team=team, user=user)
    earlier = await erasures(session=session)
    result.previously = [e.created_at for e in earlier if e.detail.get("subject") == mark]

    # A DM naming them that waits to be sent again (Slack was down) never goes out now.
    await delivery.cancel_naming(session=session, user=user)
    for entry in await authored_feedback(session=session, user=user, team=team, key=key):
        if not entry.anonymous or entry.released_at is not None:
            result.posted.append(Gone.of(entry))
        await session.delete(entry)
        result.count(result.deleted, "feedback")
    # A lesson outlives its author: a named one loses its author below (and says so), an
    # unnamed one its keyed hash here, so nothing links it to them any more.
    for lesson in await lessons_shared(session=session, user=user, key=key):
        if not lesson.named:
            lesson.author_hash = None
            session.add(lesson)
            result.count(result.anonymised, "lesson")
    for evidence in await evidence_added_by(session=session, user=user):
        await session.delete(evidence)
        result.count(result.deleted, "evidence")
    # An agreement stays a fact of the contract's history, given by someone unnamed now.
    for agreement in await agreements_by(session=session, user=user):
        agreement.user_id = ERASED
        session.add(agreement)
        result.count(result.anonymised, "agreement")
    # A change request's comment is their words: gone, the request itself kept unnamed.
    for event in await change_requests_by(session=session, user=user):
        event.detail = {**(event.detail or {}), "comment": ERASED_TEXT}
        event.actor_id = None
        session.add(event)
        result.count(result.anonymised, "audit_event")
    await session.flush()

    pattern = _mention_pattern(user)
    for found in await rows_holding(session, user):
        exact = [c for c in found.columns if found.row[c.name] == user]
        if any(not c.nullable for c in exact):
            # The row is about them and means nothing without them (a role, a delivery).
            await delete_row(session=session, table=found.table, key=found.primary_key())
            result.count(result.deleted, found.table.name)
            continue
        values = {c.name: None for c in exact}
        for column in found.columns:
            if column.name not in values:
                values[column.name] = _scrub(found.row[column.name], pattern)
        await update_row(session=session, table=found.table, key=found.primary_key(), values=values)
        result.count(result.anonymised, found.table.name)

    await compact_search_index(session=session)
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
