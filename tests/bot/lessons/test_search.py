"""The one lesson search, on SQLite (FTS5) and on PostgreSQL (full-text search) alike: words
match, a title outranks a passing mention, hostile input is only words, the index follows
edits and deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.lessons.model import search_terms
from storage.db import SessionFactory, read_only, writing
from storage.models import Contract, Lesson
from storage.queries.lessons import latest_lessons, named_lessons_since, search_lessons

NOW = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)


def lesson(n: int, title: str, happened: str = "", tags: str = "") -> Lesson:
    return Lesson(
        source_kind="checkin",
        source_key=f"v1:{n}",
        named=True,
        author_id="U0LEAD001",
        title=title,
        happened=happened or "Something happened.",
        takeaway="Do it again.",
        tag_text=tags,
        created_at=NOW + timedelta(minutes=n),
    )


async def add(sessions: SessionFactory, *lessons: Lesson) -> None:
    async with sessions() as session:
        await writing(session)
        session.add_all(lessons)
        await session.commit()


async def titles(sessions: SessionFactory, words: str, limit: int = 10) -> list[str]:
    async with sessions() as session:
        await read_only(session)
        found = await search_lessons(session=session, terms=search_terms(words), limit=limit)
    return [lesson.title for lesson in found.lessons]


@pytest.fixture
async def library(sessions: SessionFactory) -> SessionFactory:
    await add(
        sessions,
        lesson(1, "Delegation needs a clear definition of done"),
        lesson(2, "Hiring loops", "I kept delegation of interviews too late."),
        lesson(3, "Budget talks with finance", tags="budget stakeholders"),
        lesson(4, "Quiet weeks", "Nothing about handing work over."),
    )
    return sessions


async def test_words_match_and_a_title_outranks_a_mention(library: SessionFactory) -> None:
    assert await titles(library, "delegation") == [
        "Delegation needs a clear definition of done",
        "Hiring loops",
    ]
    assert await titles(library, "stakeholders") == ["Budget talks with finance"]
    assert await titles(library, "deleg") == await titles(library, "delegation")  # prefixes
    assert await titles(library, "zebra") == []


async def test_no_words_gives_the_latest_and_a_more_hint(library: SessionFactory) -> None:
    async with library() as session:
        await read_only(session)
        found = await search_lessons(session=session, terms=[], limit=3)
    assert [lesson.title for lesson in found.lessons] == [
        "Quiet weeks",
        "Budget talks with finance",
        "Hiring loops",
    ]
    assert found.more


@pytest.mark.parametrize(
    "hostile",
    [
        '"delegation',
        "delegation*",
        "NEAR(delegation hiring)",
        "-delegation",
        "delegation OR",
        "(delegation",
        "delegation:*",
        "delegation & !",
        "d'elegation",
        "\\delegation",
    ],
)
async def test_query_syntax_is_only_words(library: SessionFactory, hostile: str) -> None:
    found = await titles(library, hostile)
    assert "Delegation needs a clear definition of done" in found or found == []


async def test_the_index_follows_edits_and_deletes(library: SessionFactory) -> None:
    async with library() as session:
        await writing(session)
        found = await search_lessons(session=session, terms=["budget"], limit=10)
        (budget,) = found.lessons
        budget.title = "Forecasting with finance"
        budget.tag_text = "forecast"
        session.add(budget)
        await session.commit()
    assert await titles(library, "budget") == []
    assert await titles(library, "forecasting") == ["Forecasting with finance"]
    async with library() as session:
        await writing(session)
        found = await search_lessons(session=session, terms=["forecasting"], limit=10)
        await session.delete(found.lessons[0])
        await session.commit()
    assert await titles(library, "forecasting") == []


def test_search_terms_are_letters_and_digits_only() -> None:
    assert search_terms('"Delegation" NEAR -hiring* a_b OR ""') == [
        "delegation",
        "near",
        "hiring",
        "a",
        "b",
        "or",
    ]
    assert search_terms("!!! *** ---") == []
    assert search_terms("Über Straße") == ["über", "straße"]


async def test_app_home_prefers_the_viewers_kinds_of_activity(sessions: SessionFactory) -> None:
    coached = lesson(1, "Coaching the coach")
    coached.activity_type = "coaching"
    await add(sessions, coached, lesson(2, "Newer"), lesson(3, "Newest"))
    async with sessions() as session:
        await read_only(session)
        found = await latest_lessons(session=session, limit=2, activity_types=["coaching"])
        plain = await latest_lessons(session=session, limit=2)
    assert [x.title for x in found] == ["Coaching the coach", "Newest"]
    assert [x.title for x in plain] == ["Newest", "Newer"]


async def test_the_digest_gets_only_named_lessons_of_its_contracts(
    sessions: SessionFactory,
) -> None:
    """An unnamed lesson has no contract: in a contract's digest it would name its author."""
    async with sessions() as session:
        await writing(session)
        contract = Contract(
            title="Head of Platform",
            leader_id="U0LEAD001",
            sponsor_id="U0SPON001",
            period_start=NOW.date(),
            period_end=NOW.date() + timedelta(days=300),
        )
        session.add(contract)
        await session.commit()
    named = lesson(1, "Named one")
    named.contract_id = contract.id
    unnamed = lesson(2, "Unnamed one")
    unnamed.named, unnamed.author_id, unnamed.author_hash = False, None, "v1:hash"
    earlier = lesson(3, "Before the digest")
    earlier.contract_id, earlier.created_at = contract.id, NOW - timedelta(days=40)
    await add(sessions, named, unnamed, earlier)
    async with sessions() as session:
        await read_only(session)
        found = await named_lessons_since(
            session=session, contract_ids=[contract.id or 0], since=NOW - timedelta(days=30)
        )
    assert {cid: [x.title for x in xs] for cid, xs in found.items()} == {contract.id: ["Named one"]}
