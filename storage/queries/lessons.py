"""Data access for lessons: sharing one once, searching them, and the lessons of a person or a
contract. `search_lessons` is the one search, on SQLite's FTS5 and PostgreSQL's full text."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import CheckIn, Lesson, Milestone, Risk

SOURCES: dict[str, type[CheckIn] | type[Milestone] | type[Risk]] = {
    "checkin": CheckIn,
    "milestone": Milestone,
    "risk": Risk,
}
# What a lesson is searched in, on PostgreSQL; the migration's index is over the same text.
PG_DOCUMENT = "title || ' ' || happened || ' ' || takeaway || ' ' || tag_text"
# How a match ranks there: in the title or the tags (A) above the story (B).
PG_RANKED = (
    "setweight(to_tsvector('english', title || ' ' || tag_text), 'A') || "
    "setweight(to_tsvector('english', happened || ' ' || takeaway), 'B')"
)


@dataclass(frozen=True, slots=True)
class Found:
    """A page of search results, best first, and whether more matched than were returned."""

    lessons: list[Lesson]
    more: bool


async def source_row(
    *, session: AsyncSession, kind: str, source_id: int
) -> CheckIn | Milestone | Risk | None:
    """The check-in, milestone or risk a lesson is shared from (None for an unknown kind)."""
    table = SOURCES.get(kind)
    return None if table is None else await session.get(table, source_id)


async def add_lesson(*, session: AsyncSession, lesson: Lesson) -> Lesson | None:
    """Keep `lesson` and commit; None when its source already gave a lesson."""
    session.add(lesson)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return None
    return lesson


async def lesson_of_source(*, session: AsyncSession, source_key: str) -> Lesson | None:
    rows = await session.exec(select(Lesson).where(Lesson.source_key == source_key))
    return rows.first()


async def search_lessons(*, session: AsyncSession, terms: Sequence[str], limit: int) -> Found:
    """The lessons matching any of `terms`, best first (the latest when there are none).

    `terms` are words of letters and digits only (`bot.lessons.model.search_terms`); each
    also matches as a prefix. SQLite ranks with FTS5's bm25, a title match weighing most;
    PostgreSQL with ts_rank over the English configuration (so stems match too).
    """
    if not terms:
        rows = await session.exec(
            select(Lesson).order_by(col(Lesson.created_at).desc(), col(Lesson.id)).limit(limit + 1)
        )
        found = list(rows.all())
        return Found(found[:limit], len(found) > limit)
    bind = session.bind
    dialect = bind.dialect.name if bind is not None else "sqlite"
    if dialect == "sqlite":
        query = " OR ".join(f'"{term}"*' for term in terms)
        statement = text(
            "SELECT lesson.id FROM lesson_search JOIN lesson ON lesson.id = lesson_search.rowid "
            "WHERE lesson_search MATCH :query "
            "ORDER BY bm25(lesson_search, 10.0, 2.0, 2.0, 4.0), lesson.created_at DESC "
            "LIMIT :limit"
        )
    else:
        query = " | ".join(f"{term}:*" for term in terms)
        statement = text(
            f"SELECT id FROM lesson WHERE to_tsvector('english', {PG_DOCUMENT}) "
            "@@ to_tsquery('english', :query) "
            f"ORDER BY ts_rank({PG_RANKED}, "
            "to_tsquery('english', :query)) DESC, created_at DESC LIMIT :limit"
        )
    connection = await session.connection()
    result = await connection.execute(statement, {"query": query, "limit": limit + 1})
    ids = [row[0] for row in result.all()]
    if not ids:
        return Found([], False)
    loaded = {
        lesson.id: lesson
        for lesson in (await session.exec(select(Lesson).where(col(Lesson.id).in_(ids)))).all()
    }
    ordered = [loaded[i] for i in ids if i in loaded]
    return Found(ordered[:limit], len(ordered) > limit)


async def latest_lessons(
    *, session: AsyncSession, limit: int, activity_types: Collection[str] = ()
) -> list[Lesson]:
    """The latest lessons, those of `activity_types` first."""
    preferred: list[Lesson] = []
    if activity_types:
        rows = await session.exec(
            select(Lesson)
            .where(col(Lesson.activity_type).in_(list(activity_types)))
            .order_by(col(Lesson.created_at).desc(), col(Lesson.id))
            .limit(limit)
        )
        preferred = list(rows.all())
    rest = await session.exec(
        select(Lesson).order_by(col(Lesson.created_at).desc(), col(Lesson.id)).limit(limit * 2)
    )
    seen = {lesson.id for lesson in preferred}
    return (preferred + [lesson for lesson in rest.all() if lesson.id not in seen])[:limit]


async def named_lessons_since(
    *, session: AsyncSession, contract_ids: Sequence[int], since: datetime
) -> dict[int, list[Lesson]]:
    """Per contract, the lessons its leader shared with their name since `since`."""
    if not contract_ids:
        return {}
    rows = await session.exec(
        select(Lesson)
        .where(
            col(Lesson.contract_id).in_(list(contract_ids)),
            col(Lesson.named),
            col(Lesson.created_at) >= since,
        )
        .order_by(col(Lesson.created_at), col(Lesson.id))
    )
    found: dict[int, list[Lesson]] = {}
    for lesson in rows.all():
        found.setdefault(lesson.contract_id or 0, []).append(lesson)
    return found


async def lessons_named_by(*, session: AsyncSession, user: str) -> list[Lesson]:
    rows = await session.exec(
        select(Lesson).where(Lesson.author_id == user).order_by(col(Lesson.created_at))
    )
    return list(rows.all())


async def unnamed_lessons(*, session: AsyncSession) -> list[Lesson]:
    """Every lesson shared without a name whose author can still be matched by their hash."""
    rows = await session.exec(
        select(Lesson).where(col(Lesson.author_hash).is_not(None)).order_by(col(Lesson.id))
    )
    return list(rows.all())


async def compact_search_index(*, session: AsyncSession) -> None:
    """SQLite: merge the FTS5 index so words of changed or deleted lessons (an erased person's
    mention) leave it now, not at some later merge; `secure_delete` zeroes the freed pages.
    PostgreSQL's index is over the rows themselves (VACUUM, as for every table)."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "sqlite":
        connection = await session.connection()
        await connection.execute(
            text("INSERT INTO lesson_search(lesson_search) VALUES ('optimize')")
        )
