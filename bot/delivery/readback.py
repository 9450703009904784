"""Reading a DM back before posting again: a post whose answer never came (a timeout, a 5xx,
a crash, a `sent` mark the database refused) may have landed, so its DM is read
(`conversations.history` with `include_all_metadata`, from the first attempt on) for the
message metadata that names the delivery."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery.calls import Failed, Posted, refusal
from bot.delivery.model import EVENT_TYPE, key_of
from storage.models import Delivery

logger = logging.getLogger(__name__)

READ_BACK_SKEW = timedelta(minutes=2)  # our clock against Slack's, when reading back a DM
READ_BACK_PAGES = 5
# Why a message's DM cannot be read back: then a post whose answer was lost is not repeated.
UNREADABLE_ERRORS = frozenset({"missing_scope", "not_in_channel", "channel_not_found"})


@dataclass(frozen=True, slots=True)
class Unreadable:
    """The DM cannot be read back (`why`): the post is counted as sent, never repeated."""

    why: str


def is_delivery(message: dict[str, Any], delivery: Delivery) -> bool:
    """Whether a message read back carries this delivery's metadata."""
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    return (
        isinstance(payload, dict)
        and payload.get("delivery_id") == delivery.id
        and payload.get("kind") == delivery.kind
        and payload.get("period") == delivery.period_key
    )


async def read_back(
    client: AsyncWebClient, delivery: Delivery, target: str, *, default_retry_after: float
) -> Posted | Failed | Unreadable | None:
    """Is the message of an earlier post already in its DM? `Posted` if so, `Unreadable` if
    the DM cannot be read, None if it is not there, `Failed` if Slack would not say."""
    assert delivery.attempted_at is not None
    try:
        channel = delivery.slack_channel
        if channel is None and target[:1] in ("U", "W"):
            opened = await client.api_call("conversations.open", json={"users": target})
            channel = str((opened.get("channel") or {}).get("id") or "") or None
        elif channel is None and target[:1] == "D":
            channel = target
        if channel is None:
            return Unreadable("a channel")
        oldest = (delivery.attempted_at - READ_BACK_SKEW).timestamp()
        cursor: str | None = None
        for _ in range(READ_BACK_PAGES):
            params: dict[str, Any] = {
                "channel": channel,
                "oldest": f"{oldest:.6f}",
                "include_all_metadata": "true",
                "limit": 100,
            }
            if cursor:
                params["cursor"] = cursor
            page = await client.api_call("conversations.history", http_verb="GET", params=params)
            for message in page.get("messages") or []:
                if is_delivery(message, delivery):
                    logger.info(
                        "%s was already posted; marked sent, not posted again", key_of(delivery)
                    )
                    return Posted(channel, str(message.get("ts")), found=True)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None
        return None
    except SlackApiError as error:
        refused = refusal(error, default_retry_after=default_retry_after)
        if refused.error in UNREADABLE_ERRORS or refused.kind == "undeliverable":
            return Unreadable(refused.error)
        if refused.kind == "refused":
            return Failed(refused.error, "transient")
        return Failed(refused.error, refused.kind, retry_after=refused.retry_after)
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        return Failed(f"network: {type(error).__name__}", "transient")
