"""Slack's surfaces: one thin module per feature that parses, calls the service and answers."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers import (
    amendments,
    checkins,
    contract,
    contracts,
    evidence,
    feedback,
    home,
    milestones,
    views,
)


def register_all(app: AsyncApp) -> None:
    """Every listener of the app, and every `/contract` subcommand, named here explicitly."""
    contract.register(
        app,
        [
            *contract.SUBCOMMANDS,
            *amendments.SUBCOMMANDS,
            *evidence.SUBCOMMANDS,
            *feedback.SUBCOMMANDS,
        ],
    )
    for module in (contracts, views, home, checkins, feedback, evidence, amendments, milestones):
        module.register(app)
