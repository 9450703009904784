"""What the review modal submits: each item's choice and note."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.reviews.model import CHOICES, KEEP, NOTE_MAX, ReviewItem
from bot.ui.forms import Form


def read_review(
    view: dict[str, Any], items: Sequence[ReviewItem]
) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """(block id -> (choice, note)) for each item the modal asked about, and field errors.

    An item the modal did not show (past its cap, or added since it opened) is kept.
    """
    form = Form(view)
    shown = set(_input_ids(view))
    choices: dict[str, tuple[str, str]] = {}
    errors: dict[str, str] = {}
    for item in items:
        if item.block_id not in shown:
            choices[item.block_id] = (KEEP, "")
            continue
        choice = form.option(item.block_id) or ""
        note = form.text(item.note_id)
        if choice not in CHOICES:
            errors[item.block_id] = "Choose keep, amend or retire."
        if len(note) > NOTE_MAX:
            errors[item.note_id] = f"Keep it to {NOTE_MAX} characters (this is {len(note)})."
        choices[item.block_id] = (choice, note)
    return choices, errors


def _input_ids(view: dict[str, Any]) -> list[str]:
    blocks = view.get("blocks") if isinstance(view, dict) else None
    return [
        str(b.get("block_id"))
        for b in blocks or []
        if isinstance(b, dict) and b.get("type") == "input"
    ]
