"""The summary benchmark, tiny: every request answered, every summary arrived, ratios computed."""

from __future__ import annotations

import json

from tests.bench import summary
from tests.bench.measure import Options


async def test_the_summary_benchmark_runs_end_to_end() -> None:
    result = await summary.run(Options(requests=5, warmup=1, concurrency=(1, 2), timeout=10.0))

    assert [level.concurrency for level in result.levels] == [1, 2]
    for level in result.levels:
        assert level.ours.requests == level.baseline.requests == 5
        assert level.ours.api_calls.get("response_url", 0) >= 5
        assert level.baseline.api_calls.get("views.open", 0) >= 5
        assert all(value is not None and value > 0 for value in level.ratios.values())
    assert "first Web API call" in result.table()
    assert json.loads(json.dumps(result.to_json()))["levels"][1]["concurrency"] == 2


async def test_the_charts_benchmark_runs_end_to_end() -> None:
    from tests.bench import charts

    result = await charts.run(Options(requests=2, warmup=0, concurrency=(1,), timeout=10.0))
    assert result.uploads_cold == result.charts and result.uploads_warm == 0
    assert set(result.draw_ms) >= {"I1", "confidence"} or "I1" in result.draw_ms
    assert "warm / cold" in result.table()
    assert json.loads(json.dumps(result.to_json()))["ratios"]["warm_over_cold"] > 0
