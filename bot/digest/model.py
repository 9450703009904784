"""Digest types: a recipient's schedule, a due digest, and what one holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from bot.amendments.model import AmendmentState
from bot.charts.model import ShownChart
from bot.core.calendar import CadencePeriod
from bot.core.progress import IndicatorProgress, progress
from bot.delivery.model import DeliveryKey
from bot.risks.model import Resilience
from storage.models import (
    AlignmentReview,
    CheckIn,
    Contract,
    DeliveryStatus,
    DevelopmentActivity,
    Lesson,
    Milestone,
    Risk,
    SuccessIndicator,
)
from storage.queries.contracts import ContractBundle

DIGEST = "digest"
DIGEST_PART = "digest_part"
CADENCES = ("weekly", "biweekly", "monthly")  # most frequent first
FINAL = (DeliveryStatus.sent, DeliveryStatus.undeliverable, DeliveryStatus.cancelled)
MAX_PARTS_PER_RUN = 500
MAX_WEEKS_BACK = 60
TOO_LONG = "msg_blocks_too_long"
MIN_TEXT_BUDGET = 1_000
# A large portfolio stays readable: the exceptions of the first NEEDS_SHOWN contracts in
# full, a line each for some more (`bot.digest.blocks`), the progress of PROGRESS_SHOWN, the
# rest counted with a pointer to App Home.
NEEDS_SHOWN = 15
PROGRESS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class Schedule:
    """When one recipient's digests fall: cadence, weekday (0 = Monday), time, biweekly start."""

    cadence: str
    weekday: int
    time: str
    anchor: date  # the Monday biweekly periods are counted from


@dataclass(frozen=True, slots=True)
class DueDigest:
    recipient: str
    contract_ids: tuple[int, ...]
    schedule: Schedule
    period: CadencePeriod
    zone: ZoneInfo
    due_at: datetime

    @property
    def key(self) -> DeliveryKey:
        return DeliveryKey(DIGEST, 0, self.recipient, self.period.key)


@dataclass(frozen=True, slots=True)
class Move:
    """An indicator that got values since the last digest: where it was, where it is."""

    indicator: SuccessIndicator
    before: float | None  # its last value before the window, if any
    latest: float
    overall: IndicatorProgress  # from baseline toward target, for the bar

    @property
    def reference(self) -> float:
        return self.indicator.baseline if self.before is None else self.before

    @property
    def wrong_way(self) -> bool:
        """Moved away from the target since the last digest (or from the baseline)."""
        i = self.indicator
        return progress(i.baseline, i.target, self.latest) < progress(
            i.baseline, i.target, self.reference
        )


@dataclass(frozen=True, slots=True)
class FeedbackVolume:
    """Feedback that reached the leader since the last digest: counts, never content."""

    named: int = 0
    anonymous: int = 0  # released anonymous entries (held ones are not counted)

    @property
    def total(self) -> int:
        return self.named + self.anonymous


@dataclass
class ContractDigest:
    """One contract's part of a digest."""

    bundle: ContractBundle
    headline: str
    missed_milestones: list[Milestone] = field(default_factory=list)
    missed_checkins: list[str] = field(default_factory=list)  # period keys, oldest first
    # Every risk not yet resolved, oldest first: shown in each digest until resolved.
    open_risks: list[Risk] = field(default_factory=list)
    resilience: Resilience | None = None
    pending: list[AmendmentState] = field(default_factory=list)
    wrong_way: list[Move] = field(default_factory=list)
    met: list[Milestone] = field(default_factory=list)
    moved: list[Move] = field(default_factory=list)
    completed: list[DevelopmentActivity] = field(default_factory=list)
    feedback: FeedbackVolume = field(default_factory=FeedbackVolume)
    reviews: list[AlignmentReview] = field(default_factory=list)  # alignment reviews
    # What the leader wrote: check-ins answered since the last digest (oldest first), the
    # confidence trend, the missed weeks already nudged.
    checkins: list[CheckIn] = field(default_factory=list)
    trend: str | None = None
    nudged: set[str] = field(default_factory=set)
    lessons: list[Lesson] = field(default_factory=list)  # shared with the leader's name
    charts: list[ShownChart] = field(default_factory=list)  # uploaded, shown with progress
    # Set by `brief()`: how many things need the recipient and whether anything moved, the
    # findings themselves let go.
    counted: tuple[int, bool] | None = None

    @property
    def contract(self) -> Contract:
        return self.bundle.contract

    @property
    def detailed(self) -> bool:
        return self.counted is None

    def brief(self) -> ContractDigest:
        """This contract as a digest that never shows it in full lists or counts it: its
        title, leader and counts kept, its bundle and findings let go."""
        if self.counted is not None:
            return self
        return ContractDigest(
            bundle=ContractBundle(contract=self.contract),
            headline=self.headline,
            counted=(self.needs_count, self.has_progress),
        )

    @property
    def needs_count(self) -> int:
        """How many things need the recipient: each missed milestone, open risk, amendment
        awaiting a decision and indicator going the wrong way, and missed check-ins as one."""
        if self.counted is not None:
            return self.counted[0]
        return (
            len(self.missed_milestones)
            + (1 if self.missed_checkins else 0)
            + len(self.open_risks)
            + len(self.pending)
            + len(self.wrong_way)
        )

    @property
    def needs_attention(self) -> bool:
        return self.needs_count > 0

    @property
    def has_progress(self) -> bool:
        if self.counted is not None:
            return self.counted[1]
        return bool(
            self.met
            or self.moved
            or self.completed
            or self.feedback.total
            or self.reviews
            or self.checkins
            or self.lessons
        )


def progress_shown(contracts: Sequence[ContractDigest]) -> list[ContractDigest]:
    """All contracts when they are few; else `PROGRESS_SHOWN`, those that moved first."""
    if len(contracts) <= PROGRESS_SHOWN:
        return list(contracts)
    moved = [c for c in contracts if c.has_progress]
    still = [c for c in contracts if not c.has_progress]
    return (moved + still)[:PROGRESS_SHOWN]


def needs_shown(contracts: Sequence[ContractDigest]) -> list[ContractDigest]:
    """The contracts whose exceptions are shown in full: the first `NEEDS_SHOWN` needing."""
    return [c for c in contracts if c.needs_attention][:NEEDS_SHOWN]


def briefed(contracts: Sequence[ContractDigest]) -> list[ContractDigest]:
    """`contracts`, in a digest's order, each made `brief` unless a digest of them would show
    it in full. Contracts added later, in any place of that order, only push others out of
    the first places: what is brief here stays so in the digest of them all."""
    full = {id(c) for c in (*needs_shown(contracts), *progress_shown(contracts))}
    return [c if id(c) in full else c.brief() for c in contracts]


@dataclass
class Digest:
    recipient: str
    schedule: Schedule
    period: CadencePeriod
    zone: ZoneInfo
    since: datetime
    now: datetime
    contracts: list[ContractDigest]

    @property
    def today(self) -> date:
        return self.now.astimezone(self.zone).date()

    @property
    def since_day(self) -> date:
        return self.since.astimezone(self.zone).date()
