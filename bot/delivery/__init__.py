"""The messages the bot sends on its own: claimed once, paced, kept, retried while useful.

`queue` sends (its doc tells the whole story); `model` names what is sent and what came of
it; `claims` the queue's rows (their SQL in `storage/queries/delivery.py`); `pacing` the
pace, retries and posts in flight; `calls` what Slack's answers mean; `readback` the look
for an earlier post before posting again; `jobs` the `deliveries` job. What the rest of the
bot uses is named here.
"""

from bot.delivery.calls import TOKEN_ERRORS, UNDELIVERABLE_ERRORS, CallOutcome, bare_client
from bot.delivery.claims import (
    claim,
    claim_due,
    claim_many,
    due_scheduled,
    expire_overdue,
    queue_status,
)
from bot.delivery.model import (
    CLAIM_LEASE,
    DEFAULT_USEFUL,
    EVENT_TYPE,
    FAILED_RETRY_AFTER,
    NOTICE_USEFUL,
    PROCESS_OWNER,
    AfterSent,
    Build,
    Clicked,
    DeliveryKey,
    Fixed,
    Message,
    OnUndeliverable,
    Outcome,
    Outgoing,
    QueueStatus,
    Report,
    Result,
    Unreachable,
    fixed,
    unrecorded,
    waiting_since,
    where_posted,
)
from bot.delivery.pacing import Pacer, RetryPolicy, install_pacer, pacer_for
from bot.delivery.queue import CONCURRENCY, DeliveryQueue, queue_for, queue_of
from storage.queries.delivery import cancel, cancel_naming, find, schedule

__all__ = [
    "CLAIM_LEASE",
    "CONCURRENCY",
    "DEFAULT_USEFUL",
    "EVENT_TYPE",
    "FAILED_RETRY_AFTER",
    "NOTICE_USEFUL",
    "PROCESS_OWNER",
    "TOKEN_ERRORS",
    "UNDELIVERABLE_ERRORS",
    "AfterSent",
    "Build",
    "CallOutcome",
    "Clicked",
    "DeliveryKey",
    "DeliveryQueue",
    "Fixed",
    "Message",
    "OnUndeliverable",
    "Outcome",
    "Outgoing",
    "Pacer",
    "QueueStatus",
    "Report",
    "Result",
    "RetryPolicy",
    "Unreachable",
    "bare_client",
    "cancel",
    "cancel_naming",
    "claim",
    "claim_due",
    "claim_many",
    "due_scheduled",
    "expire_overdue",
    "find",
    "fixed",
    "install_pacer",
    "pacer_for",
    "queue_for",
    "queue_of",
    "queue_status",
    "schedule",
    "unrecorded",
    "waiting_since",
    "where_posted",
]
