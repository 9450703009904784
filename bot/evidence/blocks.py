"""Block Kit for evidence: the modal (from a message or not) and the summary's evidence lines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from slack_sdk.models.blocks import (
    Block,
    InputBlock,
    Option,
    OptionGroup,
    PlainTextInputElement,
    PlainTextObject,
    StaticSelectElement,
    UrlInputElement,
)
from slack_sdk.models.views import View

from bot.core.text import escape, truncate
from bot.evidence.model import (
    ITEM_LABEL,
    ITEM_TYPES,
    LATEST_SHOWN,
    NOTE_MAX,
    URL,
    SourceMessage,
    item_value,
    items_of,
    stale_items,
)
from bot.ui.blocks import MODAL_TITLE, capped, context, day, section
from bot.ui.forms import option
from bot.ui.metadata import EvidenceModal
from storage.queries.contracts import ContractBundle

EVIDENCE_MODAL = "evidence_add"
CONTRACT_PICK = "evidence_contract"


def contract_label(bundle: ContractBundle, viewer: str) -> str:
    c = bundle.contract
    return f"Your contract: {c.title}" if c.leader_id == viewer else c.title


def _contract_option(bundle: ContractBundle, viewer: str) -> Option:
    return option(str(bundle.contract.id), contract_label(bundle, viewer))


def metadata(contract_id: int, source: str | None) -> str:
    """Ids only: the contract shown and the server's token for a shortcut's message."""
    return EvidenceModal.write(contract_id=contract_id, source=source)


def build_evidence_modal(
    bundles: Sequence[ContractBundle],
    *,
    viewer: str,
    selected: ContractBundle,
    message: SourceMessage | None,
    source: str | None = None,
) -> View:
    """Contract (picked when there are several), the item it supports, a note; a link too
    when it does not come from a message. `source` is the token of the kept message."""
    blocks: list[Block] = []
    if message is not None:
        blocks.append(context(f"*Message:* {escape(message.excerpt) or '_(no text)_'}"))
    if len(bundles) > 1:
        options = [_contract_option(b, viewer) for b in bundles[:100]]
        chosen = next((o for o in options if o.value == str(selected.contract.id)), None)
        blocks.append(
            InputBlock(
                block_id=CONTRACT_PICK,
                label="Contract",
                dispatch_action=True,
                element=StaticSelectElement(
                    action_id=CONTRACT_PICK, options=options, initial_option=chosen
                ),
            )
        )
    else:
        c = selected.contract
        blocks.append(context(f"*Contract:* <@{c.leader_id}> · {escape(truncate(c.title, 200))}"))
    groups = []
    items = items_of(selected)
    budget = 100
    for item_type in ITEM_TYPES:
        options = [
            option(item_value(item_type, key), f"{key} · {name}")
            for key, name in items[item_type][:budget]
        ]
        budget -= len(options)
        if options:
            groups.append(OptionGroup(label=ITEM_LABEL[item_type], options=options))
    blocks.append(
        InputBlock(
            block_id="item",
            label="The item it supports",
            element=StaticSelectElement(action_id="item", option_groups=groups),
        )
    )
    blocks.append(
        InputBlock(
            block_id="note",
            label="Note",
            optional=message is not None,
            hint="What it shows, in a sentence.",
            element=PlainTextInputElement(action_id="note", multiline=True, max_length=NOTE_MAX),
        )
    )
    if message is None:
        blocks.append(
            InputBlock(
                block_id="link",
                label="Link",
                optional=True,
                element=UrlInputElement(action_id="link"),
            )
        )
    return View(
        type="modal",
        callback_id=EVIDENCE_MODAL,
        title=PlainTextObject(text=truncate("Add evidence", MODAL_TITLE)),
        submit="Add",
        close="Cancel",
        private_metadata=metadata(selected.contract.id or 0, source if message else None),
        blocks=blocks,
    )


def build_evidence_done(bundle: ContractBundle, item_type: str, key: str) -> View:
    c = bundle.contract
    return View(
        type="modal",
        callback_id=f"{EVIDENCE_MODAL}_done",
        title=PlainTextObject(text="Evidence added"),
        close="Done",
        blocks=[
            section(
                f"Added to *{escape(key)}* ({item_type}) of <@{c.leader_id}>'s contract "
                f"“{escape(truncate(c.title, 200))}”. Summaries and App Home count it."
            )
        ],
    )


# --- evidence in a summary ------------------------------------------------------------------


def _latest_line(bundle: ContractBundle, index: int) -> str:
    e = bundle.recent_evidence[index]
    where = f"<{e.url}|message>" if e.url and URL.match(e.url) else ""
    text = escape(truncate(e.note or e.excerpt, 120))
    parts = [
        f"*{escape(e.item_key)}*",
        where,
        text,
        f"by {'<@' + e.added_by + '>' if e.added_by else 'someone'}",
        day(e.created_at.date()),
    ]
    return "• " + " · ".join(p for p in parts if p)


def evidence_lines(bundle: ContractBundle, today: date) -> list[str]:
    """The summary's evidence section: counts per item, the latest pieces, stale items."""
    if not bundle.evidence_counts and not bundle.indicators and not bundle.expectations:
        return []
    order = {t: i for i, t in enumerate(ITEM_TYPES)}
    counts = sorted(
        bundle.evidence_counts.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])
    )
    lines = []
    total = sum(bundle.evidence_counts.values())
    if counts:
        per_item = " · ".join(f"{escape(key)} {n}" for (_, key), n in counts)
        lines.append(f"{total} piece{'s' if total != 1 else ''}: {per_item}")
    else:
        lines.append("_None yet: add some with the “Add as evidence” message shortcut._")
    lines += capped(
        [_latest_line(bundle, i) for i in range(min(LATEST_SHOWN, len(bundle.recent_evidence)))]
    )
    stale = stale_items(bundle, today)
    if stale:
        keys = ", ".join(escape(key) for _, key in sorted(stale, key=lambda t: (order[t[0]], t[1])))
        lines.append(f"🕸️ No evidence in 30 days: {keys}")
    return lines


def evidence_headline(bundle: ContractBundle, today: date) -> str:
    """One line for App Home: how much evidence, and how many items are stale."""
    total = sum(bundle.evidence_counts.values())
    stale = stale_items(bundle, today)
    text = f"{total} piece{'s' if total != 1 else ''} of evidence"
    if stale:
        text += f" · {len(stale)} item{'s' if len(stale) != 1 else ''} with none in 30 days"
    return text
