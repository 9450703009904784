"""Signed requests into the app: one implementation in bot/sandbox/driver.py, which the
sandbox's page uses too. Re-exported here so the tests keep importing it from tests.fakes."""

from bot.sandbox.driver import (
    JSON,
    USER_AGENT,
    VERIFICATION_TOKEN,
    DriverResponse,
    NotPossibleInSlack,
    SlackDriver,
)

__all__ = [
    "JSON",
    "USER_AGENT",
    "VERIFICATION_TOKEN",
    "DriverResponse",
    "NotPossibleInSlack",
    "SlackDriver",
]
