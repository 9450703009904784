"""Contract types and the rules on them: a draft's fields, its items and their keys, what a
draft still needs before it can be activated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import SQLModel

from bot.core.permissions import Refusal
from storage.models import (
    Barrier,
    DevelopmentActivity,
    Expectation,
    Milestone,
    Resource,
    SuccessIndicator,
)
from storage.queries.contracts import ContractBundle

NO_CONTRACT_OF_YOUR_OWN = (
    "You don't have a contract yet. Start one with `/contract new`, "
    "or ask your sponsor or HR partner to import one."
)


@dataclass(frozen=True, slots=True)
class DraftFields:
    title: str
    leader_id: str
    sponsor_id: str
    period_start: Any
    period_end: Any
    mission: str
    checkin_weekday: int
    checkin_time: str


ITEM_MODELS: dict[str, type[SQLModel]] = {
    "expectation": Expectation,
    "activity": DevelopmentActivity,
    "indicator": SuccessIndicator,
    "milestone": Milestone,
    "resource": Resource,
    "barrier": Barrier,
}
KEY_PREFIX = {"expectation": "E", "activity": "D", "indicator": "I", "milestone": "M"}


def items_of(bundle: ContractBundle, kind: str) -> Sequence[Any]:
    lists: dict[str, Sequence[Any]] = {
        "expectation": bundle.expectations,
        "activity": bundle.activities,
        "indicator": bundle.indicators,
        "milestone": bundle.milestones,
        "resource": bundle.resources,
        "barrier": bundle.barriers,
    }
    return lists[kind]


def next_key(bundle: ContractBundle, kind: str) -> str | None:
    """The next free handle for an item (E4 after E1..E3), or None for keyless items."""
    prefix = KEY_PREFIX.get(kind)
    if prefix is None:
        return None
    existing = items_of(bundle, kind)
    taken = {item.key for item in existing}
    number = len(existing) + 1
    while f"{prefix}{number}" in taken:
        number += 1
    return f"{prefix}{number}"


def missing_for_activation(bundle: ContractBundle) -> list[str]:
    """What a draft still lacks before its loops can run."""
    needs = []
    if not bundle.expectations:
        needs.append("an expectation")
    if not bundle.activities:
        needs.append("a development activity")
    if not bundle.indicators:
        needs.append("a success indicator")
    if not bundle.milestones:
        needs.append("a milestone")
    return needs


def already_active(leader_id: str) -> Refusal:
    """A second contract for a leader: it stays a draft (names no detail of the active one)."""
    return Refusal(
        f"<@{leader_id}> already has an active contract, and a leader has one active contract "
        "at a time: this draft stays a draft."
    )
