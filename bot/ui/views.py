"""Answering with views: update one that may have moved on, refuse a submission kindly."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.ui.forms import input_block_ids

logger = logging.getLogger(__name__)

STALE_VIEW_ERRORS = frozenset({"hash_conflict", "not_found", "view_not_found"})
OUT_OF_DATE = (
    "That button or form is out of date (or was changed on the way), so nothing was done. "
    "Open it again from a recent message, App Home or `/contract`."
)


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


async def refuse_submission(ack: AsyncAck, view: Any, text: str) -> None:
    """Answer a view submission that cannot be taken: a field error on its first input, or,
    with no input to put it on, the modal replaced by `text`."""
    inputs = input_block_ids(view)
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
