"""Check-in periods: one per ISO week, named like 2027-W03."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

PERIOD = re.compile(r"(\d{4})-W(\d{2})")


def period_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def valid_period(value: Any) -> str | None:
    """`value` if it names an ISO week like 2027-W03 (from a button or metadata); else None."""
    found = PERIOD.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        return None
    try:
        date.fromisocalendar(int(found[1]), int(found[2]), 1)
    except ValueError:
        return None
    return str(value)


def checkin_days(start: date, end: date, weekday: int, until: date) -> list[date]:
    """Each check-in day (0 = Monday) from `start` to `end`, up to and including `until`."""
    first = start + timedelta(days=(weekday - start.weekday()) % 7)
    last = min(end, until)
    days: list[date] = []
    current = first
    while current <= last:
        days.append(current)
        current += timedelta(days=7)
    return days


def elapsed_periods(start: date, end: date, weekday: int, until: date) -> list[str]:
    """The period keys whose check-in day has come, in order."""
    return [period_key(d) for d in checkin_days(start, end, weekday, until)]
