"""The governance's `report` in the import format: cadence, channel, readers; the old free
text `reporting` still accepted; the terms of a contract without it unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.contracts.document import snapshot
from bot.contracts.io import import_text
from storage.db import SessionFactory
from storage.models import Role
from storage.queries.contracts import load_bundle
from tests.bot.amendments.test_service import example_text

START = datetime(2027, 1, 4, 9, tzinfo=UTC)
OLD = "  reporting: Quarterly summary to the executive team\n"


async def _import(sessions: SessionFactory, text: str) -> tuple[Any, list[Any]]:
    return await import_text(
        text, filename="c.yml", sessions=sessions, client=None, draft=False, now=START
    )


async def test_the_report_block_is_kept_and_exported(sessions: SessionFactory) -> None:
    report = "  report:\n    cadence: Monthly\n    channel: C0EXEC001\n    readers: [U0VP00001]\n"
    results, problems = await _import(sessions, example_text((OLD, OLD + report)))
    assert problems == []
    async with sessions() as session:
        bundle = await load_bundle(session=session, contract_id=results[0].contract_id)
    assert bundle is not None
    c = bundle.contract
    assert (c.report_cadence, c.report_channel) == ("monthly", "C0EXEC001")
    assert bundle.people_with(Role.report_reader) == ["U0VP00001"]
    assert c.reporting == "Quarterly summary to the executive team"
    governance = snapshot(bundle)["governance"]
    assert governance["report"] == {
        "cadence": "monthly",
        "channel": "C0EXEC001",
        "readers": ["U0VP00001"],
    }


async def test_without_a_report_block_the_terms_are_as_before(sessions: SessionFactory) -> None:
    results, problems = await _import(sessions, example_text())
    assert problems == []
    async with sessions() as session:
        bundle = await load_bundle(session=session, contract_id=results[0].contract_id)
    assert bundle is not None and bundle.contract.report_cadence is None
    assert "report" not in snapshot(bundle)["governance"]


@pytest.mark.parametrize(
    ("report", "problem"),
    [
        ("  report:\n    cadence: weekly\n", "must be one of monthly, quarterly, yearly"),
        ("  report:\n    channel: C0EXEC001\n", "governance.report.cadence"),
        ("  report:\n    cadence: yearly\n    channel: '#exec'\n", "Slack channel id"),
        ("  report:\n    cadence: yearly\n    readers: [bob]\n", "Slack user id"),
        (
            "  report:\n    cadence: yearly\n    readers: []\n",
            "governance.report: needs a channel or readers",
        ),
    ],
)
async def test_a_bad_report_block_is_a_problem(
    sessions: SessionFactory, report: str, problem: str
) -> None:
    _, problems = await _import(sessions, example_text((OLD, OLD + report)))
    assert any(problem in str(p) for p in problems), problems
