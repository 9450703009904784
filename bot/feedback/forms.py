"""What feedback's surfaces send back: the modal's entry, `/contract request-feedback`'s words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.core.mentions import user_id_of
from bot.core.permissions import Refusal
from bot.core.text import escape, truncate
from bot.feedback.model import (
    ANONYMOUS,
    ATTRIBUTED,
    BEHAVIOUR_MAX,
    BEHAVIOUR_MIN,
    EXPECTATION_KEY,
    GROUP_WORDS,
    IMPACT_MAX,
    POLARITIES,
    SITUATION_MAX,
    Entry,
    RequestArgs,
    Target,
)
from bot.ui.forms import Form, required_text


def parse_feedback(view: dict[str, Any], target: Target) -> tuple[Entry | None, dict[str, str]]:
    """The entry, or field errors keyed by block id."""
    form = Form(view)
    errors: dict[str, str] = {}
    expectation = form.option("expectation")
    if expectation not in {key for key, _ in target.expectations}:
        errors["expectation"] = "Choose one of the leader's expectations."
    polarity = form.option("polarity")
    if polarity not in POLARITIES:
        errors["polarity"] = "Choose a strength or a development area."
    situation = required_text(form, errors, "situation", SITUATION_MAX)
    behaviour = required_text(form, errors, "behaviour", BEHAVIOUR_MAX)
    if behaviour and "behaviour" not in errors and len(behaviour) < BEHAVIOUR_MIN:
        errors["behaviour"] = (
            "Too short to act on: describe what they did or said, in a sentence or two."
        )
    impact = required_text(form, errors, "impact", IMPACT_MAX)
    relation = form.option("relation")
    if target.relation is None:
        if relation not in target.open_groups:  # none chosen, or a value the modal never offered
            errors["relation"] = "Choose how you work with the leader."
    elif relation is not None and relation != target.relation:  # the modal asked nothing
        errors["behaviour"] = "North Star already knows how you work with this leader."
    anonymity = form.option("anonymity")
    if target.attributed_only:
        if anonymity not in (None, ATTRIBUTED):  # the modal offered no choice
            errors["behaviour"] = "This feedback goes with your name; it cannot be anonymous."
    elif anonymity not in (ATTRIBUTED, ANONYMOUS):
        errors["anonymity"] = "Choose whether your name goes with it."
    if errors:
        return None, errors
    return (
        Entry(
            expectation_key=expectation,
            polarity=polarity or "",
            situation=situation,
            behaviour=behaviour,
            impact=impact,
            anonymous=anonymity == ANONYMOUS,
            relation=relation if target.relation is None else None,
        ),
        {},
    )


def parse_request_args(args: Sequence[str]) -> RequestArgs | Refusal:
    """`@a @b [peers reports stakeholders sponsor self everyone] [E2] [for @leader]` from the
    words after `request-feedback`."""
    reviewers: list[str] = []
    groups: list[str] = []
    expectation: str | None = None
    leader: str | None = None
    words = list(args)
    index = 0
    while index < len(words):
        word = words[index]
        if word.lower() == "for" and index + 1 < len(words):
            leader = user_id_of(words[index + 1])
            if leader is None:
                return Refusal(
                    f"“{escape(truncate(words[index + 1], 80))}” is not a mention: write "
                    "`for @leader` with the name Slack offers as you type."
                )
            index += 2
            continue
        mentioned = user_id_of(word)
        if mentioned is not None:
            reviewers.append(mentioned)
        elif word.lower() in GROUP_WORDS:
            groups.append(GROUP_WORDS[word.lower()])
        elif EXPECTATION_KEY.match(word):
            expectation = word.upper()
        else:
            return Refusal(
                f"I couldn't read “{escape(truncate(word, 80))}”: mention each person or name a "
                "group (peers, reports, stakeholders, sponsor, self, everyone), e.g. "
                "`/contract request-feedback @ana reports E2`."
            )
        index += 1
    return RequestArgs(
        list(dict.fromkeys(reviewers)), expectation, leader, tuple(dict.fromkeys(groups))
    )
