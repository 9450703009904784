"""The Bolt AsyncApp: services in every request's context, once per request, the listeners."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.client import create_client
from bot.idempotency import answer_repeat, forget_failed_event, once_per_request
from bot.services import CONTEXT_KEY, Services
from handlers import register_all

logger = logging.getLogger(__name__)

BOLT_VERIFICATION_LOGGER = "slack_bolt.RequestVerification"
ERROR_TEXT = "Sorry, something went wrong on our side. Please try again in a minute."


def create_app(services: Services, client: AsyncWebClient | None = None) -> AsyncApp:
    settings = services.settings
    # Bolt checks signatures on every HTTP request (bot/server.py checks them first); in
    # Socket Mode, with no signing secret, a random one refuses any HTTP request that got here.
    app = AsyncApp(
        signing_secret=settings.slack_signing_secret or secrets.token_hex(32),
        client=client or create_client(settings),
    )
    # Bolt logs the whole body of a request it refuses, at INFO: an anonymous author's text.
    # Its logger's level is set when the app is built, so it is raised here, after.
    logging.getLogger(BOLT_VERIFICATION_LOGGER).setLevel(logging.ERROR)

    @app.middleware
    async def provide_services(
        context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]
    ) -> Any:
        context[CONTEXT_KEY] = services
        return await next()

    app.middleware(once_per_request)

    @app.middleware
    async def note_opening(
        context: AsyncBoltContext, body: dict[str, Any], next: Callable[[], Awaitable[Any]]
    ) -> Any:
        # A request that may open a modal goes before fills of modals already open (not a
        # repeat: `once_per_request` answered those already).
        trigger_id = body.get("trigger_id")
        if isinstance(trigger_id, str) and trigger_id and body.get("type") != "view_submission":
            services.fill_slots.arriving(trigger_id)
        return await next()

    app.error(handle_error)
    register_all(app)
    return app


async def handle_error(
    error: Exception,
    body: dict[str, Any],
    respond: Any,
    context: AsyncBoltContext,
    response: BoltResponse | None,
) -> None:
    """Last resort: log the failure, tell the person briefly, never show a trace.

    Only a request that got past Bolt's built-in middleware (its signature check first) to
    ours is answered: an error before that leaves the body unverified, its response_url too.
    """
    if await answer_repeat(error, context, response):
        return
    await forget_failed_event(context)
    logger.error("Unhandled error in a listener", exc_info=error)
    if context.get(CONTEXT_KEY) is None:
        return
    if respond is not None and body.get("response_url"):
        try:
            await respond(text=ERROR_TEXT, response_type="ephemeral", replace_original=False)
        except Exception:
            logger.exception("Could not tell the user about the error")
