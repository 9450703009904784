"""Slack's surfaces: one thin module per feature that parses, calls the service and answers."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers import (
    amendments,
    answers,
    checkins,
    contract,
    contracts,
    evidence,
    feedback,
    lessons,
    milestones,
    renewal,
    report,
    reviews,
    risks,
    summary,
)


def register_all(app: AsyncApp) -> None:
    """Every listener of the app, and every `/contract` subcommand, named here explicitly."""
    contract.register(
        app,
        [
            *summary.SUBCOMMANDS,
            *contracts.SUBCOMMANDS,
            *amendments.SUBCOMMANDS,
            *evidence.SUBCOMMANDS,
            *feedback.SUBCOMMANDS,
            *renewal.SUBCOMMANDS,
            *report.SUBCOMMANDS,
        ],
    )
    for module in (
        contracts,
        summary,
        checkins,
        feedback,
        evidence,
        amendments,
        milestones,
        renewal,
        reviews,
        answers,
        lessons,
        risks,
    ):
        module.register(app)
