"""Block Kit for lessons: the *Share as a lesson* button, its modal, `/learnings` results, and
the lines the digest and App Home show."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    DividerBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    RadioButtonsElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.core.text import escape, truncate
from bot.lessons.model import (
    RESULTS,
    SOURCE_LABEL,
    TAG_LIMIT,
    TAGS_MAX,
    TEXT_LIMIT,
    TITLE_LIMIT,
    ShareSource,
    SourceKind,
    activity_label,
)
from bot.ui.blocks import OPTION_TEXT, context, header, mention, section
from bot.ui.forms import modal_title, option, select_input, text_input
from bot.ui.metadata import LessonSourceRef
from storage.models import Lesson

SHARE = "lesson_share"
SHARE_MODAL = "lesson_share_modal"
SHARE_BLOCK = "lesson_share_offer"
NAMED = "named"
UNNAMED = "unnamed"
NO_THEME = "none"
LEARNINGS_HINT = "Search what leaders learned with `/learnings [words]`."
ERASED_AUTHOR = "shared by someone whose data was erased"
WITHOUT_NAME = "shared without a name"


# --- the offer and the modal -----------------------------------------------------------------


def share_button(kind: SourceKind, source_id: int) -> ButtonElement:
    """*Share as a lesson* for a check-in's reflection, a missed milestone or a resolved risk."""
    return ButtonElement(
        text="Share as a lesson",
        action_id=SHARE,
        value=LessonSourceRef.write(kind=kind, source_id=source_id),
    )


def share_offer(kind: SourceKind, source_id: int) -> SectionBlock:
    """A line inviting the leader to share what they learned, with the button beside it."""
    return SectionBlock(
        block_id=f"{SHARE_BLOCK}:{kind}:{source_id}",
        text=MarkdownTextObject(
            text="Something others could learn from? Share it as a lesson, "
            "with your name or without it."
        ),
        accessory=share_button(kind, source_id),
    )


def _theme_options(source: ShareSource) -> list[Option]:
    options = [option(NO_THEME, "No theme")]
    options += [
        option(key, truncate(f"{key} · {' '.join(text.split())}", OPTION_TEXT))
        for key, text in source.expectations[:99]
    ]
    return options


def build_share_modal(source: ShareSource) -> View:
    """The lesson's form, pre-filled from its source."""
    anonymity = [
        Option(value=NAMED, text="Share with my name (others can ask me about it)"),
        Option(value=UNNAMED, text="Share without my name"),
    ]
    blocks: list[Block] = [
        context(f"A lesson from {SOURCE_LABEL[source.kind]}: anyone in the workspace can find it."),
        text_input("title", "Title", max_length=TITLE_LIMIT, initial=source.title),
        text_input(
            "happened",
            "What happened",
            max_length=TEXT_LIMIT,
            multiline=True,
            initial=source.happened,
        ),
        text_input(
            "takeaway",
            "What you would do again, or differently",
            max_length=TEXT_LIMIT,
            multiline=True,
        ),
        select_input(
            "theme",
            "Theme (an expectation of your contract)",
            _theme_options(source),
            initial=source.expectation_key or NO_THEME,
        ),
        select_input(
            "activity_type",
            "Kind of development activity",
            [option(kind, activity_label(kind)) for kind in source.activity_types],
            initial=source.activity_type,
            optional=True,
        ),
        text_input(
            "tags",
            "Tags",
            max_length=TAGS_MAX * (TAG_LIMIT + 2),
            optional=True,
            placeholder="delegation, hiring",
            hint=f"Up to {TAGS_MAX}, separated by commas.",
        ),
        InputBlock(
            block_id="anonymity",
            label="Your name",
            element=RadioButtonsElement(
                action_id="anonymity", options=anonymity, initial_option=anonymity[0]
            ),
            hint="Without your name, nothing shown anywhere says who shared it, "
            "nor from which contract.",
        ),
    ]
    return View(
        type="modal",
        callback_id=SHARE_MODAL,
        title=modal_title("Share a lesson"),
        submit="Share",
        close="Cancel",
        private_metadata=LessonSourceRef.write(kind=source.kind, source_id=source.source_id),
        blocks=blocks,
    )


# --- showing lessons -------------------------------------------------------------------------


def tags_line(lesson: Lesson) -> str:
    """`theme · activity · tag, tag`, escaped; empty without tags."""
    parts = []
    if lesson.theme:
        parts.append(escape(truncate(lesson.theme, 80)))
    if lesson.activity_type:
        parts.append(escape(activity_label(lesson.activity_type)))
    if lesson.tags:
        parts.append(", ".join(escape(t) for t in lesson.tags))
    return " · ".join(parts)


def who_line(lesson: Lesson) -> str:
    """Who to ask: the author when named, else why nobody is named."""
    if not lesson.named:
        return WITHOUT_NAME
    if lesson.author_id is None:
        return ERASED_AUTHOR
    return f"ask {mention(lesson.author_id)}"


def lesson_blocks(lesson: Lesson) -> list[Block]:
    text = f"*{escape(lesson.title)}*\n{escape(truncate(lesson.happened, 600))}"
    if lesson.takeaway:
        text += f"\n_Again or differently:_ {escape(truncate(lesson.takeaway, 600))}"
    parts = [p for p in (tags_line(lesson), who_line(lesson)) if p]
    parts.append(f"{lesson.created_at:%B %Y}")
    return [section(text), context(*parts)]


def build_results(terms: Sequence[str], lessons: Sequence[Lesson], *, more: bool) -> list[Block]:
    """`/learnings`'s answer: up to `RESULTS` lessons, and a hint when more matched."""
    searched = " ".join(escape(t) for t in terms)
    if not lessons:
        if terms:
            return [
                section(
                    f"No lessons match “{searched}”. Try fewer or other words, "
                    "or `/learnings` alone for the latest."
                )
            ]
        return [section("No lessons have been shared yet. " + LEARNINGS_HINT)]
    title = f"Lessons matching “{searched}”" if terms else "The latest lessons"
    blocks: list[Block] = [header(truncate(title, 150))]
    for lesson in lessons[:RESULTS]:
        blocks += [*lesson_blocks(lesson), DividerBlock()]
    if more:
        hint = "add words to narrow the search" if terms else "search with words to find others"
        blocks.append(context(f"_More lessons than these {RESULTS} match: {hint}._"))
    return blocks


def unsearchable_answer(words: str) -> str:
    """For a search with nothing to search by (only punctuation, say)."""
    typed = escape(truncate(words.strip(), 60))
    return (
        f"“{typed}” has no words to search for: use letters or digits, like "
        "`/learnings delegation`, or `/learnings` alone for the latest lessons."
    )


def digest_lesson_lines(lessons: Sequence[Lesson]) -> list[str]:
    """The digest's lines for a contract's new lessons: title and tags."""
    lines = []
    for lesson in lessons:
        tags = tags_line(lesson)
        lines.append(f"📚 Lesson shared: *{escape(lesson.title)}*" + (f" · {tags}" if tags else ""))
    return lines


def home_lessons_blocks(lessons: Sequence[Lesson]) -> list[Block]:
    """App Home's *Lessons* section: the latest few, and how to search them all."""
    blocks: list[Block] = [DividerBlock(), section("*Lessons*")]
    if not lessons:
        blocks.append(context("No lessons have been shared yet. " + LEARNINGS_HINT))
        return blocks
    for lesson in lessons:
        tags = tags_line(lesson)
        blocks.append(
            context(f"*{escape(lesson.title)}*" + (f" · {tags}" if tags else ""), who_line(lesson))
        )
    blocks.append(context(LEARNINGS_HINT))
    return blocks
