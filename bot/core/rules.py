"""The contract's rules as pure functions, shared by the import format and the modals."""

from __future__ import annotations

import math
import re
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage.models import SuccessIndicator

TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
EXPECTATION_KINDS = ("impact", "behavior", "decision")
MODALITIES = (
    "coaching",
    "mentorship",
    "formal_training",
    "experiential",
    "peer_learning",
    "other",
)
DIRECTIONS = ("increase", "decrease")
INDICATOR_CADENCES = ("weekly", "biweekly", "monthly", "quarterly")
DIGEST_CADENCES = ("weekly", "biweekly", "monthly")
REVIEW_CADENCES = ("monthly", "quarterly")
REPORT_CADENCES = (
    "monthly",
    "quarterly",
    "yearly",
)  # the period report, on its schedule  # the strategic-alignment review
ANONYMITY_MIN, ANONYMITY_MAX = 2, 100
REMINDER_HOURS_MAX = 7 * 24  # 0: no reminder
RESOURCE_KINDS = ("budget", "time", "expert", "platform", "other")
MAX_NUMBER = 1e12


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone such as Europe/Berlin."""
    if not name or len(name) > 64 or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def parse_number(text: str) -> float:
    """A number as people type it ("1 200", "7,5" or "7.5"); ValueError says why not."""
    cleaned = text.strip().replace("\u202f", "").replace(" ", "")
    if cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        raise ValueError(f"“{text.strip()}” is not a number.") from None
    return check_number(value)


def check_number(value: float) -> float:
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise ValueError("Enter a number between -1,000,000,000,000 and 1,000,000,000,000.")
    return value


def target_problem(baseline: float, target: float, direction: str) -> str | None:
    """Why a target does not fit its baseline and direction, or None."""
    if target == baseline:
        return "must differ from baseline"
    if direction == "increase" and target < baseline:
        return "must be above the baseline for an indicator that should increase"
    if direction == "decrease" and target > baseline:
        return "must be below the baseline for an indicator that should decrease"
    return None


def threshold_problem(baseline: float, target: float, threshold: float) -> str | None:
    low, high = sorted((baseline, target))
    if not low <= threshold <= high:
        return "must lie between the indicator's baseline and target"
    return None


def date_problem(value: date, start: date, end: date) -> str | None:
    if not start <= value <= end:
        return f"must fall within the contract period ({start.isoformat()} to {end.isoformat()})"
    return None


def period_problem(start: date, end: date) -> str | None:
    return None if end > start else "must be after the period start"


def value_range(indicator: SuccessIndicator) -> tuple[float | None, float | None]:
    """What a new value may be: never negative where baseline and target are not;
    within 0..100 for a percentage whose baseline and target are."""
    low, high = sorted((indicator.baseline, indicator.target))
    if indicator.unit.strip() == "%" and low >= 0 and high <= 100:
        return 0.0, 100.0
    if low >= 0:
        return 0.0, None
    return None, None
