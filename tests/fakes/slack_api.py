"""The fake Slack Web API: one implementation in bot/sandbox/fake_slack.py, which the sandbox
serves too. Re-exported here so the tests keep importing it from tests.fakes."""

from bot.sandbox.fake_slack import (
    JSON,
    MESSAGE_BLOCK_LIMIT,
    MESSAGE_TEXT_LIMIT,
    PERMALINK_HOST,
    SECTION_FIELD_LIMIT,
    VIEW_BLOCK_LIMIT,
    VIEW_STACK_LIMIT,
    Call,
    FakeSlack,
    FakeSlackError,
    _Reply,
    validate_message_blocks,
    validate_view,
)

__all__ = [
    "JSON",
    "MESSAGE_BLOCK_LIMIT",
    "MESSAGE_TEXT_LIMIT",
    "PERMALINK_HOST",
    "SECTION_FIELD_LIMIT",
    "VIEW_BLOCK_LIMIT",
    "VIEW_STACK_LIMIT",
    "Call",
    "FakeSlack",
    "FakeSlackError",
    "_Reply",
    "validate_message_blocks",
    "validate_view",
]
