"""Charts shown in Slack: each drawn off the event loop and uploaded once per set of data.

A chart's Slack file is kept by (contract, subject, hash of the data drawn). An unchanged
chart is shown from that file; a changed one is drawn in a worker thread, uploaded with
`files_upload_v2` and kept. Requests for the same chart in one process wait for one upload
(a lock per chart); across processes the unique constraint decides and the loser shows the
winner's file. The files are uploaded without a channel, so they stay private to the bot,
which may still show them in image blocks (`slack_file`): Slack asks only that the poster
has access to the file.

A chart Slack would not take is left out, with a warning in the log: the text of the
summary, App Home or digest is always shown.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence

from slack_sdk.web.async_client import AsyncWebClient

from bot.charts.model import Chart, ShownChart, data_hash
from bot.services import Services
from storage.db import read_only
from storage.queries.charts import (
    cached_file_ids,
    chart_file_id,
    forget_chart_files,
    keep_chart_file,
)

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
