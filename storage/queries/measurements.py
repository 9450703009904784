"""Data access shared by the features that show an indicator's values: its latest few."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func
from sqlmodel import col, select

from storage.models import Measurement


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
