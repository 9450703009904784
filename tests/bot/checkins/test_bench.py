"""The fan-out benchmark, tiny: it runs end to end and its checks hold."""

from __future__ import annotations

import json

from tests.bench import checkins


async def test_the_fanout_benchmark_runs_end_to_end() -> None:
    result = await checkins.measure(sizes=(60,), rate=60_000, others=0.5)
    (run,) = result.runs
    assert (run.prompts, run.sent_rows, run.lost, run.doubled, run.early_calls) == (60, 60, 0, 0, 0)
    assert run.calls == 60 + run.rate_limited
    assert "early" in result.table() and "60" in result.table()
    assert json.loads(json.dumps(result.to_json()))["runs"][0]["floor"] == 0.06


def test_the_rate_limited_fake_answers_429_with_retry_after() -> None:
    fake = checkins.RateLimitedSlack(per_minute=60, others=0.0)
    now = [0.0]
    fake.clock = lambda: now[0]
    fake.refilled = 0.0
    args = {"channel": "U0LEAD001", "text": "hi"}
    statuses = []
    for _ in range(3):
        statuses.append(fake._dispatch("chat.postMessage", dict(args), fake.bot_token).status)
    assert statuses == [200, 429, 429]
    assert fake.limited == 2 and fake.early == 1  # the third came inside the first Retry-After
    now[0] = 1.0
    assert fake._dispatch("chat.postMessage", dict(args), fake.bot_token).status == 200
