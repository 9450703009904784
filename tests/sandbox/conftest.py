"""A running sandbox per test: its own data folder, free ports, the demo workspace or none."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot.sandbox.runtime import Sandbox, SandboxOptions
from tests.harness import make_settings

StartSandbox = Callable[..., Awaitable[Sandbox]]


@pytest_asyncio.fixture
async def start_sandbox(tmp_path: Path) -> AsyncIterator[StartSandbox]:
    """Start sandboxes (in this test's event loop) and stop them when the test ends."""
    started: list[Sandbox] = []

    async def start(
        *, empty: bool = False, reset: bool = False, data: Path | None = None
    ) -> Sandbox:
        settings = make_settings(api_url="http://unused.invalid/", database_url="sqlite://")
        options = SandboxOptions(port=0, data_dir=data or tmp_path, empty=empty, reset=reset)
        sandbox = Sandbox(settings, options)
        await sandbox.start()
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in reversed(started):
        await sandbox.stop()


@pytest_asyncio.fixture
async def sandbox(start_sandbox: StartSandbox) -> Sandbox:
    return await start_sandbox()


class Page:
    """The sandbox's JSON API, as the page uses it."""

    def __init__(self, sandbox: Sandbox, session: aiohttp.ClientSession) -> None:
        self.sandbox = sandbox
        self.session = session

    @property
    def url(self) -> str:
        return self.sandbox.page_url

    async def state(self, user: str, channel: str | None = None) -> dict[str, Any]:
        query = {"user": user, **({"channel": channel} if channel else {})}
        async with self.session.get(f"{self.url}/sandbox/state", params=query) as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())

    async def post(self, path: str, **body: Any) -> tuple[int, dict[str, Any]]:
        async with self.session.post(f"{self.url}/sandbox/{path}", json=body) as response:
            return response.status, dict(await response.json())

    async def do(self, path: str, **body: Any) -> dict[str, Any]:
        status, answer = await self.post(path, **body)
        assert status == 200 and answer["ok"], answer
        return answer


@pytest_asyncio.fixture
async def page(sandbox: Sandbox) -> AsyncIterator[Page]:
    async with aiohttp.ClientSession() as session:
        yield Page(sandbox, session)


def texts(node: Any) -> str:
    """Every string in a JSON tree, joined: what a person could read in it."""
    if isinstance(node, dict):
        return "\n".join(texts(v) for v in node.values())
    if isinstance(node, list):
        return "\n".join(texts(v) for v in node)
    return node if isinstance(node, str) else ""


@pytest.fixture
def read() -> Callable[[Any], str]:
    return texts
