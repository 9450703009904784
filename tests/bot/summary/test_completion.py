"""Check-in completion counted from the first and last check-in days, as it was from every
due week written out: the same on every day of three years, every weekday, across ISO years
of 52 and 53 weeks, with check-ins before the start, after the end and not yet due."""

from __future__ import annotations

import random
from datetime import date, timedelta

from bot.core.calendar import elapsed_periods, period_key
from bot.summary.model import checkin_completion
from storage.models import Contract
from storage.queries.contracts import ContractBundle


def by_every_week(bundle: ContractBundle, today: date) -> tuple[int, int]:
    c = bundle.contract
    due = set(elapsed_periods(c.period_start, c.period_end, c.checkin_weekday, today))
    return len(due & bundle.answered_periods), len(due)


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
            answered_keys=frozenset(k for k in every_week if chosen.random() < 0.7),
        )
        for offset in range(-10, 3 * 365, 3):
            today = start + timedelta(days=offset)
            found = checkin_completion(bundle, today)
            assert (found.answered, found.expected) == by_every_week(bundle, today), today
