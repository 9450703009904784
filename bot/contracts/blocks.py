"""Modals for building a draft contract in Slack: the new-contract modal, the editor, items."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    DividerBlock,
    InputBlock,
    TimePickerElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.contracts.model import item_label, item_text, items_of, missing_for_activation
from bot.core import rules
from bot.core.text import escape, truncate
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
from bot.ui.metadata import ContractRef, DraftItemRef
from storage.models import Contract
from storage.queries.contracts import ContractBundle

NEW_CONTRACT = "contract_new"
DRAFT_EDITOR = "contract_editor"
ADD_ITEM = "contract_add_item"
ACTIVATE = "contract_activate"
EDIT_ITEM = "contract_edit_item"  # the item modal's callback when it changes an item
ITEM_EDIT = "contract_item_edit"  # the editor's Edit buttons (`:<kind>:<id>` keeps them unique)
ITEM_REMOVE = "contract_item_remove"
EDIT_DETAILS = "contract_edit_details"
DETAILS = "contract_details"
DISCARD = "contract_discard"
ITEMS_WITH_BUTTONS = 12  # an actions block holds 25 elements: Edit and Remove for each
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


OWNER_HINT = "Who governs the contract. Left empty: you, or the sponsor when you are the leader."


def _contract_inputs(
    *,
    title: str | None,
    sponsor: str | None,
    owner: str | None,
    start: date,
    end: date,
    mission: str | None,
    weekday: int,
    time: str,
) -> list[Block]:
    """The inputs a draft's own fields are typed in: for a new draft and its details alike."""
    return [
        text_input(
            "title",
            "Title",
            max_length=TITLE_MAX,
            initial=title,
            placeholder="Head of Platform: FY2027 leadership contract",
        ),
        InputBlock(
            block_id="sponsor",
            label="Sponsor",
            element=UserSelectElement(action_id="sponsor", initial_user=sponsor),
        ),
        InputBlock(
            block_id="owner",
            label="Owner",
            optional=True,
            hint=OWNER_HINT,
            element=UserSelectElement(action_id="owner", initial_user=owner),
        ),
        date_input("period_start", "Period starts", start),
        date_input("period_end", "Period ends", end),
        past_ok_input(),
        text_input(
            "mission",
            "Mission",
            max_length=TEXT_MAX,
            multiline=True,
            optional=True,
            initial=mission,
            placeholder="The north star this contract serves",
        ),
        select_input(
            "checkin_weekday",
            "Weekly check-in day",
            [option(str(i), name) for i, name in enumerate(WEEKDAYS)],
            initial=str(weekday),
        ),
        InputBlock(
            block_id="checkin_time",
            label="Check-in time (leader's time zone)",
            element=TimePickerElement(action_id="checkin_time", initial_time=time),
        ),
    ]


def build_new_contract_modal(*, viewer: str, today: date) -> View:
    start = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
    inputs = _contract_inputs(
        title=None,
        sponsor=None,
        owner=None,
        start=start,
        end=start + timedelta(days=7 * 50),
        mission=None,
        weekday=4,
        time="15:00",
    )
    leader = InputBlock(
        block_id="leader",
        label="Leader",
        element=UserSelectElement(action_id="leader", initial_user=viewer),
    )
    return View(
        type="modal",
        callback_id=NEW_CONTRACT,
        title=modal_title("New contract"),
        submit="Create draft",
        close="Cancel",
        blocks=[
            context(
                "A draft stays private to its leader, sponsor, owner and you until it is activated."
            ),
            inputs[0],
            leader,
            *inputs[1:],
        ],
    )


def build_details_modal(bundle: ContractBundle) -> View:
    """The new-contract form again, filled with the draft's details (its leader stays)."""
    c = bundle.contract
    inputs = _contract_inputs(
        title=c.title,
        sponsor=c.sponsor_id,
        owner=c.owner_id,
        start=c.period_start,
        end=c.period_end,
        mission=c.mission,
        weekday=c.checkin_weekday,
        time=c.checkin_time,
    )
    return View(
        type="modal",
        callback_id=DETAILS,
        title=modal_title("Draft details"),
        submit="Save",
        close="Back",
        private_metadata=ContractRef.write(contract_id=c.id),
        blocks=[context(f"The contract of <@{c.leader_id}>."), *inputs],
    )


def build_discarded(contract: Contract) -> View:
    """What the editor shows once its draft is discarded."""
    return View(
        type="modal",
        callback_id=DRAFT_EDITOR,
        title=modal_title("Draft discarded"),
        close="Close",
        blocks=[
            context(
                f"“{escape(contract.title)}” is discarded, with its items. "
                "Start again with `/contract new`."
            )
        ],
    )


def build_notice(text: str) -> View:
    """The editor replaced by a sentence: why what was asked could not be done."""
    return View(
        type="modal",
        callback_id=DRAFT_EDITOR,
        title=modal_title("Draft contract"),
        close="Close",
        blocks=[context(text)],
    )


def quoted(text: str, budget: int) -> str:
    """User text escaped for a confirm dialog, cut so that the escaped text stays within
    `budget` characters (escaping makes `&` five)."""
    limit = budget
    words = escape(truncate(text, limit))
    while len(words) > budget:
        limit = max(1, min(limit - 1, limit * budget // len(words)))
        words = escape(truncate(text, limit))
    return words


def _item_buttons(bundle: ContractBundle, kind: str) -> list[Block]:
    """Edit and Remove for each of a kind's first items (Remove asks first)."""
    c = bundle.contract
    elements = []
    for item in list(items_of(bundle, kind))[:ITEMS_WITH_BUTTONS]:
        label = item_label(bundle, kind, item)
        words = quoted(item_text(item) or ITEM_LABEL[kind], 250)
        value = DraftItemRef.write(contract_id=c.id, kind=kind, item_id=item.id)
        elements += [
            ButtonElement(
                text=f"Edit {label}", action_id=f"{ITEM_EDIT}:{kind}:{item.id}", value=value
            ),
            ButtonElement(
                text=f"Remove {label}",
                action_id=f"{ITEM_REMOVE}:{kind}:{item.id}",
                value=value,
                confirm=ConfirmObject(
                    title=f"Remove {label}?",
                    text=f"“{words}” leaves the draft.",
                    confirm="Remove",
                    deny="Keep it",
                    style="danger",
                ),
            ),
        ]
    if not elements:
        return []
    return [ActionsBlock(block_id=f"items_{kind}", elements=elements)]


def build_draft_editor(bundle: ContractBundle, *, today: date, notice: str | None = None) -> View:
    """The draft's own view: what it holds so far and a button to add each kind of item."""
    c = bundle.contract
    blocks: list[Block] = []
    if notice:
        blocks.append(context(notice))
    reference = ContractRef.write(contract_id=c.id)
    owner = f" · owner <@{c.owner_id}>" if c.owner_id else " · no owner yet"
    period = f"{c.period_start.isoformat()} to {c.period_end.isoformat()}"
    blocks += sections(
        escape(c.title),
        [f"Leader <@{c.leader_id}> · sponsor <@{c.sponsor_id}>{owner}", f"Period {period}"],
    )
    blocks.append(
        ActionsBlock(
            block_id="draft_actions",
            elements=[
                ButtonElement(text="Edit details", action_id=EDIT_DETAILS, value=reference),
                ButtonElement(
                    text="Discard draft",
                    action_id=DISCARD,
                    value=reference,
                    style="danger",
                    confirm=ConfirmObject(
                        title="Discard this draft?",
                        text=f"“{quoted(c.title, 200)}” and all its items are "
                        "deleted. This cannot be undone.",
                        confirm="Discard",
                        deny="Keep it",
                        style="danger",
                    ),
                ),
            ],
        )
    )
    blocks.append(DividerBlock())
    lists = {
        "expectation": (
            "Expectations",
            [f"*{escape(e.key)}* _{e.kind}_ {escape(e.text)}" for e in bundle.expectations],
        ),
        "activity": ("Development activities", activity_lines(bundle, today)),
        "indicator": (
            "Success indicators",
            [indicator_line(bundle, i) for i in bundle.indicators],
        ),
        "milestone": (
            "Milestones",
            [
                f"*{escape(m.key)}* {escape(m.title)} · due {m.due.isoformat()}"
                for m in bundle.milestones
            ],
        ),
        "resource": (
            "Resources",
            [f"*R{n}* _{r.kind}_: {escape(r.text)}" for n, r in enumerate(bundle.resources, 1)],
        ),
        "barrier": (
            "Barriers",
            [
                f"*B{n}* {escape(b.risk)} ↳ _{escape(b.contingency)}_"
                for n, b in enumerate(bundle.barriers, 1)
            ],
        ),
    }
    for kind, (title, lines) in lists.items():
        blocks += sections(title, capped(lines, ITEMS_WITH_BUTTONS) or ["_None yet._"])
        blocks += _item_buttons(bundle, kind)
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


def build_item_modal(kind: str, bundle: ContractBundle, item: Any = None) -> View:
    """The modal that adds an item of `kind`, or, given `item`, changes it (filled in)."""
    c = bundle.contract

    def was(name: str) -> Any:
        return getattr(item, name, None) if item is not None else None

    blocks: list[Block]
    if kind == "expectation":
        blocks = [
            select_input(
                "kind", "Kind", [option(k) for k in rules.EXPECTATION_KINDS], initial=was("kind")
            ),
            text_input(
                "text", "What is expected", max_length=TEXT_MAX, multiline=True, initial=was("text")
            ),
        ]
    elif kind == "activity":
        expectation_options = [option(e.key, f"{e.key} {e.text}") for e in bundle.expectations]
        blocks = [
            text_input("title", "Activity", max_length=300, initial=was("title")),
            select_input(
                "modality",
                "Modality",
                [option(m) for m in rules.MODALITIES],
                initial=was("modality"),
            ),
            date_input("start", "Starts", was("start"), optional=True),
            date_input("due", "Due", was("due")),
            past_ok_input(),
            text_input(
                "demonstration",
                "How the learning will be shown",
                max_length=TEXT_MAX,
                multiline=True,
                initial=was("demonstration"),
            ),
        ]
        if expectation_options:
            blocks.insert(
                2,
                select_input(
                    "expectation",
                    "Expectation it serves",
                    expectation_options[:100],
                    optional=True,
                    initial=was("expectation_key"),
                ),
            )
    elif kind == "indicator":
        blocks = [
            text_input("name", "Name", max_length=200, initial=was("name")),
            text_input(
                "unit",
                "Unit",
                max_length=32,
                optional=True,
                placeholder="%, days, points",
                initial=was("unit"),
            ),
            number_input("baseline", "Baseline", initial=was("baseline")),
            number_input("target", "Target", initial=was("target")),
            select_input(
                "direction",
                "Better is",
                [option(d) for d in rules.DIRECTIONS],
                initial=was("direction"),
            ),
            text_input(
                "source", "Data source", max_length=200, optional=True, initial=was("source")
            ),
            select_input(
                "cadence",
                "Asked for",
                [option(c) for c in rules.INDICATOR_CADENCES],
                initial=was("cadence") or "monthly",
            ),
        ]
    elif kind == "milestone":
        blocks = [
            text_input("title", "Milestone", max_length=300, initial=was("title")),
            date_input("due", "Due", was("due")),
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
                    initial=was("indicator_key"),
                ),
                number_input("threshold", "Threshold", optional=True, initial=was("threshold")),
            ]
        if bundle.activities:
            blocks.append(
                select_input(
                    "activity",
                    "Or activity",
                    [option(a.key, f"{a.key} {a.title}") for a in bundle.activities[:100]],
                    optional=True,
                    initial=was("activity_key"),
                )
            )
    elif kind == "resource":
        blocks = [
            select_input(
                "kind", "Kind", [option(k) for k in rules.RESOURCE_KINDS], initial=was("kind")
            ),
            text_input(
                "text",
                "What is committed",
                max_length=TEXT_MAX,
                multiline=True,
                initial=was("text"),
            ),
        ]
    elif kind == "barrier":
        blocks = [
            text_input(
                "risk",
                "Foreseeable obstacle",
                max_length=TEXT_MAX,
                multiline=True,
                initial=was("risk"),
            ),
            text_input(
                "contingency",
                "Contingency plan",
                max_length=TEXT_MAX,
                multiline=True,
                initial=was("contingency"),
            ),
        ]
    else:
        raise ValueError(f"unknown item kind {kind!r}")
    if item is None:
        return View(
            type="modal",
            callback_id=f"{ADD_ITEM}:{kind}",
            title=modal_title(f"Add {ITEM_LABEL[kind]}"),
            submit="Add",
            close="Back",
            private_metadata=ContractRef.write(contract_id=c.id),
            blocks=blocks,
        )
    return View(
        type="modal",
        callback_id=f"{EDIT_ITEM}:{kind}",
        title=modal_title(f"Edit {item_label(bundle, kind, item)}"),
        submit="Save",
        close="Back",
        private_metadata=DraftItemRef.write(contract_id=c.id, kind=kind, item_id=item.id),
        blocks=blocks,
    )
