"""Which replica leads: the one that runs the scheduled jobs and sends the delivery queue.

On PostgreSQL the leader holds a session-scoped advisory lock on a connection of its own;
the server lets the lock go when that connection drops (the process died, was killed or
lost the network), so another replica takes it at its next try, every
`LEADER_POLL_SECONDS`. The leader checks its connection as often and steps down the moment
it is lost. A new leader first gives back the claims of the leader before it, so a fan-out
cut off mid-batch goes on at once rather than after the claims' lease. Followers serve
Slack's requests only. On SQLite (one process) the process always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.clock import Clock
from bot.delivery import PROCESS_OWNER
from storage.db import SessionFactory, is_sqlite
from storage.queries import replicas

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_FLOOR = 10.0  # seconds


class Role(StrEnum):
    leader = "leader"
    follower = "follower"


Listener = Callable[[Role], None]


class Leadership:
    """This process's role among the replicas, kept up to date by `start()`'s loop."""

    def __init__(
        self,
        *,
        url: str,
        sessions: SessionFactory,
        clock: Clock,
        poll_seconds: float,
        owner: str = PROCESS_OWNER,
    ) -> None:
        self.url = url
        self.sessions = sessions
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.owner = owner
        self.shared = not is_sqlite(url)
        self.role = Role.follower if self.shared else Role.leader
        self._connection: Any = None
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Listener] = []
        self._woken: list[Callable[[], None]] = []
        self.elected = asyncio.Event()
        if not self.shared:
            self.elected.set()

    @property
    def is_leader(self) -> bool:
        return self.role == Role.leader

    def leads(self) -> bool:
        """Whether this process leads now (`is_leader`, as a callable for the scheduler)."""
        return self.is_leader

    def on_change(self, listener: Listener) -> None:
        """Call `listener(role)` whenever this process becomes leader or steps down."""
        self._listeners.append(listener)

    def on_wake(self, listener: Callable[[], None]) -> None:
        """Call `listener()` when a follower handed deliveries over, while this one leads."""
        self._woken.append(listener)

    async def start(self) -> None:
        """Try once now (a lone replica leads at once), then every `poll_seconds`."""
        if not self.shared:
            return
        await self.check()
        self._task = asyncio.create_task(self._loop(), name="leadership")

    async def stop(self) -> None:
        """Stop trying, and let the lock go (closing its connection)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.shared:
            self._step_down("stopping")
            await self._close()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            await self.check()

    async def check(self) -> None:
        """One turn: a follower tries to take the lock; the leader checks it still holds it."""
        try:
            await asyncio.wait_for(self._check(), timeout=self.check_timeout)
        except Exception as error:  # a lost connection or a database that does not answer
            if self.is_leader:
                self._step_down(f"its database connection failed ({type(error).__name__})")
            else:
                logger.debug("Could not try to lead: %s", error)
            await self._close()

    @property
    def check_timeout(self) -> float:
        """How long a turn may take before the connection counts as lost. Generous: while
        the server still has this connection it keeps the lock, so nobody else can lead;
        a turn that is merely slow (a busy event loop, a loaded machine) must not give the
        lock away, which would hand a fan-out from one replica to another mid-batch."""
        return max(3 * self.poll_seconds, CHECK_TIMEOUT_FLOOR)

    async def _check(self) -> None:
        if self._connection is None or self._connection.is_closed():
            if self.is_leader:
                self._step_down("its lock's connection was lost")
            self._connection = await replicas.lock_connection(
                self.url, application_name=f"northstar {self.owner}"
            )
            self._connection.add_termination_listener(self._terminated)
            await self._connection.add_listener(replicas.WAKE_CHANNEL, self._wake)
        if self.is_leader:
            if not await replicas.still_holds(self._connection):
                self._step_down("its lock was lost")
                await self._close()
            return
        if await replicas.try_lock(self._connection):
            await self._take_over()

    async def _take_over(self) -> None:
        previous = await replicas.become_leader(
            sessions=self.sessions, owner=self.owner, now=self.clock.now()
        )
        given_back = 0
        if previous is not None:
            given_back = await replicas.release_claims_of(sessions=self.sessions, owner=previous)
        logger.info(
            "This replica leads now: it runs the jobs and sends%s",
            f" (took over {given_back} claims of the leader before)" if given_back else "",
        )
        self._set(Role.leader)

    def _wake(self, *_notification: Any) -> None:
        if self.is_leader:
            for listener in list(self._woken):
                try:
                    listener()
                except Exception:
                    logger.exception("Waking the deliveries failed")

    def _terminated(self, _connection: Any) -> None:
        """The lock's connection was closed under us (the server went, or ended it)."""
        self._step_down("its lock's connection was closed")

    def _step_down(self, why: str) -> None:
        if self.is_leader:
            logger.warning("This replica no longer leads: %s", why)
            self._set(Role.follower)

    def _set(self, role: Role) -> None:
        self.role = role
        if role == Role.leader:
            self.elected.set()
        else:
            self.elected.clear()
        for listener in list(self._listeners):
            try:
                listener(role)
            except Exception:
                logger.exception("A listener of the replica's role failed")

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=2.0)
            if not connection.is_closed():
                connection.terminate()


async def leader_status(*, session: AsyncSession, now: datetime) -> str:
    """Which replica leads and whether every sender is paused, in a line or two (for
    `northstar jobs status`)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    found = await replicas.state(session=session)
    lines = []
    if dialect == "sqlite":
        lines.append("Role: one process on SQLite, always the leader (runs the jobs and sends)")
    else:
        pid = await replicas.lock_holder_pid(session=session)
        if pid is None:
            lines.append("Role: no replica leads now (the next to try takes over)")
        else:
            who = found.leader if found is not None and found.leader else "unknown"
            since = found.leader_since if found is not None else None
            lines.append(
                f"Role: leader {who}"
                + (f" since {since:%Y-%m-%d %H:%M:%S} UTC" if since is not None else "")
                + f" (lock held by server process {pid}); every other replica is a follower"
            )
    if found is not None and found.paused_until is not None and found.paused_until > now:
        left = (found.paused_until - now).total_seconds()
        lines.append(f"Sending paused for {left:.0f} s more (Slack's Retry-After)")
    return "\n".join(lines)
