"""Answers to check-ins: action and delivery names, limits, and what a nudge came to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from storage.models import CheckIn, CheckInReply, Risk
from storage.queries.contracts import ContractBundle

MORE = "checkin_more"  # the digest's button: the whole check-in in a modal
REPLY = "checkin_reply"  # the digest's (and the modal's) button: answer the check-in
NUDGE = "checkin_nudge"  # the digest's button on a missed week
REPLY_MODAL = "checkin_reply_modal"
REPLY_INPUT = "reply"

REPLY_KIND = "checkin_reply"  # the reply, threaded under the leader's prompt
NUDGE_KIND = "checkin_nudge"  # the one reminder about a missed week

REPLY_LIMIT = 1000
HISTORY_REPLY_TEXT = 400


@dataclass(frozen=True, slots=True)
class Shown:
    """A check-in someone may read, with its contract and the replies it got."""

    checkin: CheckIn
    bundle: ContractBundle
    replies: list[CheckInReply]
    may_reply: bool
    risk_texts: dict[int, str] = field(default_factory=dict)  # by reply: the risk it answers


@dataclass(frozen=True, slots=True)
class RiskShown:
    """An open risk someone may answer, with the check-in it was raised in."""

    risk: Risk
    shown: Shown


@dataclass(frozen=True, slots=True)
class Nudged:
    """A week's nudge: `new` when this click sent it, else who sent it before, and when."""

    new: bool
    by: str
    at: datetime
    leader: str
    period: str
