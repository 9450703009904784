"""Feedback types and the rules on them: an entry as given and as a reader sees it, the
contract it is given on, requests, and the windows, caps and keys that govern them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.delivery.model import DeliveryKey
from storage.models import Contract, Feedback, FeedbackRequest
from storage.queries.contracts import ContractBundle

ATTRIBUTED_NOTICE = "feedback_given"
RELEASE = "feedback_release"
REQUEST = "feedback_request"
CADENCE = "feedback_cadence"
REMINDER = "feedback_reminder"
ANONYMOUS_WEEKLY_CAP = 3
REMINDER_AFTER = timedelta(days=3)
REQUEST_OPEN_FOR = timedelta(days=14)
MAX_REVIEWERS = 20
DAILY_REQUEST_LIMIT = 20
REQUEST_LIMIT_WINDOW = timedelta(hours=24)
STATUS_DAYS = 60
STATUS_BATCHES = 10
CADENCE_HOUR = 9
WORKDAY_END = 18  # a reminder due later in a reviewer's day waits for their next working morning
RELEASE_RESEND_DAYS = 7
OPEN, ANSWERED, EXPIRED = "open", "answered", "expired"
EXPECTATION_KEY = re.compile(r"^[A-Za-z]\d{1,3}$")

POLARITIES = ("strength", "development")
ATTRIBUTED, ANONYMOUS = "attributed", "anonymous"
SITUATION_MAX = 1000
BEHAVIOUR_MAX = 2000
IMPACT_MAX = 1000
BEHAVIOUR_MIN = 20

# Rater groups: the giver's relationship to the leader.
PEER, DIRECT_REPORT, SPONSOR, STAKEHOLDER, SELF = (
    "peer",
    "direct_report",
    "sponsor",
    "stakeholder",
    "self",
)
OTHERS = "others"  # anonymous groups below the threshold, released merged
RELATIONS = (SELF, PEER, DIRECT_REPORT, SPONSOR, STAKEHOLDER)
ANONYMOUS_GROUPS = (PEER, DIRECT_REPORT, STAKEHOLDER)  # who may give anonymously, as a group
ONE_PERSON = (SPONSOR, SELF)  # attributed by nature
GROUP_ORDER = (SELF, PEER, DIRECT_REPORT, SPONSOR, STAKEHOLDER, OTHERS)
GROUP_LABEL = {
    SELF: "Self",
    PEER: "Peers",
    DIRECT_REPORT: "Direct reports",
    SPONSOR: "Sponsor",
    STAKEHOLDER: "Other stakeholders",
    OTHERS: "Others",
}
EVERYONE = "everyone"
GROUP_WORDS = {  # `/contract request-feedback peers reports …`
    "peers": PEER,
    "reports": DIRECT_REPORT,
    "direct-reports": DIRECT_REPORT,
    "stakeholders": STAKEHOLDER,
    "sponsor": SPONSOR,
    "self": SELF,
    "everyone": EVERYONE,
}
RELATION_CHOICE = {
    PEER: "As a peer",
    DIRECT_REPORT: "I report to them",
    STAKEHOLDER: "Another way (a stakeholder)",
}


def group_of(entry: Feedback) -> str:
    """The group an entry is shown in: an anonymous one's as released, a named one's relation
    (entries from before rater groups count as other stakeholders)."""
    if entry.anonymous:
        return entry.released_as or STAKEHOLDER
    return entry.relation or STAKEHOLDER


@dataclass(frozen=True, slots=True)
class Target:
    """The contract feedback is given on, as much as the modal needs."""

    contract_id: int
    leader_id: str
    title: str
    threshold: int
    expectations: tuple[tuple[str, str], ...]
    # The giver's relationship to the leader when the contract (or an earlier entry of theirs)
    # says it; else None and the modal asks, offering `open_groups`.
    relation: str | None = None
    open_groups: tuple[str, ...] = ANONYMOUS_GROUPS
    # Sponsor, self, and whoever reads the feedback give it with their name only.
    attributed_only: bool = False

    def expectation_text(self, key: str | None) -> str:
        return next((text for k, text in self.expectations if k == key), "")


@dataclass(frozen=True, slots=True)
class Entry:
    """What the modal submitted, checked."""

    expectation_key: str | None
    polarity: str
    situation: str
    behaviour: str
    impact: str
    anonymous: bool
    relation: str | None = None  # as stated in the modal, when it asked


@dataclass(frozen=True, slots=True)
class Shown:
    """One feedback entry as a reader may see it: no author unless attributed, no hash."""

    expectation_key: str | None
    polarity: str
    situation: str
    behaviour: str
    impact: str
    author_id: str | None = None
    given_on: date | None = None
    feedback_id: int | None = None  # for the leader's own buttons; never shown
    group: str = STAKEHOLDER  # an anonymous entry's group as released, never its own relation

    @classmethod
    def of(cls, entry: Feedback) -> Shown:
        """An entry as shown: with its author and date when it is attributed, else without."""
        if entry.anonymous:
            return cls(
                entry.expectation_key,
                entry.polarity,
                entry.situation,
                entry.behaviour,
                entry.impact,
                feedback_id=entry.id,
                group=group_of(entry),
            )
        return cls(
            entry.expectation_key,
            entry.polarity,
            entry.situation,
            entry.behaviour,
            entry.impact,
            author_id=entry.author_id,
            given_on=entry.created_at.date(),
            feedback_id=entry.id,
            group=group_of(entry),
        )


@dataclass(frozen=True, slots=True)
class MineRow:
    """One entry in `/feedback mine`: the author's own view of it."""

    feedback_id: int
    leader_id: str
    expectation_key: str | None
    polarity: str
    behaviour: str
    anonymous: bool
    released: bool
    given_on: date


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """One request for feedback, as its requester sees it: who answered by name, no more."""

    leader_id: str
    expectation_key: str | None
    asked_on: date
    asked: int
    answered: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Given:
    """Stored feedback; `giver` is None for an anonymous entry and goes nowhere further."""

    feedback_id: int
    target: Target
    entry: Entry
    giver: str | None
    relation: str | None = None  # a named entry's; None for an anonymous one


@dataclass(frozen=True, slots=True)
class Received:
    leader_id: str
    attributed: list[Shown]
    released: list[Shown]
    expectations: tuple[tuple[str, str], ...]
    threshold: int


@dataclass(frozen=True, slots=True)
class RequestArgs:
    reviewers: list[str]
    expectation_key: str | None
    leader: str | None
    groups: tuple[str, ...] = ()  # rater groups named (`peers`, `reports`, `sponsor`, `self`…)


@dataclass(frozen=True, slots=True)
class GroupView:
    """What one rater group said about one expectation, as its readers may see it."""

    group: str
    label: str
    anonymous: bool  # released anonymous entries: no authors, no dates
    strengths: tuple[Shown, ...]
    development: tuple[Shown, ...]


@dataclass(frozen=True, slots=True)
class ExpectationView:
    key: str | None
    text: str
    groups: tuple[GroupView, ...]


@dataclass(frozen=True, slots=True)
class ThreeSixty:
    """The leader's self view beside the others', per expectation (`three_sixty`)."""

    contract_id: int
    leader_id: str
    period_start: date
    period_end: date
    threshold: int
    expectations: tuple[ExpectationView, ...]


@dataclass(frozen=True, slots=True)
class Asked:
    """The requests a `/contract request-feedback` made, and whom it left out, and why."""

    bundle: ContractBundle
    requests: list[FeedbackRequest]
    skipped: dict[str, str]


@dataclass(frozen=True, slots=True)
class CadenceAsk:
    contract_id: int
    reviewer: str
    batch: str
    now: datetime
    since: datetime | None = None  # the window's first instant in the reviewer's zone


def midnight(moment: datetime) -> datetime:
    """The UTC day `moment` falls in, as its first instant: all an anonymous entry keeps."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def working_moment(moment: datetime, zone: ZoneInfo) -> datetime:
    """`moment` if it falls in a working day's hours in `zone` (from `CADENCE_HOUR` to
    `WORKDAY_END`, Monday to Friday), else the next working morning there."""
    local = moment.astimezone(zone)
    if local.weekday() < 5 and CADENCE_HOUR <= local.hour < WORKDAY_END:
        return moment
    morning = local.date() + timedelta(days=0 if local.hour < CADENCE_HOUR else 1)
    while morning.weekday() >= 5:
        morning += timedelta(days=1)
    return datetime.combine(morning, time(CADENCE_HOUR), tzinfo=zone).astimezone(UTC)


def closes_at(request: FeedbackRequest) -> datetime:
    """When a request stops taking answers (and is expired)."""
    return request.created_at + REQUEST_OPEN_FOR


def reminder_key(request: FeedbackRequest) -> DeliveryKey:
    return DeliveryKey(REMINDER, request.contract_id, request.reviewer_id, f"request-{request.id}")


def notice_period(feedback_id: int) -> str:
    """The period key of the leader's DM about one named entry: how it is found again."""
    return f"feedback-{feedback_id}"


def release_period(released_at: datetime) -> str:
    return released_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


# --- the leader's answer to an entry: acknowledge it, make it an activity -------------------

ACK_NOTICE = "feedback_ack"  # the giver's DM that the leader acknowledged their named entry
ACTIVITY_TITLE_MAX = 100
# What became of the amendment an entry was made into, by `Amendment.status` (the values of
# `bot.amendments.model.AmendmentStatus`, which this package cannot import: amendments build
# on the summary, which builds on feedback). Rejected or stale: the entry may be made again.
PROPOSED, ADDED = "proposed", "added"
ACTIVITY_OF_STATUS = {"pending": PROPOSED, "applied": ADDED}


@dataclass(frozen=True, slots=True)
class Response:
    """What the leader did with one entry: acknowledged it (on which day), made it into an
    activity (proposed or added, by which amendment)."""

    acknowledged_on: date | None = None
    activity: str | None = None
    amendment_id: int | None = None


@dataclass(frozen=True, slots=True)
class Acked:
    """An acknowledgement as stored: `first` when this click made it. `giver` is None for an
    anonymous entry: nobody is told anything about those."""

    feedback_id: int
    contract_id: int
    leader_id: str
    giver: str | None
    expectation_key: str | None
    given_on: date
    at: datetime
    first: bool


def shown_on(entry: Feedback) -> date:
    """The day the leader knows an entry by: a named one's, an anonymous one's release."""
    if entry.anonymous and entry.released_at is not None:
        return entry.released_at.astimezone(UTC).date()
    return entry.created_at.astimezone(UTC).date()


def activity_title(text: str) -> str:
    """A development activity's title from an entry's words: its first sentence, cut at a word
    within `ACTIVITY_TITLE_MAX` characters."""
    words = " ".join(text.split())
    first = re.split(r"(?<=[.!?])\s", words, maxsplit=1)[0]
    if len(first) <= ACTIVITY_TITLE_MAX:
        return first.rstrip(".")
    cut = first[: ACTIVITY_TITLE_MAX - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + "…"


def activity_draft(entry: Feedback, contract: Contract, keys: set[str]) -> dict[str, str]:
    """The new development activity an entry suggests, in the import format: its title, the
    entry's expectation (while the contract has it) and the contract's last day as due."""
    item = {"title": activity_title(entry.behaviour), "due": contract.period_end.isoformat()}
    if entry.expectation_key and entry.expectation_key in keys:
        item["expectation"] = entry.expectation_key
    return item
