"""What listeners and jobs need besides Slack: settings, sessions and the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from slack_bolt.context.async_context import AsyncBoltContext

from bot.core.clock import Clock
from bot.core.lifecycle import Stopping
from bot.settings import Settings
from storage.db import SessionFactory

FILL_SLOTS = 2


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
    # most `FILL_SLOTS` at once: a request that has yet to open its modal, whose trigger id
    # expires in 3 s, then waits behind a few fills at most, not behind every one in flight.
    fill_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(FILL_SLOTS))

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
