"""The modal benchmark, tiny: both organisations, every target answered, the digest built."""

from __future__ import annotations

import json

from tests.bench import modal
from tests.bench.measure import Options


async def test_the_modal_benchmark_runs_end_to_end() -> None:
    result = await modal.measure(
        Options(requests=4, warmup=1, concurrency=(1, 2), timeout=10.0),
        levels=(1, 2),
        scenarios={"1x1": (1, 1), "300x156": (3, 4)},
        digest=(3, 2, 2),
        home=((1, 1), (3, 4)),
        home_opens=2,
    )

    assert [(x.scenario, x.concurrency) for x in result.levels] == [
        ("1x1", 1),
        ("1x1", 2),
        ("300x156", 1),
        ("300x156", 2),
    ]
    for x in result.levels:
        assert {f.requests for f in x.figures.values()} == {4}
        assert x.figures[modal.CHECKIN].api_calls.get("views.open", 0) == 4
        assert x.figures[modal.CHECKIN].api_calls.get("views.update", 0) >= 1  # some after
        assert all(f.first_call_p99_ms > 0 for f in x.figures.values())
        # Each target's own process measured (in clock ticks: a tiny run may show none).
        assert all(
            f.cpu_ms_per_request is not None and f.cpu_ms_per_request >= 0
            for f in x.figures.values()
        )
    assert result.digest is not None and result.digest.sponsors == 3
    assert result.digest.statements_min == result.digest.statements_max
    assert [(h.contracts, h.weeks) for h in result.home] == [(1, 1), (3, 4)]
    assert result.home[0].statements == result.home[1].statements
    assert result.floor is not None
    assert 0 < result.floor.statement_ms < result.floor.session_ms
    table = result.table()
    assert "checkin/bare" in table and "300x156 against 1x1" in table and "Digest for 3" in table
    assert "Floor of a read" in table and "CPU ms/request" in table and "App Home" in table
    assert json.loads(json.dumps(result.to_json()))["levels"][0]["scenario"] == "1x1"
