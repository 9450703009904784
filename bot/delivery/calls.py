"""What a Slack Web API call came to, as the queue reads it: posted, or failed in one of a few
ways (Slack's errors sorted into retry, pause, give up, stop), and the client that leaves
every retry to the queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

# Errors that mean the person cannot be reached at all: retrying changes nothing.
UNDELIVERABLE_ERRORS = frozenset(
    {
        "user_not_found",
        "users_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "channel_not_found",
        "is_archived",
        "not_in_channel",
    }
)
# Errors about the bot's own token (`account_inactive`: its user or workspace is deleted):
# every call would fail alike, so they stop the queue instead of condemning the recipient.
TOKEN_ERRORS = frozenset(
    {"account_inactive", "invalid_auth", "token_revoked", "token_expired", "not_authed"}
)
# Errors Slack answers with a 200 that are worth another try.
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
# Ways a request can fail before Slack saw it: nothing can have been posted.
NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """A Web API call's response, or the error it ended with."""

    response: dict[str, Any] | None = None
    error: str | None = None
    undeliverable: bool = False


# What one attempt at a post came to.
@dataclass(frozen=True, slots=True)
class Posted:
    channel: str | None
    ts: str | None
    found: bool = False  # read back: it was already there
    confirmed: bool = True  # False: its answer was lost and it cannot be read back


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    kind: str  # "transient", "limited", "token", "undeliverable", "refused", "lost", "db", "stop"
    maybe_posted: bool = False
    retry_after: float = 0.0
    slow: bool = False  # a timeout: this call was slow, which says little about the others


def refusal(error: SlackApiError, *, default_retry_after: float) -> Failed:
    """What Slack's error answer means for the queue."""
    status = error.response.status_code
    code = str(error.response.get("error") or f"http_{status}")
    if status == 429 or code == "ratelimited":
        return Failed(code, "limited", retry_after=retry_after(error, default_retry_after))
    if code in TOKEN_ERRORS:
        return Failed(code, "token")
    if code in UNDELIVERABLE_ERRORS:
        return Failed(code, "undeliverable")
    if status >= 500 or code in TRANSIENT_ERRORS:
        return Failed(code, "transient", maybe_posted=True)
    return Failed(code, "refused")


def retry_after(error: SlackApiError, default: float) -> float:
    """A 429's `Retry-After` in seconds (`default` when it has none, or none that reads)."""
    raw = error.response.headers.get("Retry-After") or error.response.headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else default
    except ValueError:
        return default


def bare_client(client: AsyncWebClient) -> AsyncWebClient:
    """The same workspace without slack_sdk's retry handlers: the queue owns every retry."""
    return AsyncWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        session=client.session,
        retry_handlers=[],
    )
