"""Slack's limits: long text, many items, many blocks."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, DividerBlock, SectionBlock

from bot.core.text import truncate
from bot.ui.blocks import (
    MESSAGE_BLOCKS,
    SECTION_TEXT,
    capped,
    fit_view,
    section,
    sections,
    split_messages,
)


def test_truncate_marks_the_cut() -> None:
    assert truncate("abcdef", 4) == "abc…"
    assert truncate("abc", 4) == "abc"


def test_sections_never_exceed_the_text_limit() -> None:
    lines = [f"line {n} " + "x" * 400 for n in range(30)]
    blocks = sections("Title", lines)
    assert len(blocks) > 1
    for block in blocks:
        assert isinstance(block, SectionBlock)
        block.to_dict()  # runs slack_sdk's validation
        assert block.text is not None and len(block.text.text) <= SECTION_TEXT
    joined = "\n".join(b.text.text for b in blocks if isinstance(b, SectionBlock) and b.text)
    assert all(f"line {n} " in joined for n in range(30))


def test_a_single_overlong_line_is_cut() -> None:
    (block,) = sections(None, ["y" * 10_000])
    block.to_dict()


def test_capped_announces_the_rest() -> None:
    assert capped(["a", "b", "c"], 2) == ["a", "b", "_…and 1 more_"]


def test_split_messages_respects_the_block_limit_and_keeps_everything() -> None:
    blocks: list[Block] = []
    for n in range(130):
        blocks.append(section(f"item {n}"))
        if n % 7 == 6:
            blocks.append(DividerBlock())
    messages = split_messages(blocks)
    assert all(0 < len(m) <= MESSAGE_BLOCKS for m in messages)
    texts = [b.text.text for m in messages for b in m if isinstance(b, SectionBlock) and b.text]
    assert texts == [f"item {n}" for n in range(130)]
    assert not any(
        isinstance(m[0], DividerBlock) or isinstance(m[-1], DividerBlock) for m in messages
    )


def test_fit_view_keeps_100_blocks() -> None:
    blocks = fit_view([section(str(n)) for n in range(150)])
    assert len(blocks) == 100
