"""The RSS benchmark, tiny: the bare app and `northstar run` start, answer /healthz, measured."""

from __future__ import annotations

import sys

import pytest

from tests.bench import rss


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status")
@pytest.mark.timeout(180)
async def test_the_rss_benchmark_runs_end_to_end() -> None:
    result = await rss.measure(contracts=3, seconds=0.2)

    assert [row.label for row in result.rows] == [
        "bare Bolt app (static modal)",
        "northstar run, 0 active contracts",
        "northstar run, 3 active contracts",
        "jobs run checkins, 3 active contracts",
        "jobs run checkins again, nothing due",
        "jobs run reviews, 3 active contracts",
        "jobs run risks, 3 active contracts",
        "jobs run digests, 3 active contracts",
        "jobs run milestones, 3 active contracts",
    ]
    assert all(row.peak_mb >= row.end_mb > 10 for row in result.rows)
    assert "vs bare" in result.table()
