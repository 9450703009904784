"""The pace of the queue: one process's `Pacer` towards a workspace (the global rate, a
second or so per channel, one call at a time in a channel, Slack's `Retry-After` and the
pause while Slack fails), how hard to retry (`RetryPolicy`), and how many posts are in flight
(`Window`)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.settings import Settings

PER_CHANNEL_SECONDS = 1.0
WINDOW_SECONDS = 10.0  # the global rate holds over any window this long
CATCH_UP_SECONDS = 2.0  # how far behind its schedule the pace may catch up
CLOCK_TOLERANCE = 1e-6  # below a microsecond a wait is no wait (and clocks tick in µs)

Sleep = Callable[[float], Awaitable[None]]
Monotonic = Callable[[], float]
Renew = Callable[[], Awaitable[None]]


class Pacer:
    """One process's pace towards one workspace: `per_minute` overall, `per_channel` seconds
    apart in one channel (and one call at a time there), every sender paused by a 429's
    `Retry-After` and by Slack failing (`failed`, longer each time in a row).

    Slots are handed out in order under a lock, one every `60 / per_minute` seconds on a
    schedule. A slot taken late (the event loop was busy with something else, the sender
    was claiming its next batch) leaves the schedule where it was, up to `CATCH_UP_SECONDS`
    behind, so the slots after it come sooner until the pace is back on schedule. What
    bounds the pace is `sending`, just before each call: calls go at least half an interval
    apart and never more than a minute's `per_minute` share within any `WINDOW_SECONDS`, so
    time a busy process loses is made up without ever exceeding the rate, and calls that
    bunched up between their slot and their send (a slow database write) are spread out
    again. `sleep` and `monotonic` are injectable, so tests never wait; the pacer also keeps
    the measured time of a call, for batch sizes.
    """

    def __init__(
        self,
        *,
        per_minute: float,
        per_channel: float = PER_CHANNEL_SECONDS,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self.window_most = max(1, math.floor(per_minute * WINDOW_SECONDS / 60.0))
        self._sent: deque[float] = deque()  # when the calls of the last WINDOW_SECONDS went
        self._last_slot: float | None = None
        self._send_lock = asyncio.Lock()
        self.per_channel = per_channel
        self.monotonic = monotonic
        self.sleep = sleep
        self._next = float("-inf")
        self._held_until = float("-inf")
        self._channels: dict[str, float] = {}
        self._busy: dict[str, tuple[asyncio.Lock, int]] = {}
        self._lock = asyncio.Lock()
        self.waited = 0.0
        self.token_refused: str | None = None  # the token error last seen, until a call works
        self.failures = 0  # transient failures in a row
        self.failing_since: float | None = None
        self._failure_pause_until = float("-inf")
        self.call_time = 0.0  # a moving average of how long a post takes, in seconds

    async def slot(
        self, channel: str, *, while_waiting: Renew | None = None, chunk: float = math.inf
    ) -> None:
        """Wait until a message to `channel` may go, and take that slot.

        A long wait is slept in pieces of at most `chunk` seconds, `while_waiting` after each.
        """
        async with self._lock:
            while True:
                now = self.monotonic()
                due = max(
                    self._next,
                    self._held_until,
                    self._channels.get(channel, float("-inf")) + self.per_channel,
                )
                if due <= now + CLOCK_TOLERANCE:
                    break
                wait = min(due - now, chunk)
                self.waited += wait
                await self.sleep(wait)
                if while_waiting is not None:
                    await while_waiting()
            self._take(due, now)
            self._channels[channel] = now
            if len(self._channels) > 10_000:
                self._forget(now)

    def _take(self, due: float, now: float) -> None:
        """Take the slot `due` at `now`: the schedule goes on from `due`, not from `now`,
        unless that is further behind than CATCH_UP_SECONDS, or nothing was sent lately."""
        recent = self._last_slot is not None and now - self._last_slot < WINDOW_SECONDS
        self._next = max(due if recent else now, now - CATCH_UP_SECONDS) + self.interval
        self._last_slot = now

    async def sending(self) -> None:
        """Wait, just before a call goes, out a pause that began since its slot was given,
        and until the window has room for it; then count it as sent."""
        async with self._send_lock:
            while True:
                now = self.monotonic()
                at = max(self._held_until, self._window_frees(now))
                if at <= now + CLOCK_TOLERANCE:
                    break
                self.waited += at - now
                await self.sleep(at - now)
            self._sent.append(now)

    def _window_frees(self, now: float) -> float:
        """When one more call keeps half an interval after the last one and the window's
        share of the rate."""
        while self._sent and self._sent[0] <= now - WINDOW_SECONDS:
            self._sent.popleft()
        soonest = self._sent[-1] + self.interval / 2 if self._sent else float("-inf")
        if len(self._sent) >= self.window_most:
            soonest = max(soonest, self._sent[-self.window_most] + WINDOW_SECONDS)
        return soonest

    @asynccontextmanager
    async def channel(self, channel: str) -> AsyncIterator[None]:
        """Hold `channel` for one call: no two calls are in flight in one channel."""
        lock, users = self._busy.get(channel, (asyncio.Lock(), 0))
        self._busy[channel] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._busy[channel]
            if users <= 1:
                del self._busy[channel]
            else:
                self._busy[channel] = (lock, users - 1)

    @property
    def per_minute(self) -> float:
        return 60.0 / self.interval

    def hold(self, seconds: float) -> None:
        """Make no call for `seconds` from now (Slack's Retry-After)."""
        self._held_until = max(self._held_until, self.monotonic() + seconds)

    def held_for(self) -> float:
        return max(0.0, self._held_until - self.monotonic())

    def failed(self, backoff: Callable[[int], float]) -> float:
        """A call failed as when Slack is down: every sender pauses for `backoff(n)`, n the
        failures in a row (calls already in flight when the pause began count once)."""
        now = self.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        if now + CLOCK_TOLERANCE >= self._failure_pause_until:
            self.failures += 1
            pause = backoff(self.failures)
            self._failure_pause_until = now + pause
            self.hold(pause)
        return self.held_for()

    def succeeded(self) -> None:
        self.failures = 0
        self.failing_since = None
        self.token_refused = None

    def failing_for(self) -> float:
        """For how long every call has failed (0 while the last one worked)."""
        return 0.0 if self.failing_since is None else self.monotonic() - self.failing_since

    def observe(self, seconds: float) -> None:
        self.call_time = seconds if self.call_time == 0 else 0.8 * self.call_time + 0.2 * seconds

    def _forget(self, now: float) -> None:
        self._channels = {c: t for c, t in self._channels.items() if now - t < self.per_channel}


_PACERS: dict[tuple[str, str | None], Pacer] = {}


def pacer_for(settings: Settings) -> Pacer:
    """The process-wide pacer of this workspace, so every job and listener shares one pace."""
    key = (settings.slack_api_url, settings.slack_bot_token)
    pacer = _PACERS.get(key)
    if pacer is None:
        pacer = _PACERS[key] = Pacer(per_minute=settings.delivery_rate_per_minute)
    return pacer


def install_pacer(settings: Settings, pacer: Pacer) -> None:
    """Use `pacer` for this workspace from now on (tests and benchmarks bring their own clock)."""
    _PACERS[(settings.slack_api_url, settings.slack_bot_token)] = pacer


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: the pause after failures in a row, attempts per message in one run,
    when failing calls mean Slack is down, and when a message put back is tried again."""

    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_rate_limited: int = 20
    default_retry_after: float = 1.0
    outage_after: float = 120.0  # seconds of nothing but failures: Slack is down
    retry_base: float = 30.0
    retry_max: float = 300.0

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))

    def retry_in(self, claims: int) -> float:
        """How long a message put back waits, after its `claims`-th claim."""
        return min(self.retry_max, self.retry_base * 2 ** max(0, claims - 1))


class Window:
    """At most `size` posts at once: 1 to begin with, doubling with each success up to
    `most`, halved by each failure, so a dead Slack or token costs one call, not many, and a
    slow call here and there costs little."""

    def __init__(self, most: int) -> None:
        self.most = max(1, most)
        self.size = 1
        self.busy = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def one(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: self.busy < self.size)
            self.busy += 1
        try:
            yield
        finally:
            async with self._changed:
                self.busy -= 1
                self._changed.notify_all()

    def widen(self) -> None:
        self.size = min(self.most, self.size * 2)

    def narrow(self) -> None:
        self.size = max(1, self.size // 2)
