"""Contract types and the rules on them: a draft's fields, its items and their keys, what a
draft still needs before it can be activated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlmodel import SQLModel

from storage.models import (
    Agreement,
    Barrier,
    Contract,
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
    owner_id: str | None = None  # None: the drafter, or the sponsor when the leader drafts


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


KEYLESS_PREFIX = {"resource": "R", "barrier": "B"}


def item_label(bundle: ContractBundle, kind: str, item: Any) -> str:
    """How a person names an item: its key (E2), or R2/B2 by its place for keyless ones."""
    key = getattr(item, "key", None)
    if key:
        return str(key)
    place = next((n for n, i in enumerate(items_of(bundle, kind), 1) if i.id == item.id), 0)
    return f"{KEYLESS_PREFIX.get(kind, '#')}{place}"


def item_text(item: Any) -> str:
    """An item's own words (its text, title, name or risk), as a confirmation quotes them."""
    for name in ("text", "title", "name", "risk"):
        value = getattr(item, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


def not_in_draft(kind: str) -> str:
    """What a click or form naming an item the draft does not hold is answered with."""
    return f"That {kind} is not in this draft: it was removed, or belongs to another."


def find_item(bundle: ContractBundle, kind: str, item_id: int) -> Any | None:
    """The draft's own item of `kind` with `item_id`; None for another contract's, or a
    removed one."""
    return next((i for i in items_of(bundle, kind) if i.id == item_id), None)


def referrers(bundle: ContractBundle, kind: str, item: Any) -> list[str]:
    """The keys of the items that refer to `item` (by its key): activities and milestones
    name an expectation, an indicator or an activity."""
    key = getattr(item, "key", None)
    if not key:
        return []
    if kind == "expectation":
        return [a.key for a in bundle.activities if a.expectation_key == key]
    if kind == "indicator":
        return [m.key for m in bundle.milestones if m.indicator_key == key]
    if kind == "activity":
        return [m.key for m in bundle.milestones if m.activity_key == key]
    return []


def period_outliers(bundle: ContractBundle, start: Any, end: Any) -> list[str]:
    """The keys of the activities and milestones whose dates fall outside `start`..`end`."""
    found = []
    for a in bundle.activities:
        if any(d is not None and not start <= d <= end for d in (a.start, a.due)):
            found.append(a.key)
    found += [m.key for m in bundle.milestones if not start <= m.due <= end]
    return found


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


# --- agreement ------------------------------------------------------------------------------

PARTY_ROLES = ("leader", "sponsor", "owner")


def parties_of(contract: Contract) -> list[tuple[str, str]]:
    """The people who agree to a contract's terms, each once, with the roles they hold:
    its leader, sponsor and owner (one person may hold two)."""
    roles: dict[str, list[str]] = {}
    for role, user in zip(
        PARTY_ROLES, (contract.leader_id, contract.sponsor_id, contract.owner_id), strict=True
    ):
        if user:
            roles.setdefault(user, []).append(role)
    return [(user, " and ".join(held)) for user, held in roles.items()]


class AgreeOutcome(StrEnum):
    agreed = "agreed"  # recorded; others still to agree
    activated = "activated"  # the last agreement: the contract is active
    superseded = "superseded"  # the last agreement: active, and the old contract closed
    waiting = "waiting"  # all agreed, but the leader has an active contract it does not replace
    already = "already"  # this person agreed to this version before (a double click)
    stale = "stale"  # the terms changed since the version clicked
    not_party = "not_party"  # only the leader, sponsor and owner agree, each for themselves
    not_sent = "not_sent"  # the draft is not (or no longer) out for agreement
    closed = "closed"  # active or closed already
    conflict = "conflict"  # another write won at the same moment: nothing recorded
    missing = "missing"


@dataclass
class AgreementState:
    """A draft out for agreement: who is asked, who agreed to the current terms, and what
    else matters to them (the leader's active contract it would replace or wait for)."""

    contract: Contract
    agreements: list[Agreement] = field(default_factory=list)  # to the current version
    current: Contract | None = None  # the leader's active contract, if another one

    @property
    def version(self) -> int:
        return self.contract.terms_version

    @property
    def parties(self) -> list[tuple[str, str]]:
        return parties_of(self.contract)

    @property
    def agreed_by(self) -> list[str]:
        return [a.user_id for a in self.agreements]

    @property
    def awaiting(self) -> list[str]:
        agreed = set(self.agreed_by)
        return [user for user, _ in self.parties if user not in agreed]

    def role_of(self, user: str) -> str | None:
        return next((role for who, role in self.parties if who == user), None)


@dataclass(frozen=True)
class AgreeResult:
    outcome: AgreeOutcome
    state: AgreementState | None = None
    closed: Contract | None = None  # the contract this one replaced
