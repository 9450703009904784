"""The yardstick: a bare Bolt AsyncApp whose `/bench` opens a static modal, served like ours."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from tests.bench.bare_app import COMMAND, MODAL, handle_bench
from tests.fakes import FakeSlack, SlackDriver
from tests.harness import BOT_TOKEN, SIGNING_SECRET

BASELINE_COMMAND = COMMAND
BASELINE_MODAL: dict[str, Any] = MODAL


def create_baseline_app(client: AsyncWebClient) -> AsyncApp:
    app = AsyncApp(signing_secret=SIGNING_SECRET, client=client)
    app.command(BASELINE_COMMAND)(handle_bench)
    return app


@asynccontextmanager
async def running_baseline(fake: FakeSlack) -> AsyncIterator[SlackDriver]:
    """Serve the bare app on 127.0.0.1 the way `tests.harness` serves ours; yield a driver."""
    app = create_baseline_app(AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url))

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.add_routes([web.post("/slack/events", slack_events)])
    runner = web.AppRunner(web_app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        async with SlackDriver(app_url=url, signing_secret=SIGNING_SECRET, fake=fake) as driver:
            yield driver
    finally:
        await runner.cleanup()
