"""Answering with views: update one that may have moved on, refuse a submission kindly."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.text import truncate
from bot.services import give_way, modal_opened
from bot.ui.blocks import MODAL_TITLE
from bot.ui.forms import input_block_ids

logger = logging.getLogger(__name__)

STALE_VIEW_ERRORS = frozenset({"hash_conflict", "not_found", "view_not_found"})
OUT_OF_DATE = (
    "That button or form is out of date (or was changed on the way), so nothing was done. "
    "Open it again from a recent message, App Home or `/contract`."
)


LOADING = "loading"


@dataclass(frozen=True)
class Opened:
    """A modal Slack just opened: what a later `views.update` of it needs."""

    view_id: str
    hash: str | None


def loading_view(title: str) -> View:
    """What a modal shows between opening and being filled: its title and "Loading…"."""
    return View(
        type="modal",
        callback_id=LOADING,
        title=truncate(title, MODAL_TITLE),
        close="Close",
        blocks=[SectionBlock(text=MarkdownTextObject(text="Loading…"))],
    )


EXPIRED_TRIGGER_ERRORS = frozenset({"expired_trigger_id", "invalid_trigger_id"})


async def open_loading(
    client: AsyncWebClient, *, trigger_id: str, title: str, on_top: bool = False
) -> Opened | None:
    """Open a loading modal at once, while the trigger id is fresh (`on_top`: pushed onto
    the modal the click came from); fill it with `fill`. None when Slack no longer takes the
    trigger id: the person saw nothing, so there is nothing to fill."""
    try:
        opening = client.views_push if on_top else client.views_open
        answer = await opening(trigger_id=trigger_id, view=loading_view(title))
    except SlackApiError as error:
        reason = error.response.get("error")
        if reason not in EXPIRED_TRIGGER_ERRORS:
            raise
        logger.warning("A modal did not open: %s", reason)
        return None
    finally:
        modal_opened()
    view = answer["view"]
    return Opened(view_id=view["id"], hash=view.get("hash"))


async def fill(client: AsyncWebClient, opened: Opened, view: View | dict[str, Any]) -> bool:
    """Put the real content into a modal `open_loading` opened; False when the person closed
    it or something else changed it meanwhile."""
    await give_way()
    return await update_view(client, view_id=opened.view_id, hash=opened.hash, view=view)


def message_view(title: str, text: str) -> View:
    """A modal that only says `text`: what a loading modal becomes when there is nothing to
    fill it with."""
    return View(
        type="modal",
        title=truncate(title, MODAL_TITLE),
        close="Close",
        blocks=[SectionBlock(text=MarkdownTextObject(text=text))],
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
