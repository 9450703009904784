"""Amendment types and the rules on them: the kinds of item, an item in the import format,
who decides, an amendment's state and a decision's outcome."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from bot.contracts.document import ITEM_LISTS, diff_documents
from bot.contracts.schema import (
    CHANNEL,
    ActivityItem,
    BarrierItem,
    ExpectationItem,
    IndicatorItem,
    MilestoneItem,
    ResourceItem,
    canonical,
    validate_document,
)
from bot.core import rules
from bot.core.permissions import Refusal
from bot.core.text import escape
from bot.risks.model import DEFAULT_ESCALATION_DAYS, MAX_ESCALATION_DAYS
from storage.models import (
    Amendment,
    AmendmentApproval,
    AuditEvent,
    Contract,
    ContractStatus,
    ContractVersion,
    Role,
)
from storage.queries.contracts import ContractBundle


class AmendmentStatus(StrEnum):
    pending = "pending"
    applied = "applied"
    rejected = "rejected"
    stale = "stale"


APPROVED, REJECTED = "approved", "rejected"  # AmendmentApproval.decision


@dataclass(frozen=True, slots=True)
class ItemKind:
    """One kind of contract item as amendments see it: its list in the import format."""

    name: str  # as bot.contracts and Evidence.item_type name it
    list_name: str
    label: str
    model: type[BaseModel]
    prefix: str  # keys (E1) or, for keyless items, their handles (R1) start with it

    @property
    def plural(self) -> str:
        return self.label[:-1] + "ies" if self.label.endswith("y") else self.label + "s"

    @property
    def keyed(self) -> bool:
        return self.list_name in ITEM_LISTS and ITEM_LISTS[self.list_name].keyed


KINDS: dict[str, ItemKind] = {
    kind.name: kind
    for kind in (
        ItemKind("expectation", "expectations", "expectation", ExpectationItem, "E"),
        ItemKind("activity", "development_activities", "development activity", ActivityItem, "D"),
        ItemKind("indicator", "success_indicators", "success indicator", IndicatorItem, "I"),
        ItemKind("milestone", "milestones", "milestone", MilestoneItem, "M"),
        ItemKind("resource", "resources", "resource", ResourceItem, "R"),
        ItemKind("barrier", "barriers", "barrier", BarrierItem, "B"),
    )
}


class GovernanceTerms(BaseModel):
    """Who governs a contract and on what schedule it runs: what a governance amendment
    changes, as one record (people as Slack user ids, the weekday by name)."""

    owner: str | None = None
    approvers: list[str] = []
    escalation: list[str] = []
    escalation_days: int = DEFAULT_ESCALATION_DAYS
    reviewers: list[str] = []
    anonymity_threshold: int = 3
    feedback_cadence: str | None = None
    digest_cadence: str = "monthly"
    review_cadence: str = "quarterly"
    checkin_weekday: str = "friday"
    checkin_time: str = "15:00"
    checkin_timezone: str | None = None
    reminder_hours: int = 24
    # The report's audience: its cadence (None: no scheduled report), channel and readers.
    report_cadence: str | None = None
    report_channel: str | None = None
    report_readers: list[str] = []
    # The rater groups: reviewers whose relationship to the leader the contract states.
    peers: list[str] = []
    direct_reports: list[str] = []
    stakeholders: list[str] = []


GOVERNANCE = ItemKind("governance", "governance", "governance", GovernanceTerms, "G")
GOVERNANCE_KEY = "governance"  # the item key a governance amendment carries

# Each governance field as people read it, in the form's order.
GOVERNANCE_LABEL = {
    "owner": "Owner",
    "approvers": "Approvers",
    "escalation": "Escalation",
    "escalation_days": "Escalate open risks after (days)",
    "reviewers": "Feedback reviewers",
    "anonymity_threshold": "Anonymity threshold",
    "feedback_cadence": "Feedback cadence",
    "digest_cadence": "Digest cadence",
    "review_cadence": "Alignment review",
    "checkin_weekday": "Check-in day",
    "checkin_time": "Check-in time",
    "checkin_timezone": "Check-in time zone",
    "reminder_hours": "Reminder after (hours)",
    "report_cadence": "Scheduled report",
    "report_channel": "Report channel",
    "report_readers": "Report readers",
    "peers": "Peers",
    "direct_reports": "Direct reports",
    "stakeholders": "Other stakeholders",
}
RATER_GROUP_FIELDS = ("peers", "direct_reports", "stakeholders")
PEOPLE_FIELDS: tuple[str, ...] = ("owner", "approvers", "escalation", "reviewers")
PEOPLE_FIELDS += (*RATER_GROUP_FIELDS, "report_readers")
NO_REPORT = "no scheduled report"

# Where each governance term is in the import format, so the import's own rules check it.
GOVERNANCE_PATHS = {
    "owner": "governance.owner",
    "approvers": "governance.approvers",
    "escalation": "governance.escalation",
    "escalation_days": "governance.escalation_days",
    "reviewers": "feedback.reviewers",
    "anonymity_threshold": "feedback.anonymity_threshold",
    "feedback_cadence": "feedback.cadence",
    "digest_cadence": "digest.cadence",
    "checkin_weekday": "checkin.weekday",
    "checkin_time": "checkin.time",
    "checkin_timezone": "checkin.timezone",
    "report_cadence": "governance.report.cadence",
    "report_channel": "governance.report.channel",
    "report_readers": "governance.report.readers",
    "peers": "feedback.peers",
    "direct_reports": "feedback.direct_reports",
    "stakeholders": "feedback.stakeholders",
}


def kind_named(name: str | None) -> ItemKind | None:
    """The kind an amendment's `item_type` names: an item kind, or governance."""
    if name == GOVERNANCE.name:
        return GOVERNANCE
    return KINDS.get(name or "")


def governance_of(bundle: ContractBundle) -> dict[str, Any]:
    """The contract's governance terms as a governance amendment records them."""
    c = bundle.contract
    return GovernanceTerms(
        owner=c.owner_id,
        approvers=bundle.approvers,
        escalation=bundle.escalation,
        escalation_days=c.escalation_days,
        reviewers=bundle.reviewers,
        anonymity_threshold=c.anonymity_threshold,
        feedback_cadence=c.feedback_cadence,
        digest_cadence=c.digest_cadence,
        review_cadence=c.review_cadence,
        checkin_weekday=rules.WEEKDAY_NAMES[c.checkin_weekday % 7],
        checkin_time=c.checkin_time,
        checkin_timezone=c.checkin_timezone,
        reminder_hours=c.reminder_hours,
        report_cadence=c.report_cadence,
        report_channel=c.report_channel,
        report_readers=bundle.people_with(Role.report_reader),
        peers=bundle.peers,
        direct_reports=bundle.direct_reports,
        stakeholders=bundle.stakeholders,
    ).model_dump(mode="json")


def governance_after(current: Item, proposed: Item | None) -> GovernanceTerms:
    """The terms an amendment sets: a term it does not name (one proposed before the term
    could be amended) stays as it is now."""
    return GovernanceTerms.model_validate({**current, **(proposed or {})})


def governance_unchanged(current: Item, before: Item | None) -> bool:
    """Whether the governance is still as the amendment found it, in the terms it recorded."""
    return all(current.get(name) == value for name, value in (before or {}).items())


def _people_words(value: Any) -> str:
    if not value:
        return "nobody"
    users = value if isinstance(value, list) else [value]
    return ", ".join(f"<@{u}>" for u in users)


def governance_value(name: str, value: Any) -> str:
    """One governance value in words (people as Slack mentions; nothing else is user text
    but a time zone, which the form checks against the IANA names)."""
    if name in PEOPLE_FIELDS:
        return _people_words(value)
    if name == "report_channel":
        if not value:
            return "none"
        return f"<#{value}>" if CHANNEL.fullmatch(str(value)) else escape(str(value))
    if value is None or value == "":
        if name == "report_cadence":
            return NO_REPORT
        return "none" if name == "feedback_cadence" else "default"
    if name == "checkin_weekday":
        return str(value).capitalize()
    if name == "reminder_hours" and value == 0:
        return "no reminder"
    return escape(str(value))


def governance_changes(before: Item | None, after: Item | None) -> list[str]:
    """The change in words, a line per field that changed: `Owner: <@A> → <@B>`."""
    old, new = before or {}, after or {}
    return [
        f"{label}: {governance_value(name, old.get(name))} → "
        f"{governance_value(name, new.get(name))}"
        for name, label in GOVERNANCE_LABEL.items()
        if old.get(name) != new.get(name)
    ]


def governance_problems(leader: str, terms: GovernanceTerms) -> list[Problem]:
    """What the contract's rules say against these governance terms (field: the form's)."""
    problems = []
    if not terms.owner:
        problems.append(Problem("owner", "A contract needs an owner who answers for it."))
    elif terms.owner == leader:
        problems.append(
            Problem("owner", "The leader cannot own their own contract: choose another person.")
        )
    if not terms.approvers:
        problems.append(Problem("approvers", "Choose at least one approver."))
    elif leader in terms.approvers:
        problems.append(
            Problem("approvers", "The leader cannot approve changes to their own contract.")
        )
    if not rules.ANONYMITY_MIN <= terms.anonymity_threshold <= rules.ANONYMITY_MAX:
        problems.append(
            Problem(
                "anonymity_threshold",
                f"Enter a whole number from {rules.ANONYMITY_MIN} to {rules.ANONYMITY_MAX}.",
            )
        )
    if not 1 <= terms.escalation_days <= MAX_ESCALATION_DAYS:
        problems.append(
            Problem(
                "escalation_days",
                f"Enter a whole number of days from 1 to {MAX_ESCALATION_DAYS}.",
            )
        )
    if not 0 <= terms.reminder_hours <= rules.REMINDER_HOURS_MAX:
        problems.append(
            Problem(
                "reminder_hours",
                f"Enter a whole number of hours from 0 (no reminder) to "
                f"{rules.REMINDER_HOURS_MAX}.",
            )
        )
    if not rules.TIME.fullmatch(terms.checkin_time):
        problems.append(Problem("checkin_time", "Enter a time as HH:MM, such as 15:00."))
    if terms.checkin_timezone is not None and not rules.is_time_zone(terms.checkin_timezone):
        problems.append(
            Problem(
                "checkin_timezone",
                f"“{escape(terms.checkin_timezone[:64])}” is not a time zone: use a name such "
                "as Europe/Berlin.",
            )
        )
    choices = (
        ("feedback_cadence", terms.feedback_cadence, rules.INDICATOR_CADENCES, True),
        ("digest_cadence", terms.digest_cadence, rules.DIGEST_CADENCES, False),
        ("review_cadence", terms.review_cadence, rules.REVIEW_CADENCES, False),
        ("checkin_weekday", terms.checkin_weekday, rules.WEEKDAY_NAMES, False),
        ("report_cadence", terms.report_cadence, rules.REPORT_CADENCES, True),
    )
    for name, value, allowed, optional in choices:
        if not (value in allowed or (optional and value is None)):
            problems.append(Problem(name, "Choose one of the options."))
    if terms.report_cadence is None and (terms.report_channel or terms.report_readers):
        # The import format names a report's channel and readers only with its cadence.
        problems.append(
            Problem(
                "report_cadence",
                "Choose how often the report goes to its channel or readers, or leave both "
                "empty for no scheduled report.",
            )
        )
    return problems


def governance_document(doc: dict[str, Any], terms: GovernanceTerms) -> dict[str, Any]:
    """The import-format document `doc` with these governance terms in it."""
    changed = copy.deepcopy(doc)
    values = terms.model_dump(mode="json")
    for name, path in GOVERNANCE_PATHS.items():
        if name.startswith("report_"):
            continue
        *parents, last = path.split(".")
        place = changed
        for part in parents:
            place = place.setdefault(part, {})
        place[last] = values[name]
    governance = changed.setdefault("governance", {})
    governance.pop("report", None)
    if terms.report_cadence is not None:
        report: dict[str, Any] = {"cadence": terms.report_cadence}
        if terms.report_channel:
            report["channel"] = terms.report_channel
        governance["report"] = {**report, "readers": list(terms.report_readers)}
    result: dict[str, Any] = canonical(changed)
    return result


def _field_at(path: str) -> tuple[str | None, int | None]:
    """The form field an import-format path is at, and the list index in it: `feedback.peers[2]`
    is (`peers`, 2); `governance.report` is the report's channel."""
    match = re.fullmatch(r"(?P<path>[a-z_.]+)(?:\[(?P<index>\d+)\])?(?P<rest>.*)", path)
    if match is None:
        return None, None
    if match["path"] == "governance.report":
        return "report_channel", None
    name = next((n for n, p in GOVERNANCE_PATHS.items() if p == match["path"]), None)
    return name, int(match["index"]) if match["index"] is not None else None


_TOO_MANY = re.compile(r"List should have at most (\d+) items after validation, not (\d+)")


def _readable(message: str, index: int | None) -> str:
    """An import rule's message as the form says it: its fields by their labels, a person by
    their place in the list."""
    too_many = _TOO_MANY.fullmatch(message)
    if too_many:
        return f"Choose at most {too_many[1]} people ({too_many[2]} are chosen)."
    for name, path in sorted(GOVERNANCE_PATHS.items(), key=lambda item: -len(item[1])):
        message = message.replace(path, f"“{GOVERNANCE_LABEL[name]}”")
    if index is not None:
        return f"The {ordinal(index + 1)} person chosen {message}"
    return message


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10)
    return f"{number}{suffix or 'th'}"


def import_rule_problems(doc: dict[str, Any], terms: GovernanceTerms) -> list[Problem]:
    """What the import format's rules say against these terms in the contract `doc` (its
    limits, channel ids, a person in one rater group and never the leader or the sponsor
    there); problems the contract had already do not count."""
    _, before = validate_document(doc)
    _, after = validate_document(governance_document(doc, terms))
    problems = []
    for problem in after:
        if problem in before:
            continue
        path, _, message = problem.partition(": ")
        name, index = _field_at(path)
        if name is None:
            problems.append(Problem(None, problem))
        else:
            problems.append(Problem(name, _readable(message, index)))
    return problems


REQUIRED_LISTS = frozenset(
    {"expectations", "development_activities", "success_indicators", "milestones"}
)


Item = dict[str, Any]


def items_in(doc: dict[str, Any], kind: ItemKind) -> list[tuple[str, Item]]:
    """(handle, item) of each item of `kind` in an import-format document, in order.

    A keyed item's handle is its key; a resource or barrier, which has none, is named by
    its place (R2 is the second resource).
    """
    found = [item for item in doc.get(kind.list_name) or [] if isinstance(item, dict)]
    if kind.keyed:
        return [(str(item.get("key")), item) for item in found]
    return [(f"{kind.prefix}{number}", item) for number, item in enumerate(found, 1)]


def find_item(doc: dict[str, Any], kind: ItemKind, handle: str | None) -> Item | None:
    return next((item for h, item in items_in(doc, kind) if h == handle), None)


def item_title(item: Item | None) -> str:
    """The words that name an item: its name, title, text or risk."""
    if not item:
        return ""
    for name in ("name", "title", "text", "risk"):
        if item.get(name):
            return str(item[name])
    return ""


def fingerprint(item: Item | None) -> str:
    """A short digest of an item, to notice it changed while a form was open."""
    text = json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def proposed_item(kind: ItemKind, fields: dict[str, Any], *, key: str | None) -> Item:
    """The canonical import-format item of a form's fields (None values dropped)."""
    item: Item = canonical({"key": key, **fields} if kind.keyed else dict(fields))
    return item


def changed_document(
    doc: dict[str, Any], kind: ItemKind, handle: str | None, after: Item | None
) -> dict[str, Any]:
    """The document with the item `handle` replaced by `after` (removed when None), or with
    `after` appended when `handle` is None."""
    result = copy.copy(doc)
    items = list(doc.get(kind.list_name) or [])
    index = next((i for i, (h, _) in enumerate(items_in(doc, kind)) if h == handle), None)
    if handle is None or index is None:
        if after is not None:
            items.append(after)
    elif after is None:
        del items[index]
    else:
        items[index] = after
    result[kind.list_name] = items
    return result


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a change cannot be made: at one of the item's fields, the item, or elsewhere."""

    field: str | None
    message: str

    @property
    def text(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def deciders(
    approvers: Sequence[str], *, proposer: str | None, owner: str | None, escalation: Sequence[str]
) -> list[str]:
    """Who must approve an amendment by `proposer`: never the proposer alone.

    The contract's approvers other than the proposer (proposing is their own approval). When
    the proposer is the only approver, the owner decides instead, failing that the escalation
    contacts; an empty list means nobody but the proposer could, so it cannot be proposed.
    """
    others = [a for a in approvers if a != proposer]
    if others:
        return others
    if owner and owner != proposer:
        return [owner]
    return [e for e in dict.fromkeys(escalation) if e != proposer]


def approvers_of(bundle: ContractBundle, proposer: str | None) -> list[str]:
    """Who must approve an amendment `proposer` makes to the contract."""
    c = bundle.contract
    return deciders(
        bundle.approvers or [c.sponsor_id],
        proposer=proposer,
        owner=c.owner_id,
        escalation=bundle.escalation,
    )


NOBODY_ELSE_APPROVES = (
    "Nobody but you could approve a change you propose to this contract: you are its only "
    "approver, and it has no other owner or escalation contact. Ask the leader or sponsor to "
    "propose it, or have an administrator add an approver with `northstar contract import`."
)


def refusal_to_amend(bundle: ContractBundle, *, proposer: str | None = None) -> Refusal | None:
    """Why no amendment can be proposed (by `proposer`, when given) to the contract now."""
    c = bundle.contract
    if c.status == ContractStatus.draft:
        return Refusal(
            f"“{escape(c.title)}” is still a draft: change it directly with `/contract edit`. "
            "Amendments are for active contracts."
        )
    if c.status != ContractStatus.active:
        return Refusal(f"“{escape(c.title)}” is closed and no longer changes.")
    if proposer is not None and not approvers_of(bundle, proposer):
        return Refusal(NOBODY_ELSE_APPROVES)
    return None


def change_of(amendment: Amendment) -> str:
    """add, change or remove."""
    if amendment.before is None:
        return "add"
    return "remove" if amendment.after is None else "change"


def change_lines(
    kind: ItemKind, handle: str | None, before: Item | None, after: Item | None
) -> list[str]:
    """The change as `diff_documents` paths: `success_indicators[I2].target: 30 -> 28`
    (a governance change: `governance.owner: U1 -> U2`)."""
    if kind is GOVERNANCE:
        return diff_documents({"governance": before or {}}, {"governance": after or {}})

    def listed(item: Item | None) -> list[Item]:
        return [] if item is None else [{"key": handle or "new", **item}]

    return diff_documents({kind.list_name: listed(before)}, {kind.list_name: listed(after)})


@dataclass
class AmendmentState:
    """An amendment with what its messages show: contract, approvers, decisions, version."""

    amendment: Amendment
    contract: Contract
    approvers: list[str]
    approvals: list[AmendmentApproval]
    version: int | None = None  # the version it made, once applied

    @property
    def id(self) -> int:
        return self.amendment.id or 0

    @property
    def kind(self) -> ItemKind:
        return kind_named(self.amendment.item_type) or GOVERNANCE

    @property
    def status(self) -> str:
        return self.amendment.status

    @property
    def pending(self) -> bool:
        return self.amendment.status == AmendmentStatus.pending

    def decision_of(self, user: str) -> AmendmentApproval | None:
        return next((a for a in self.approvals if a.approver_id == user), None)

    @property
    def approved_by(self) -> list[str]:
        return [a.approver_id for a in self.approvals if a.decision == APPROVED]

    @property
    def rejection(self) -> AmendmentApproval | None:
        return next((a for a in self.approvals if a.decision == REJECTED), None)

    @property
    def awaiting(self) -> list[str]:
        approved = set(self.approved_by)
        return [a for a in self.approvers if a not in approved]


class Outcome(StrEnum):
    waiting = "waiting"  # approved; other approvers have yet to
    applied = "applied"
    rejected = "rejected"
    stale = "stale"  # refused at this approval: the item changed since it was proposed
    already = "already"  # this approver had decided already (a double click)
    closed = "closed"  # decided before this click
    not_approver = "not_approver"
    missing = "missing"
    conflict = "conflict"  # another change was saved at the same moment; nothing written


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    amendment_id: int
    why: str = ""
    approvers: tuple[str, ...] = ()


def describe_change(amendment: Amendment) -> str:
    """`change success indicator I2`, `add milestone M4`, `remove resource R2`."""
    kind = kind_named(amendment.item_type) or GOVERNANCE
    if kind is GOVERNANCE:
        return "change governance"
    key = f" {amendment.item_key}" if amendment.item_key else ""
    return f"{change_of(amendment)} {kind.label}{key}"


def version_reason(amendment: Amendment) -> str:
    return f"amendment #{amendment.id}: {describe_change(amendment)}"


@dataclass
class History:
    versions: list[ContractVersion]  # newest first
    amendments: dict[int, Amendment]  # those the versions came from, by id
    events: list[AuditEvent]  # newest first


VERSION_ARGUMENT = re.compile(r"^[vV](\d{1,9})$")


def version_argument(args: Sequence[str]) -> tuple[int | None, list[str]]:
    """(3, the other arguments) from `["<@U1>", "v3"]`; (None, args) without a version."""
    for index, arg in enumerate(args):
        match = VERSION_ARGUMENT.match(arg)
        if match:
            return int(match[1]), [*args[:index], *args[index + 1 :]]
    return None, list(args)


@dataclass
class SummaryView:
    """What `/contract summary` shows: the contract and its pending amendments, or an old
    version (`version` set) from its snapshot."""

    bundle: ContractBundle
    pending: list[AmendmentState]
    version: ContractVersion | None = None
    latest: int = 0
