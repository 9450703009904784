"""Data access shared by the features that show an indicator's values: its latest few, and the
first to reach a threshold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CompoundSelect, Select, func, union_all
from sqlmodel import col, select

from storage.models import Measurement, SuccessIndicator


def latest_ids(*where: Any, keep: int) -> Select[Any]:
    """The ids of each indicator's `keep` latest values (by time, then id) among those
    `where` selects: a windowed statement, so what it returns does not grow with history."""
    ranked = (
        select(
            col(Measurement.id).label("id"),
            func.row_number()
            .over(
                partition_by=col(Measurement.indicator_id),
                order_by=(col(Measurement.measured_at).desc(), col(Measurement.id).desc()),
            )
            .label("rank"),
        )
        .where(*where)
        .subquery()
    )
    return select(ranked.c.id).where(ranked.c.rank <= keep)


def newest_ids(*indicators: Any, keep: int) -> CompoundSelect[Any]:
    """The ids of the `keep` latest values (by time, then id) of each indicator `indicators`
    selects (conditions on `SuccessIndicator`), NULL where there are fewer: for each
    indicator and each place, one step down its (indicator, time) index, so that the work
    grows with the indicators, never with their history (`latest_ids` ranks every value)."""
    places = []
    for place in range(keep):
        newest = (
            select(Measurement.id)
            .where(col(Measurement.indicator_id) == col(SuccessIndicator.id))
            .order_by(col(Measurement.measured_at).desc(), col(Measurement.id).desc())
            .limit(1)
            .offset(place)
            .correlate(SuccessIndicator)
            .scalar_subquery()
        )
        places.append(select(newest).where(*indicators))
    return union_all(*places)


@dataclass(frozen=True, slots=True)
class Reach:
    """The first value of an indicator measured at or after `since` that reaches `threshold`
    (at or below it when the indicator is `decreasing`, else at or above)."""

    indicator_id: int
    since: datetime
    threshold: float
    decreasing: bool


def first_reaching_ids(reaches: Sequence[Reach]) -> CompoundSelect[Any] | None:
    """The id of each `Reach`'s value (NULL where none reached it yet): one step down the
    indicator's (indicator, time) index each, never its whole series."""
    if not reaches:
        return None
    firsts = []
    for reach in reaches:
        value = col(Measurement.value)
        reached = value <= reach.threshold if reach.decreasing else value >= reach.threshold
        first = (
            select(Measurement.id)
            .where(
                col(Measurement.indicator_id) == reach.indicator_id,
                col(Measurement.measured_at) >= reach.since,
                reached,
            )
            .order_by(col(Measurement.measured_at), col(Measurement.id))
            .limit(1)
            .scalar_subquery()
        )
        firsts.append(select(first))
    return union_all(*firsts)
