"""Modals for building a draft contract in Slack, and the parsing of what they submit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DatePickerElement,
    DividerBlock,
    InputBlock,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    StaticSelectElement,
    TimePickerElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.contracts.service import DraftFields, missing_for_activation
from bot.core import rules
from bot.summary.blocks import WEEKDAYS, activity_lines, indicator_line
from bot.ui.blocks import (
    MODAL_TITLE,
    OPTION_TEXT,
    capped,
    context,
    escape,
    fit_view,
    sections,
    truncate,
)
from bot.ui.metadata import clean_text, id_in, json_object
from storage.queries.contracts import ContractBundle

NEW_CONTRACT = "contract_new"
DRAFT_EDITOR = "contract_editor"
ADD_ITEM = "contract_add_item"
ACTIVATE = "contract_activate"
ITEM_KINDS = ("expectation", "activity", "indicator", "milestone", "resource", "barrier")
ITEM_LABEL = {
    "expectation": "expectation",
    "activity": "activity",
    "indicator": "indicator",
    "milestone": "milestone",
    "resource": "resource",
    "barrier": "barrier",
}
TITLE_MAX = 200
TEXT_MAX = 1000


def _title(text: str) -> PlainTextObject:
    return PlainTextObject(text=truncate(text, MODAL_TITLE))


def _option(value: str, label: str | None = None) -> Option:
    return Option(value=value, label=truncate(label or value.replace("_", " "), OPTION_TEXT))


def _text_input(
    block_id: str,
    label: str,
    *,
    max_length: int = TEXT_MAX,
    multiline: bool = False,
    optional: bool = False,
    initial: str | None = None,
    placeholder: str | None = None,
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        element=PlainTextInputElement(
            action_id=block_id,
            multiline=multiline,
            max_length=max_length,
            initial_value=initial,
            placeholder=placeholder,
        ),
    )


def _select(
    block_id: str,
    label: str,
    options: Sequence[Option],
    *,
    initial: str | None = None,
    optional: bool = False,
) -> InputBlock:
    chosen = next((o for o in options if o.value == initial), None)
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        element=StaticSelectElement(
            action_id=block_id, options=list(options), initial_option=chosen
        ),
    )


def _date(block_id: str, label: str, initial: date | None, *, optional: bool = False) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        element=DatePickerElement(
            action_id=block_id, initial_date=initial.isoformat() if initial else None
        ),
    )


def _number(block_id: str, label: str, *, optional: bool = False) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        element=NumberInputElement(action_id=block_id, is_decimal_allowed=True),
    )


def build_new_contract_modal(*, viewer: str, today: date) -> View:
    start = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
    return View(
        type="modal",
        callback_id=NEW_CONTRACT,
        title=_title("New contract"),
        submit="Create draft",
        close="Cancel",
        blocks=[
            context("A draft stays private to its leader, sponsor and you until it is activated."),
            _text_input(
                "title",
                "Title",
                max_length=TITLE_MAX,
                placeholder="Head of Platform: FY2027 leadership contract",
            ),
            InputBlock(
                block_id="leader",
                label="Leader",
                element=UserSelectElement(action_id="leader", initial_user=viewer),
            ),
            InputBlock(
                block_id="sponsor", label="Sponsor", element=UserSelectElement(action_id="sponsor")
            ),
            _date("period_start", "Period starts", start),
            _date("period_end", "Period ends", start + timedelta(days=7 * 50)),
            _text_input(
                "mission",
                "Mission",
                multiline=True,
                optional=True,
                placeholder="The north star this contract serves",
            ),
            _select(
                "checkin_weekday",
                "Weekly check-in day",
                [_option(str(i), name) for i, name in enumerate(WEEKDAYS)],
                initial="4",
            ),
            InputBlock(
                block_id="checkin_time",
                label="Check-in time (leader's time zone)",
                element=TimePickerElement(action_id="checkin_time", initial_time="15:00"),
            ),
        ],
    )


def build_draft_editor(bundle: ContractBundle, *, today: date, notice: str | None = None) -> View:
    """The draft's own view: what it holds so far and a button to add each kind of item."""
    c = bundle.contract
    blocks: list[Block] = []
    if notice:
        blocks.append(context(notice))
    blocks += sections(escape(c.title), [f"Leader <@{c.leader_id}> · sponsor <@{c.sponsor_id}>"])
    blocks.append(DividerBlock())
    lists = {
        "Expectations": [
            f"*{escape(e.key)}* _{e.kind}_ {escape(e.text)}" for e in bundle.expectations
        ],
        "Development activities": activity_lines(bundle, today),
        "Success indicators": [indicator_line(bundle, i) for i in bundle.indicators],
        "Milestones": [
            f"*{escape(m.key)}* {escape(m.title)} · due {m.due.isoformat()}"
            for m in bundle.milestones
        ],
        "Resources": [f"_{r.kind}_: {escape(r.text)}" for r in bundle.resources],
        "Barriers": [f"{escape(b.risk)} ↳ _{escape(b.contingency)}_" for b in bundle.barriers],
    }
    for title, lines in lists.items():
        blocks += sections(title, capped(lines, 8) or ["_None yet._"])
    blocks.append(
        ActionsBlock(
            block_id="add_items",
            elements=[
                ButtonElement(
                    text=f"Add {ITEM_LABEL[kind]}", action_id=f"{ADD_ITEM}:{kind}", value=kind
                )
                for kind in ITEM_KINDS
            ],
        )
    )
    missing = missing_for_activation(bundle)
    if missing:
        blocks.append(context(f"Before it can be activated it needs {', '.join(missing)}."))
    else:
        blocks.append(
            ActionsBlock(
                block_id="activate",
                elements=[
                    ButtonElement(
                        text="Activate contract",
                        action_id=ACTIVATE,
                        value=str(c.id),
                        style="primary",
                    )
                ],
            )
        )
    return View(
        type="modal",
        callback_id=DRAFT_EDITOR,
        title=_title("Draft contract"),
        close="Done",
        private_metadata=json.dumps({"contract_id": c.id}),
        blocks=fit_view(blocks),
    )


def build_item_modal(kind: str, bundle: ContractBundle) -> View:
    c = bundle.contract
    expectation_options = [_option(e.key, f"{e.key} {e.text}") for e in bundle.expectations]
    blocks: list[Block]
    if kind == "expectation":
        blocks = [
            _select("kind", "Kind", [_option(k) for k in rules.EXPECTATION_KINDS]),
            _text_input("text", "What is expected", multiline=True),
        ]
    elif kind == "activity":
        blocks = [
            _text_input("title", "Activity", max_length=300),
            _select("modality", "Modality", [_option(m) for m in rules.MODALITIES]),
            _date("start", "Starts", None, optional=True),
            _date("due", "Due", None),
            _text_input("demonstration", "How the learning will be shown", multiline=True),
        ]
        if expectation_options:
            blocks.insert(
                2,
                _select(
                    "expectation", "Expectation it serves", expectation_options[:100], optional=True
                ),
            )
    elif kind == "indicator":
        blocks = [
            _text_input("name", "Name", max_length=200),
            _text_input(
                "unit", "Unit", max_length=32, optional=True, placeholder="%, days, points"
            ),
            _number("baseline", "Baseline"),
            _number("target", "Target"),
            _select("direction", "Better is", [_option(d) for d in rules.DIRECTIONS]),
            _text_input("source", "Data source", max_length=200, optional=True),
            _select(
                "cadence",
                "Asked for",
                [_option(c) for c in rules.INDICATOR_CADENCES],
                initial="monthly",
            ),
        ]
    elif kind == "milestone":
        blocks = [
            _text_input("title", "Milestone", max_length=300),
            _date("due", "Due", None),
            context("Met by an indicator reaching a threshold, or by an activity being done."),
        ]
        if bundle.indicators:
            blocks += [
                _select(
                    "indicator",
                    "Indicator",
                    [_option(i.key, f"{i.key} {i.name}") for i in bundle.indicators[:100]],
                    optional=True,
                ),
                _number("threshold", "Threshold", optional=True),
            ]
        if bundle.activities:
            blocks.append(
                _select(
                    "activity",
                    "Or activity",
                    [_option(a.key, f"{a.key} {a.title}") for a in bundle.activities[:100]],
                    optional=True,
                )
            )
    elif kind == "resource":
        blocks = [
            _select("kind", "Kind", [_option(k) for k in rules.RESOURCE_KINDS]),
            _text_input("text", "What is committed", multiline=True),
        ]
    elif kind == "barrier":
        blocks = [
            _text_input("risk", "Foreseeable obstacle", multiline=True),
            _text_input("contingency", "Contingency plan", multiline=True),
        ]
    else:
        raise ValueError(f"unknown item kind {kind!r}")
    return View(
        type="modal",
        callback_id=f"{ADD_ITEM}:{kind}",
        title=_title(f"Add {ITEM_LABEL[kind]}"),
        submit="Add",
        close="Back",
        private_metadata=json.dumps({"contract_id": c.id}),
        blocks=blocks,
    )


class Form:
    """Reads a view_submission's state, where each block's element shares its block id.

    Every value is text without NUL characters (PostgreSQL text cannot hold them), and a
    view whose state is missing, null or malformed reads as an empty form.
    """

    def __init__(self, view: dict[str, Any]) -> None:
        state = view.get("state") if isinstance(view, dict) else None
        values = state.get("values") if isinstance(state, dict) else None
        self._values: dict[str, Any] = values if isinstance(values, dict) else {}

    def _element(self, block_id: str) -> dict[str, Any]:
        block = self._values.get(block_id)
        element = block.get(block_id) if isinstance(block, dict) else None
        return element if isinstance(element, dict) else {}

    def _string(self, block_id: str, key: str) -> str | None:
        value = self._element(block_id).get(key)
        return (clean_text(value) or None) if isinstance(value, str) else None

    def text(self, block_id: str) -> str:
        return (self._string(block_id, "value") or "").strip()

    def user(self, block_id: str) -> str | None:
        return self._string(block_id, "selected_user")

    def option(self, block_id: str) -> str | None:
        selected = self._element(block_id).get("selected_option")
        value = selected.get("value") if isinstance(selected, dict) else None
        return (clean_text(value) or None) if isinstance(value, str) else None

    def time(self, block_id: str) -> str | None:
        return self._string(block_id, "selected_time")

    def date(self, block_id: str) -> date | None:
        raw = self._string(block_id, "selected_date")
        try:
            return date.fromisoformat(raw) if raw else None
        except ValueError:
            return None


@dataclass
class Parsed:
    values: dict[str, Any]
    errors: dict[str, str]


def _required_text(form: Form, errors: dict[str, str], block_id: str, limit: int) -> str:
    value = form.text(block_id)
    if not value:
        errors[block_id] = "Please fill this in."
    elif len(value) > limit:
        errors[block_id] = f"Keep it to {limit} characters (this is {len(value)})."
    return value


def _required_choice(
    form: Form, errors: dict[str, str], block_id: str, allowed: Sequence[str]
) -> str:
    value = form.option(block_id)
    if value is None or value not in allowed:
        errors[block_id] = "Choose one of the options."
        return ""
    return value


def _number_value(
    form: Form, errors: dict[str, str], block_id: str, *, required: bool
) -> float | None:
    raw = form.text(block_id)
    if not raw:
        if required:
            errors[block_id] = "Enter a number."
        return None
    try:
        return rules.parse_number(raw)
    except ValueError as problem:
        errors[block_id] = str(problem)
        return None


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


def parse_new_contract(view: dict[str, Any]) -> tuple[DraftFields | None, dict[str, str]]:
    form = Form(view)
    errors: dict[str, str] = {}
    title = _required_text(form, errors, "title", TITLE_MAX)
    leader = form.user("leader")
    sponsor = form.user("sponsor")
    if leader is None:
        errors["leader"] = "Choose the leader."
    if sponsor is None:
        errors["sponsor"] = "Choose the sponsor."
    elif sponsor == leader:
        errors["sponsor"] = "A leader cannot sponsor their own contract."
    start, end = form.date("period_start"), form.date("period_end")
    if start is None:
        errors["period_start"] = "Pick the first day of the period."
    if end is None:
        errors["period_end"] = "Pick the last day of the period."
    elif start is not None and (problem := rules.period_problem(start, end)):
        errors["period_end"] = f"The end {problem}."
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
        ),
        {},
    )


def parse_item(kind: str, view: dict[str, Any], bundle: ContractBundle) -> Parsed:
    """The item's column values, or field errors keyed by block id."""
    form = Form(view)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    if kind == "expectation":
        values["kind"] = _required_choice(form, errors, "kind", rules.EXPECTATION_KINDS)
        values["text"] = _required_text(form, errors, "text", TEXT_MAX)
    elif kind == "activity":
        values["title"] = _required_text(form, errors, "title", 300)
        values["modality"] = _required_choice(form, errors, "modality", rules.MODALITIES)
        expectation = form.option("expectation")
        if expectation is not None and expectation not in {e.key for e in bundle.expectations}:
            errors["expectation"] = "Choose one of this contract's expectations."
        values["expectation_key"] = expectation
        values["start"] = _dated(form, errors, "start", bundle, required=False)
        values["due"] = _dated(form, errors, "due", bundle, required=True)
        if values["start"] and values["due"] and values["start"] > values["due"]:
            errors["due"] = "The due date must not be before the start."
        values["demonstration"] = _required_text(form, errors, "demonstration", TEXT_MAX)
    elif kind == "indicator":
        values["name"] = _required_text(form, errors, "name", 200)
        values["unit"] = form.text("unit")[:32]
        values["direction"] = _required_choice(form, errors, "direction", rules.DIRECTIONS)
        values["cadence"] = _required_choice(form, errors, "cadence", rules.INDICATOR_CADENCES)
        source = form.text("source")
        if len(source) > 200:
            errors["source"] = "Keep it to 200 characters."
        values["source"] = source
        baseline = _number_value(form, errors, "baseline", required=True)
        target = _number_value(form, errors, "target", required=True)
        if baseline is not None and target is not None and values["direction"]:
            problem = rules.target_problem(baseline, target, values["direction"])
            if problem:
                errors["target"] = f"The target {problem}."
        values["baseline"], values["target"] = baseline, target
    elif kind == "milestone":
        values["title"] = _required_text(form, errors, "title", 300)
        values["due"] = _dated(form, errors, "due", bundle, required=True)
        indicator_key = form.option("indicator")
        activity_key = form.option("activity")
        threshold = _number_value(form, errors, "threshold", required=False)
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
        values["kind"] = _required_choice(form, errors, "kind", rules.RESOURCE_KINDS)
        values["text"] = _required_text(form, errors, "text", TEXT_MAX)
    elif kind == "barrier":
        values["risk"] = _required_text(form, errors, "risk", TEXT_MAX)
        values["contingency"] = _required_text(form, errors, "contingency", TEXT_MAX)
    else:
        raise ValueError(f"unknown item kind {kind!r}")
    return Parsed(values=values, errors=errors)


def metadata_of(view: dict[str, Any]) -> dict[str, Any]:
    """A view's private_metadata as a JSON object; {} if it is missing or not one."""
    return json_object(view.get("private_metadata"))


def contract_id_in(text: str | None) -> int | None:
    """The contract id in a JSON object (a view's private_metadata, a button's value), if any."""
    return id_in(text, "contract_id")


def contract_id_of(view: dict[str, Any]) -> int | None:
    """The contract id a view carries in its private_metadata, if any."""
    return contract_id_in(view.get("private_metadata"))
