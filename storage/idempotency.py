"""Every write a Slack request causes happens once: the request's key claimed in the same
transaction as its first write, under the primary key of `slack_request`.

The bot opens a `request_scope(key)` around each Slack request. Inside it, the first
INSERT, UPDATE or DELETE on a connection first inserts the key on that same connection, in
the same transaction: the write and the claim commit together or not at all. A replay, a
retry or a double click carries the same key; its claim hits the primary key (on
PostgreSQL it waits for the first request's transaction, on SQLite for its write lock) and
`AlreadyDone` is raised before anything of it is written. Jobs and the CLI run outside any
scope and claim nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Delete, Insert, Update, event, insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from storage.models import SlackRequest
from storage.types import utcnow


class KnownKeys:
    """Every key `slack_request` holds, in memory, where this process is the database's one
    writer (SQLite): read once, by the first look-up (`storage.queries.requests`), and added
    to as claims commit. Then a key not in it was never claimed, and a new request needs no
    look-up before it runs (a round trip to the database's thread on every request). Where
    replicas share the database (PostgreSQL) there is none: another process may hold a key.
    """

    def __init__(self) -> None:
        self.complete = False
        self._keys: dict[str, datetime] = {}

    def may_hold(self, key: str) -> bool:
        return not self.complete or key in self._keys

    def add(self, key: str, day: datetime) -> None:
        self._keys[key] = day

    def load(self, rows: Iterable[tuple[str, datetime]]) -> None:
        """What the database held, with the claims committed while it was being read."""
        self._keys = dict(rows) | self._keys
        self.complete = True

    def discard(self, key: str) -> None:
        self._keys.pop(key, None)

    def forget_before(self, cutoff: datetime) -> None:
        self._keys = {k: day for k, day in self._keys.items() if day >= cutoff}


_KNOWN: dict[str, KnownKeys] = {}


def known_keys(url: str) -> KnownKeys | None:
    """The keys known in memory for the SQLite database at `url`; None on PostgreSQL."""
    return _KNOWN.get(url)


class AlreadyDone(Exception):
    """The request's key was claimed before: this is a repeat, and it must write nothing."""

    def __init__(self, key: str) -> None:
        super().__init__(f"request {key} was handled already")
        self.key = key


@dataclass
class RequestClaim:
    """The claim state of one Slack request, shared by every connection it uses."""

    key: str
    claimed_on: Connection | None = None  # the transaction holding the claim, until commit
    committed: bool = False


SLACK_REQUEST = SQLModel.metadata.tables["slack_request"]

_current: ContextVar[RequestClaim | None] = ContextVar("northstar_request_claim", default=None)


def claim_day() -> datetime:
    """When a claim was made, to the day only: enough to forget old claims, and no clock
    beside an anonymous entry (feedback is dated to the day too)."""
    return utcnow().replace(hour=0, minute=0, second=0, microsecond=0)


def begin_request(key: str | None) -> RequestClaim | None:
    """From here on in this task, and in the tasks it starts, claim `key` with the first write.

    Bolt runs its middleware one after another and starts the listener afterwards in the
    same task, so the claim is set, not scoped; every request sets its own (or None).
    """
    claim = RequestClaim(key=key) if key else None
    _current.set(claim)
    return claim


@contextmanager
def request_scope(key: str | None) -> Iterator[RequestClaim | None]:
    """Claim `key` with the first write made inside the block (tasks started in it too)."""
    token = _current.set(RequestClaim(key=key) if key else None)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def current_claim() -> RequestClaim | None:
    return _current.get()


def install(engine: AsyncEngine) -> None:
    """Make `engine` claim the current request's key before the first write of a request."""
    sync_engine = engine.sync_engine
    url = str(sync_engine.url)
    if sync_engine.dialect.name == "sqlite":
        _KNOWN.setdefault(url, KnownKeys())  # every engine of this process on the file shares it

    @event.listens_for(sync_engine, "before_execute")
    def _claim_first(
        connection: Connection, clause: Any, _multiparams: Any, _params: Any, _options: Any
    ) -> None:
        claim = _current.get()
        if claim is None or claim.committed or claim.claimed_on is connection:
            return
        if not isinstance(clause, Insert | Update | Delete):
            return
        if getattr(clause, "table", None) is SLACK_REQUEST:
            return
        claim.claimed_on = connection
        try:
            connection.execute(
                insert(SlackRequest).values(key=claim.key, created_at=claim_day(), answer=None)
            )
        except IntegrityError:
            claim.claimed_on = None
            raise AlreadyDone(claim.key) from None

    @event.listens_for(sync_engine, "commit")
    def _committed(connection: Connection) -> None:
        claim = _current.get()
        if claim is not None and claim.claimed_on is connection:
            claim.committed = True
            claim.claimed_on = None
            if (known := _KNOWN.get(url)) is not None:
                known.add(claim.key, claim_day())

    @event.listens_for(sync_engine, "rollback")
    def _rolled_back(connection: Connection) -> None:
        claim = _current.get()
        if claim is not None and claim.claimed_on is connection:
            claim.claimed_on = None
