"""The delivery queue's vocabulary: what names a delivery, what is sent, what came of it.

Pure types and constants; nothing here talks to Slack or the database.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from slack_sdk.models.blocks import Block
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Delivery, DeliveryStatus

PROCESS_OWNER = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
CLAIM_LEASE = timedelta(seconds=60)
DEFAULT_USEFUL = timedelta(days=1)
# A one-off notice (a request for help, an approval to give, feedback received): still worth a
# DM for a week; by then the weekly digest and App Home carry what it was about.
NOTICE_USEFUL = timedelta(days=7)
FAILED_RETRY_AFTER = timedelta(minutes=5)
EVENT_TYPE = "northstar_delivery"


@dataclass(frozen=True, slots=True)
class DeliveryKey:
    """What makes a delivery unique: one `kind` to one recipient per contract and period."""

    kind: str
    contract_id: int
    recipient_id: str
    period_key: str

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient_id} for {self.period_key}"


def key_of(row: Any) -> DeliveryKey:
    return DeliveryKey(row.kind, row.contract_id, row.recipient_id, row.period_key)


@dataclass(frozen=True, slots=True)
class Message:
    """What to post: the notification `text` and, usually, Block Kit `blocks`; `thread_ts`
    posts it as a reply in that message's thread (the delivery's channel must be its)."""

    text: str
    blocks: Sequence[Block] | None = None
    thread_ts: str | None = None

    def arguments(self) -> dict[str, Any]:
        args: dict[str, Any] = {"text": self.text}
        if self.blocks is not None:
            args["blocks"] = [b.to_dict() for b in self.blocks]
        if self.thread_ts:
            args["thread_ts"] = self.thread_ts
        return args

    def stored(self) -> dict[str, Any]:
        """As JSON, for a delivery's payload; `restored` reads it back."""
        data: dict[str, Any] = {
            "text": self.text,
            "blocks": [b.to_dict() for b in self.blocks or []],
        }
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        return data

    @staticmethod
    def restored(data: dict[str, Any]) -> Message:
        blocks = [Block.parse(b) for b in data.get("blocks") or []]
        thread = data.get("thread_ts")
        return Message(
            text=str(data.get("text") or ""),
            blocks=[b for b in blocks if b is not None],
            thread_ts=str(thread) if thread else None,
        )


Build = Callable[[Delivery], Awaitable[Message | None]]
AfterSent = Callable[[AsyncSession, Delivery], Awaitable[None]]
OnUndeliverable = Callable[[Delivery, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Fixed:
    """A `Build` whose message was decided when it was asked for: kept in the delivery's
    payload, so the `deliveries` job can send it again after a failure or a crash."""

    message: Message

    async def __call__(self, _: Delivery) -> Message:
        return self.message


def fixed(message: Message) -> Build:
    """A delivery's message decided before it was claimed."""
    return Fixed(message)


@dataclass(frozen=True, slots=True)
class Clicked:
    """The posted message a click came from: its channel and ts as Slack's signed payload
    names them (`container`)."""

    channel: str
    ts: str


def where_posted(row: Delivery, clicked: Clicked | None = None) -> tuple[str, str] | None:
    """The channel and ts of a delivery's message, to update it in place: as recorded; or,
    while its sending is claimed and not yet recorded, the message `clicked` (a click on a
    message can come in the moments between its post and that record). None when neither.

    The caller vouches that `clicked` came from this delivery's recipient, about what this
    delivery carries, and is none of the messages already recorded."""
    if row.slack_channel and row.slack_ts:
        return row.slack_channel, row.slack_ts
    if clicked is not None and row.status == DeliveryStatus.claimed:
        return clicked.channel, clicked.ts
    return None


def unrecorded(clicked: Clicked | None, rows: Iterable[Delivery]) -> Clicked | None:
    """`clicked`, unless it is a message one of `rows` already records (then nothing needs
    to stand in for it)."""
    if clicked is None or any(
        (row.slack_channel, row.slack_ts) == (clicked.channel, clicked.ts) for row in rows
    ):
        return None
    return clicked


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One delivery to make.

    `build` runs after the claim, so it sees the state at sending time; returning None
    cancels the delivery. `channel` defaults to the recipient's DM with the bot.
    `after_sent` runs in the transaction that marks it sent (e.g. to schedule a reminder);
    `on_undeliverable` runs once the recipient turned out unreachable. `expires_at`: until
    when the message is worth sending (default: `DEFAULT_USEFUL` after its first claim).
    """

    key: DeliveryKey
    build: Build
    channel: str | None = None
    after_sent: AfterSent | None = None
    on_undeliverable: OnUndeliverable | None = None
    expires_at: datetime | None = None


class Outcome(StrEnum):
    sent = "sent"
    taken = "taken"  # already sent, being sent by someone else, or not due again yet
    cancelled = "cancelled"
    undeliverable = "undeliverable"
    failed = "failed"  # put back to be tried again (`retry_at`)
    expired = "expired"  # given up: no longer useful
    held = "held"  # left pending, nothing sent: a refused token, a stop, Slack or the database down


class Unreachable(Exception):
    """Raised by a `build`: the recipient cannot be reached (`code` says why), no call made."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Result:
    key: DeliveryKey
    outcome: Outcome
    channel: str | None = None
    ts: str | None = None
    error: str | None = None


@dataclass
class Report:
    """What a batch of deliveries came to, and how Slack treated us on the way."""

    outcomes: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    retried: int = 0
    calls: int = 0  # posts made
    read_back: int = 0  # DMs read back before posting again
    found: int = 0  # of those, messages already there: marked sent, not posted again

    def add(self, result: Result) -> None:
        self.outcomes[result.outcome] = self.outcomes.get(result.outcome, 0) + 1

    def count(self, outcome: Outcome) -> int:
        return self.outcomes.get(outcome, 0)

    def __str__(self) -> str:
        parts = [f"{self.count(o)} {o}" for o in Outcome if self.count(o)]
        parts += [f"{self.rate_limited} rate-limited", f"{self.retried} retried"]
        if self.found:
            parts.append(f"{self.found} found already sent")
        return ", ".join(parts if self.outcomes else ["nothing due", *parts[-2:]])


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """The delivery table at a glance: counts per kind and status, the oldest pending
    deliveries, and the ones given up."""

    counts: dict[tuple[str, str], int]
    oldest: list[Delivery]
    given_up: list[Delivery]
    given_up_total: int


def waiting_since(row: Delivery) -> datetime:
    """Since when a pending delivery has waited to go out."""
    return row.attempted_at or row.due_at or row.claimed_at
