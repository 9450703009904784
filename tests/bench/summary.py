"""`/contract summary` read by the sponsor, against a bare Bolt app opening a static modal."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from bot.contracts.io import import_file
from storage.db import SessionFactory, writing
from storage.migrate import upgrade
from storage.models import Measurement, SuccessIndicator
from tests.bench.baseline import BASELINE_COMMAND, running_baseline
from tests.bench.measure import (
    Arrival,
    BenchFailure,
    Figures,
    Level,
    Options,
    Target,
    TimedFake,
    calls_line,
    compare,
    comparison_table,
    count_and_forget,
    peak_rss_mb,
    send_command,
)
from tests.conftest import EXAMPLE_CONTRACT, PEOPLE
from tests.harness import BOT_TOKEN, Bot, running_bot

NAME = "summary"
LEADER, SPONSOR = "U0LEAD001", "U0SPON001"
SUMMARY_TEXT = f"summary <@{LEADER}|dana>"
WEEKS_MEASURED = 9
OURS, BASELINE = "North Star", "bare Bolt"


@dataclass(frozen=True)
class SummaryResult:
    """Both apps at every concurrency level, the process's peak RSS and all Web API calls."""

    options: Options
    levels: list[Level]
    setup_rss_mb: float
    peak_rss_mb: float
    all_calls: dict[str, int]
    name: str = NAME

    def table(self) -> str:
        measured = {
            app: sum((Counter(getattr(level, side).api_calls) for level in self.levels), Counter())
            for app, side in ((OURS, "ours"), (BASELINE, "baseline"))
        }
        return "\n".join(
            [
                f"/contract {SUMMARY_TEXT} by the sponsor ({OURS}) "
                f"vs {BASELINE_COMMAND} -> views.open of a static modal ({BASELINE})",
                f"{self.options.requests} requests per app and level after "
                f"{self.options.warmup} warm-up, segments alternating; times from sending, ms",
                "",
                comparison_table(self.levels, ours=OURS, baseline=BASELINE),
                "",
                "Web API calls in the measured requests:",
                *(f"  {calls_line(app, calls)}" for app, calls in measured.items()),
                f"  {calls_line('whole run, set-up and warm-up included', self.all_calls)}",
                f"Peak RSS of the process (both apps, fake Slack, driver): "
                f"{self.peak_rss_mb:.1f} MiB ({self.setup_rss_mb:.1f} MiB after set-up)",
            ]
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "ours": OURS,
            "baseline": BASELINE,
            "options": asdict(self.options),
            "levels": [level.to_json() for level in self.levels],
            "api_calls": self.all_calls,
            "setup_rss_mb": round(self.setup_rss_mb, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }


async def run(options: Options) -> SummaryResult:
    """Seed a fresh database with the example contract, then measure both apps level by level."""
    fake = TimedFake(bot_token=BOT_TOKEN)
    for user_id, (name, real_name, email, tz) in PEOPLE.items():
        fake.add_user(user_id, name=name, real_name=real_name, email=email, tz=tz)
    with tempfile.TemporaryDirectory(prefix="northstar-bench-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'northstar.db'}"
        await upgrade(url)
        async with fake, running_bot(fake, url) as bot, running_baseline(fake) as bare:
            await seed(bot)
            ours = Target(
                name=OURS,
                driver=bot.driver,
                command="/contract",
                text=SUMMARY_TEXT,
                user=SPONSOR,
                first_call="response_url",
                check=is_summary,
            )
            baseline = Target(
                name=BASELINE,
                driver=bare,
                command=BASELINE_COMMAND,
                text="",
                user=SPONSOR,
                first_call="views.open",
            )
            await send_command(
                fake, replace(ours, check=is_full_summary), give_up_after=options.timeout
            )
            all_calls: Counter[str] = Counter()
            count_and_forget(fake, all_calls)
            setup_rss = peak_rss_mb()
            levels = []
            for concurrency in options.concurrency:
                runs = await compare(
                    fake, [ours, baseline], concurrency=concurrency, options=options
                )
                levels.append(
                    Level(concurrency, Figures.of(runs[OURS]), Figures.of(runs[BASELINE]))
                )
                count_and_forget(fake, all_calls)
    return SummaryResult(options, levels, setup_rss, peak_rss_mb(), dict(sorted(all_calls.items())))


async def seed(bot: Bot) -> int:
    """Import the example contract and give each indicator a few weeks of values."""
    results, problems = await import_file(
        EXAMPLE_CONTRACT,
        sessions=bot.sessions,
        client=bot.app.client,
        draft=False,
        now=bot.clock.now(),
    )
    if problems or not results:
        raise BenchFailure(f"importing {EXAMPLE_CONTRACT} failed: {problems}")
    contract_id = results[0].contract_id
    await add_measurements(bot.sessions, contract_id=contract_id, until=bot.clock.now())
    return contract_id


async def add_measurements(
    sessions: SessionFactory, *, contract_id: int, until: datetime, weeks: int = WEEKS_MEASURED
) -> None:
    """Weekly values moving each indicator 40% of the way from its baseline to its target."""
    async with sessions() as session:
        await writing(session)
        indicators = await session.exec(
            select(SuccessIndicator).where(SuccessIndicator.contract_id == contract_id)
        )
        for indicator in indicators.all():
            step = (indicator.target - indicator.baseline) * 0.4 / weeks
            session.add_all(
                Measurement(
                    indicator_id=indicator.id or 0,
                    value=round(indicator.baseline + step * week, 1),
                    measured_at=until - timedelta(weeks=weeks - week, days=1),
                    source=indicator.source,
                    recorded_by=LEADER,
                )
                for week in range(1, weeks + 1)
            )
        await session.commit()


def is_summary(arrival: Arrival) -> str | None:
    text = str(arrival.body.get("text", ""))
    return None if text.startswith("Summary of ") else f"not a summary: {text[:200]!r}"


def is_full_summary(arrival: Arrival) -> str | None:
    """A summary with its indicators, each showing a measured value."""
    said = json.dumps(arrival.body, ensure_ascii=False)
    if "Success indicators" not in said:
        return f"no indicators in the summary: {said[:300]}"
    if "no value yet" in said:
        return f"an indicator shows no value although measurements were added: {said[:300]}"
    return is_summary(arrival)
