"""Evidence types and the rules on them: a shortcut's message, a new piece of evidence, the
items it can support, and which items have gone stale."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from storage.models import ActivityStatus, ContractStatus
from storage.queries.contracts import ContractBundle

ITEM_TYPES = ("indicator", "activity", "expectation")
ITEM_LABEL = {"indicator": "Indicators", "activity": "Activities", "expectation": "Expectations"}
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


@dataclass(frozen=True, slots=True)
class NewEvidence:
    contract_id: int
    item_type: str
    item_key: str
    note: str
    url: str | None
    excerpt: str
    source: str


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
