"""Charts as Block Kit image blocks, each naming its uploaded Slack file."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, ImageBlock

from bot.charts.model import ALT_TEXT_LIMIT, TITLE_LIMIT, ShownChart
from bot.core.text import truncate


def chart_blocks(shown: Sequence[ShownChart]) -> list[Block]:
    """An image block per chart: title and alt text are plain text, never markup."""
    return [
        ImageBlock(
            slack_file={"id": chart.file_id},
            alt_text=truncate(chart.alt_text, ALT_TEXT_LIMIT),
            title=truncate(chart.title, TITLE_LIMIT),
        )
        for chart in shown
    ]
