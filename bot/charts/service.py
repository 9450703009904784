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
`summary_charts` reads the number again, then the whole history, shows the charts as
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

from bot.charts.model import DRAWING_VERSION, Chart, ShownChart, charts_of, data_hash
from bot.services import Services
from storage.db import read_only
from storage.queries.charts import (
    cached_file_ids,
    chart_file_id,
    chart_set,
    forget_chart_files,
    history_version,
    keep_chart_file,
    keep_chart_set,
)
from storage.queries.contracts import load_bundle

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


async def charts_at(*, session: AsyncSession, contract_id: int) -> ChartsAt:
    """What is known of the contract's charts, in one statement whatever its history."""
    drawn = await chart_set(session=session, contract_id=contract_id, drawing=DRAWING_VERSION)
    return ChartsAt(contract_id, drawn)


async def known_charts(*, services: Services, at: ChartsAt) -> tuple[list[ShownChart], bool]:
    """The charts drawn at this history whose files are kept, in order, and whether that is
    all of them (False when none were drawn at it yet)."""
    if at.drawn is None:
        return [], False
    keys = [(at.contract_id, d["subject"], d["data_hash"]) for d in at.drawn]
    cached = await cached_file_ids(sessions=services.sessions, keys=keys)
    shown = [
        ShownChart(at.contract_id, d["subject"], cached[key], d["title"], d["alt_text"])
        for d, key in zip(at.drawn, keys, strict=True)
        if key in cached
    ]
    return shown, len(shown) == len(at.drawn)


@dataclass(frozen=True, slots=True)
class ContractCharts:
    """Every chart of a contract, from its whole history, and the number of that history
    (read first)."""

    contract_id: int
    history: int
    charts: list[Chart]


async def summary_charts(
    *, services: Services, at: ChartsAt
) -> tuple[list[ShownChart], ContractCharts | None]:
    """The charts a summary shows at once, and those left to draw (None when none are).

    Known at this history, they are shown without reading it; otherwise the whole history
    is read (once after each change), the charts unchanged since are shown from their files,
    and those changed are left to `draw_charts`."""
    kept, complete = await known_charts(services=services, at=at)
    if complete:
        return kept, None
    async with services.sessions() as session:
        await read_only(session)
        history = await history_version(session=session, contract_id=at.contract_id)
        bundle = await load_bundle(session=session, contract_id=at.contract_id)
    if bundle is None:
        return [], None
    whole = ContractCharts(at.contract_id, history, charts_of(bundle))
    kept, complete = await kept_charts(services=services, charts=whole.charts)
    if not complete:
        return kept, whole
    await _keep_set(services, whole)
    return kept, None


async def draw_charts(
    *, services: Services, client: AsyncWebClient, whole: ContractCharts
) -> list[ShownChart]:
    """The contract's charts, those not uploaded yet drawn and uploaded, kept as drawn at
    their history."""
    shown = await show_charts(services=services, client=client, charts=whole.charts)
    await _keep_set(services, whole)
    return shown


async def _keep_set(services: Services, whole: ContractCharts) -> None:
    await keep_chart_set(
        sessions=services.sessions,
        contract_id=whole.contract_id,
        history=whole.history,
        drawing=DRAWING_VERSION,
        charts=[
            {
                "subject": c.subject,
                "title": c.title,
                "alt_text": c.alt_text,
                "data_hash": data_hash(c),
            }
            for c in whole.charts
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
