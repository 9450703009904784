"""Charts shown in Slack: each drawn off the event loop and uploaded once per set of data.

A chart's Slack file is kept by (contract, subject, hash of the data drawn). An unchanged
chart is shown from that file; a changed one is drawn in a worker thread, uploaded with
`files_upload_v2` and kept. Requests for the same chart in one process wait for one upload
(a lock per chart); across processes the unique constraint decides and the loser shows the
winner's file. The files are uploaded without a channel, so they stay private to the bot,
which may still show them in image blocks (`slack_file`): Slack asks only that the poster
has access to the file.

A summary knows its charts without reading the history they draw: `charts_at` reads the
number of the contract's history (bumped by database triggers on every write of what a chart
draws: `storage.models.ContractHistory`) and the charts drawn at it (`ChartSet`: subject,
title, alt text, hash); when each has its file, they are shown as they are. Otherwise
`charts_to_show` reads the number again, then the whole history, shows the charts as
above and keeps them as drawn at that number: read before the history, it can only be
older than what was drawn, never newer, so a set never stands for charts older than itself.

A chart Slack would not take is left out, with a warning in the log: the text of the
summary, App Home or digest is always shown.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.charts.model import DRAWING_VERSION, Chart, ShownChart, charts_of, data_hash, within
from bot.services import Services
from storage.db import read_only
from storage.queries.charts import (
    DrawnSet,
    cached_file_ids,
    chart_file_id,
    chart_sets,
    forget_chart_files,
    history_versions,
    keep_chart_file,
    keep_chart_sets,
)
from storage.queries.contracts import load_bundles

logger = logging.getLogger(__name__)


def draw_png(chart: Chart) -> bytes:
    """`bot.charts.draw.draw`, imported on the first chart drawn (in a worker thread), not at
    start: matplotlib is some 60 MiB a process that never draws need not hold."""
    from bot.charts.draw import draw

    return draw(chart)


ChartKey = tuple[int, str, str]
_LOCKS: weakref.WeakValueDictionary[ChartKey, asyncio.Lock] = weakref.WeakValueDictionary()


def _key(chart: Chart) -> ChartKey:
    return (chart.contract_id, chart.subject, data_hash(chart))


async def kept_charts(
    *, services: Services, charts: Sequence[Chart]
) -> tuple[list[ShownChart], bool]:
    """The charts already uploaded, in order, and whether that is all of them: what can be
    shown at once, without drawing or uploading anything."""
    if not charts:
        return [], True
    keys = [_key(chart) for chart in charts]
    cached = await cached_file_ids(sessions=services.sessions, keys=keys)
    shown = [
        ShownChart(chart.contract_id, chart.subject, cached[key], chart.title, chart.alt_text)
        for chart, key in zip(charts, keys, strict=True)
        if key in cached
    ]
    return shown, len(shown) == len(charts)


@dataclass(frozen=True, slots=True)
class ChartsAt:
    """A contract's charts as known from the number of its history now: those drawn at it
    (subject, title, alt text, data hash each, in order), or None when none were yet."""

    contract_id: int
    drawn: list[dict[str, str]] | None


async def charts_at(*, session: AsyncSession, contract_ids: Sequence[int]) -> list[ChartsAt]:
    """What is known of each contract's charts, in one statement whatever their history."""
    drawn = await chart_sets(session=session, contract_ids=contract_ids, drawing=DRAWING_VERSION)
    return [ChartsAt(cid, drawn.get(cid)) for cid in contract_ids]


@dataclass(frozen=True, slots=True)
class ContractCharts:
    """Every chart of a contract, from its whole history, and the number of that history
    (read first)."""

    contract_id: int
    history: int
    charts: list[Chart]


@dataclass(frozen=True, slots=True)
class ChartsToShow:
    """The charts shown at once, in order, and the contracts with charts left to draw."""

    kept: list[ShownChart]
    rest: list[ContractCharts]


def _entry(drawn: dict[str, str]) -> str:
    return drawn["subject"]


def _subject(chart: Chart) -> str:
    return chart.subject


async def charts_to_show(
    *, services: Services, at: Sequence[ChartsAt], limit: int | None = None
) -> ChartsToShow:
    """The charts of those contracts (of each the first `limit` indicators' and the
    confidence sparkline) that can be shown at once, and what is left to draw.

    A contract whose charts are known at its history's number, each with its file, is shown
    without reading its history. The others' whole histories are read (once after each
    change, in one go), their unchanged charts shown from their files, and where every chart
    shown has one the set is kept as drawn at that number; the rest is left to `draw_charts`."""
    known = {a.contract_id: within(a.drawn, limit, _entry) for a in at if a.drawn is not None}
    keys = [(cid, d["subject"], d["data_hash"]) for cid, drawn in known.items() for d in drawn]
    files = await cached_file_ids(sessions=services.sessions, keys=keys)
    shown: dict[int, list[ShownChart]] = {}
    for cid, drawn in known.items():
        if all((cid, d["subject"], d["data_hash"]) in files for d in drawn):
            shown[cid] = [
                ShownChart(
                    cid,
                    d["subject"],
                    files[(cid, d["subject"], d["data_hash"])],
                    d["title"],
                    d["alt_text"],
                )
                for d in drawn
            ]
    unknown = [a.contract_id for a in at if a.contract_id not in shown]
    rest: list[ContractCharts] = []
    if unknown:
        async with services.sessions() as session:
            await read_only(session)
            numbers = await history_versions(session=session, contract_ids=unknown)
            bundles = await load_bundles(session=session, contracts=unknown)
        wholes = [
            ContractCharts(b.contract.id or 0, numbers[b.contract.id or 0], charts_of(b))
            for b in bundles
        ]
        wanted = {w.contract_id: within(w.charts, limit, _subject) for w in wholes}
        kept, _ = await kept_charts(
            services=services, charts=[c for charts in wanted.values() for c in charts]
        )
        for chart in kept:
            shown.setdefault(chart.contract_id, []).append(chart)
        done = {
            w.contract_id
            for w in wholes
            if len(shown.get(w.contract_id, [])) == len(wanted[w.contract_id])
        }
        await _keep_sets(services, [w for w in wholes if w.contract_id in done])
        rest = [w for w in wholes if w.contract_id not in done]
    return ChartsToShow([c for a in at for c in shown.get(a.contract_id, [])], rest)


async def draw_charts(
    *, services: Services, client: AsyncWebClient, known: ChartsToShow, limit: int | None = None
) -> list[ShownChart]:
    """Every chart `charts_to_show` found, in order: those left to draw drawn and uploaded
    (any that could not be uploaded left out), their sets kept as drawn at their histories."""
    redrawn = {w.contract_id for w in known.rest}
    drawn = await show_charts(
        services=services,
        client=client,
        charts=[c for w in known.rest for c in within(w.charts, limit, _subject)],
    )
    await _keep_sets(services, known.rest)
    return [c for c in known.kept if c.contract_id not in redrawn] + drawn


async def _keep_sets(services: Services, wholes: Sequence[ContractCharts]) -> None:
    await keep_chart_sets(
        sessions=services.sessions,
        drawing=DRAWING_VERSION,
        drawn=[
            DrawnSet(
                w.contract_id,
                w.history,
                [
                    {
                        "subject": c.subject,
                        "title": c.title,
                        "alt_text": c.alt_text,
                        "data_hash": data_hash(c),
                    }
                    for c in w.charts
                ],
            )
            for w in wholes
        ],
    )


async def forget_charts(*, services: Services, shown: Sequence[ShownChart]) -> None:
    """Forget charts Slack refused to show (their file was deleted): drawn again next time."""
    await forget_chart_files(sessions=services.sessions, file_ids=[c.file_id for c in shown])


async def show_charts(
    *, services: Services, client: AsyncWebClient, charts: Sequence[Chart]
) -> list[ShownChart]:
    """The charts as uploaded files, in order; those that could not be uploaded left out."""
    if not charts:
        return []
    keys = [_key(chart) for chart in charts]
    cached = await cached_file_ids(sessions=services.sessions, keys=keys)
    missing = [(chart, key) for chart, key in zip(charts, keys, strict=True) if key not in cached]
    uploaded = await asyncio.gather(
        *(_upload_once(services, client, chart, key) for chart, key in missing)
    )
    files = cached | {key: file_id for (_, key), file_id in zip(missing, uploaded, strict=True)}
    return [
        ShownChart(chart.contract_id, chart.subject, file_id, chart.title, chart.alt_text)
        for chart, key in zip(charts, keys, strict=True)
        if (file_id := files.get(key))
    ]


async def _upload_once(
    services: Services, client: AsyncWebClient, chart: Chart, key: ChartKey
) -> str | None:
    lock = _LOCKS.get(key)
    if lock is None:
        lock = _LOCKS[key] = asyncio.Lock()
    async with lock:
        async with services.sessions() as session:
            await read_only(session)
            kept = await chart_file_id(
                session=session, contract_id=key[0], subject=key[1], data_hash=key[2]
            )
        if kept is not None:
            return kept
        try:
            png = await asyncio.to_thread(draw_png, chart)
            file_id = await upload_png(client, chart, key, png)
        except Exception:
            logger.warning("Could not draw or upload the chart %s", key[:2], exc_info=True)
            return None
        return await keep_chart_file(
            sessions=services.sessions,
            contract_id=key[0],
            subject=key[1],
            data_hash=key[2],
            file_id=file_id,
        )


async def upload_png(client: AsyncWebClient, chart: Chart, key: ChartKey, png: bytes) -> str:
    """Upload a drawn chart, private to the bot (no channel); its file id."""
    response = await client.files_upload_v2(
        filename=f"chart-{key[0]}-{key[1]}-{key[2][:12]}.png",
        content=png,
        title=chart.title[:250],
        alt_txt=chart.alt_text[:1000],
    )
    files = response.get("files") or []
    return str(files[0]["id"])
