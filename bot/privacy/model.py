"""Privacy types: what was found about a person, and what an erasure did."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Table

from storage.models import Feedback


@dataclass
class Found:
    """One row of some table that holds the person's id somewhere."""

    table: Table
    row: dict[str, Any]
    columns: list[Column[Any]]

    def primary_key(self) -> Any:
        return [column == self.row[column.name] for column in self.table.primary_key.columns]


@dataclass(frozen=True, slots=True)
class Gone:
    """A deleted entry whose words the bot may have posted: a named one (the leader's DM) or
    a released anonymous one (the DM that released its group)."""

    feedback_id: int
    contract_id: int
    anonymous: bool
    released_at: datetime | None

    @classmethod
    def of(cls, entry: Feedback) -> Gone:
        return cls(entry.id or 0, entry.contract_id, entry.anonymous, entry.released_at)


@dataclass
class Erasure:
    deleted: dict[str, int] = field(default_factory=dict)
    anonymised: dict[str, int] = field(default_factory=dict)
    previously: list[datetime] = field(default_factory=list)
    # Deleted entries whose words the bot may have posted: named ones, released ones.
    posted: list[Gone] = field(default_factory=list)

    def count(self, bucket: dict[str, int], table: str) -> None:
        bucket[table] = bucket.get(table, 0) + 1
