"""What the draft modals submit, read and checked: a new contract's fields, an item's values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.contracts.blocks import TEXT_MAX, TITLE_MAX
from bot.contracts.model import DraftFields, period_outliers
from bot.core import rules
from bot.ui.forms import Form, number_value, past_date_error, required_choice, required_text
from storage.queries.contracts import ContractBundle


@dataclass
class Parsed:
    values: dict[str, Any]
    errors: dict[str, str]


def _dated(
    form: Form, errors: dict[str, str], block_id: str, bundle: ContractBundle, *, required: bool
) -> date | None:
    value = form.date(block_id)
    if value is None:
        if required or form.text(block_id):
            errors[block_id] = "Pick a date."
        return None
    c = bundle.contract
    problem = rules.date_problem(value, c.period_start, c.period_end)
    if problem:
        errors[block_id] = f"The date {problem}."
    return value


def parse_new_contract(
    view: dict[str, Any],
    *,
    today: date,
    leader: str | None = None,
    kept: tuple[date, date] | None = None,
) -> tuple[DraftFields | None, dict[str, str]]:
    """The new draft's fields, or field errors; a period starting before `today` needs the
    explicit confirmation, an end before the start is always refused. When a draft's details
    are edited, `leader` is its own (the form has no leader input) and `kept` its period as
    it stands (dates left as they were need no confirmation again)."""
    form = Form(view)
    errors: dict[str, str] = {}
    title = required_text(form, errors, "title", TITLE_MAX)
    leader = leader or form.user("leader")
    sponsor = form.user("sponsor")
    owner = form.user("owner")
    if leader is None:
        errors["leader"] = "Choose the leader."
    if sponsor is None:
        errors["sponsor"] = "Choose the sponsor."
    elif sponsor == leader:
        errors["sponsor"] = "A leader cannot sponsor their own contract."
    if owner is not None and owner == leader:
        errors["owner"] = (
            "A leader cannot own their own contract: choose who governs it (often the sponsor)."
        )
    start, end = form.date("period_start"), form.date("period_end")
    if start is None:
        errors["period_start"] = "Pick the first day of the period."
    if end is None:
        errors["period_end"] = "Pick the last day of the period."
    elif start is not None and (problem := rules.period_problem(start, end)):
        errors["period_end"] = f"The end {problem}."
    was_start, was_end = kept or (None, None)
    past_date_error(
        form, errors, "period_start", start, today=today, what="The start", kept=was_start
    )
    past_date_error(form, errors, "period_end", end, today=today, what="The end", kept=was_end)
    mission = form.text("mission")
    if len(mission) > 3000:
        errors["mission"] = f"Keep it to 3000 characters (this is {len(mission)})."
    weekday = form.option("checkin_weekday")
    if weekday not in {str(i) for i in range(7)}:
        errors["checkin_weekday"] = "Choose a day."
    time = form.time("checkin_time")
    if time is None or not rules.TIME.match(time):
        errors["checkin_time"] = "Choose a time."
    if errors:
        return None, errors
    return (
        DraftFields(
            title=title,
            leader_id=leader or "",
            sponsor_id=sponsor or "",
            period_start=start,
            period_end=end,
            mission=mission,
            checkin_weekday=int(weekday or 0),
            checkin_time=time or "",
            owner_id=owner,
        ),
        {},
    )


def parse_details(
    view: dict[str, Any], bundle: ContractBundle, *, today: date
) -> tuple[DraftFields | None, dict[str, str]]:
    """A draft's changed details (the new-contract form without the leader), or field
    errors; the period must still hold every activity and milestone date."""
    c = bundle.contract
    fields, errors = parse_new_contract(
        view, today=today, leader=c.leader_id, kept=(c.period_start, c.period_end)
    )
    if fields is None:
        return None, errors
    outside = period_outliers(bundle, fields.period_start, fields.period_end)
    if outside:
        return None, {
            "period_end": f"{', '.join(outside)} would fall outside this period: "
            "move their dates first, or choose a period that holds them."
        }
    return fields, {}


def parse_item(
    kind: str, view: dict[str, Any], bundle: ContractBundle, *, today: date, item: Any = None
) -> Parsed:
    """The item's column values, or field errors keyed by block id; an activity or milestone
    date before `today` needs the explicit confirmation. `item` is the row being edited: a
    date it keeps needs none again, and an indicator's new baseline and target must still
    hold its milestones' thresholds."""
    form = Form(view)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}

    def was(name: str) -> Any:
        return getattr(item, name, None) if item is not None else None

    if kind == "expectation":
        values["kind"] = required_choice(form, errors, "kind", rules.EXPECTATION_KINDS)
        values["text"] = required_text(form, errors, "text", TEXT_MAX)
    elif kind == "activity":
        values["title"] = required_text(form, errors, "title", 300)
        values["modality"] = required_choice(form, errors, "modality", rules.MODALITIES)
        expectation = form.option("expectation")
        if expectation is not None and expectation not in {e.key for e in bundle.expectations}:
            errors["expectation"] = "Choose one of this contract's expectations."
        values["expectation_key"] = expectation
        values["start"] = _dated(form, errors, "start", bundle, required=False)
        values["due"] = _dated(form, errors, "due", bundle, required=True)
        if values["start"] and values["due"] and values["start"] > values["due"]:
            errors["due"] = "The due date must not be before the start."
        for block_id, what in (("start", "The start"), ("due", "The due date")):
            past_date_error(
                form, errors, block_id, values[block_id], today=today, what=what, kept=was(block_id)
            )
        values["demonstration"] = required_text(form, errors, "demonstration", TEXT_MAX)
    elif kind == "indicator":
        values["name"] = required_text(form, errors, "name", 200)
        values["unit"] = form.text("unit")[:32]
        values["direction"] = required_choice(form, errors, "direction", rules.DIRECTIONS)
        values["cadence"] = required_choice(form, errors, "cadence", rules.INDICATOR_CADENCES)
        source = form.text("source")
        if len(source) > 200:
            errors["source"] = "Keep it to 200 characters."
        values["source"] = source
        baseline = number_value(form, errors, "baseline", required=True)
        target = number_value(form, errors, "target", required=True)
        if baseline is not None and target is not None and values["direction"]:
            problem = rules.target_problem(baseline, target, values["direction"])
            if problem:
                errors["target"] = f"The target {problem}."
        if item is not None and baseline is not None and target is not None:
            held = [
                m.key
                for m in bundle.milestones
                if m.indicator_key == item.key
                and m.threshold is not None
                and rules.threshold_problem(baseline, target, m.threshold)
            ]
            if held and "target" not in errors:
                errors["target"] = (
                    f"The threshold of {', '.join(held)} would no longer lie between baseline "
                    "and target: change the milestone first."
                )
        values["baseline"], values["target"] = baseline, target
    elif kind == "milestone":
        values["title"] = required_text(form, errors, "title", 300)
        values["due"] = _dated(form, errors, "due", bundle, required=True)
        past_date_error(
            form, errors, "due", values["due"], today=today, what="The due date", kept=was("due")
        )
        indicator_key = form.option("indicator")
        activity_key = form.option("activity")
        threshold = number_value(form, errors, "threshold", required=False)
        if indicator_key and activity_key:
            errors["activity"] = "Choose an indicator or an activity, not both."
        elif indicator_key:
            indicator = bundle.indicator(indicator_key)
            if indicator is None:
                errors["indicator"] = "Choose one of this contract's indicators."
            elif threshold is None:
                errors.setdefault("threshold", "Enter the value that meets the milestone.")
            elif problem := rules.threshold_problem(
                indicator.baseline, indicator.target, threshold
            ):
                errors["threshold"] = f"The threshold {problem}."
        elif activity_key:
            if activity_key not in {a.key for a in bundle.activities}:
                errors["activity"] = "Choose one of this contract's activities."
        else:
            target_block = "indicator" if bundle.indicators else "activity"
            if not bundle.indicators and not bundle.activities:
                target_block = "title"
                errors[target_block] = (
                    "Add an indicator or an activity first: a milestone is met by one."
                )
            else:
                errors[target_block] = "Choose what meets this milestone."
        values.update(
            indicator_key=indicator_key or None,
            threshold=threshold if indicator_key else None,
            activity_key=activity_key or None,
        )
    elif kind == "resource":
        values["kind"] = required_choice(form, errors, "kind", rules.RESOURCE_KINDS)
        values["text"] = required_text(form, errors, "text", TEXT_MAX)
    elif kind == "barrier":
        values["risk"] = required_text(form, errors, "risk", TEXT_MAX)
        values["contingency"] = required_text(form, errors, "contingency", TEXT_MAX)
    else:
        raise ValueError(f"unknown item kind {kind!r}")
    return Parsed(values=values, errors=errors)
