"""The Slack Web API client the bot, its jobs and its commands talk through."""

from __future__ import annotations

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings

# Connections to Slack kept open at once, and how long an idle one is kept.
CONNECTIONS = 50
KEEP_IDLE_SECONDS = 30.0


def create_client(
    settings: Settings, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """A Web API client that waits out 429s and retries 5xx and connection errors.

    With `session` (see `connection_pool`) every call, and every request's client Bolt makes
    from this one, goes over the session's kept-alive connections; without one, each call
    opens a connection of its own (a TLS handshake with Slack each time), which is right
    only for a one-off command.
    """
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        session=session,
        retry_handlers=[
            # A kept-alive connection Slack has closed meanwhile fails with
            # ServerDisconnectedError: retried on a new one.
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def connection_pool() -> aiohttp.ClientSession:
    """The long-lived HTTP session a running bot's client shares; made in the running event
    loop and closed when the bot stops."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONNECTIONS, keepalive_timeout=KEEP_IDLE_SECONDS)
    )
