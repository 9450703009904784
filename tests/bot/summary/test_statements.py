"""Summary, App Home, the digest and the evidence chooser issue as many statements for an owner
of 300 contracts, or a contract with three years of history, as for one contract of a week."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from bot.amendments.blocks import build_contract_summary
from bot.amendments.service import summary_view
from bot.charts.service import ChartsToShow, charts_at, charts_to_show
from bot.contracts.service import contract_to_show
from bot.core.permissions import Refusal
from bot.digest.service import due_digests, load_digest
from bot.evidence.blocks import build_evidence_modal
from bot.evidence.service import contracts_for_evidence
from bot.services import Services
from bot.summary.home import HOME_CHARTS, build_home
from bot.summary.reflection import TREND_WEEKS
from bot.summary.service import load_home, load_summary
from handlers.summary import by_contract
from storage.db import read_only
from storage.models import CheckIn, Measurement
from storage.queries.contracts import RECENT_VALUES
from tests.harness import START
from tests.scale import (
    counting_statements,
    keep_chart_files,
    offline_services,
    seed_organisation,
)

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
        async with offline_services(url, START) as services:
            if prepare is not None:
                await prepare(services)
            with counting_statements() as seen:
                await surface(services)
        counts[(contracts, weeks)] = len(seen)
    return counts


def assert_constant(counts: dict[tuple[int, int], int], most: int = 30) -> None:
    assert len(set(counts.values())) == 1, counts
    assert counts[SIZES[0]] <= most, counts  # a couple of dozen, whatever the size


async def summary_of(services: Services, viewer: str) -> ChartsToShow:
    """What `/contract summary` reads and builds, charts included (none drawn)."""
    async with services.sessions() as session:
        await read_only(session)
        found = await contract_to_show(
            session=session, viewer=viewer, leader=LEADER, load=load_summary
        )
        assert not isinstance(found, Refusal)
        shown = await summary_view(session=session, bundle=found, version=None)
        at = await charts_at(session=session, contract_ids=[found.contract.id or 0])
    assert not isinstance(shown, Refusal)
    assert build_contract_summary(shown, today=services.today())
    return await charts_to_show(services=services, at=at)


async def home_of(services: Services) -> ChartsToShow:
    """What App Home reads and builds, charts included (none drawn)."""
    async with services.sessions() as session:
        await read_only(session)
        home = await load_home(session=session, viewer=OWNER)
    assert home.bundles and home.charts
    known = await charts_to_show(services=services, at=home.charts, limit=HOME_CHARTS)
    assert build_home(
        viewer=OWNER, bundles=home.bundles, today=services.today(), charts=by_contract(known.kept)
    ).to_dict()
    return known


async def uploaded(services: Services, read: Callable[[], Awaitable[ChartsToShow]]) -> None:
    """The charts `read` shows drawn and uploaded once (their files kept, as `draw_charts`
    leaves them, without Slack), then read again: all known at their histories."""
    known = await read()
    assert known.rest
    await keep_chart_files(services.sessions, (c for w in known.rest for c in w.charts))
    again = await read()
    assert not again.rest and again.kept


Loaded = Counter[str]


@contextmanager
def rows_loaded() -> Iterator[Loaded]:
    """How many values and check-ins the ORM loads meanwhile."""
    loaded: Loaded = Counter()

    def note(target: object, _context: object) -> None:
        loaded[type(target).__name__] += 1

    for model in (Measurement, CheckIn):
        event.listen(model, "load", note)
    try:
        yield loaded
    finally:
        for model in (Measurement, CheckIn):
            event.remove(model, "load", note)


@pytest.mark.parametrize("viewer", [LEADER, OWNER])
async def test_the_summary(sqlite_template: Path, tmp_path: Path, viewer: str) -> None:
    """Its history changed since its charts were drawn (here: never drawn): the whole
    history is read as well, once, for the charts (the text's statements and the whole
    bundle's, a few dozen)."""

    async def surface(services: Services) -> None:
        assert (await summary_of(services, viewer)).rest

    assert_constant(await statements(sqlite_template, tmp_path, surface), most=40)


@pytest.mark.parametrize("viewer", [LEADER, OWNER])
async def test_the_summary_of_a_history_charted(
    sqlite_template: Path, tmp_path: Path, viewer: str
) -> None:
    """Its charts known at the history's number: shown from their files, and of the history
    only what the text shows is read (two values an indicator, a few check-ins)."""

    async def prepare(services: Services) -> None:
        await uploaded(services, lambda: summary_of(services, viewer))

    async def surface(services: Services) -> None:
        with rows_loaded() as loaded:
            known = await summary_of(services, viewer)
        assert known.kept and not known.rest
        # One contract of two indicators: their two newest values, the check-ins of the
        # confidence trend and the latest words.
        assert loaded["Measurement"] <= RECENT_VALUES * 2, loaded
        assert loaded["CheckIn"] <= TREND_WEEKS + 1, loaded

    assert_constant(await statements(sqlite_template, tmp_path, surface, prepare=prepare))


async def test_app_home(sqlite_template: Path, tmp_path: Path) -> None:
    """Its charted contracts' histories changed since their charts were drawn (here: never
    drawn): read whole as well, in one go however many are charted."""

    async def surface(services: Services) -> None:
        assert (await home_of(services)).rest

    assert_constant(await statements(sqlite_template, tmp_path, surface), most=45)


async def test_app_home_of_histories_charted(sqlite_template: Path, tmp_path: Path) -> None:
    """Its charted contracts' charts known at their histories' numbers: of the histories
    only what the list shows is read (each indicator's two newest values, no check-in)."""
    loads: list[Loaded] = []

    async def prepare(services: Services) -> None:
        await uploaded(services, lambda: home_of(services))

    async def surface(services: Services) -> None:
        with rows_loaded() as loaded:
            known = await home_of(services)
        assert known.kept and not known.rest
        loads.append(loaded)

    assert_constant(await statements(sqlite_template, tmp_path, surface, prepare=prepare))
    # The organisations of SIZES: each contract has two indicators.
    for (contracts, _weeks), loaded in zip(SIZES, loads, strict=True):
        assert loaded["Measurement"] <= RECENT_VALUES * 2 * contracts, loaded
        assert loaded["CheckIn"] == 0, loaded


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
