"""Assembles the Bolt AsyncApp: Web API client, services in the context, the listeners."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

import bot.digest  # noqa: F401  (registers the digests job)
from bot.idempotency import answer_repeat, forget_failed_event, once_per_request
from bot.services import CONTEXT_KEY, Services
from bot.settings import Settings
from handlers import (
    actions,
    amendments,
    checkins,
    commands,
    events,
    evidence,
    feedback,
    milestones,
    views,
)

logger = logging.getLogger(__name__)

ERROR_TEXT = "Sorry, something went wrong on our side. Please try again in a minute."


def create_client(settings: Settings) -> AsyncWebClient:
    """A Web API client that waits out 429s and retries 5xx and connection errors."""
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def create_app(services: Services, client: AsyncWebClient | None = None) -> AsyncApp:
    settings = services.settings
    app = AsyncApp(
        signing_secret=settings.slack_signing_secret or "",
        client=client or create_client(settings),
        request_verification_enabled=not settings.socket_mode,
    )

    @app.middleware
    async def provide_services(
        context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]
    ) -> Any:
        context[CONTEXT_KEY] = services
        return await next()

    app.middleware(once_per_request)
    app.error(handle_error)
    for module in (
        commands,
        actions,
        views,
        events,
        checkins,
        feedback,
        evidence,
        amendments,
        milestones,
    ):
        module.register(app)
    return app


async def handle_error(
    error: Exception,
    body: dict[str, Any],
    respond: Any,
    context: AsyncBoltContext,
    response: BoltResponse | None,
) -> None:
    """Last resort: log the failure, tell the person briefly, never show a trace."""
    if await answer_repeat(error, context, response):
        return
    await forget_failed_event(context)
    logger.error("Unhandled error in a listener", exc_info=error)
    if respond is not None and body.get("response_url"):
        try:
            await respond(text=ERROR_TEXT, response_type="ephemeral", replace_original=False)
        except Exception:
            logger.exception("Could not tell the user about the error")
