"""What listeners and jobs need besides Slack: settings, sessions and the clock."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from types import TracebackType
from zoneinfo import ZoneInfo

from slack_bolt.context.async_context import AsyncBoltContext

from bot.core.clock import Clock
from bot.core.lifecycle import Stopping
from bot.settings import Settings
from storage.db import SessionFactory

FILL_SLOTS = 2
OPENING_FOR = 0.25  # seconds a request may still be on its way to views.open
MOST_YIELDED = 1.0  # seconds a fill gives way, at most, before it goes anyway
YIELD_STEP = 0.005


class FillTurns:
    """Filling modals that are already open takes turns, behind requests still opening one.

    A request that may open a modal (it carries a trigger id, which expires in 3 s) is
    noted as it arrives (`arriving`) and crossed off once its modal is open (`opened`, from
    `bot.ui.views.open_loading`) or after `OPENING_FOR`. A fill (loading what the modal
    shows, `views.update`) starts, and goes on past each of its `give_way` points, only
    while no such request is on its way, for `MOST_YIELDED` at most; and at most `slots`
    fills run at once. So under load a modal opens as fast as an empty one would, and it is
    the filling that waits.
    """

    def __init__(self, slots: int = FILL_SLOTS, monotonic: Callable[[], float] = time.monotonic):
        self._slots = asyncio.Semaphore(slots)
        self.monotonic = monotonic
        self._opening: dict[str, float] = {}
        self._changed = asyncio.Event()

    def arriving(self, trigger_id: str) -> None:
        self._opening[trigger_id] = self.monotonic()
        _request.set((self, trigger_id))

    def opened(self, trigger_id: str) -> None:
        if self._opening.pop(trigger_id, None) is not None:
            self._changed.set()

    def waiting(self) -> int:
        """Requests on their way to opening a modal."""
        now = self.monotonic()
        for trigger_id, since in list(self._opening.items()):
            if now - since > OPENING_FOR:
                del self._opening[trigger_id]
        return len(self._opening)

    async def give_way(self) -> None:
        """Wait while requests are on their way to opening their modals (a while at most)."""
        mine = _request.get()
        if mine is not None and mine[0] is self:
            self.opened(mine[1])  # a fill's own request has opened its modal
        until = self.monotonic() + MOST_YIELDED
        while self.waiting() and (left := until - self.monotonic()) > 0:
            # Woken when one of them opens its modal, or when the oldest has had its time.
            oldest = min(self._opening.values()) + OPENING_FOR - self.monotonic()
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(min(left, oldest), YIELD_STEP))

    async def __aenter__(self) -> FillTurns:
        await self.give_way()
        await self._slots.acquire()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._slots.release()


# The request this task serves, for `modal_opened` and `give_way` (Bolt runs a listener in a
# task started from the middleware, so it sees what the middleware set).
_request: ContextVar[tuple[FillTurns, str] | None] = ContextVar("northstar_opening", default=None)


def modal_opened() -> None:
    """The request this task serves has opened its modal (or will not): fills may go on."""
    mine = _request.get()
    if mine is not None:
        mine[0].opened(mine[1])


async def give_way() -> None:
    """A point in a fill where it waits for requests still opening their modals."""
    mine = _request.get()
    if mine is not None:
        await mine[0].give_way()


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    sessions: SessionFactory
    clock: Clock
    # Set on SIGTERM: jobs and queues stop claiming and release what they hold.
    stopping: Stopping = field(default_factory=Stopping)
    # Whether this replica leads (bot/leadership.py); None: it always does. A follower's
    # messages are sent by the leader.
    leads: Callable[[], bool] | None = None
    # Filling modals already open (loading what they show, `views.update`) takes turns, at
    # most `FILL_SLOTS` at once and behind requests still opening theirs (`FillTurns`): a
    # request whose trigger id expires in 3 s never waits behind fills in flight.
    fill_slots: FillTurns = field(default_factory=FillTurns)

    def today(self) -> date:
        """Today's date in the workspace's default time zone."""
        return self.clock.now().astimezone(ZoneInfo(self.settings.default_timezone)).date()


CONTEXT_KEY = "northstar"


def services_of(context: AsyncBoltContext) -> Services:
    """The Services that `bot.app` put into every request's context."""
    found = context.get(CONTEXT_KEY)
    if not isinstance(found, Services):
        raise RuntimeError("Services missing from the Bolt context; build the app with create_app")
    return found
