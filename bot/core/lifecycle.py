"""The process's stop signal: jobs and the delivery queue stop claiming work once it is set."""

from __future__ import annotations

import asyncio


class Stopping:
    """Set once when the process is asked to stop (SIGTERM, SIGINT); never cleared."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()
