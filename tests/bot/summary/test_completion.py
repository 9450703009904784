"""Check-in completion (a contract's, and a report period's) counted from the first and last
check-in days, as it was from every due week written out: the same on every day of three
years, every weekday, across ISO years of 52 and 53 weeks, with check-ins before the start,
after the end and not yet due."""

from __future__ import annotations

import random
from datetime import date, timedelta

from bot.core.calendar import period_key
from bot.summary.model import checkin_completion, completion_between
from storage.models import Contract
from storage.queries.contracts import ContractBundle


def by_every_week(
    bundle: ContractBundle, today: date, start: date | None = None, end: date | None = None
) -> tuple[int, int]:
    """Every check-in day written out, one week after another, and its key looked up."""
    c = bundle.contract
    start, end = start or c.period_start, end or c.period_end
    day = start + timedelta(days=(c.checkin_weekday - start.weekday()) % 7)
    due = set()
    while day <= min(end, today):
        due.add(period_key(day))
        day += timedelta(weeks=1)
    return len(due & set(bundle.answered_periods)), len(due)


def test_completion_counts_what_every_due_week_written_out_counts() -> None:
    chosen = random.Random(20271203)
    start = date(2025, 12, 24)  # 2026 has 53 ISO weeks
    every_week = [period_key(start + timedelta(weeks=n)) for n in range(-8, 170)]
    for weekday in range(7):
        contract = Contract(
            id=1,
            title="t",
            leader_id="U1",
            sponsor_id="U2",
            period_start=start + timedelta(days=weekday * 3),
            period_end=start + timedelta(weeks=150, days=weekday),
            checkin_weekday=weekday,
        )
        bundle = ContractBundle(
            contract=contract,
            recent=True,
            answered_keys=tuple(sorted(k for k in every_week if chosen.random() < 0.7)),
        )
        for offset in range(-10, 3 * 365, 3):
            today = start + timedelta(days=offset)
            found = checkin_completion(bundle, today)
            assert (found.answered, found.expected) == by_every_week(bundle, today), today
        # A report's period: a quarter within the contract, one across its start, none.
        for first, last in (
            (date(2026, 4, 1), date(2026, 6, 30)),
            (date(2025, 10, 1), date(2026, 1, 15)),
            (date(2027, 5, 1), date(2027, 4, 1)),
        ):
            for today in (date(2026, 5, 20), date(2027, 12, 1)):
                found = completion_between(bundle, first, last, today)
                expected = by_every_week(bundle, today, first, last)
                assert (found.answered, found.expected) == expected, (first, today)
