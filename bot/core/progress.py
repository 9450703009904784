"""Progress of success indicators: from baseline toward target, in either direction."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

BAR_WIDTH = 10


class Trend(StrEnum):
    better = "better"
    worse = "worse"
    flat = "flat"
    none = "none"


def progress(baseline: float, target: float, value: float) -> float:
    """Share of the way from baseline to target (0.0 at baseline, 1.0 at target).

    The sign of `target - baseline` carries the direction, so a falling cycle time moves
    a 'decrease' indicator forward. Values past the target exceed 1.0; values that moved
    the wrong way are negative. Callers clamp for display.
    """
    span = target - baseline
    if span == 0:
        raise ValueError("an indicator's target must differ from its baseline")
    return (value - baseline) / span


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    clamped = min(max(fraction, 0.0), 1.0)
    filled = math.floor(clamped * width + 0.5)
    return "▓" * filled + "░" * (width - filled)


def percent(fraction: float) -> str:
    return f"{round(fraction * 100)}%"


def trend(baseline: float, target: float, values: Sequence[float]) -> Trend:
    """Whether the latest value moved toward the target compared with the one before."""
    if len(values) < 2:
        return Trend.none
    delta = values[-1] - values[-2]
    if delta == 0:
        return Trend.flat
    return Trend.better if (delta > 0) == (target > baseline) else Trend.worse


TREND_MARK = {Trend.better: "↗ improving", Trend.worse: "↘ slipping", Trend.flat: "→ flat"}
TREND_WORD = {Trend.better: "improving", Trend.worse: "slipping"}


def change_text(
    baseline: float, target: float, before: float, after: float, unit: str = "", since: str = ""
) -> str:
    """`↘ down 3 days · improving`: the arrow follows the value, the word the target.

    A cycle time that falls points down and improves; an engagement score that falls
    points down and slips. `unit` is shown after the number as given (" days"), `since`
    after it (" since 12 Feb 2027")."""
    delta = after - before
    if delta == 0:
        return f"→ no change{since}"
    arrow, verb = ("↗", "up") if delta > 0 else ("↘", "down")
    word = TREND_WORD[trend(baseline, target, [before, after])]
    return f"{arrow} {verb} {format_number(abs(delta))}{unit}{since} · {word}"


def figures_text(baseline: float, latest: str, target: float, unit: str = "") -> str:
    """`baseline 45 → latest *40* → target 30 days`: every number says what it is.

    `latest` is already formatted (bold, or "_no value yet_"); `unit` as in `change_text`."""
    return (
        f"baseline {format_number(baseline)} → latest {latest} → "
        f"target {format_number(target)}{unit}"
    )


def format_number(value: float) -> str:
    """62 for 62.0, 7.5 for 7.5: how people write the numbers they type."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}" if abs(value) >= 1e6 else f"{round(value, 2):g}"


@dataclass(frozen=True, slots=True)
class IndicatorProgress:
    baseline: float
    target: float
    latest: float | None
    fraction: float
    trend: Trend

    @property
    def bar(self) -> str:
        return progress_bar(self.fraction)

    @property
    def percent(self) -> str:
        return percent(self.fraction)


def indicator_progress(
    baseline: float, target: float, values: Sequence[float]
) -> IndicatorProgress:
    latest = values[-1] if values else None
    fraction = progress(baseline, target, latest) if latest is not None else 0.0
    return IndicatorProgress(
        baseline=baseline,
        target=target,
        latest=latest,
        fraction=fraction,
        trend=trend(baseline, target, values),
    )
