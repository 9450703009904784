"""The rules of lessons: who may share one from what, keeping it once, searching them all.

Only the leader of the contract a source belongs to shares a lesson from it, checked when
the form opens and again on submit. A lesson shared without a name keeps neither its author
nor its contract nor its source id (`storage.models.Lesson`): nothing shown anywhere can
point back to its author, and the digest, which is per contract, lists only named lessons.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.permissions import Refusal
from bot.core.text import truncate
from bot.lessons.model import (
    ACTIVITY_TYPES,
    RESULTS,
    THEME_LIMIT,
    TITLE_LIMIT,
    LessonDraft,
    ShareSource,
    SourceKind,
    search_terms,
)
from bot.privacy.keys import lesson_author_hash, lesson_source_key
from storage.models import CheckIn, Lesson, Milestone, MilestoneStatus, Risk
from storage.queries.contracts import ContractBundle, load_bundle
from storage.queries.lessons import (
    Found,
    add_lesson,
    latest_lessons,
    lesson_of_source,
    search_lessons,
    source_row,
)

GONE = "That is no longer there to share a lesson from."
NOT_LEADER = "Only the contract's leader can share a lesson from it."
SHARED_ALREADY = "You have already shared a lesson from this."
RESOLVED = "resolved"


def _first_line(text: str) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return truncate(line, TITLE_LIMIT)


async def share_source(
    *, session: AsyncSession, kind: SourceKind, source_id: int, user: str
) -> ShareSource | Refusal:
    """The source as the form starts from it, if `user` leads its contract and it can give a
    lesson: a check-in with a reflection, a missed milestone, a resolved risk."""
    row = await source_row(session=session, kind=kind, source_id=source_id)
    if row is None or row.contract_id is None:
        return Refusal(GONE)
    bundle = await load_bundle(session=session, contract_id=row.contract_id)
    if bundle is None:
        return Refusal(GONE)
    if bundle.contract.leader_id != user:
        return Refusal(NOT_LEADER)
    expectation_key: str | None = None
    activity_type: str | None = None
    if isinstance(row, CheckIn):
        if not row.reflection.strip():
            return Refusal("That check-in has no reflection to share a lesson from.")
        title, happened = _first_line(row.reflection), row.reflection
    elif isinstance(row, Milestone):
        if row.status != MilestoneStatus.missed:
            return Refusal(f"Milestone {row.key} is not missed ({row.status} now).")
        title = truncate(f"What missing {row.key} taught me", TITLE_LIMIT)
        happened = f"Milestone {row.key} · {row.title} (due {row.due.isoformat()}) was missed."
        activity = next((a for a in bundle.activities if a.key == row.activity_key), None)
        if activity is not None:
            expectation_key, activity_type = activity.expectation_key, activity.modality
    elif isinstance(row, Risk):
        if row.status != RESOLVED:
            return Refusal("That risk is not resolved yet: share its lesson once it is.")
        title, happened = _first_line(row.text), row.text
    else:  # pragma: no cover - source_row returns one of the three
        return Refusal(GONE)
    kinds = [a.modality for a in bundle.activities if a.modality in ACTIVITY_TYPES]
    ordered = list(dict.fromkeys([*kinds, *ACTIVITY_TYPES]))
    return ShareSource(
        kind=kind,
        source_id=source_id,
        contract_id=bundle.contract.id or 0,
        title=title,
        happened=happened,
        expectations=[(e.key, e.text) for e in bundle.expectations],
        activity_types=ordered,
        expectation_key=expectation_key,
        activity_type=activity_type,
    )


def theme_of(source: ShareSource, expectation_key: str | None) -> str | None:
    """The theme tag an expectation gives: its text, shortened (it outlives the contract)."""
    text = dict(source.expectations).get(expectation_key or "")
    return truncate(" ".join(text.split()), THEME_LIMIT) if text else None


def lesson_of(
    source: ShareSource, draft: LessonDraft, *, user: str, key: bytes, now: datetime
) -> Lesson:
    """The row a draft becomes: a named one names its author and contract, an unnamed one
    neither (and is dated to the day)."""
    source_key = lesson_source_key(key, kind=source.kind, source_id=source.source_id)
    lesson = Lesson(
        source_kind=source.kind,
        source_key=source_key,
        named=draft.named,
        title=draft.title,
        happened=draft.happened,
        takeaway=draft.takeaway,
        theme=draft.theme,
        activity_type=draft.activity_type,
        tags=draft.tags,
        tag_text=draft.tag_text,
        created_at=now,
    )
    if draft.named:
        lesson.source_id = source.source_id
        lesson.contract_id = source.contract_id
        lesson.author_id = user
    else:
        lesson.author_hash = lesson_author_hash(key, user=user, source_key=source_key)
        lesson.created_at = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return lesson


async def share_lesson(
    *,
    session: AsyncSession,
    kind: SourceKind,
    source_id: int,
    draft: LessonDraft,
    user: str,
    key: bytes,
    now: datetime,
) -> Lesson | Refusal:
    """Keep the lesson, after checking its source again; a source gives one lesson."""
    source = await share_source(session=session, kind=kind, source_id=source_id, user=user)
    if isinstance(source, Refusal):
        return source
    if await already_shared(session=session, kind=kind, source_id=source_id, key=key):
        return Refusal(SHARED_ALREADY)
    lesson = lesson_of(source, draft, user=user, key=key, now=now)
    kept = await add_lesson(session=session, lesson=lesson)
    return kept if kept is not None else Refusal(SHARED_ALREADY)


async def already_shared(
    *, session: AsyncSession, kind: SourceKind, source_id: int, key: bytes
) -> bool:
    """Whether the source gave its lesson already (with a name or without)."""
    source_key = lesson_source_key(key, kind=kind, source_id=source_id)
    return await lesson_of_source(session=session, source_key=source_key) is not None


async def search(*, session: AsyncSession, words: str) -> tuple[list[str], Found]:
    """The lessons matching `words` (the latest for none), and the words searched for."""
    terms = search_terms(words)
    return terms, await search_lessons(session=session, terms=terms, limit=RESULTS)


def activity_types(bundles: Sequence[ContractBundle]) -> list[str]:
    """The kinds of development activity of the contracts someone takes part in."""
    return sorted({a.modality for b in bundles for a in b.activities})


async def lessons_for_home(
    *, session: AsyncSession, activity_types: Sequence[str], limit: int = 3
) -> list[Lesson]:
    """The latest few lessons, those about the viewer's kinds of development activity first."""
    return await latest_lessons(session=session, limit=limit, activity_types=activity_types)
