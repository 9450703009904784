"""Evidence: a message, a link or a note tied to one indicator, activity or expectation.

Added from any Slack message with the "Add as evidence" shortcut (its permalink and a bounded
excerpt are kept, never its author: as the signed shortcut payload named the message, kept on
the server until the modal is submitted, never as the modal carries it), or with
`/contract evidence`. The leader adds to their
own contract; a sponsor or owner picks among the contracts they sponsor or own. An item with
no evidence for `STALE_AFTER` (counted from the contract's start, or the activity's) is stale.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.ui.blocks import capped, day, escape, truncate
from storage.models import ActivityStatus, Contract, ContractStatus, Evidence, Role
from storage.queries.contracts import (
    ContractBundle,
    add_evidence_source,
    audit,
    claim_evidence_source,
    find_evidence_source,
    load_bundle,
)

ITEM_TYPES = ("indicator", "activity", "expectation")
ITEM_LABEL = {"indicator": "Indicators", "activity": "Activities", "expectation": "Expectations"}
ADDERS = frozenset({Role.leader, Role.sponsor, Role.owner})
EXCERPT_MAX = 300
NOTE_MAX = 1000
URL_MAX = 2000
STALE_AFTER = timedelta(days=30)
LATEST_SHOWN = 3
STALE_MARK = "🕸️ no evidence in 30 days"
SOURCE_TOKEN_BYTES = 24
URL = re.compile(r"^https?://[^\s<>|]+$")


@dataclass(frozen=True, slots=True)
class SourceMessage:
    """The message a shortcut was used on: where it is and what it says, bounded."""

    channel: str
    ts: str
    excerpt: str
    permalink: str | None = None


@dataclass(frozen=True, slots=True)
class KeptSource:
    """A shortcut's message as the server kept it, and the row that keeps it."""

    id: int
    message: SourceMessage


def _block_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") == "text" and "text" in node else []
        if isinstance(node.get("text"), dict):
            found += _block_texts(node["text"])
        elif isinstance(node.get("text"), str) and node.get("type") in ("mrkdwn", "plain_text"):
            found.append(node["text"])
        for key in ("elements", "fields", "blocks"):
            found += _block_texts(node.get(key))
        return found
    if isinstance(node, list):
        return [text for item in node for text in _block_texts(item)]
    return []


def excerpt_of(message: dict[str, Any], limit: int = EXCERPT_MAX) -> str:
    """The message's words, whitespace folded, cut to `limit` characters."""
    text = message.get("text") or " ".join(_block_texts(message.get("blocks") or []))
    folded = " ".join(str(text).replace("\x00", "").split())
    return folded if len(folded) <= limit else folded[: limit - 1].rstrip() + "…"


def source_of(body: dict[str, Any]) -> SourceMessage:
    """The message of a message-shortcut payload."""
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or ""
    return SourceMessage(
        channel=channel,
        ts=str(message.get("ts") or body.get("message_ts") or ""),
        excerpt=excerpt_of(message),
    )


async def remember_source(
    *, session: AsyncSession, user: str, message: SourceMessage, now: datetime
) -> str:
    """Keep the message of a signed shortcut payload on the server; the token its modal
    carries instead of the message itself."""
    token = secrets.token_urlsafe(SOURCE_TOKEN_BYTES)
    await add_evidence_source(
        session=session,
        token=token,
        user_id=user,
        channel=message.channel[:32],
        message_ts=message.ts[:32],
        excerpt=message.excerpt,
        now=now,
    )
    return token


async def kept_source(
    *, session: AsyncSession, token: str, user: str, now: datetime
) -> KeptSource | None:
    """The message `user`'s shortcut kept under `token`: None if unknown, someone else's,
    used already or expired."""
    row = await find_evidence_source(session=session, token=token, user_id=user, now=now)
    if row is None:
        return None
    message = SourceMessage(row.channel, row.message_ts, row.excerpt, row.permalink)
    return KeptSource(id=row.id or 0, message=message)


async def contracts_for_evidence(*, session: AsyncSession, user: str) -> list[ContractBundle]:
    """Active contracts `user` may add evidence to: their own first, then those they
    sponsor or own."""
    rows = await session.exec(
        select(Contract)
        .where(
            Contract.status == ContractStatus.active,
            or_(
                col(Contract.leader_id) == user,
                col(Contract.sponsor_id) == user,
                col(Contract.owner_id) == user,
            ),
        )
        .order_by(col(Contract.leader_id) != user, col(Contract.title), col(Contract.id))
    )
    bundles = []
    for contract in rows.all():
        bundle = await load_bundle(session=session, contract_id=contract.id or 0)
        if bundle is not None:
            bundles.append(bundle)
    return bundles


def items_of(bundle: ContractBundle) -> dict[str, list[tuple[str, str]]]:
    """The items evidence can support, by type: (key, name)."""
    return {
        "indicator": [(i.key, i.name) for i in bundle.indicators],
        "activity": [(a.key, a.title) for a in bundle.activities],
        "expectation": [(e.key, e.text) for e in bundle.expectations],
    }


def item_value(item_type: str, key: str) -> str:
    return f"{item_type}:{key}"


def parse_item(value: str | None) -> tuple[str, str] | None:
    if not value or ":" not in value:
        return None
    item_type, key = value.split(":", 1)
    return (item_type, key) if item_type in ITEM_TYPES and key else None


@dataclass(frozen=True, slots=True)
class NewEvidence:
    contract_id: int
    item_type: str
    item_key: str
    note: str
    url: str | None
    excerpt: str
    source: str


async def add_evidence(
    *,
    session: AsyncSession,
    user: str,
    new: NewEvidence,
    now: datetime,
    source_id: int | None = None,
) -> Evidence | dict[str, str]:
    """Store one piece of evidence; field errors when the contract or item won't take it.

    `source_id`, a kept shortcut message, is marked used in the same transaction: the same
    message is added once, however often its modal is submitted."""
    bundle = await load_bundle(session=session, contract_id=new.contract_id)
    if (
        bundle is None
        or bundle.contract.status != ContractStatus.active
        or not bundle.roles_of(user) & ADDERS
    ):
        return {"item": "You can add evidence only to an active contract you lead, sponsor or own."}
    if new.item_key not in {key for key, _ in items_of(bundle).get(new.item_type, [])}:
        return {"item": "Choose an item of this contract."}
    if source_id is not None and not await claim_evidence_source(
        session=session, source_id=source_id, now=now
    ):
        return {"item": "This message has been added as evidence already."}
    row = Evidence(
        contract_id=new.contract_id,
        item_type=new.item_type,
        item_key=new.item_key,
        url=new.url,
        note=new.note,
        excerpt=new.excerpt,
        source=new.source,
        added_by=user,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    audit(
        session,
        action="evidence.added",
        contract_id=new.contract_id,
        actor_id=user,
        detail={"evidence_id": row.id, "item": item_value(new.item_type, new.item_key)},
        at=now,
    )
    await session.commit()
    return row


async def set_permalink(*, session: AsyncSession, evidence_id: int, url: str) -> None:
    row = await session.get(Evidence, evidence_id)
    if row is not None and not row.url:
        row.url = url
        session.add(row)
        await session.commit()


def stale_items(bundle: ContractBundle, today: date) -> list[tuple[str, str]]:
    """Items with no evidence for `STALE_AFTER`: counted from their last evidence, else
    from the contract's start (an activity's own start, if later). Done activities and
    inactive contracts are never stale."""
    c = bundle.contract
    if c.status != ContractStatus.active or not c.period_start <= today <= c.period_end:
        return []
    starts: dict[tuple[str, str], date] = {}
    for indicator in bundle.indicators:
        starts[("indicator", indicator.key)] = c.period_start
    for activity in bundle.activities:
        if activity.status == ActivityStatus.done:
            continue
        starts[("activity", activity.key)] = max(c.period_start, activity.start or c.period_start)
    for expectation in bundle.expectations:
        starts[("expectation", expectation.key)] = c.period_start
    stale = []
    for item, start in starts.items():
        latest = bundle.evidence_latest.get(item)
        since = max(start, latest.date()) if latest is not None else start
        if today - since > STALE_AFTER:
            stale.append(item)
    return stale


def is_stale(bundle: ContractBundle, item_type: str, key: str, today: date | None) -> bool:
    return today is not None and (item_type, key) in stale_items(bundle, today)


def _latest_line(bundle: ContractBundle, index: int) -> str:
    e = bundle.recent_evidence[index]
    where = f"<{e.url}|message>" if e.url and URL.match(e.url) else ""
    text = escape(truncate(e.note or e.excerpt, 120))
    parts = [
        f"*{escape(e.item_key)}*",
        where,
        text,
        f"by {'<@' + e.added_by + '>' if e.added_by else 'someone'}",
        day(e.created_at.date()),
    ]
    return "• " + " · ".join(p for p in parts if p)


def evidence_lines(bundle: ContractBundle, today: date) -> list[str]:
    """The summary's evidence section: counts per item, the latest pieces, stale items."""
    if not bundle.evidence_counts and not bundle.indicators and not bundle.expectations:
        return []
    order = {t: i for i, t in enumerate(ITEM_TYPES)}
    counts = sorted(
        bundle.evidence_counts.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])
    )
    lines = []
    total = sum(bundle.evidence_counts.values())
    if counts:
        per_item = " · ".join(f"{escape(key)} {n}" for (_, key), n in counts)
        lines.append(f"{total} piece{'s' if total != 1 else ''}: {per_item}")
    else:
        lines.append("_None yet: add some with the “Add as evidence” message shortcut._")
    lines += capped(
        [_latest_line(bundle, i) for i in range(min(LATEST_SHOWN, len(bundle.recent_evidence)))]
    )
    stale = stale_items(bundle, today)
    if stale:
        keys = ", ".join(escape(key) for _, key in sorted(stale, key=lambda t: (order[t[0]], t[1])))
        lines.append(f"🕸️ No evidence in 30 days: {keys}")
    return lines


def evidence_headline(bundle: ContractBundle, today: date) -> str:
    """One line for App Home: how much evidence, and how many items are stale."""
    total = sum(bundle.evidence_counts.values())
    stale = stale_items(bundle, today)
    text = f"{total} piece{'s' if total != 1 else ''} of evidence"
    if stale:
        text += f" · {len(stale)} item{'s' if len(stale) != 1 else ''} with none in 30 days"
    return text
