"""What evidence's surfaces send back: a shortcut's message, the modal's metadata and fields."""

from __future__ import annotations

from typing import Any

from bot.evidence.blocks import CONTRACT_PICK
from bot.evidence.model import EXCERPT_MAX, NOTE_MAX, URL, URL_MAX, SourceMessage, parse_item
from bot.ui.forms import Form
from bot.ui.metadata import EvidenceModal, record_id


def read_metadata(view: dict[str, Any]) -> tuple[int | None, str | None]:
    """(contract id, source token) from the modal's private_metadata; None where absent."""
    found = EvidenceModal.of_view(view) or EvidenceModal()
    return found.contract_id, found.source


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


def _block_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") == "text" and "text" in node else []
        if isinstance(node.get("text"), dict):
            found += _block_texts(node["text"])
        elif isinstance(node.get("text"), str) and node.get("type") in ("mrkdwn", "plain_text"):
            found.append(node["text"])
        for key in ("elements", "fields", "blocks"):
            found += _block_texts(node.get(key))
        return found
    if isinstance(node, list):
        return [text for item in node for text in _block_texts(item)]
    return []


def excerpt_of(message: dict[str, Any], limit: int = EXCERPT_MAX) -> str:
    """The message's words, whitespace folded, cut to `limit` characters."""
    text = message.get("text") or " ".join(_block_texts(message.get("blocks") or []))
    folded = " ".join(str(text).replace("\x00", "").split())
    return folded if len(folded) <= limit else folded[: limit - 1].rstrip() + "…"


def source_of(body: dict[str, Any]) -> SourceMessage:
    """The message of a message-shortcut payload."""
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or ""
    return SourceMessage(
        channel=channel,
        ts=str(message.get("ts") or body.get("message_ts") or ""),
        excerpt=excerpt_of(message),
    )
