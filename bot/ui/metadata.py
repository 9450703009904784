"""Readers of what comes back from Slack's clients: ids in button values and private_metadata.

A button's value and a view's private_metadata are what the app wrote, but they come back
in a request, and nothing but these readers turns them into ids: a value that is not a
positive whole number a database id column holds (PostgreSQL INTEGER) is no id at all, so
`10**30`, `2**31`, `-1`, `"abc"`, `1.5` or a nested object never reach a query.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

logger = logging.getLogger(__name__)

MAX_ID = 2**31 - 1  # the largest value of a PostgreSQL INTEGER column, every id's type
MAX_ENCODED = 3000  # private_metadata's limit; a button's value is shorter still
STALE_VIEW_ERRORS = frozenset({"hash_conflict", "not_found", "view_not_found"})
OUT_OF_DATE = (
    "That button or form is out of date (or was changed on the way), so nothing was done. "
    "Open it again from a recent message, App Home or `/contract`."
)


def record_id(value: Any) -> int | None:
    """A database id: an int, or a string of ASCII digits, from 1 to `MAX_ID`; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not (0 < len(value) <= len(str(MAX_ID)) and value.isascii() and value.isdigit()):
            return None
        value = int(value)
    if not isinstance(value, int):
        return None
    return value if 1 <= value <= MAX_ID else None


def small_number(value: Any, *, low: int = 0, high: int = 1000) -> int | None:
    """A small whole number (a page, a count of misses) from `low` to `high`; else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if low <= value <= high else None


def clean_text(text: str) -> str:
    """Typed text without NUL characters, which PostgreSQL's text columns refuse."""
    return text.replace("\x00", "")


def json_object(text: Any) -> dict[str, Any]:
    """A JSON object written into a button value or private_metadata; {} for anything else
    (not text, too long, not JSON, nested too deeply, not an object)."""
    if not isinstance(text, str) or len(text) > MAX_ENCODED:
        return {}
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return found if isinstance(found, dict) else {}


def id_in(text: Any, key: str) -> int | None:
    """The id under `key` in a JSON object (a button's value, a view's private_metadata)."""
    return record_id(json_object(text).get(key))


async def update_view(
    client: AsyncWebClient, *, view_id: str, view: View | dict[str, Any], hash: str | None = None
) -> bool:
    """`views.update`; False when the view changed or closed meanwhile (a double click, a
    second tab): that answer is someone else's newer update, not a failure."""
    try:
        await client.views_update(view_id=view_id, hash=hash, view=view)
    except SlackApiError as error:
        reason = error.response.get("error")
        if reason not in STALE_VIEW_ERRORS:
            raise
        logger.info("View %s not updated: %s", view_id, reason)
        return False
    return True


def input_blocks(view: Any) -> list[str]:
    """The block ids of a submitted view's input blocks, in order."""
    blocks = view.get("blocks") if isinstance(view, dict) else None
    return [
        str(b["block_id"])
        for b in blocks or []
        if isinstance(b, dict) and b.get("type") == "input" and b.get("block_id")
    ]


async def refuse_submission(ack: AsyncAck, view: Any, text: str) -> None:
    """Answer a view submission that cannot be taken: a field error on its first input, or,
    with no input to put it on, the modal replaced by `text`."""
    inputs = input_blocks(view)
    if inputs:
        await ack(response_action="errors", errors={inputs[0]: text})
        return
    await ack(
        response_action="update",
        view=View(
            type="modal",
            title="North Star",
            close="Close",
            blocks=[SectionBlock(text=MarkdownTextObject(text=text))],
        ),
    )
