"""The leader's words as summaries and digests show them: the confidence trend in words,
wins and reflection shortened and escaped."""

from __future__ import annotations

import pytest

from bot.summary.reflection import checkin_lines, confidence_trend, latest_with_words
from storage.models import CheckIn


def checkin(
    week: int,
    confidence: int | None,
    *,
    status: str = "answered",
    wins: str = "",
    reflection: str = "",
) -> CheckIn:
    return CheckIn(
        contract_id=1,
        period_key=f"2027-W{week:02d}",
        status=status,
        confidence=confidence,
        wins=wins,
        reflection=reflection,
    )


@pytest.mark.parametrize(
    ("ratings", "expected"),
    [
        ([], None),
        ([4], "Confidence 4/5 (the first rating)"),
        ([3, 4, 4], "Confidence 3 → 4 → 4 of 5 (rising)"),
        ([4, 2], "Confidence 4 → 2 of 5 (falling)"),
        ([3, 5, 3], "Confidence 3 → 5 → 3 of 5 (steady)"),
        ([1, 1, 2, 3, 3, 3, 4], "Confidence 1 → 2 → 3 → 3 → 3 → 4 of 5 (rising)"),  # last 6
    ],
)
def test_the_confidence_trend_in_words(ratings: list[int], expected: str | None) -> None:
    found = [checkin(week, rating) for week, rating in enumerate(ratings, 1)]
    assert confidence_trend(list(reversed(found))) == expected  # order of rows does not matter


def test_skips_and_unrated_weeks_are_left_out() -> None:
    rows = [checkin(1, 2), checkin(2, None, status="skipped"), checkin(3, None), checkin(4, 3)]
    assert confidence_trend(rows) == "Confidence 2 → 3 of 5 (rising)"


def test_wins_and_reflection_are_shortened_and_escaped() -> None:
    row = checkin(5, 4, wins="A <!here> & *b*", reflection="word " * 100)
    wins, reflection = checkin_lines(row, limit=40)
    assert wins == "🏆 *Wins* A &lt;!here&gt; &amp; *b*"
    assert reflection.endswith("…") and len(reflection) < 60
    assert latest_with_words([row, checkin(6, 3)]) is row  # week 6 wrote nothing
