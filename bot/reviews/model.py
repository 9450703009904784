"""Alignment review types: its periods, the items it asks about, one person's choices."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.delivery.model import DeliveryKey
from storage.models import AlignmentReview, Contract, ContractStatus
from storage.queries.contracts import ContractBundle

REVIEW = "alignment_review"  # the delivery kind of the review DM
KEEP, AMEND, RETIRE = "keep", "amend", "retire"
CHOICES = (KEEP, AMEND, RETIRE)
CHOICE_LABEL = {KEEP: "Keep", AMEND: "Amend", RETIRE: "Retire"}
CHOICE_VERB = {KEEP: "kept", AMEND: "to amend", RETIRE: "retired"}
# A review opens this many days before its period ends, at REVIEW_TIME in each person's zone.
OPEN_DAYS = {"monthly": 7, "quarterly": 14}
REVIEW_TIME = "09:00"
NOTE_MAX = 500
LEADER, SPONSOR = "leader", "sponsor"


@dataclass(frozen=True, slots=True)
class ReviewPeriod:
    """A calendar month or quarter: `2027-Q1` (January to March 2027) or `2027-03`."""

    key: str
    label: str
    start: date
    end: date


def _month_end(year: int, month: int) -> date:
    following = date(year + (month == 12), month % 12 + 1, 1)
    return following - timedelta(days=1)


def review_period(cadence: str, day: date) -> ReviewPeriod:
    """The review period of `cadence` that holds `day`."""
    if cadence == "monthly":
        start = day.replace(day=1)
        return ReviewPeriod(
            f"{day.year}-{day.month:02d}",
            start.strftime("%B %Y"),
            start,
            _month_end(day.year, day.month),
        )
    quarter = (day.month - 1) // 3 + 1
    start = date(day.year, 3 * quarter - 2, 1)
    return ReviewPeriod(
        f"{day.year}-Q{quarter}",
        f"Q{quarter} {day.year}",
        start,
        _month_end(day.year, 3 * quarter),
    )


def opens_on(cadence: str, period: ReviewPeriod) -> date:
    """The day a period's review is sent: `OPEN_DAYS` before its end."""
    return period.end - timedelta(days=OPEN_DAYS.get(cadence, OPEN_DAYS["quarterly"]) - 1)


def period_named(cadence: str, key: str) -> ReviewPeriod | None:
    """The period a key names (as a button carries it), if it is one of `cadence`."""
    try:
        year_text, _, part = key.partition("-")
        year = int(year_text)
        if cadence == "monthly":
            day = date(year, int(part), 1)
        elif part.startswith("Q") and part[1:] in ("1", "2", "3", "4"):
            day = date(year, 3 * int(part[1:]) - 2, 1)
        else:
            return None
    except ValueError:
        return None
    found = review_period(cadence, day)
    return found if found.key == key else None


def role_of(contract: Contract, user: str) -> str | None:
    """`leader` or `sponsor`: who reviews; None for anyone else."""
    if user == contract.leader_id:
        return LEADER
    if user == contract.sponsor_id:
        return SPONSOR
    return None


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """An expectation or indicator the review asks about."""

    kind: str  # expectation | indicator (as bot.amendments names the kinds)
    key: str
    title: str

    @property
    def block_id(self) -> str:
        return f"{self.kind}.{self.key}"

    @property
    def note_id(self) -> str:
        return f"note.{self.kind}.{self.key}"


def review_items(bundle: ContractBundle) -> list[ReviewItem]:
    return [ReviewItem("expectation", e.key, e.text) for e in bundle.expectations] + [
        ReviewItem("indicator", i.key, i.name) for i in bundle.indicators
    ]


@dataclass(frozen=True, slots=True)
class DueReview:
    contract: Contract
    recipient: str
    role: str
    period: ReviewPeriod
    zone: ZoneInfo
    due_at: datetime

    @property
    def key(self) -> DeliveryKey:
        return DeliveryKey(REVIEW, self.contract.id or 0, self.recipient, self.period.key)


@dataclass
class ReviewForm:
    """What a review modal shows: the contract, its items, the other reviewer's choices."""

    bundle: ContractBundle
    period: ReviewPeriod
    reviewer: str
    role: str
    items: list[ReviewItem]
    others: list[AlignmentReview] = field(default_factory=list)
    mine: AlignmentReview | None = None


def reviewable(contract: Contract) -> bool:
    return contract.status == ContractStatus.active


def choices_of(review: AlignmentReview) -> list[dict[str, Any]]:
    return [c for c in review.choices or [] if isinstance(c, dict)]
