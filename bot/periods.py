"""Check-in periods: one per ISO week, named like 2027-W03."""

from __future__ import annotations

from datetime import date, timedelta


def period_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


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
