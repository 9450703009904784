"""Reading people out of slash command text, where Slack escapes mentions as <@U…|name>."""

from __future__ import annotations

import re

MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


def user_id_of(token: str) -> str | None:
    """The user id in an escaped mention, or None when the token is not one."""
    match = MENTION.match(token.strip())
    return match.group(1) if match else None


def split_command(text: str) -> tuple[str, list[str]]:
    """("summary", ["<@U1|dana>"]) from "summary <@U1|dana>"; the verb is lower-cased."""
    parts = text.split()
    if not parts:
        return "", []
    return parts[0].lower(), parts[1:]
