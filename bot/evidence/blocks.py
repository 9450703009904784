"""Block Kit for evidence: the modal (from a message or not) and the summary's evidence lines."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

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

from bot.contracts.blocks import Form, metadata_of
from bot.evidence.service import (
    ITEM_LABEL,
    ITEM_TYPES,
    NOTE_MAX,
    URL,
    URL_MAX,
    SourceMessage,
    item_value,
    items_of,
    parse_item,
)
from bot.ui.blocks import MODAL_TITLE, OPTION_TEXT, context, escape, section, truncate
from bot.ui.metadata import record_id
from storage.queries.contracts import ContractBundle

TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
EVIDENCE_MODAL = "evidence_add"
CONTRACT_PICK = "evidence_contract"


def _option(value: str, label: str) -> Option:
    return Option(value=value, label=truncate(label, OPTION_TEXT))


def contract_label(bundle: ContractBundle, viewer: str) -> str:
    c = bundle.contract
    return f"Your contract: {c.title}" if c.leader_id == viewer else c.title


def _contract_option(bundle: ContractBundle, viewer: str) -> Option:
    return _option(str(bundle.contract.id), contract_label(bundle, viewer))


def metadata(contract_id: int, source: str | None) -> str:
    """Ids only: the contract shown and the server's token for a shortcut's message."""
    return json.dumps({"contract_id": contract_id, "source": source})


def read_metadata(view: dict[str, Any]) -> tuple[int | None, str | None]:
    """(contract id, source token) from the modal's private_metadata; None where absent."""
    data = metadata_of(view)
    source = data.get("source")
    token = source if isinstance(source, str) and TOKEN.fullmatch(source) else None
    return record_id(data.get("contract_id")), token


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
            _option(item_value(item_type, key), f"{key} · {name}")
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


def parse_evidence(
    view: dict[str, Any], *, has_message: bool
) -> tuple[tuple[int | None, str, str, str, str | None] | None, dict[str, str]]:
    """(contract id or None, item type, item key, note, link) or field errors."""
    form = Form(view)
    errors: dict[str, str] = {}
    contract_id = record_id(form.option(CONTRACT_PICK))
    item = parse_item(form.option("item"))
    if item is None:
        errors["item"] = "Choose the indicator, activity or expectation it supports."
    note = form.text("note")
    if len(note) > NOTE_MAX:
        errors["note"] = f"Keep it to {NOTE_MAX} characters (this is {len(note)})."
    link = None if has_message else form.text("link") or None
    if link is not None and (len(link) > URL_MAX or not URL.match(link)):
        errors["link"] = "Give a web address starting with https://"
    if not has_message and not note and "note" not in errors:
        errors["note"] = "Say what it shows: evidence without a message needs a note."
    if errors or item is None:
        return None, errors
    return (contract_id, item[0], item[1], note, link), {}


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
