"""The HTTP face of the bot: Slack's requests on /slack/events and a health check."""

from __future__ import annotations

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from sqlalchemy import text

from storage.db import SessionFactory

EVENTS_PATH = "/slack/events"


def create_web_app(app: AsyncApp, sessions: SessionFactory) -> web.Application:
    async def slack_events(request: web.Request) -> web.Response:
        bolt_response = await app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(_request: web.Request) -> web.Response:
        try:
            async with sessions() as session:
                await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        except Exception as error:  # the check reports any failure, whatever its kind
            return web.json_response(
                {"status": "unavailable", "database": type(error).__name__}, status=503
            )
        return web.json_response({"status": "ok", "database": "ok"})

    web_app = web.Application()
    web_app.add_routes([web.post(EVENTS_PATH, slack_events), web.get("/healthz", healthz)])
    return web_app
