"""The faults benchmark, tiny: every fault row runs end to end, nothing lost or doubled."""

from __future__ import annotations

import json

from tests.bench import faults


async def test_the_faults_benchmark_runs_end_to_end() -> None:
    result = await faults.measure(n=12, scale=400)

    assert [row.fault for row in result.rows] == list(faults.FAULTS)
    for row in result.rows:
        assert (row.prompts, row.lost, row.doubled) == (12, 0, 0)
        assert row.elapsed > 0 and row.runs >= 1
    by_fault = {row.fault: row for row in result.rows}
    assert by_fault["outage 30 min"].errors > 0 and by_fault["outage 30 min"].extra == 1_800
    assert by_fault["kill -9"].takeover is not None
    assert "kill -9" in result.table()
    assert json.loads(json.dumps(result.to_json()))["rows"][0]["fault"] == "none"
