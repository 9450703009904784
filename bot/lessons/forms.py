"""What the lesson modal sends back, read and checked field by field."""

from __future__ import annotations

from typing import Any

from bot.lessons.blocks import NAMED, NO_THEME, UNNAMED
from bot.lessons.model import (
    TEXT_LIMIT,
    TITLE_LIMIT,
    LessonDraft,
    ShareSource,
    parse_tags,
)
from bot.lessons.service import theme_of
from bot.ui.forms import Form, required_text


def parse_share(
    view: dict[str, Any], source: ShareSource
) -> tuple[LessonDraft | None, dict[str, str]]:
    """The lesson, or errors keyed by the modal's block ids."""
    form = Form(view)
    errors: dict[str, str] = {}
    title = required_text(form, errors, "title", TITLE_LIMIT)
    happened = required_text(form, errors, "happened", TEXT_LIMIT)
    takeaway = required_text(form, errors, "takeaway", TEXT_LIMIT)
    theme_key = form.option("theme") or NO_THEME
    if theme_key != NO_THEME and theme_key not in dict(source.expectations):
        errors["theme"] = "Choose one of your contract's expectations, or no theme."
    activity = form.option("activity_type")
    if activity is not None and activity not in source.activity_types:
        errors["activity_type"] = "Choose one of the kinds listed."
    tags, problem = parse_tags(form.text("tags"))
    if problem:
        errors["tags"] = problem
    anonymity = form.option("anonymity")
    if anonymity not in (NAMED, UNNAMED):
        errors["anonymity"] = "Choose whether your name goes with it."
    if errors:
        return None, errors
    return (
        LessonDraft(
            title=title,
            happened=happened,
            takeaway=takeaway,
            theme=theme_of(source, None if theme_key == NO_THEME else theme_key),
            activity_type=activity,
            tags=tags,
            named=anonymity == NAMED,
        ),
        {},
    )
