"""Charts: drawing time per chart, and what the cache saves when a chart is shown again.

Draws each chart of the example contract (with weeks of values) `requests` times in-process,
then shows all of them through `show_charts` against the fake Slack and a SQLite file: cold
(nothing kept: drawn in worker threads, uploaded, kept) and warm (every chart kept: one read,
no drawing, no upload). The figures that count are the ratios between them, from one run.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import delete, select

from bot.charts.draw import draw
from bot.charts.model import charts_of
from bot.charts.service import show_charts
from storage.db import writing
from storage.migrate import upgrade
from storage.models import ChartFile
from storage.queries.contracts import load_bundle
from tests.bench.measure import BenchFailure, Options
from tests.bench.summary import seed
from tests.conftest import PEOPLE
from tests.fakes import FakeSlack
from tests.harness import BOT_TOKEN, running_bot

NAME = "charts"


@dataclass(frozen=True)
class ChartsResult:
    charts: int
    rounds: int
    draw_ms: dict[str, float]  # median per chart subject
    cold_ms: float  # median time to show every chart with nothing kept
    warm_ms: float  # median time to show them again, all kept
    uploads_cold: int
    uploads_warm: int
    name: str = NAME
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def warm_over_cold(self) -> float:
        return self.warm_ms / self.cold_ms if self.cold_ms else 0.0

    def table(self) -> str:
        lines = [f"charts: {self.charts} per contract, {self.rounds} rounds (medians)"]
        lines += [f"  draw {subject:<12} {ms:8.1f} ms" for subject, ms in self.draw_ms.items()]
        lines += [
            f"  show all, cold   {self.cold_ms:8.1f} ms  ({self.uploads_cold} uploads per round)",
            f"  show all, warm   {self.warm_ms:8.1f} ms  ({self.uploads_warm} uploads per round)",
            f"  warm / cold      {self.warm_over_cold:8.3f}",
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "charts": self.charts,
            "rounds": self.rounds,
            "draw_ms": self.draw_ms,
            "cold_ms": self.cold_ms,
            "warm_ms": self.warm_ms,
            "uploads_cold": self.uploads_cold,
            "uploads_warm": self.uploads_warm,
            "ratios": {"warm_over_cold": self.warm_over_cold},
        }


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def run(options: Options) -> ChartsResult:
    rounds = max(1, min(options.requests, 20))
    fake = FakeSlack(bot_token=BOT_TOKEN)
    for user_id, (name, real_name, email, tz) in PEOPLE.items():
        fake.add_user(user_id, name=name, real_name=real_name, email=email, tz=tz)
    with tempfile.TemporaryDirectory(prefix="northstar-bench-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'northstar.db'}"
        await upgrade(url)
        async with fake, running_bot(fake, url) as bot:
            contract_id = await seed(bot)
            async with bot.sessions() as session:
                bundle = await load_bundle(session=session, contract_id=contract_id)
            if bundle is None:
                raise BenchFailure("the example contract did not load")
            charts = charts_of(bundle)
            draw_ms: dict[str, list[float]] = {}
            for _ in range(rounds):
                for chart in charts:
                    start = time.perf_counter()
                    await asyncio.to_thread(draw, chart)
                    draw_ms.setdefault(chart.subject, []).append(_ms(start))

            async def show() -> tuple[float, int]:
                before = len(fake.calls_to("upload"))
                start = time.perf_counter()
                shown = await show_charts(
                    services=bot.services, client=bot.app.client, charts=charts
                )
                took = _ms(start)
                if len(shown) != len(charts):
                    raise BenchFailure(f"{len(shown)} of {len(charts)} charts were shown")
                return took, len(fake.calls_to("upload")) - before

            cold, warm, uploads_cold, uploads_warm = [], [], 0, 0
            for _ in range(rounds):
                async with bot.sessions() as session:
                    await writing(session)
                    await session.exec(delete(ChartFile))
                    await session.commit()
                took, uploads_cold = await show()
                cold.append(took)
                took, uploads_warm = await show()
                warm.append(took)
            async with bot.sessions() as session:
                kept = len((await session.exec(select(ChartFile))).all())
    return ChartsResult(
        charts=len(charts),
        rounds=rounds,
        draw_ms={s: round(statistics.median(v), 2) for s, v in draw_ms.items()},
        cold_ms=round(statistics.median(cold), 2),
        warm_ms=round(statistics.median(warm), 2),
        uploads_cold=uploads_cold,
        uploads_warm=uploads_warm,
        extra={"kept": kept},
    )
