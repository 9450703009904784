"""Reading the reply modal: the reply's text, required and within its limit."""

from __future__ import annotations

from typing import Any

from bot.answers.model import REPLY_INPUT, REPLY_LIMIT
from bot.ui.forms import Form, required_text


def parse_reply(view: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(the reply's text, field errors)."""
    errors: dict[str, str] = {}
    text = required_text(Form(view), errors, REPLY_INPUT, REPLY_LIMIT)
    return text, errors
