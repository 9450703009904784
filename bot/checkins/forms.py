"""What a check-in modal and the prompt's buttons send back, read into the check-in's types."""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from bot.checkins.blocks import (
    ACTIONS_BLOCK,
    CONFIRM_PREFIX,
    CONFIRM_VALUE,
    EVIDENCE_SLOTS,
    NOTE_MAX,
    RISK_MAX,
    RISK_SLOTS,
    STILL_PREFIX,
    TEXT_MAX,
    URL_MAX,
    unit_suffix,
)
from bot.checkins.model import (
    Answers,
    EvidenceAnswer,
    IndicatorAsk,
    Plan,
    RiskAnswer,
    RiskUpdate,
)
from bot.core import rules
from bot.core.progress import format_number
from bot.core.rules import value_range
from bot.risks.model import NOTE_MAX as RISK_NOTE_MAX
from bot.risks.model import RiskStatus
from bot.ui.blocks import day
from bot.ui.forms import Form, input_block_ids
from bot.ui.metadata import CheckinPage, CheckinRef, record_id
from storage.models import ActivityStatus, SuccessIndicator


def modal_target(view: dict[str, Any]) -> CheckinPage | None:
    """The check-in period and page a modal's private_metadata names, or None."""
    return CheckinPage.of_view(view)


USER_ID = re.compile(r"[UW][A-Z0-9]{2,31}")


def url_problem(url: str) -> str | None:
    if len(url) > URL_MAX:
        return f"Keep the link to {URL_MAX} characters."
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        return "That is not a web link: it should look like https://example.com/page."
    return None


def _value(
    form: Form, errors: dict[str, str], block_id: str, indicator: SuccessIndicator
) -> float | None:
    raw = form.text(block_id)
    if not raw:
        return None
    try:
        value = rules.parse_number(raw)
    except ValueError as problem:
        errors[block_id] = str(problem)
        return None
    low, high = value_range(indicator)
    if (low is not None and value < low) or (high is not None and value > high):
        where = (
            f"from {format_number(low)} to {format_number(high)}"
            if low is not None and high is not None
            else f"at least {format_number(low or 0)}"
        )
        errors[block_id] = f"{indicator.key} must be {where}{unit_suffix(indicator)}."
        return None
    return value


def _confirmation(
    form: Form,
    errors: dict[str, str],
    answers: Answers,
    ask: IndicatorAsk,
    ids: list[str],
) -> None:
    """A ticked "no change" records the last value again, flagged; a different number typed
    beside it is a contradiction the leader resolves."""
    key = ask.indicator.key
    block_id = f"{CONFIRM_PREFIX}{key}"
    if block_id not in ids or CONFIRM_VALUE not in form.options(block_id):
        return
    if ask.previous is None:
        errors[block_id] = f"{key} has no earlier value to confirm: type its value."
        return
    typed = answers.values.get(key)
    if f"ind:{key}" in errors:
        return
    if typed is not None and typed != ask.previous.value:
        errors[f"ind:{key}"] = (
            f"You ticked “no change” ({format_number(ask.previous.value)}"
            f"{unit_suffix(ask.indicator)}): clear this value, or untick it."
        )
        return
    answers.values[key] = ask.previous.value
    answers.confirmed.append(key)


def parse_page(plan: Plan, view: dict[str, Any]) -> tuple[Answers, dict[str, str]]:
    """One page's answers, or field errors keyed by block id."""
    form = Form(view)
    errors: dict[str, str] = {}
    answers = Answers()
    ids = input_block_ids(view)
    for block_id in ids:
        if block_id.startswith("ind:"):
            key = block_id[4:]
            ask = plan.indicator(key)
            if ask is None:
                errors[block_id] = "This indicator is no longer part of your contract."
                continue
            answers.values[key] = _value(form, errors, block_id, ask.indicator)
            _confirmation(form, errors, answers, ask, ids)
        elif block_id.startswith("act:") and block_id.endswith(":status"):
            key = block_id[4:-7]
            activity = plan.activity(key)
            if activity is None:
                errors[block_id] = "This activity is no longer open."
                continue
            status = form.option(block_id) or ""
            if status not in {s.value for s in ActivityStatus}:
                errors[block_id] = "Choose a status."
                continue
            progress_id = f"act:{key}:progress"
            raw = form.text(progress_id)
            progress = activity.progress
            if raw:
                try:
                    number = rules.parse_number(raw)
                except ValueError as problem:
                    errors[progress_id] = str(problem)
                    continue
                if not number.is_integer() or not 0 <= number <= 100:
                    errors[progress_id] = "Progress is a whole number from 0 to 100."
                    continue
                progress = int(number)
            if status == ActivityStatus.done:
                progress = 100
            answers.activities[key] = (status, progress)
    if "confidence" in ids:
        answers.closing = True
        _parse_closing(plan, form, errors, answers, ids)
    return answers, errors


def _parse_closing(
    plan: Plan, form: Form, errors: dict[str, str], answers: Answers, ids: list[str]
) -> None:
    items = plan.item_keys()
    for slot in range(1, EVIDENCE_SLOTS + 1):
        item, url_id, note_id = f"ev{slot}_item", f"ev{slot}_url", f"ev{slot}_note"
        chosen = form.option(item) if item in ids else None
        url, note = form.text(url_id), form.text(note_id)
        if not (chosen or url or note):
            answers.evidence.append(None)
            continue
        if url and (problem := url_problem(url)):
            errors[url_id] = problem
        if len(note) > NOTE_MAX:
            errors[note_id] = f"Keep the note to {NOTE_MAX} characters."
        kind, _, key = (chosen or "").partition(":")
        if not chosen:
            errors[item if item in ids else url_id] = "Choose what this evidence supports."
        elif key not in items.get(kind, set()):
            errors[item] = "Choose one of this contract's indicators, activities or expectations."
        elif not (url or note):
            errors[url_id] = "Add a link or a note for this evidence."
        answers.evidence.append(EvidenceAnswer(kind, key, url or None, note))
    answers.wins = form.text("wins")
    if len(answers.wins) > TEXT_MAX:
        errors["wins"] = f"Keep it to {TEXT_MAX} characters."
    for slot in range(1, RISK_SLOTS + 1):
        text = form.text(f"risk{slot}")
        needs_help = "help" in form.options(f"risk{slot}_help")
        if not text:
            if needs_help:
                errors[f"risk{slot}"] = "Describe the risk you need your sponsor's help with."
            answers.risks.append(None)
            continue
        if len(text) > RISK_MAX:
            errors[f"risk{slot}"] = f"Keep it to {RISK_MAX} characters."
        noticed = _noticed_on(plan, form, errors, f"risk{slot}_noticed")
        owner = form.user(f"risk{slot}_owner")
        if owner is not None and not USER_ID.fullmatch(owner):
            errors[f"risk{slot}_owner"] = "Choose the person who owns this risk."
            owner = None
        answers.risks.append(RiskAnswer(text, needs_help, noticed, owner))
    _parse_carried(plan, form, errors, answers, ids)
    answers.reflection = form.text("reflection")
    if len(answers.reflection) > TEXT_MAX:
        errors["reflection"] = f"Keep it to {TEXT_MAX} characters."
    raw = form.option("confidence")
    if raw is None or not raw.isdigit() or not 1 <= int(raw) <= 5:
        errors["confidence"] = "Choose how confident you are, from 1 to 5."
    else:
        answers.confidence = int(raw)


def _noticed_on(plan: Plan, form: Form, errors: dict[str, str], block_id: str) -> date | None:
    """When the leader first saw a risk: today unless chosen; not in the future, not before
    the contract began (a risk seen earlier is dated to its start, as the contract sees it)."""
    today = plan.today or plan.day
    chosen = form.date(block_id)
    if chosen is None:
        if _raw_date(form, block_id):
            errors[block_id] = "Choose a date from the calendar."
        return today
    if chosen > today:
        errors[block_id] = (
            f"{day(chosen)} is in the future: choose the day you first saw it "
            f"({day(today)} at the latest)."
        )
        return None
    start = plan.contract.period_start
    if chosen < start:
        errors[block_id] = (
            f"Your contract started on {day(start)}: if you saw it before then, "
            f"choose {day(start)}."
        )
        return None
    return chosen


def _raw_date(form: Form, block_id: str) -> bool:
    """Whether a date was sent that is not one (a crafted payload)."""
    return bool(form.raw(block_id, "selected_date"))


def _parse_carried(
    plan: Plan, form: Form, errors: dict[str, str], answers: Answers, ids: list[str]
) -> None:
    """ "Still open?" for each carried risk. A risk that is no longer open (resolved from the
    summary meanwhile) or not this contract's is left alone."""
    allowed = {s.value for s in RiskStatus}
    for block_id in ids:
        if not block_id.startswith(STILL_PREFIX) or block_id.endswith(":note"):
            continue
        risk_id = record_id(block_id[len(STILL_PREFIX) :])
        risk = plan.carried_risk(risk_id) if risk_id is not None else None
        if risk is None or risk_id is None:
            continue
        status = form.option(block_id) or ""
        note_id = f"{block_id}:note"
        note = form.text(note_id)
        if status not in allowed:
            errors[block_id] = "Choose whether it is still open, being mitigated or resolved."
            continue
        if len(note) > RISK_NOTE_MAX:
            errors[note_id] = f"Keep the note to {RISK_NOTE_MAX} characters."
            continue
        if status == RiskStatus.resolved and not note:
            errors[note_id if note_id in ids else block_id] = (
                "Say in a line how it was resolved: the note is kept with the risk."
            )
            continue
        answers.updates[risk_id] = RiskUpdate(status, note)


def first_input(view: dict[str, Any]) -> str:
    ids = input_block_ids(view)
    return ids[0] if ids else "confidence"


def target_of(action: dict[str, Any]) -> tuple[int, str] | None:
    """(contract id, period) from a button's value or, for the skip menu, its block id."""
    if "value" in action:
        found = CheckinRef.read(action.get("value"))
    else:  # the skip menu: its option is the reason, its block the week
        parts = str(action.get("block_id") or "").split(":")
        found = None
        if len(parts) == 3 and parts[0] == ACTIONS_BLOCK:
            found = CheckinRef.parse({"contract_id": parts[1], "period": parts[2]})
    return (found.contract_id, found.period) if found is not None else None
