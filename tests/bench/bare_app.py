"""The bare Bolt app of `baseline` as a process of its own, importing nothing of North Star
(so its memory is Bolt's and aiohttp's alone):
`python -m tests.bench.bare_app --slack API_URL --port PORT --token T --secret S`.

Its client keeps its connections open, as `northstar run`'s does: what the two are compared
on is their own work, not whose HTTP client makes a new connection per call."""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

COMMAND = "/bench"
MODAL = {
    "type": "modal",
    "callback_id": "bench",
    "title": {"type": "plain_text", "text": "Benchmark"},
    "close": {"type": "plain_text", "text": "Close"},
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "A static modal."}}],
}


async def handle_bench(ack: AsyncAck, command: dict[str, str], client: AsyncWebClient) -> None:
    await ack()
    await client.views_open(trigger_id=command["trigger_id"], view=MODAL)


async def serve(*, api_url: str, port: int, token: str, secret: str) -> None:
    client = AsyncWebClient(token=token, base_url=api_url, session=aiohttp.ClientSession())
    app = AsyncApp(signing_secret=secret, client=client)
    app.command(COMMAND)(handle_bench)

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app = web.Application()
    web_app.add_routes([web.post("/slack/events", slack_events), web.get("/healthz", healthz)])
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bare_app", description=__doc__)
    parser.add_argument("--slack", required=True, help="the fake Slack's Web API URL")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    asyncio.run(serve(api_url=args.slack, port=args.port, token=args.token, secret=args.secret))


if __name__ == "__main__":
    main()
