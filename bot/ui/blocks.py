"""Block Kit helpers that keep every surface inside Slack's limits."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.core.text import truncate

MESSAGE_BLOCKS = 50
# Slack refuses a message whose blocks carry too much text in all (`msg_blocks_too_long`).
# The limit is not documented: posts were refused from about 13,200 characters of block
# text (bolt-js#2509) and, with heavier blocks, already at 11,341 (bolt-js#2867), where
# Slack's staff spoke of 12,000 with a buffer for the blocks' own structure. 10,000 keeps
# clear of all three; a message is also cut when its blocks pass it.
MESSAGE_TEXT_BUDGET = 10_000
VIEW_BLOCKS = 100
VIEW_STACK = 3  # modals a view stack holds: a modal and two pushed on it
SECTION_TEXT = 3000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
MODAL_TITLE = 24
OPTION_TEXT = 75
LIST_CAP = 12


def mention(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "nobody"


def day(value: date | None) -> str:
    return value.strftime("%-d %b %Y") if value else "no date"


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=truncate(text, HEADER_TEXT)))


def context(*parts: str) -> ContextBlock:
    elements = [MarkdownTextObject(text=truncate(p, SECTION_TEXT)) for p in parts if p]
    return ContextBlock(elements=elements[:CONTEXT_ELEMENTS])


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_TEXT)))


def capped(lines: Sequence[str], cap: int = LIST_CAP, *, noun: str = "more") -> list[str]:
    """At most `cap` lines, the rest announced as "…and N more"."""
    if len(lines) <= cap:
        return list(lines)
    return [*lines[:cap], f"_…and {len(lines) - cap} {noun}_"]


def sections(title: str | None, lines: Iterable[str]) -> list[Block]:
    """Lines packed into as few section blocks as the 3000-character limit allows.

    `title` is text without formatting of its own (escaped where it holds user text):
    it is bolded here, and a title already bold would reach Slack as `**E2* …*`."""
    blocks: list[Block] = []
    current = f"*{title}*" if title else ""
    for line in lines:
        line = truncate(line, SECTION_TEXT - 2)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > SECTION_TEXT:
            blocks.append(section(current))
            candidate = line
        current = candidate
    if current:
        blocks.append(section(current))
    return blocks


def text_length(block: Block | dict[str, Any] | list[Any]) -> int:
    """How many characters of text a block (or a list of them, as dicts) carries: every
    `text` string in it (section and context text, fields, button labels...), which is what
    `MESSAGE_TEXT_BUDGET` counts."""
    found = 0
    stack: list[Any] = [block.to_dict() if isinstance(block, Block) else block]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            text = node.get("text")
            found += len(text) if isinstance(text, str) else 0
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(node)
    return found


def split_messages(
    blocks: Sequence[Block],
    limit: int = MESSAGE_BLOCKS,
    text_budget: int = MESSAGE_TEXT_BUDGET,
    *,
    size_of: Callable[[Block], int] = text_length,
) -> list[list[Block]]:
    """Blocks cut into messages of at most `limit` blocks and about `text_budget` characters
    of text (`size_of`: `text_length`, or the same from dicts the caller already made),
    preferring to cut at a divider."""
    messages: list[list[Block]] = []
    current: list[tuple[Block, int]] = []
    for block in blocks:
        size = size_of(block)
        while current and (
            len(current) >= limit or sum(n for _, n in current) + size > text_budget
        ):
            cut = _last_divider([b for b, _ in current])
            messages.append([b for b, _ in current[:cut]])
            current = current[cut:]
        current.append((block, size))
    if current:
        messages.append([b for b, _ in current])
    return [m for m in (_strip_dividers(m) for m in messages) if m]


def fit_view(blocks: Sequence[Block], limit: int = VIEW_BLOCKS) -> list[Block]:
    """Blocks for a modal or Home tab: past the limit, the tail is replaced by a note."""
    if len(blocks) <= limit:
        return list(blocks)
    kept = list(blocks[: limit - 1])
    return [*kept, context(f"_…and {len(blocks) - len(kept)} more blocks not shown here._")]


def _last_divider(blocks: Sequence[Block]) -> int:
    for index in range(len(blocks) - 1, len(blocks) // 2, -1):
        if isinstance(blocks[index], DividerBlock):
            return index
    return len(blocks)


def _strip_dividers(blocks: list[Block]) -> list[Block]:
    while blocks and isinstance(blocks[0], DividerBlock):
        blocks = blocks[1:]
    while blocks and isinstance(blocks[-1], DividerBlock):
        blocks = blocks[:-1]
    return blocks
