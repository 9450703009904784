"""The running bot's Web API client: calls share kept-alive connections, and a connection the
server has closed meanwhile costs nothing but a new one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp import web

from bot.client import connection_pool, create_client
from bot.delivery import bare_client
from tests.harness import make_settings


class Server:
    """A stand-in for slack.com that answers `auth.test` and notes each call's connection."""

    def __init__(self) -> None:
        self.peers: list[str] = []
        self.url = ""
        self._transports: list[asyncio.BaseTransport] = []

    async def auth_test(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.peers.append(f"{peer[0]}:{peer[1]}" if peer else "")
        if request.transport is not None:
            self._transports.append(request.transport)
        return web.json_response({"ok": True, "user_id": "U0BOT0001"})

    def close_idle_connections(self) -> None:
        """What a load balancer in front of Slack does to a connection idle too long."""
        for transport in self._transports:
            transport.close()


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    found = Server()
    app = web.Application()
    app.add_routes([web.post("/api/auth.test", found.auth_test)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    found.url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/"
    yield found
    await runner.cleanup()


async def test_calls_share_a_connection_and_outlive_the_server_closing_it(
    server: Server,
) -> None:
    pool = connection_pool()
    try:
        client = create_client(make_settings(api_url=server.url, database_url=""), pool)
        for _ in range(3):
            assert (await client.auth_test())["ok"]
        assert len(server.peers) == 3 and len(set(server.peers)) == 1  # one connection
        server.close_idle_connections()
        await asyncio.sleep(0.2)  # the close reaches the client while the connection is idle
        # On a new connection, with no error to retry: the delivery queue's client, which
        # retries nothing itself, would have taken an error for an outage.
        assert (await bare_client(client).auth_test())["ok"]
        assert len(set(server.peers)) == 2
    finally:
        await pool.close()


async def test_without_a_pool_each_call_opens_its_own_connection(server: Server) -> None:
    client = create_client(make_settings(api_url=server.url, database_url=""))
    for _ in range(3):
        assert (await client.auth_test())["ok"]
    assert len(set(server.peers)) == 3
