"""Modals for building a draft contract in Slack: the new-contract modal, the editor, items."""

from __future__ import annotations

from datetime import date, timedelta

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DividerBlock,
    InputBlock,
    TimePickerElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.contracts.model import missing_for_activation
from bot.core import rules
from bot.core.text import escape
from bot.summary.blocks import WEEKDAYS, activity_lines, indicator_line
from bot.ui.blocks import capped, context, fit_view, sections
from bot.ui.forms import (
    date_input,
    modal_title,
    number_input,
    option,
    past_ok_input,
    select_input,
    text_input,
)
from bot.ui.metadata import ContractRef
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


def build_new_contract_modal(*, viewer: str, today: date) -> View:
    start = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
    return View(
        type="modal",
        callback_id=NEW_CONTRACT,
        title=modal_title("New contract"),
        submit="Create draft",
        close="Cancel",
        blocks=[
            context("A draft stays private to its leader, sponsor and you until it is activated."),
            text_input(
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
            date_input("period_start", "Period starts", start),
            date_input("period_end", "Period ends", start + timedelta(days=7 * 50)),
            past_ok_input(),
            text_input(
                "mission",
                "Mission",
                max_length=TEXT_MAX,
                multiline=True,
                optional=True,
                placeholder="The north star this contract serves",
            ),
            select_input(
                "checkin_weekday",
                "Weekly check-in day",
                [option(str(i), name) for i, name in enumerate(WEEKDAYS)],
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
        title=modal_title("Draft contract"),
        close="Done",
        private_metadata=ContractRef.write(contract_id=c.id),
        blocks=fit_view(blocks),
    )


def build_item_modal(kind: str, bundle: ContractBundle) -> View:
    c = bundle.contract
    expectation_options = [option(e.key, f"{e.key} {e.text}") for e in bundle.expectations]
    blocks: list[Block]
    if kind == "expectation":
        blocks = [
            select_input("kind", "Kind", [option(k) for k in rules.EXPECTATION_KINDS]),
            text_input("text", "What is expected", max_length=TEXT_MAX, multiline=True),
        ]
    elif kind == "activity":
        blocks = [
            text_input("title", "Activity", max_length=300),
            select_input("modality", "Modality", [option(m) for m in rules.MODALITIES]),
            date_input("start", "Starts", None, optional=True),
            date_input("due", "Due", None),
            text_input(
                "demonstration",
                "How the learning will be shown",
                max_length=TEXT_MAX,
                multiline=True,
            ),
        ]
        if expectation_options:
            blocks.insert(
                2,
                select_input(
                    "expectation", "Expectation it serves", expectation_options[:100], optional=True
                ),
            )
    elif kind == "indicator":
        blocks = [
            text_input("name", "Name", max_length=200),
            text_input("unit", "Unit", max_length=32, optional=True, placeholder="%, days, points"),
            number_input("baseline", "Baseline"),
            number_input("target", "Target"),
            select_input("direction", "Better is", [option(d) for d in rules.DIRECTIONS]),
            text_input("source", "Data source", max_length=200, optional=True),
            select_input(
                "cadence",
                "Asked for",
                [option(c) for c in rules.INDICATOR_CADENCES],
                initial="monthly",
            ),
        ]
    elif kind == "milestone":
        blocks = [
            text_input("title", "Milestone", max_length=300),
            date_input("due", "Due", None),
            past_ok_input(),
            context("Met by an indicator reaching a threshold, or by an activity being done."),
        ]
        if bundle.indicators:
            blocks += [
                select_input(
                    "indicator",
                    "Indicator",
                    [option(i.key, f"{i.key} {i.name}") for i in bundle.indicators[:100]],
                    optional=True,
                ),
                number_input("threshold", "Threshold", optional=True),
            ]
        if bundle.activities:
            blocks.append(
                select_input(
                    "activity",
                    "Or activity",
                    [option(a.key, f"{a.key} {a.title}") for a in bundle.activities[:100]],
                    optional=True,
                )
            )
    elif kind == "resource":
        blocks = [
            select_input("kind", "Kind", [option(k) for k in rules.RESOURCE_KINDS]),
            text_input("text", "What is committed", max_length=TEXT_MAX, multiline=True),
        ]
    elif kind == "barrier":
        blocks = [
            text_input("risk", "Foreseeable obstacle", max_length=TEXT_MAX, multiline=True),
            text_input("contingency", "Contingency plan", max_length=TEXT_MAX, multiline=True),
        ]
    else:
        raise ValueError(f"unknown item kind {kind!r}")
    return View(
        type="modal",
        callback_id=f"{ADD_ITEM}:{kind}",
        title=modal_title(f"Add {ITEM_LABEL[kind]}"),
        submit="Add",
        close="Back",
        private_metadata=ContractRef.write(contract_id=c.id),
        blocks=blocks,
    )
