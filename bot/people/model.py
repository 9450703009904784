"""What Slack says of a person, as the bot names it: why they can't take a part, or be reached."""

from __future__ import annotations

# Why someone cannot take a part in a contract; each reads after a person's name or a mention.
ITSELF = "is North Star itself, not a person"
A_BOT = "is a bot, not a person"
DEACTIVATED_ACCOUNT = "is a deactivated account"
UNKNOWN = "is not a member of this workspace"
UNCHECKED = "could not be checked with Slack just now"

# Why no message can reach someone (`users.info` said so): a delivery's `last_error`.
DEACTIVATED, IS_BOT = "user_deactivated", "user_is_bot"
