"""Modals at the size of a real organisation, against a bare Bolt app opening a static modal.

Two organisations, each in a fresh database: "1x1", one contract with a week of history, and
"300x156", an HR owner governing 300 contracts of 156 weeks each (three years of weekly
check-ins, two measurements and a piece of evidence a week). In each, `northstar run` (HTTP mode,
scheduler and all) and the bare Bolt app run each in a process of its own against the fake
Slack this process serves. Measuring starts once both processes are idle (the runs every job
makes at start are over: at 300 contracts the digests, feedback and milestones jobs take
seconds of CPU), and three targets take turns at every concurrency level (segments
alternating, as in `summary`; a segment ends when the app has made no Web API call for a
moment, so a modal still being filled never slows the next target's segment):

- `/checkin` by the leader: time to its `views.open`;
- `/contract summary @leader` by the HR owner: time to its `response_url` post;
- the bare Bolt app's `/bench`: time to its `views.open` of a static modal.

A `views.open` refused with `expired_trigger_id` (the trigger id was older than 3 s, the
person saw nothing) is counted, not failed, for `/checkin` and the bare app.

Then the digest for `DIGEST_SPONSORS` sponsors with `DIGEST_EACH` contracts each: the time to
load and build one digest, and the statements it sends to the database. And App Home as the
owner of each organisation (and of 300 contracts of a week) opens it, in this process: the
CPU time to read and build it, and its statements.

Run with `python -m tests.bench --only modal`.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import literal
from sqlmodel import select

from bot.charts.model import Chart, within
from bot.charts.service import charts_to_show
from bot.digest.blocks import build_digest
from bot.digest.service import due_digests, load_digest
from bot.services import Services
from bot.summary.home import HOME_CHARTS, build_home
from bot.summary.service import load_home
from storage.db import create_engine, read_only, session_factory
from storage.migrate import upgrade
from tests.bench.baseline import BASELINE_COMMAND
from tests.bench.measure import (
    Arrival,
    BenchFailure,
    Figures,
    Options,
    Target,
    TimedFake,
    compare,
    count_and_forget,
    percentile,
    process_cpu_seconds,
    ratio,
)
from tests.bench.rss import baseline_command, baseline_env, bot_env, free_port, started
from tests.conftest import PEOPLE
from tests.fakes import SlackDriver
from tests.harness import BOT_TOKEN, SIGNING_SECRET, START
from tests.scale import (
    counting_statements,
    keep_chart_files,
    offline_services,
    seed_organisation,
)

NAME = "modal"
LEADER, OWNER = "U0LEAD001", "U0HRBP001"
SCENARIOS: dict[str, tuple[int, int]] = {"1x1": (1, 1), "300x156": (300, 156)}
EXPIRY_LEVEL = 100
CHECKIN, SUMMARY, BARE = "/checkin", "/contract summary", "bare Bolt"
DIGEST_SPONSORS, DIGEST_EACH, DIGEST_WEEKS = 1_000, 5, 4
# App Home of the owner of (contracts, weeks), each opened HOME_OPENS times after one more.
HOME_SIZES: tuple[tuple[int, int], ...] = ((1, 1), (300, 1), (300, 156))
HOME_OPENS = 20


def is_summary(arrival: Arrival) -> str | None:
    text = str(arrival.body.get("text", ""))
    return None if text.startswith("Summary of ") else f"not a summary: {text[:200]!r}"


@dataclass(frozen=True)
class ScenarioLevel:
    scenario: str
    concurrency: int
    figures: dict[str, Figures]

    def p99(self, name: str) -> float:
        return self.figures[name].first_call_p99_ms

    def p50(self, name: str) -> float:
        return self.figures[name].first_call_p50_ms


@dataclass(frozen=True)
class DigestFigures:
    sponsors: int
    contracts_each: int
    weeks: int
    build_p50_ms: float
    build_p99_ms: float
    build_max_ms: float
    total_s: float
    statements_min: int
    statements_max: int


@dataclass(frozen=True)
class HomeFigures:
    """App Home of the owner of `contracts` contracts of `weeks` weeks: CPU ms of this
    process (aiosqlite's thread included) to read it and build its view, and statements."""

    contracts: int
    weeks: int
    cpu_p50_ms: float
    cpu_max_ms: float
    statements: int

    @property
    def label(self) -> str:
        return f"{self.contracts}x{self.weeks}"


@dataclass(frozen=True)
class Floor:
    """What any request that reads the database pays, whatever it reads: one `SELECT 1`
    through SQLAlchemy's AsyncSession on aiosqlite, and a read-only session with only that
    (connection, `BEGIN`, the statement, the end), in ms of this process's time."""

    statement_ms: float
    session_ms: float


@dataclass(frozen=True)
class ModalResult:
    options: Options
    levels: list[ScenarioLevel]
    digest: DigestFigures | None
    all_calls: dict[str, int] = field(default_factory=dict)
    home: list[HomeFigures] = field(default_factory=list)
    name: str = NAME
    floor: Floor | None = None

    def level(self, scenario: str, concurrency: int) -> ScenarioLevel | None:
        return next(
            (x for x in self.levels if (x.scenario, x.concurrency) == (scenario, concurrency)),
            None,
        )

    def table(self) -> str:
        lines = [
            "First Web API call, ms from sending (p50/p99): /checkin -> views.open, "
            "/contract summary -> response_url, bare Bolt /bench -> views.open",
            f"{self.options.requests} requests per target and level after "
            f"{self.options.warmup} warm-up; 1x1 = 1 contract, 1 week; 300x156 = an owner "
            "of 300 contracts of 156 weeks each",
            "",
            f"{'org':<8}{'conc':>5}  {'/checkin':>15}  {'summary':>15}  {'bare':>15}  "
            f"{'checkin/bare':>12}  {'summary/bare':>12}  {'expired c/b':>11}  "
            f"{'CPU ms/request c/s/b':>20}",
        ]
        for x in self.levels:
            cpu = "/".join(_ms(x.figures[n].cpu_ms_per_request) for n in (CHECKIN, SUMMARY, BARE))
            lines.append(
                f"{x.scenario:<8}{x.concurrency:>5}  "
                + "  ".join(f"{x.p50(n):>6.0f}/{x.p99(n):>7.0f}" for n in (CHECKIN, SUMMARY, BARE))
                + f"  {_times(ratio(x.p99(CHECKIN), x.p99(BARE))):>12}"
                f"  {_times(ratio(x.p99(SUMMARY), x.p99(BARE))):>12}"
                f"  {x.figures[CHECKIN].expired:>5}/{x.figures[BARE].expired:<5}"
                f"  {cpu:>20}"
            )
        lines += [
            "",
            "CPU ms/request: the app process's CPU time (user and system, all threads) per "
            "request, its work after the first call included",
            "",
            "300x156 against 1x1 (p99 / p99; p50 / p50 in brackets):",
        ]
        for small in (x for x in self.levels if x.scenario == "1x1"):
            large = self.level("300x156", small.concurrency)
            if large is None:
                continue
            cells = [
                f"{name} {_times(ratio(large.p99(name), small.p99(name)))} "
                f"({_times(ratio(large.p50(name), small.p50(name)))})"
                for name in (CHECKIN, SUMMARY, BARE)
            ]
            lines.append(f"  conc {small.concurrency:>3}: " + ", ".join(cells))
        if self.digest is not None:
            d = self.digest
            lines += [
                "",
                f"Digest for {d.sponsors:,} sponsors x {d.contracts_each} contracts "
                f"({d.weeks} weeks each): load + build per digest p50 {d.build_p50_ms:.1f} ms, "
                f"p99 {d.build_p99_ms:.1f} ms, max {d.build_max_ms:.1f} ms; "
                f"all {d.total_s:.1f} s; statements per digest {d.statements_min}"
                + ("" if d.statements_min == d.statements_max else f"-{d.statements_max}"),
            ]
        if self.home:
            first = self.home[0]
            lines += ["", "App Home of the owner, read and built in-process (CPU ms p50/max):"]
            lines += [
                f"  {h.label:>8}: {h.cpu_p50_ms:.1f} / {h.cpu_max_ms:.1f} ms, "
                f"{_times(ratio(h.cpu_p50_ms, first.cpu_p50_ms))} of {first.label}; "
                f"{h.statements} statements"
                for h in self.home
            ]
        if self.floor is not None:
            lines += [
                "",
                f"Floor of a read: one SELECT 1 through AsyncSession on aiosqlite "
                f"{self.floor.statement_ms:.2f} ms; a read-only session with only that "
                f"{self.floor.session_ms:.2f} ms",
            ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "options": asdict(self.options),
            "levels": [
                {
                    "scenario": x.scenario,
                    "concurrency": x.concurrency,
                    "figures": {name: asdict(f) for name, f in x.figures.items()},
                    "p99_ratio_to_bare": {
                        name: ratio(x.p99(name), x.p99(BARE)) for name in (CHECKIN, SUMMARY)
                    },
                }
                for x in self.levels
            ],
            "digest": asdict(self.digest) if self.digest else None,
            "home": [asdict(h) for h in self.home],
            "floor": asdict(self.floor) if self.floor else None,
            "api_calls": self.all_calls,
        }


def _times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


async def scenario(
    name: str, contracts: int, weeks: int, options: Options, levels: Sequence[int]
) -> tuple[list[ScenarioLevel], Counter[str]]:
    """One organisation in a fresh database, `northstar run` and the bare app each in a process
    of its own against this process's fake Slack; all three targets at every level."""
    fake = TimedFake(bot_token=BOT_TOKEN)
    for user_id, (user, real_name, email, tz) in PEOPLE.items():
        fake.add_user(user_id, name=user, real_name=real_name, email=email, tz=tz)
    for cid in range(2, contracts + 1):
        fake.add_user(f"UL{cid:07d}", name=f"leader{cid}", tz="Europe/Berlin")
    calls: Counter[str] = Counter()
    found = []
    with tempfile.TemporaryDirectory(prefix="northstar-bench-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'northstar.db'}"
        await upgrade(url)
        await seed_organisation(
            url,
            now=datetime.now(UTC),  # the bot in its process runs on the real clock
            contracts=contracts,
            weeks=weeks,
            leader=LEADER,
            governor=OWNER,
        )
        bot_port, bare_port = free_port(), free_port()
        async with (
            fake,
            started(
                "northstar run",
                [sys.executable, "-m", "bot", "run"],
                bot_env(fake.api_url, url, bot_port),
                bot_port,
            ) as bot_process,
            started(
                "bare Bolt", baseline_command(fake.api_url, bare_port), baseline_env(), bare_port
            ) as bare_process,
            driver_of(fake, bot_port) as bot,
            driver_of(fake, bare_port) as bare,
        ):
            # The runs every job makes at start (the digests, feedback and milestones jobs of an
            # organisation of 300 contracts take seconds of CPU) are not what is measured.
            await idle(bot_process.pid)
            await idle(bare_process.pid)
            targets = [
                Target(
                    CHECKIN,
                    bot,
                    "/checkin",
                    "",
                    LEADER,
                    "views.open",
                    count_expired=True,
                    pid=bot_process.pid,
                ),
                Target(
                    SUMMARY,
                    bot,
                    "/contract",
                    f"summary <@{LEADER}|dana>",
                    OWNER,
                    "response_url",
                    check=is_summary,
                    pid=bot_process.pid,
                ),
                Target(
                    BARE,
                    bare,
                    BASELINE_COMMAND,
                    "",
                    OWNER,
                    "views.open",
                    count_expired=True,
                    pid=bare_process.pid,
                ),
            ]
            for concurrency in levels:
                runs = await compare(fake, targets, concurrency=concurrency, options=options)
                found.append(
                    ScenarioLevel(
                        name, concurrency, {n: Figures.of(run) for n, run in runs.items()}
                    )
                )
                count_and_forget(fake, calls)
    return found, calls


IDLE_SHARE, IDLE_SAMPLE_SECONDS, IDLE_WAIT_SECONDS = 0.05, 0.5, 120.0


async def idle(pid: int) -> None:
    """Wait until a process uses less than `IDLE_SHARE` of a core over `IDLE_SAMPLE_SECONDS`."""
    deadline = time.monotonic() + IDLE_WAIT_SECONDS
    before = process_cpu_seconds(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(IDLE_SAMPLE_SECONDS)
        now = process_cpu_seconds(pid)
        if now - before < IDLE_SHARE * IDLE_SAMPLE_SECONDS:
            return
        before = now
    raise BenchFailure(f"process {pid} still busy after {IDLE_WAIT_SECONDS:g} s")


def driver_of(fake: TimedFake, port: int) -> SlackDriver:
    return SlackDriver(
        app_url=f"http://127.0.0.1:{port}/slack/events", signing_secret=SIGNING_SECRET, fake=fake
    )


async def digest_figures(sponsors: int, each: int, weeks: int) -> DigestFigures:
    """Every sponsor's digest loaded and built, one after another, timed and counted."""
    with tempfile.TemporaryDirectory(prefix="northstar-bench-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'northstar.db'}"
        await upgrade(url)
        await seed_organisation(
            url,
            now=START,
            contracts=sponsors * each,
            weeks=weeks,
            leader=LEADER,
            governor=OWNER,
            sponsor_of=lambda i: f"US{i // each:07d}",
        )
        async with offline_services(url, START) as services:
            due = [
                d
                for d in await due_digests(services=services, client=None, now=START, force=True)
                if d.recipient.startswith("US")
            ]
            if len(due) != sponsors:
                raise BenchFailure(f"{len(due)} digests due, not {sponsors}")
            times, counts = [], []
            started = time.perf_counter()
            for one in due:
                with counting_statements() as seen:
                    before = time.perf_counter()
                    digest = await load_digest(services=services, due=one)
                    messages = build_digest(digest)
                    times.append(1000 * (time.perf_counter() - before))
                counts.append(len(seen))
                if len(digest.contracts) != each or not messages:
                    raise BenchFailure(f"the digest of {one.recipient} lost contracts")
            total = time.perf_counter() - started
    return DigestFigures(
        sponsors=sponsors,
        contracts_each=each,
        weeks=weeks,
        build_p50_ms=round(percentile(times, 0.5), 2),
        build_p99_ms=round(percentile(times, 0.99), 2),
        build_max_ms=round(max(times), 2),
        total_s=round(total, 2),
        statements_min=min(counts),
        statements_max=max(counts),
    )


async def home_figures(
    sizes: Sequence[tuple[int, int]] = HOME_SIZES, opens: int = HOME_OPENS
) -> list[HomeFigures]:
    """App Home as the owner of each size of organisation opens it, each on a fresh database,
    its charts drawn once before (their files kept without Slack): what
    `handle_app_home_opened` reads and builds before its `views.publish`."""
    found = []
    for contracts, weeks in sizes:
        with tempfile.TemporaryDirectory(prefix="northstar-bench-") as directory:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'northstar.db'}"
            await upgrade(url)
            await seed_organisation(
                url, now=START, contracts=contracts, weeks=weeks, leader=LEADER, governor=OWNER
            )
            times, counts = [], []
            async with offline_services(url, START) as services:
                await _charts_uploaded(services)
                for _ in range(opens + 1):
                    with counting_statements() as seen:
                        before = time.process_time()
                        async with services.sessions() as session:
                            await read_only(session)
                            home = await load_home(session=session, viewer=OWNER)
                        known = await charts_to_show(
                            services=services, at=home.charts, limit=HOME_CHARTS
                        )
                        view = build_home(viewer=OWNER, bundles=home.bundles, today=START.date())
                        times.append(1000 * (time.process_time() - before))
                    counts.append(len(seen))
                    if len(home.bundles) != contracts or not view.blocks or known.rest:
                        raise BenchFailure(f"App Home of {contracts}x{weeks} lost contracts")
        times = times[1:]  # the first warms the caches
        found.append(
            HomeFigures(
                contracts=contracts,
                weeks=weeks,
                cpu_p50_ms=round(percentile(times, 0.5), 2),
                cpu_max_ms=round(max(times), 2),
                statements=max(counts),
            )
        )
    return found


async def _charts_uploaded(services: Services) -> None:
    """App Home's charts drawn once: their files kept as an upload leaves them."""
    async with services.sessions() as session:
        await read_only(session)
        home = await load_home(session=session, viewer=OWNER)
    known = await charts_to_show(services=services, at=home.charts, limit=HOME_CHARTS)
    await keep_chart_files(
        services.sessions, (c for w in known.rest for c in within(w.charts, HOME_CHARTS, _subject))
    )
    await charts_to_show(services=services, at=home.charts, limit=HOME_CHARTS)


def _subject(chart: Chart) -> str:
    return chart.subject


FLOOR_STATEMENTS, FLOOR_SESSIONS = 2_000, 500


async def statement_floor(
    statements: int = FLOOR_STATEMENTS, sessions: int = FLOOR_SESSIONS
) -> Floor:
    """The cost of reading anything at all, measured here, in this run (see `Floor`)."""
    with tempfile.TemporaryDirectory(prefix="northstar-bench-") as directory:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(directory) / 'floor.db'}")
        opened = session_factory(engine)
        one = select(literal(1))
        try:
            async with opened() as session:
                for _ in range(max(statements // 10, 1)):  # warm up
                    await session.exec(one)
                before = time.process_time()
                for _ in range(statements):
                    (await session.exec(one)).all()
                statement = (time.process_time() - before) / statements
            before = time.process_time()
            for _ in range(sessions):
                async with opened() as session:
                    (await session.exec(one)).all()
            session_cost = (time.process_time() - before) / sessions
        finally:
            await engine.dispose()
    return Floor(statement_ms=round(1000 * statement, 3), session_ms=round(1000 * session_cost, 3))


async def measure(
    options: Options,
    *,
    levels: Sequence[int],
    scenarios: dict[str, tuple[int, int]] = SCENARIOS,
    digest: tuple[int, int, int] | None = (DIGEST_SPONSORS, DIGEST_EACH, DIGEST_WEEKS),
    home: Sequence[tuple[int, int]] = HOME_SIZES,
    home_opens: int = HOME_OPENS,
) -> ModalResult:
    found: list[ScenarioLevel] = []
    calls: Counter[str] = Counter()
    for name, (contracts, weeks) in scenarios.items():
        levels_found, scenario_calls = await scenario(name, contracts, weeks, options, levels)
        found += levels_found
        calls += scenario_calls
    figures = await digest_figures(*digest) if digest is not None else None
    homes = await home_figures(home, home_opens)
    floor = await statement_floor()
    return ModalResult(
        options, found, figures, dict(sorted(calls.items())), home=homes, floor=floor
    )


async def run(options: Options) -> ModalResult:
    """The `make bench` entry: the given levels and `EXPIRY_LEVEL`, both organisations."""
    return await measure(options, levels=sorted({*options.concurrency, EXPIRY_LEVEL}))
