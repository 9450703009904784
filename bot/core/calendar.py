"""The one calendar: weeks, cadences and their cycles, wall-clock times and time zones.

Weeks. A check-in period is an ISO week, named like `2027-W03`; it starts on its Monday.

Cadences. Weekly is every week. Biweekly is two weeks counted from an *anchor*, the Monday of
a week the caller names (`biweekly_start`): a contract's first check-in week for its
indicators, the first week of the digest's governing contract for digests, the ISO year's
first week for feedback windows. Monthly starts on the 1st, quarterly on the 1st of January,
April, July and October.

Local times. A local wall-clock time is turned into an instant with zoneinfo: a time the
spring-forward gap skips (02:30) is read with the offset before the change, so it exists
(03:30 summer time), and a time that happens twice in autumn is the first of the two. The
period key, not the instant, decides what was sent, so a DST week never skips or doubles one.

Late answers. A week can be answered until the end of the Tuesday after it, on the
leader's wall clock (`answerable_until`, the one rule for it).

Zones. A person's zone is their Slack `tz`, else a fixed zone at their `tz_offset`.
"""

from __future__ import annotations

import calendar
import functools
import io
import re
import struct
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage.models import Contract, SlackUser

PERIOD = re.compile(r"(\d{4})-W(\d{2})")
QUARTER_MONTHS = 3
ANSWER_GRACE_DAYS = 2  # a week can still be answered on the Monday and Tuesday after it

# --- weeks ----------------------------------------------------------------------------------


def monday(day: date) -> date:
    """The Monday of the week `day` falls in."""
    return day - timedelta(days=day.weekday())


def period_key(day: date) -> str:
    """The ISO week `day` falls in, as a period key: 2027-W03."""
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


def monday_of(period: str) -> date:
    """The Monday that starts an ISO-week period key such as 2027-W10."""
    year, week = period.split("-W")
    return date.fromisocalendar(int(year), int(week), 1)


def shift_period(period: str, weeks: int) -> str:
    return period_key(monday_of(period) + timedelta(weeks=weeks))


def period_label(period: str) -> str:
    """`week 10 (8–14 Mar 2027)`."""
    week = int(period.split("-W")[1])
    return f"week {week} ({period_dates(period)} {monday_of(period) + timedelta(days=6):%Y})"


def period_dates(period: str) -> str:
    """`8–14 Mar`, `28 Feb–6 Mar`: the period's Monday to Sunday."""
    first = monday_of(period)
    sunday = first + timedelta(days=6)
    left = f"{first.day}" if first.month == sunday.month else f"{first.day} {first:%b}"
    return f"{left}–{sunday.day} {sunday:%b}"


# --- cycles longer than a week ----------------------------------------------------------------


def biweekly_start(day: date, anchor: date) -> date:
    """The Monday that starts the two-week cycle `day` is in, counted from `anchor`'s week."""
    weeks = (monday(day) - monday(anchor)).days // 7
    return monday(day) - timedelta(weeks=weeks % 2)


def iso_year_start(day: date) -> date:
    """The Monday of week 1 of the ISO year `day` falls in."""
    return date.fromisocalendar(day.isocalendar()[0], 1, 1)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month_start(day: date) -> date:
    return (month_start(day) + timedelta(days=32)).replace(day=1)


def month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def quarter_of(day: date) -> int:
    """The calendar quarter of `day`: 1 to 4."""
    return (day.month - 1) // QUARTER_MONTHS + 1


def quarter_start(year: int, quarter: int) -> date:
    return date(year, QUARTER_MONTHS * quarter - 2, 1)


def quarter_end(year: int, quarter: int) -> date:
    return month_end(year, QUARTER_MONTHS * quarter)


def first_weekday_on_or_after(day: date, weekday: int) -> date:
    """The first `weekday` (0 = Monday) from `day` on."""
    return day + timedelta(days=(weekday - day.weekday()) % 7)


# --- local wall-clock time --------------------------------------------------------------------


def local_instant(day: date, clock_time: str, zone: ZoneInfo) -> datetime:
    """`day` at `clock_time` on the wall clocks of `zone`, as a UTC instant (see module doc)."""
    hours, minutes = (int(part) for part in clock_time.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=zone).astimezone(UTC)


def current_period(now: datetime, zone: ZoneInfo) -> str:
    return period_key(now.astimezone(zone).date())


def period_ends_at(period: str, zone: ZoneInfo) -> datetime:
    """The instant the period's week is over: the next Monday's local midnight."""
    return local_instant(monday_of(period) + timedelta(days=7), "00:00", zone)


def answerable_until(period: str, zone: ZoneInfo) -> datetime:
    """The instant the period can no longer be answered: the end of the Tuesday after its
    week (Wednesday's local midnight), so a prompt missed at the end of a week, or a
    weekend away, still leaves the leader two days to answer for it."""
    return local_instant(monday_of(period) + timedelta(days=7 + ANSWER_GRACE_DAYS), "00:00", zone)


def late_until(period: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    """`answerable_until(period)` if its week is over at `now` but it can still be answered;
    else None (its week is still on, or it has closed)."""
    if period_ends_at(period, zone) <= now < answerable_until(period, zone):
        return answerable_until(period, zone)
    return None


# --- a contract's check-in weeks --------------------------------------------------------------


def checkin_day(contract: Contract, period: str) -> date:
    return monday_of(period) + timedelta(days=contract.checkin_weekday % 7)


def prompt_due_at(contract: Contract, period: str, zone: ZoneInfo) -> datetime:
    return local_instant(checkin_day(contract, period), contract.checkin_time, zone)


def in_contract(contract: Contract, period: str) -> bool:
    """Whether the period's check-in day lies within the contract's dates."""
    return contract.period_start <= checkin_day(contract, period) <= contract.period_end


def first_period(contract: Contract) -> str:
    return period_key(first_weekday_on_or_after(contract.period_start, contract.checkin_weekday))


# --- cadences ---------------------------------------------------------------------------------


def cadence_falls_due(cadence: str, day: date, first_day: date) -> bool:
    """Is an indicator's value asked for in the period whose check-in day is `day`?

    Biweekly counts from `first_day`, the contract's first check-in day; monthly asks in the
    period whose check-in day is the 1st to the 7th, quarterly in such a period of a quarter's
    first month."""
    if cadence == "biweekly":
        return biweekly_start(day, first_day) == monday(day)
    if cadence == "monthly":
        return day.day <= 7
    if cadence == "quarterly":
        return day.day <= 7 and day.month == quarter_start(day.year, quarter_of(day)).month
    return True


def cycle_start(cadence: str, day: date, first_day: date) -> date:
    """The first day of the cadence cycle `day` belongs to."""
    if cadence == "biweekly":
        return biweekly_start(day, first_day)
    if cadence == "monthly":
        return month_start(day)
    if cadence == "quarterly":
        return quarter_start(day.year, quarter_of(day))
    return monday(day)


def indicator_due(cadence: str, day: date, first_day: date, last_measured: date | None) -> bool:
    """Asked for when its cadence falls due, or while its cycle still has no value."""
    if cadence_falls_due(cadence, day, first_day):
        return True
    return last_measured is None or last_measured < cycle_start(cadence, day, first_day)


def feedback_window(cadence: str | None, day: date) -> str:
    """The feedback window (cadence period) `day` falls in: 2027-W10, 2027-03, 2027-Q1.

    Biweekly windows count from the ISO year's first week, so they are named by their first
    week: 2027-W09 holds weeks 9 and 10."""
    if cadence == "weekly":
        return period_key(day)
    if cadence == "biweekly":
        return period_key(biweekly_start(day, iso_year_start(day)))
    if cadence == "monthly":
        return f"{day.year}-{day.month:02d}"
    return f"{day.year}-Q{quarter_of(day)}"


def feedback_window_start(cadence: str | None, day: date) -> date:
    """The first day of the feedback window `day` falls in (as `feedback_window` names it)."""
    if cadence == "weekly":
        return monday(day)
    if cadence == "biweekly":
        return biweekly_start(day, iso_year_start(day))
    if cadence == "monthly":
        return month_start(day)
    return quarter_start(day.year, quarter_of(day))


@dataclass(frozen=True, slots=True)
class CadencePeriod:
    """One period of a weekly, biweekly or monthly cadence: `start` to `end` (exclusive),
    its key, and its day: the period's first `weekday`."""

    key: str
    start: date
    end: date
    due_day: date


def cadence_period(cadence: str, day: date, *, weekday: int, anchor: date) -> CadencePeriod:
    """The period `day` falls in: weekly `weekly:2027-W10`; biweekly, counted from `anchor`'s
    week and named by its first week, `biweekly:2027-W10`; else monthly, `monthly:2027-03`."""
    if cadence == "weekly":
        first = monday(day)
        return CadencePeriod(
            f"weekly:{period_key(first)}",
            first,
            first + timedelta(days=7),
            first + timedelta(days=weekday),
        )
    if cadence == "biweekly":
        first = biweekly_start(day, anchor)
        return CadencePeriod(
            f"biweekly:{period_key(first)}",
            first,
            first + timedelta(days=14),
            first + timedelta(days=weekday),
        )
    first = month_start(day)
    return CadencePeriod(
        f"monthly:{first:%Y-%m}",
        first,
        next_month_start(day),
        first_weekday_on_or_after(first, weekday),
    )


# --- time zones -------------------------------------------------------------------------------


def zone_named(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@functools.lru_cache(maxsize=64)
def fixed_offset_zone(seconds: int) -> ZoneInfo:
    """A zone always `seconds` east of UTC, named like `UTC+05:30`, for people whose Slack
    profile has a `tz_offset` but no `tz`. Built as a one-rule TZif file so it is a real
    ZoneInfo, like every other zone here."""
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    abbreviation = f"{sign}{hours:02d}{minutes:02d}".encode() + b"\0"

    def tzif(version: bytes) -> bytes:  # no transitions, one local time type
        counts = struct.pack(">6l", 0, 0, 0, 0, 1, len(abbreviation))
        return (
            b"TZif"
            + version
            + b"\0" * 15
            + counts
            + struct.pack(">lBB", seconds, 0, 0)
            + (abbreviation)
        )

    posix = f"<{sign}{hours:02d}{minutes:02d}>{'-' if seconds >= 0 else '+'}{hours}:{minutes:02d}"
    data = tzif(b"2") + tzif(b"2") + f"\n{posix}\n".encode()
    return ZoneInfo.from_file(io.BytesIO(data), key=f"UTC{sign}{hours:02d}:{minutes:02d}")


def zone_of(person: SlackUser | None) -> ZoneInfo | None:
    """A person's zone as Slack gave it: their `tz`, else a fixed zone at their `tz_offset`."""
    if person is None:
        return None
    named = zone_named(person.tz)
    if named is not None or person.tz_offset is None:
        return named
    return fixed_offset_zone(person.tz_offset)
