"""Modal forms: the inputs every modal builds with, and `Form`, which reads what was submitted.

A submitted view's state is read only through `Form`: every value is text without NUL
characters (PostgreSQL text cannot hold them), and a view whose state is missing, null or
malformed reads as an empty form. Each input's element shares its block id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from slack_sdk.models.blocks import (
    CheckboxesElement,
    DatePickerElement,
    InputBlock,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    StaticSelectElement,
)

from bot.core import rules
from bot.core.text import truncate
from bot.ui.blocks import MODAL_TITLE, OPTION_TEXT


def clean_text(text: str) -> str:
    """Typed text without NUL characters, which PostgreSQL's text columns refuse."""
    return text.replace("\x00", "")


# --- building ---------------------------------------------------------------------------------


def modal_title(text: str) -> PlainTextObject:
    return PlainTextObject(text=truncate(text, MODAL_TITLE))


def option(value: str, label: str | None = None) -> Option:
    """An option labelled `label`, else its value with spaces for underscores."""
    return Option(value=value, label=truncate(label or value.replace("_", " "), OPTION_TEXT))


def text_input(
    block_id: str,
    label: str,
    *,
    max_length: int,
    multiline: bool = False,
    optional: bool = False,
    initial: str | None = None,
    placeholder: str | None = None,
    hint: str | None = None,
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        hint=hint,
        optional=optional,
        element=PlainTextInputElement(
            action_id=block_id,
            multiline=multiline,
            max_length=max_length,
            initial_value=truncate(initial, max_length) if initial else None,
            placeholder=placeholder,
        ),
    )


def select_input(
    block_id: str,
    label: str,
    options: Sequence[Option],
    *,
    initial: str | None = None,
    optional: bool = False,
    hint: str | None = None,
) -> InputBlock:
    chosen = next((o for o in options if o.value == initial), None)
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        hint=hint,
        element=StaticSelectElement(
            action_id=block_id, options=list(options), initial_option=chosen
        ),
    )


def date_input(
    block_id: str, label: str, initial: date | None, *, optional: bool = False
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        element=DatePickerElement(
            action_id=block_id, initial_date=initial.isoformat() if initial else None
        ),
    )


PAST_OK = "past_ok"
PAST_OK_TEXT = "Yes, in the past"


def past_ok_input() -> InputBlock:
    """The explicit confirmation a date before today needs (`past_date_error`); never ticked
    in advance, also when a form is shown again to change what it holds."""
    yes = Option(value="yes", text=PAST_OK_TEXT)
    return InputBlock(
        block_id=PAST_OK,
        label="A date before today?",
        optional=True,
        hint="Tick it only to keep a date that is already over.",
        element=CheckboxesElement(action_id=PAST_OK, options=[yes]),
    )


def number_input(
    block_id: str, label: str, *, optional: bool = False, initial: float | None = None
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        element=NumberInputElement(
            action_id=block_id,
            is_decimal_allowed=True,
            initial_value=None if initial is None else number_text(initial),
        ),
    )


def number_text(value: float) -> str:
    """A stored number as a number input shows it again: 60 for 60.0, 85.5 as it was."""
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


# --- reading ----------------------------------------------------------------------------------


class Form:
    """Reads a view_submission's state (see the module doc)."""

    def __init__(self, view: dict[str, Any]) -> None:
        state = view.get("state") if isinstance(view, dict) else None
        values = state.get("values") if isinstance(state, dict) else None
        self._values: dict[str, Any] = values if isinstance(values, dict) else {}

    def _element(self, block_id: str) -> dict[str, Any]:
        block = self._values.get(block_id)
        element = block.get(block_id) if isinstance(block, dict) else None
        return element if isinstance(element, dict) else {}

    def _string(self, block_id: str, key: str) -> str | None:
        value = self._element(block_id).get(key)
        return (clean_text(value) or None) if isinstance(value, str) else None

    def text(self, block_id: str) -> str:
        return (self._string(block_id, "value") or "").strip()

    def raw(self, block_id: str, key: str) -> str:
        """An element's value under `key` as sent, for telling "empty" from "not valid"."""
        return self._string(block_id, key) or ""

    def user(self, block_id: str) -> str | None:
        return self._string(block_id, "selected_user")

    def users(self, block_id: str) -> list[str]:
        """The user ids a multi_users_select holds."""
        chosen = self._element(block_id).get("selected_users") or []
        return [u for u in chosen if isinstance(u, str)] if isinstance(chosen, list) else []

    def conversation(self, block_id: str) -> str | None:
        """The conversation id a conversations_select holds."""
        return self._string(block_id, "selected_conversation")

    def option(self, block_id: str) -> str | None:
        selected = self._element(block_id).get("selected_option")
        value = selected.get("value") if isinstance(selected, dict) else None
        return (clean_text(value) or None) if isinstance(value, str) else None

    def options(self, block_id: str) -> list[str]:
        """The values of a checkbox or multi-select's chosen options."""
        chosen = self._element(block_id).get("selected_options") or []
        return [str(o.get("value")) for o in chosen if isinstance(o, dict)]

    def time(self, block_id: str) -> str | None:
        return self._string(block_id, "selected_time")

    def date(self, block_id: str) -> date | None:
        raw = self._string(block_id, "selected_date")
        try:
            return date.fromisoformat(raw) if raw else None
        except ValueError:
            return None


def past_date_error(
    form: Form,
    errors: dict[str, str],
    block_id: str,
    value: date | None,
    *,
    today: date,
    what: str,
    kept: date | None = None,
) -> None:
    """Refuse a date before `today` unless the form's `past_ok_input` is ticked; a date an
    edited form leaves as it was (`kept`) was confirmed when it was set."""
    if value is None or value >= today or block_id in errors or value == kept:
        return
    if "yes" not in form.options(PAST_OK):
        errors[block_id] = (
            f"{what} ({value.isoformat()}) is in the past: tick *{PAST_OK_TEXT}* to keep it."
        )


def required_text(form: Form, errors: dict[str, str], block_id: str, limit: int) -> str:
    value = form.text(block_id)
    if not value:
        errors[block_id] = "Please fill this in."
    elif len(value) > limit:
        errors[block_id] = f"Keep it to {limit} characters (this is {len(value)})."
    return value


def required_choice(
    form: Form, errors: dict[str, str], block_id: str, allowed: Sequence[str]
) -> str:
    value = form.option(block_id)
    if value is None or value not in allowed:
        errors[block_id] = "Choose one of the options."
        return ""
    return value


def number_value(
    form: Form, errors: dict[str, str], block_id: str, *, required: bool
) -> float | None:
    raw = form.text(block_id)
    if not raw:
        if required:
            errors[block_id] = "Enter a number."
        return None
    try:
        return rules.parse_number(raw)
    except ValueError as problem:
        errors[block_id] = str(problem)
        return None


def input_block_ids(view: Any) -> list[str]:
    """The block ids of a submitted view's input blocks, in order."""
    blocks = view.get("blocks") if isinstance(view, dict) else None
    return [
        str(b["block_id"])
        for b in blocks or []
        if isinstance(b, dict) and b.get("type") == "input" and b.get("block_id")
    ]
