"""What the leader wrote in their check-ins, as summaries and digests show it: the latest
wins and reflection (shortened where space is short) and the confidence trend.

A leader's words are read only by those who read the contract (leader, sponsor, owner,
approvers, escalation contacts: `bot.core.permissions.may_read`); every surface that shows
these lines is one of theirs.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block

from bot.core.calendar import period_label
from bot.core.text import escape, truncate
from bot.ui.blocks import sections
from storage.models import CheckIn
from storage.queries.contracts import ContractBundle

TREND_WEEKS = 6
SUMMARY_TEXT = 1200  # each of wins and reflection in the summary
SHORT_TEXT = 280  # each of them in a digest, with a button to read the whole check-in


def answered(checkins: Sequence[CheckIn]) -> list[CheckIn]:
    """The answered check-ins, oldest week first."""
    return sorted((c for c in checkins if c.status == "answered"), key=lambda c: c.period_key)


def confidence_trend(checkins: Sequence[CheckIn], weeks: int = TREND_WEEKS) -> str | None:
    """`Confidence 3 → 4 → 4 (rising)`: the ratings of the last `weeks` answered weeks, and
    which way they went from the first shown to the last; None without any rating."""
    ratings = [c.confidence for c in answered(checkins) if c.confidence is not None][-weeks:]
    if not ratings:
        return None
    if len(ratings) == 1:
        return f"Confidence {ratings[0]}/5 (the first rating)"
    first, last = ratings[0], ratings[-1]
    way = "rising" if last > first else "falling" if last < first else "steady"
    return f"Confidence {' → '.join(str(r) for r in ratings)} of 5 ({way})"


def quoted(text: str, limit: int) -> str:
    """The leader's text escaped, cut to `limit` with "…", on one line."""
    return escape(truncate(" ".join(text.split()), limit))


def checkin_lines(checkin: CheckIn, *, limit: int) -> list[str]:
    """`🏆 *Wins* …`, `💭 *Reflection* …`: what the check-in says, shortened to `limit`."""
    lines = []
    if checkin.wins.strip():
        lines.append(f"🏆 *Wins* {quoted(checkin.wins, limit)}")
    if checkin.reflection.strip():
        lines.append(f"💭 *Reflection* {quoted(checkin.reflection, limit)}")
    return lines


def latest_with_words(checkins: Sequence[CheckIn]) -> CheckIn | None:
    """The newest answered check-in that holds wins or a reflection."""
    found = [c for c in answered(checkins) if c.wins.strip() or c.reflection.strip()]
    return found[-1] if found else None


def latest_checkin_blocks(bundle: ContractBundle) -> list[Block]:
    """The summary's *Latest check-in* section: its week, wins, reflection, confidence trend."""
    trend = confidence_trend(bundle.checkins)
    latest = latest_with_words(bundle.checkins)
    if latest is None and trend is None:
        return []
    lines = []
    if latest is not None:
        lines.append(f"_{period_label(latest.period_key)}_")
        lines += checkin_lines(latest, limit=SUMMARY_TEXT)
    if trend is not None:
        lines.append(f"📊 {trend}")
    return sections("Latest check-in", lines)
