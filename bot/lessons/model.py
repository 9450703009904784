"""The vocabulary of lessons: their sources, their tags, what a search is made of."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from bot.core import rules

SourceKind = Literal["checkin", "milestone", "risk"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("checkin", "milestone", "risk")
SOURCE_LABEL = {"checkin": "a reflection", "milestone": "a missed milestone", "risk": "a risk"}

TITLE_LIMIT = 100
TEXT_LIMIT = 2000
TAG_LIMIT = 30
TAGS_MAX = 5
THEME_LIMIT = 120
ACTIVITY_TYPES = rules.MODALITIES
SEARCH_TERMS_MAX = 8
TERM_LIMIT = 40
RESULTS = 10

# A word is letters and digits; everything else (quotes, *, -, parentheses, colons) only
# separates words. Each word reaches the engines quoted (FTS5) or as a lexeme (PostgreSQL), so
# NEAR, OR or NOT are words like any other, never operators.
WORD = re.compile(r"[^\W_]+")
TAG = re.compile(r"[^\W_]+(?:[-][^\W_]+)*")


def search_terms(words: str) -> list[str]:
    """The words of a search, lower case, once each, at most `SEARCH_TERMS_MAX`."""
    found: list[str] = []
    for word in WORD.findall(words.lower()):
        term = word[:TERM_LIMIT]
        if term in found:
            continue
        found.append(term)
    return found[:SEARCH_TERMS_MAX]


def parse_tags(typed: str) -> tuple[list[str], str | None]:
    """Free tags typed comma-separated: lower case, words joined by hyphens; and a problem."""
    tags: list[str] = []
    for part in typed.split(","):
        words = WORD.findall(part.lower())
        if not words:
            continue
        tag = "-".join(words)
        if len(tag) > TAG_LIMIT:
            return [], f"Keep each tag to {TAG_LIMIT} characters (“{tag[:TAG_LIMIT]}…” is longer)."
        if tag not in tags:
            tags.append(tag)
    if len(tags) > TAGS_MAX:
        return [], f"At most {TAGS_MAX} tags, separated by commas."
    return tags, None


def activity_label(kind: str) -> str:
    return kind.replace("_", " ")


@dataclass(frozen=True, slots=True)
class ShareSource:
    """What a lesson is shared from, checked: its contract, and what the form starts with."""

    kind: SourceKind
    source_id: int
    contract_id: int
    title: str
    happened: str
    expectations: list[tuple[str, str]] = field(default_factory=list)  # key, text
    activity_types: list[str] = field(default_factory=list)  # the contract's, first
    expectation_key: str | None = None
    activity_type: str | None = None


@dataclass(frozen=True, slots=True)
class LessonDraft:
    """A lesson as the form submitted it, valid."""

    title: str
    happened: str
    takeaway: str
    theme: str | None
    activity_type: str | None
    tags: list[str]
    named: bool

    @property
    def tag_text(self) -> str:
        """Everything a lesson is tagged with, as one searchable text."""
        parts = [self.theme or "", activity_label(self.activity_type or ""), *self.tags]
        return " ".join(p for p in parts if p)
