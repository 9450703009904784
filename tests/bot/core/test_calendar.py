"""Check-in periods as pure functions: local time, DST weeks, Kolkata, the cadence rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.calendar import (
    current_period,
    cycle_start,
    first_period,
    in_contract,
    indicator_due,
    local_instant,
    monday_of,
    period_ends_at,
    period_label,
    prompt_due_at,
    shift_period,
)
from storage.models import Contract

BERLIN, NEW_YORK, KOLKATA = (
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Asia/Kolkata"),
)


def contract(weekday: int = 4, clock_time: str = "15:00", **overrides: object) -> Contract:
    values: dict[str, object] = {
        "id": 1,
        "title": "t",
        "leader_id": "U1",
        "sponsor_id": "U2",
        "period_start": date(2027, 1, 4),
        "period_end": date(2027, 12, 17),
        "checkin_weekday": weekday,
        "checkin_time": clock_time,
    }
    values.update(overrides)
    return Contract(**values)  # type: ignore[arg-type]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_prompt_is_due_at_local_wall_clock_time() -> None:
    friday = contract()
    assert prompt_due_at(friday, "2027-W10", BERLIN) == utc("2027-03-12 14:00")  # CET
    assert prompt_due_at(friday, "2027-W14", BERLIN) == utc("2027-04-09 13:00")  # CEST
    assert prompt_due_at(friday, "2027-W10", NEW_YORK) == utc("2027-03-12 20:00")  # EST
    assert prompt_due_at(friday, "2027-W11", NEW_YORK) == utc("2027-03-19 19:00")  # EDT
    assert prompt_due_at(friday, "2027-W10", KOLKATA) == utc("2027-03-12 09:30")  # +05:30


@pytest.mark.parametrize(
    ("zone", "sunday", "clock_time", "expected"),
    [
        # Spring forward: 02:30 does not exist; it is read with the old offset (= 03:30 new).
        (BERLIN, date(2027, 3, 28), "02:30", utc("2027-03-28 01:30")),
        (NEW_YORK, date(2027, 3, 14), "02:30", utc("2027-03-14 07:30")),
        # Fall back: 02:30 (Berlin) and 01:30 (New York) happen twice; the first one counts.
        (BERLIN, date(2027, 10, 31), "02:30", utc("2027-10-31 00:30")),
        (NEW_YORK, date(2027, 11, 7), "01:30", utc("2027-11-07 05:30")),
    ],
)
def test_times_dst_skips_or_repeats_still_mean_one_instant(
    zone: ZoneInfo, sunday: date, clock_time: str, expected: datetime
) -> None:
    assert local_instant(sunday, clock_time, zone) == expected
    on_sunday = contract(weekday=6, clock_time=clock_time)
    period = current_period(expected, zone)
    assert monday_of(period) == sunday - timedelta(days=6)
    assert prompt_due_at(on_sunday, period, zone) == expected


def test_the_period_is_the_iso_week_in_the_leaders_zone() -> None:
    # Sunday 23:30 in New York is already Monday in Berlin and Kolkata.
    instant = utc("2027-03-15 03:30")
    assert current_period(instant, NEW_YORK) == "2027-W10"
    assert current_period(instant, BERLIN) == "2027-W11"
    assert current_period(instant, KOLKATA) == "2027-W11"
    # Kolkata's half-hour offset: Monday 00:00 IST is Sunday 18:30 UTC.
    assert current_period(utc("2027-03-14 18:29"), KOLKATA) == "2027-W10"
    assert current_period(utc("2027-03-14 18:30"), KOLKATA) == "2027-W11"
    assert period_ends_at("2027-W10", KOLKATA) == utc("2027-03-14 18:30")


def test_weeks_that_change_the_clocks_are_still_seven_days() -> None:
    assert period_ends_at("2027-W12", BERLIN) - local_instant(
        monday_of("2027-W12"), "00:00", BERLIN
    ) == timedelta(days=7, hours=-1)
    assert period_ends_at("2027-W43", BERLIN) - local_instant(
        monday_of("2027-W43"), "00:00", BERLIN
    ) == timedelta(days=7, hours=1)


@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2029, 12, 31)),
    st.sampled_from([BERLIN, NEW_YORK, KOLKATA, ZoneInfo("Australia/Lord_Howe")]),
    st.integers(0, 6),
    st.sampled_from(["00:00", "01:30", "02:30", "09:00", "23:59"]),
)
def test_each_period_has_exactly_one_due_instant_inside_it(
    naive: datetime, zone: ZoneInfo, weekday: int, clock_time: str
) -> None:
    period = current_period(naive.replace(tzinfo=UTC), zone)
    due = prompt_due_at(contract(weekday=weekday, clock_time=clock_time), period, zone)
    opens = local_instant(monday_of(period), "00:00", zone)
    assert opens <= due < period_ends_at(period, zone)
    assert current_period(due, zone) == period


def test_period_helpers() -> None:
    assert shift_period("2027-W01", -1) == "2026-W53"
    assert shift_period("2026-W53", 1) == "2027-W01"
    assert period_label("2027-W10") == "week 10 (8–14 Mar 2027)"
    assert period_label("2027-W13") == "week 13 (29 Mar–4 Apr 2027)"
    c = contract(period_start=date(2027, 1, 6))  # a Wednesday; Friday check-ins
    assert first_period(c) == "2027-W01"
    assert in_contract(c, "2027-W01") and not in_contract(c, "2026-W53")
    assert in_contract(c, "2027-W50") and not in_contract(c, "2027-W51")  # ends Fri 17 Dec


FIRST = date(2027, 1, 8)  # the contract's first check-in day (Friday)


@pytest.mark.parametrize(
    ("cadence", "checkin_day", "due"),
    [
        ("weekly", date(2027, 3, 12), True),
        ("biweekly", date(2027, 1, 8), True),
        ("biweekly", date(2027, 1, 15), False),
        ("biweekly", date(2027, 1, 22), True),
        ("biweekly", date(2028, 1, 7), True),  # 52 weeks later: still even, across the year
        ("monthly", date(2027, 3, 5), True),
        ("monthly", date(2027, 3, 12), False),
        ("quarterly", date(2027, 4, 2), True),
        ("quarterly", date(2027, 5, 7), False),
        ("quarterly", date(2027, 4, 9), False),
    ],
)
def test_the_cadence_rule_when_the_cycle_already_has_a_value(
    cadence: str, checkin_day: date, due: bool
) -> None:
    measured = cycle_start(cadence, checkin_day, FIRST)
    assert indicator_due(cadence, checkin_day, FIRST, measured) is due


def test_a_cycle_without_a_value_keeps_asking() -> None:
    # Monthly, second Friday of March: asked again only if March has no value yet.
    assert indicator_due("monthly", date(2027, 3, 12), FIRST, date(2027, 2, 26))
    assert not indicator_due("monthly", date(2027, 3, 12), FIRST, date(2027, 3, 5))
    assert indicator_due("quarterly", date(2027, 5, 7), FIRST, None)
    assert cycle_start("biweekly", date(2027, 1, 15), FIRST) == date(2027, 1, 4)
    assert cycle_start("quarterly", date(2027, 8, 20), FIRST) == date(2027, 7, 1)
