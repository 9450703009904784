"""What a chart draws, as plain data: the same data draws the same chart and has the same hash.

A chart is cached by (contract, subject, hash of its data): an indicator's key or
`confidence`, and the SHA-256 of everything drawn. The hash is of the data, never of the PNG,
so an unchanged chart is neither drawn nor uploaded again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import date
from typing import Any, TypeVar

from bot.core.progress import format_number
from storage.models import SuccessIndicator
from storage.queries.contracts import ContractBundle

# Bumped when the drawing, a title or an alt text changes, so charts already uploaded are
# drawn anew (and the sets kept of them, `bot.charts.service.charts_at`, let go).
DRAWING_VERSION = 3
CONFIDENCE = "confidence"
CONFIDENCE_SCALE = 5
ALT_TEXT_LIMIT = 2000  # the image block's alt_text
TITLE_LIMIT = 2000  # the image block's title


@dataclass(frozen=True, slots=True)
class MilestoneMark:
    """A milestone on an indicator's chart: its due day and, when it has one, its threshold."""

    key: str
    due: date
    threshold: float | None
    status: str


@dataclass(frozen=True, slots=True)
class IndicatorChart:
    """An indicator's values over the contract's period, its baseline, target and pace."""

    contract_id: int
    key: str
    name: str
    unit: str
    baseline: float
    target: float
    period_start: date
    period_end: date
    values: tuple[tuple[date, float], ...]
    milestones: tuple[MilestoneMark, ...]

    @property
    def subject(self) -> str:
        return self.key

    @property
    def title(self) -> str:
        return f"{self.key} · {self.name}"

    @property
    def alt_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        latest = (
            f"latest {format_number(self.values[-1][1])}{unit} on {self.values[-1][0]:%d %b %Y}"
            if self.values
            else "no value yet"
        )
        text = (
            f"Chart of {self.key} {self.name}: baseline {format_number(self.baseline)}, "
            f"target {format_number(self.target)}{unit}, {len(self.values)} values, {latest}; "
            f"{len(self.milestones)} milestones; dashed line: the expected pace."
        )
        return text[:ALT_TEXT_LIMIT]


@dataclass(frozen=True, slots=True)
class ConfidenceChart:
    """The leader's confidence ratings (1 to 5) at each check-in, as a sparkline."""

    contract_id: int
    period_start: date
    period_end: date
    ratings: tuple[tuple[date, int], ...]

    @property
    def subject(self) -> str:
        return CONFIDENCE

    @property
    def title(self) -> str:
        return "Confidence at each check-in"

    @property
    def alt_text(self) -> str:
        shown = ", ".join(str(r) for _, r in self.ratings[-12:])
        return f"Confidence at each check-in, 1 to {CONFIDENCE_SCALE}: {shown}."[:ALT_TEXT_LIMIT]


Chart = IndicatorChart | ConfidenceChart


@dataclass(frozen=True, slots=True)
class ShownChart:
    """A chart uploaded to Slack, as an image block shows it."""

    contract_id: int
    subject: str
    file_id: str
    title: str
    alt_text: str


def _shallow(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in fields(value)}


def _encodable(value: object) -> object:
    """What JSON writes for a milestone mark (its fields) and a date (its ISO text)."""
    if is_dataclass(value) and not isinstance(value, type):
        return _shallow(value)
    return str(value)


def data_hash(chart: Chart) -> str:
    """SHA-256 of everything drawn (and the drawing's version): equal data, equal hash. The
    JSON is that of `dataclasses.asdict`, written without its deep copy of every point (the
    copy cost more than the rest of a three-year summary's charts)."""
    data = {"kind": type(chart).__name__, "version": DRAWING_VERSION, **_shallow(chart)}
    encoded = json.dumps(data, sort_keys=True, default=_encodable, ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def indicator_chart(bundle: ContractBundle, indicator: SuccessIndicator) -> IndicatorChart:
    c = bundle.contract
    series = bundle.measurements.get(indicator.id or 0, [])
    marks = tuple(
        MilestoneMark(m.key, m.due, m.threshold, str(m.status))
        for m in sorted(bundle.milestones, key=lambda m: (m.due, m.key))
        if m.indicator_key == indicator.key
    )
    return IndicatorChart(
        contract_id=c.id or 0,
        key=indicator.key,
        name=indicator.name,
        unit=indicator.unit,
        baseline=indicator.baseline,
        target=indicator.target,
        period_start=c.period_start,
        period_end=c.period_end,
        values=tuple((m.measured_at.date(), m.value) for m in series),
        milestones=marks,
    )


def confidence_chart(bundle: ContractBundle) -> ConfidenceChart | None:
    """None until a check-in has a confidence rating."""
    c = bundle.contract
    rated = sorted(
        (k for k in bundle.checkins if k.status == "answered" and k.confidence),
        key=lambda k: (k.created_at, k.period_key),
    )
    if not rated:
        return None
    return ConfidenceChart(
        contract_id=c.id or 0,
        period_start=c.period_start,
        period_end=c.period_end,
        ratings=tuple((k.created_at.date(), int(k.confidence or 0)) for k in rated),
    )


T = TypeVar("T")


def within(charts: Sequence[T], limit: int | None, subject: Callable[[T], str]) -> list[T]:
    """Of a contract's charts in their order (`charts_of`: indicators, then confidence), or of
    what is kept of them, what `charts_of(limit=limit)` draws: the first `limit` indicators'
    charts, then the confidence sparkline."""
    indicators = [c for c in charts if subject(c) != CONFIDENCE]
    return indicators[:limit] + [c for c in charts if subject(c) == CONFIDENCE]


def charts_of(bundle: ContractBundle, *, limit: int | None = None) -> list[Chart]:
    """The contract's indicator charts (the first `limit`), then its confidence sparkline."""
    if bundle.recent:
        raise ValueError("a chart draws the whole history: load the whole bundle")
    charts: list[Chart] = [indicator_chart(bundle, i) for i in bundle.indicators[:limit]]
    confidence = confidence_chart(bundle)
    if confidence is not None:
        charts.append(confidence)
    return charts
