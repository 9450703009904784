"""Data access, one module per feature: the SQL statements the bot runs are built here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession

T = TypeVar("T")

# The most values one `IN (...)` binds. PostgreSQL's protocol (asyncpg) takes at most 32,767
# parameters a statement and SQLAlchemy binds each value of a list as one, so a list that
# can hold a whole organisation's people or contracts is queried this many at a time.
IN_LIMIT = 10_000


def in_chunks(values: Sequence[T], size: int = IN_LIMIT) -> Iterator[list[T]]:
    """`values` in lists of at most `size` (none when there are none)."""
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def insert_for(session: AsyncSession) -> Any:
    """The `insert` of the session's database, which has `on_conflict_do_nothing`."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql_insert if dialect == "postgresql" else sqlite_insert
