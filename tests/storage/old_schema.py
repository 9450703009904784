"""Rows written into a database that an upgrade test holds at an older revision: only the
columns its tables had then (the models may have grown since).

(No tests here; pytest collects the module and finds none.)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import column, insert, inspect
from sqlalchemy import table as lightweight_table
from sqlmodel.ext.asyncio.session import AsyncSession


async def add_old(session: AsyncSession, row: Any) -> int | None:
    """INSERT `row` with the columns its table has in this database; its new id."""
    table = type(row).__table__
    connection = await session.connection()
    existing = await connection.run_sync(
        lambda sync: {c["name"] for c in inspect(sync).get_columns(table.name)}
    )
    values = {
        c.name: getattr(row, c.name)
        for c in table.columns
        if c.name in existing and getattr(row, c.name) is not None
    }
    # A lightweight table of just these columns: the model's table would add the defaults of
    # the columns the old schema lacks.
    old = lightweight_table(table.name, *(column(name) for name in [*values, "id"]))
    result = await session.exec(insert(old).values(**values).returning(old.c.id))
    new_id = result.scalar_one()
    return int(new_id) if new_id is not None else None
