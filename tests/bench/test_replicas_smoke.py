"""The replicas benchmark, tiny: real `northstar run` processes on PostgreSQL fan out with
one leader, keep quiet inside every Retry-After, and survive the leader's SIGKILL with
nothing lost or doubled."""

from __future__ import annotations

import json

import pytest

from tests.bench import replicas


@pytest.mark.postgres
@pytest.mark.timeout(240)
async def test_the_replicas_benchmark_runs_end_to_end(postgres_server_url: str) -> None:
    result = await replicas.measure(n=60, rate=600, replicas=2, database=postgres_server_url)

    assert [row.name for row in result.rows] == list(replicas.ROWS)
    for row in result.rows:
        assert (row.prompts, row.lost, row.doubled, row.violations) == (60, 0, 0, 0)
        assert row.elapsed > 0
    plain, killed = result.rows
    assert plain.senders == 1  # one leader sent everything
    assert killed.senders == 2 and killed.takeover is not None  # a follower took over
    assert "leader killed" in result.table()
    assert json.loads(json.dumps(result.to_json()))["rows"][0]["name"] == "no fault"
