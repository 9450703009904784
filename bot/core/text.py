"""Text as people typed it, made safe to show: escaped for Slack's mrkdwn, cut to a limit."""

from __future__ import annotations

ELLIPSIS = "…"


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters.

    Everything a person typed reaches mrkdwn only through this function."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
