"""Progress from baseline toward target, in both directions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.progress import (
    Trend,
    change_text,
    figures_text,
    format_number,
    indicator_progress,
    progress,
    progress_bar,
    trend,
)


def test_increase_and_decrease_read_the_same_way() -> None:
    assert progress(62, 75, 68.5) == pytest.approx(0.5)
    assert progress(45, 30, 37.5) == pytest.approx(0.5)  # cycle time falling is progress


def test_moving_the_wrong_way_is_negative_and_past_target_exceeds_one() -> None:
    assert progress(45, 30, 50) < 0
    assert progress(40, 90, 95) > 1


def test_target_equal_to_baseline_is_refused() -> None:
    with pytest.raises(ValueError, match="differ"):
        progress(5, 5, 5)


def test_bar_is_clamped_and_ten_wide() -> None:
    assert progress_bar(-0.4) == "░" * 10
    assert progress_bar(1.7) == "▓" * 10
    assert progress_bar(0.46) == "▓" * 5 + "░" * 5


def test_trend_is_direction_aware() -> None:
    assert trend(45, 30, [44, 40]) is Trend.better
    assert trend(45, 30, [40, 44]) is Trend.worse
    assert trend(62, 75, [64, 66]) is Trend.better
    assert trend(62, 75, [66, 66]) is Trend.flat
    assert trend(62, 75, [66]) is Trend.none


@given(
    baseline=st.integers(-100, 100),
    span=st.integers(-50, 50).filter(bool),
    before=st.integers(-200, 200),
    after=st.integers(-200, 200),
)
def test_arrow_follows_the_value_and_the_word_the_target(
    baseline: int, span: int, before: int, after: int
) -> None:
    text = change_text(baseline, baseline + span, before, after, " days")
    if after == before:
        assert text == "→ no change"
        return
    assert text.startswith("↗ up" if after > before else "↘ down")
    toward = (after - before) * span > 0  # moved toward the target
    assert text.endswith("· improving" if toward else "· slipping")
    assert f" {abs(after - before)} days" in text


def test_figures_say_what_each_number_is() -> None:
    assert figures_text(45, "*39*", 30, " days") == "baseline 45 → latest *39* → target 30 days"
    assert change_text(45, 30, 43, 39, " days", " since 12 Feb") == (
        "↘ down 4 days since 12 Feb · improving"
    )


def test_indicator_without_values_sits_at_its_baseline() -> None:
    p = indicator_progress(62, 75, [])
    assert (p.latest, p.fraction, p.percent) == (None, 0.0, "0%")


def test_numbers_read_as_typed() -> None:
    assert [format_number(v) for v in (62.0, 7.5, 0.25, -3.0)] == ["62", "7.5", "0.25", "-3"]


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(baseline=finite, target=finite)
def test_baseline_is_zero_and_target_is_one(baseline: float, target: float) -> None:
    if abs(target - baseline) < 1e-6:
        return
    assert progress(baseline, target, baseline) == 0
    assert progress(baseline, target, target) == pytest.approx(1)
