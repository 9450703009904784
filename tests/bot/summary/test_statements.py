"""Summary, App Home, the digest and the evidence chooser issue as many statements for an owner
of 300 contracts, or a contract with three years of history, as for one contract of a week."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from bot.amendments.blocks import build_contract_summary
from bot.amendments.service import summary_view
from bot.charts.model import ShownChart, data_hash
from bot.charts.service import ContractCharts, charts_at, kept_charts, summary_charts
from bot.contracts.service import contract_to_show
from bot.core.clock import ManualClock
from bot.core.permissions import Refusal
from bot.digest.service import due_digests, load_digest
from bot.evidence.blocks import build_evidence_modal
from bot.evidence.service import contracts_for_evidence
from bot.services import Services
from bot.summary.home import build_home
from bot.summary.service import load_home, load_summary
from handlers.summary import by_contract
from storage.db import create_engine, read_only, session_factory
from storage.models import CheckIn, Measurement
from storage.queries.charts import keep_chart_file
from tests.harness import START, make_settings
from tests.scale import counting_statements, seed_organisation

LEADER, OWNER = "U0LEAD001", "U0OWNR001"
SIZES = ((1, 1), (300, 1), (1, 156))  # (contracts the owner governs, weeks of history)

Surface = Callable[[Services], Awaitable[Any]]


async def statements(
    template: Path, directory: Path, surface: Surface, prepare: Surface | None = None
) -> dict[tuple[int, int], int]:
    """The statements `surface` issues at each size, each on its own fresh database (after
    `prepare`, not counted)."""
    counts = {}
    for contracts, weeks in SIZES:
        path = directory / f"{contracts}x{weeks}.db"
        shutil.copyfile(template, path)
        url = f"sqlite+aiosqlite:///{path}"
        await seed_organisation(
            url, now=START, contracts=contracts, weeks=weeks, leader=LEADER, governor=OWNER
        )
        engine = create_engine(url)
        services = Services(
            settings=make_settings(api_url="http://127.0.0.1:9/api/", database_url=url),
            sessions=session_factory(engine),
            clock=ManualClock(START),
        )
        try:
            if prepare is not None:
                await prepare(services)
            with counting_statements() as seen:
                await surface(services)
        finally:
            await engine.dispose()
        counts[(contracts, weeks)] = len(seen)
    return counts


def assert_constant(counts: dict[tuple[int, int], int], most: int = 30) -> None:
    assert len(set(counts.values())) == 1, counts
    assert counts[SIZES[0]] <= most, counts  # a couple of dozen, whatever the size


async def summary_of(
    services: Services, viewer: str
) -> tuple[list[ShownChart], ContractCharts | None]:
    """What `/contract summary` reads and builds, charts included (none drawn)."""
    async with services.sessions() as session:
        await read_only(session)
        found = await contract_to_show(
            session=session, viewer=viewer, leader=LEADER, load=load_summary
        )
        assert not isinstance(found, Refusal)
        shown = await summary_view(session=session, bundle=found, version=None)
        at = await charts_at(session=session, contract_id=found.contract.id or 0)
    assert not isinstance(shown, Refusal)
    assert build_contract_summary(shown, today=services.today())
    return await summary_charts(services=services, at=at)


async def charts_uploaded(services: Services) -> None:
    """The summary's charts drawn and uploaded once, as `draw_charts` leaves them."""
    _, rest = await summary_of(services, OWNER)
    assert rest is not None and rest.charts
    for n, chart in enumerate(rest.charts):
        await keep_chart_file(
            sessions=services.sessions,
            contract_id=chart.contract_id,
            subject=chart.subject,
            data_hash=data_hash(chart),
            file_id=f"F0CHART{n:03d}",
        )
    kept, rest = await summary_of(services, OWNER)  # all uploaded: kept as known
    assert rest is None and kept


@pytest.mark.parametrize("viewer", [LEADER, OWNER])
async def test_the_summary(sqlite_template: Path, tmp_path: Path, viewer: str) -> None:
    """Its history changed since its charts were drawn (here: never drawn): the whole
    history is read as well, once, for the charts (the text's statements and the whole
    bundle's, a few dozen)."""

    async def surface(services: Services) -> None:
        await summary_of(services, viewer)

    assert_constant(await statements(sqlite_template, tmp_path, surface), most=40)


@pytest.mark.parametrize("viewer", [LEADER, OWNER])
async def test_the_summary_of_a_history_charted(
    sqlite_template: Path, tmp_path: Path, viewer: str
) -> None:
    """Its charts known at the history's number: shown from their files, and of the history
    only what the text shows is read (two values an indicator, a few check-ins)."""
    loaded: Counter[str] = Counter()

    def note(target: object, _context: object) -> None:
        loaded[type(target).__name__] += 1

    async def surface(services: Services) -> None:
        for model in (Measurement, CheckIn):
            event.listen(model, "load", note)
        try:
            kept, rest = await summary_of(services, viewer)
        finally:
            for model in (Measurement, CheckIn):
                event.remove(model, "load", note)
        assert rest is None and kept

    counts = await statements(sqlite_template, tmp_path, surface, prepare=charts_uploaded)
    assert_constant(counts)
    assert loaded["Measurement"] <= 2 * 2 * len(SIZES) and loaded["CheckIn"] <= 7 * len(SIZES)


async def test_app_home(sqlite_template: Path, tmp_path: Path) -> None:
    async def surface(services: Services) -> None:
        async with services.sessions() as session:
            await read_only(session)
            home = await load_home(session=session, viewer=OWNER)
        assert home.bundles and home.charts
        kept, _ = await kept_charts(services=services, charts=home.charts)  # one look-up
        assert build_home(
            viewer=OWNER, bundles=home.bundles, today=services.today(), charts=by_contract(kept)
        ).to_dict()

    assert_constant(await statements(sqlite_template, tmp_path, surface))


async def test_the_digest(sqlite_template: Path, tmp_path: Path) -> None:
    async def surface(services: Services) -> None:
        due = await due_digests(services=services, client=None, now=START, force=True)
        (mine,) = [d for d in due if d.recipient == OWNER]
        digest = await load_digest(services=services, due=mine)
        assert len(digest.contracts) == len(mine.contract_ids)

    assert_constant(await statements(sqlite_template, tmp_path, surface))


async def test_the_evidence_chooser(sqlite_template: Path, tmp_path: Path) -> None:
    async def surface(services: Services) -> None:
        async with services.sessions() as session:
            await read_only(session)
            bundles = await contracts_for_evidence(session=session, user=OWNER)
        modal = build_evidence_modal(bundles, viewer=OWNER, selected=bundles[0], message=None)
        assert modal.to_dict()

    assert_constant(await statements(sqlite_template, tmp_path, surface))
