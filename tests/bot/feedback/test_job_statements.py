"""The `feedback` job, run every ten minutes on the leading replica, issues as many statements
for 300 active contracts as for one when no anonymous feedback waits: only the contracts with
entries held or lately released are gone through one by one."""

from __future__ import annotations

from pathlib import Path

from bot.client import create_client
from bot.feedback.jobs import feedback_job
from bot.scheduler import JobRun
from bot.services import Services
from tests.bot.summary.test_statements import assert_constant, statements


async def test_the_feedback_job_with_nothing_to_release(
    sqlite_template: Path, tmp_path: Path
) -> None:
    async def surface(services: Services) -> None:
        client = create_client(services.settings)  # nothing is due: no Web API call is made
        await feedback_job(JobRun(services=services, client=client))

    assert_constant(await statements(sqlite_template, tmp_path, surface))
