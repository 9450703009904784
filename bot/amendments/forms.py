"""What the amendment forms submit: an item's fields in the import format, and field errors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from bot.amendments.blocks import FIELDS, NONE, RATIONALE
from bot.amendments.model import PEOPLE_FIELDS, GovernanceTerms, ItemKind, Problem
from bot.contracts.schema import CHANNEL, SLACK_USER
from bot.core import rules
from bot.core.text import truncate
from bot.risks.model import MAX_ESCALATION_DAYS
from bot.ui.forms import Form, input_block_ids, past_date_error


def read_fields(kind: ItemKind, view: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The import-format fields a submitted item form holds, and errors keyed by block id."""
    form = Form(view)
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in FIELDS[kind.name]:
        if spec.type in ("text", "long"):
            text = form.text(spec.name)
            if not text and not spec.optional:
                errors[spec.name] = "Please fill this in."
            values[spec.name] = text
        elif spec.type == "number":
            raw = form.text(spec.name)
            values[spec.name] = None
            if raw:
                try:
                    values[spec.name] = rules.parse_number(raw)
                except ValueError as problem:
                    errors[spec.name] = str(problem)
            elif not spec.optional:
                errors[spec.name] = "Enter a number."
        elif spec.type == "date":
            values[spec.name] = form.date(spec.name)
            if values[spec.name] is None and not spec.optional:
                errors[spec.name] = "Pick a date."
        else:
            picked = form.option(spec.name)
            values[spec.name] = None if picked == NONE else picked
            if values[spec.name] is None and not spec.optional:
                errors[spec.name] = "Choose one of the options."
    return values, errors


def past_due_errors(
    kind: ItemKind,
    fields: dict[str, Any],
    current: dict[str, Any] | None,
    view: dict[str, Any],
    *,
    today: date,
) -> dict[str, str]:
    """A milestone due date the change sets before `today`, unless explicitly confirmed; a
    date the item already has is not set by the change."""
    errors: dict[str, str] = {}
    due = fields.get("due")
    if kind.name != "milestone" or not isinstance(due, date):
        return errors
    if current is not None and str(current.get("due")) == due.isoformat():
        return errors
    past_date_error(Form(view), errors, "due", due, today=today, what="The due date")
    return errors


def field_errors(problems: Sequence[Problem], view: dict[str, Any]) -> dict[str, str]:
    """Problems as `response_action: errors`, each on its field's block where it has one."""
    inputs = input_block_ids(view)
    fields = [block for block in inputs if block != RATIONALE]
    fallback = (["indicator"] if "indicator" in fields else []) + fields + [RATIONALE]
    errors: dict[str, str] = {}
    for problem in problems:
        block = problem.field if problem.field and problem.field in inputs else fallback[0]
        message = _sentence(problem.message)
        errors[block] = f"{errors[block]} {message}" if block in errors else message
    return {block: truncate(text, 2000) for block, text in errors.items()}


def _sentence(message: str) -> str:
    if message == "required":
        return "Please fill this in."
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "?", "!")) else message + "."


def _whole(form: Form, errors: dict[str, str], block_id: str, low: int, high: int) -> int:
    raw = form.text(block_id)
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        errors[block_id] = f"Enter a whole number from {low} to {high}."
        return low
    return value


def read_governance(view: dict[str, Any]) -> tuple[GovernanceTerms, dict[str, str]]:
    """The governance terms a submitted governance form holds, and errors keyed by block id.

    People must be Slack user ids and the report channel a channel id; choices one of the
    options; numbers whole and in range; the time HH:MM; the zone an IANA name (checked
    again, with the other rules and the import format's, by `check_governance`).
    """
    form = Form(view)
    errors: dict[str, str] = {}
    owner = form.user("owner")
    people = {
        name: list(dict.fromkeys(form.users(name))) for name in PEOPLE_FIELDS if name != "owner"
    }
    for name in PEOPLE_FIELDS:
        chosen = [owner] if name == "owner" and owner else people.get(name, [])
        if any(not SLACK_USER.fullmatch(user) for user in chosen):
            errors[name] = "Choose people from the list."
    channel = form.conversation("report_channel")
    if channel is not None and not CHANNEL.fullmatch(channel):
        errors["report_channel"] = "Choose a channel from the list."
    feedback = form.option("feedback_cadence")
    report = form.option("report_cadence")
    values: dict[str, Any] = {
        "owner": owner,
        **people,
        "report_cadence": None if report == NONE else report,
        "report_channel": channel,
        "anonymity_threshold": _whole(
            form, errors, "anonymity_threshold", rules.ANONYMITY_MIN, rules.ANONYMITY_MAX
        ),
        "reminder_hours": _whole(form, errors, "reminder_hours", 0, rules.REMINDER_HOURS_MAX),
        "escalation_days": _whole(form, errors, "escalation_days", 1, MAX_ESCALATION_DAYS),
        "feedback_cadence": None if feedback == NONE else feedback,
        "digest_cadence": form.option("digest_cadence") or "",
        "review_cadence": form.option("review_cadence") or "",
        "checkin_weekday": form.option("checkin_weekday") or "",
        "checkin_time": form.time("checkin_time") or form.text("checkin_time") or "",
        "checkin_timezone": form.text("checkin_timezone") or None,
    }
    allowed = {
        "feedback_cadence": (*rules.INDICATOR_CADENCES, None),
        "digest_cadence": rules.DIGEST_CADENCES,
        "review_cadence": rules.REVIEW_CADENCES,
        "checkin_weekday": rules.WEEKDAY_NAMES,
        "report_cadence": (*rules.REPORT_CADENCES, None),
    }
    given = {"feedback_cadence": feedback, "report_cadence": report}
    for name, choices in allowed.items():
        if values[name] not in choices or (name in given and given[name] is None):
            errors[name] = "Choose one of the options."
    terms = GovernanceTerms.model_validate(values)
    return terms, errors
