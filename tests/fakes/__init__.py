"""Fakes for the Slack boundary: the Web API and signed requests into the app."""

from tests.fakes.driver import DriverResponse, SlackDriver
from tests.fakes.slack_api import Call, FakeSlack, validate_message_blocks, validate_view

__all__ = [
    "Call",
    "DriverResponse",
    "FakeSlack",
    "SlackDriver",
    "validate_message_blocks",
    "validate_view",
]
