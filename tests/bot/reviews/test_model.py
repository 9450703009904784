"""Review periods as pure rules: months and quarters, the day a review opens, period keys."""

from __future__ import annotations

from datetime import date

import pytest

from bot.reviews.model import opens_on, period_named, review_period


@pytest.mark.parametrize(
    ("cadence", "day", "key", "opens"),
    [
        ("quarterly", date(2027, 2, 1), "2027-Q1", date(2027, 3, 18)),
        ("quarterly", date(2027, 11, 30), "2027-Q4", date(2027, 12, 18)),
        ("monthly", date(2027, 2, 10), "2027-02", date(2027, 2, 22)),
        ("monthly", date(2028, 12, 1), "2028-12", date(2028, 12, 25)),
    ],
)
def test_periods(cadence: str, day: date, key: str, opens: date) -> None:
    period = review_period(cadence, day)
    assert period.key == key
    assert opens_on(cadence, period) == opens
    assert period_named(cadence, key) == period


@pytest.mark.parametrize("key", ["2027-Q5", "2027-13", "2027-00", "x-Q1", "2027-q1", "", "2027"])
def test_a_key_that_names_no_period(key: str) -> None:
    assert period_named("quarterly", key) is None or key == "2027-Q1"
    assert period_named("monthly", key) is None


def test_a_key_of_the_other_cadence_is_not_one() -> None:
    assert period_named("quarterly", "2027-03") is None
    assert period_named("monthly", "2027-Q1") is None
