"""Modals for building a draft contract in Slack: the new-contract modal, the editor, items."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ConfirmObject,
    DividerBlock,
    InputBlock,
    TimePickerElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.contracts.model import (
    AgreementState,
    item_label,
    item_text,
    items_of,
    missing_for_activation,
)
from bot.core import rules
from bot.core.text import escape, truncate
from bot.summary.blocks import WEEKDAYS, activity_lines, indicator_line
from bot.ui.blocks import (
    MESSAGE_BLOCKS,
    capped,
    context,
    day,
    fit_view,
    header,
    mention,
    section,
    sections,
)
from bot.ui.forms import (
    date_input,
    modal_title,
    number_input,
    option,
    past_ok_input,
    select_input,
    text_input,
)
from bot.ui.metadata import AgreementRef, ContractRef, DraftItemRef
from storage.models import Contract, ContractStatus
from storage.queries.contracts import ContractBundle

NEW_CONTRACT = "contract_new"
DRAFT_EDITOR = "contract_editor"
ADD_ITEM = "contract_add_item"
ACTIVATE = "contract_activate"  # the editor's button before agreement: still answered
SEND = "contract_send"
AGREE = "contract_agree"
ASK_CHANGE = "contract_ask_change"
REPLACES = "replaces"
COMMENT = "comment"
COMMENT_MAX = 2000
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
                "A draft stays private to its leader, sponsor, owner and you. Once complete, it "
                "is sent for agreement: it starts when leader, sponsor and owner all agree."
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


def _term_lists(bundle: ContractBundle, today: date) -> dict[str, tuple[str, list[str]]]:
    """Each kind of item: its heading and lines, as the editor and the agreement DM show them."""
    return {
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


def terms_blocks(bundle: ContractBundle, *, today: date) -> list[Block]:
    """A draft's terms as its parties agree to them: the people, the period, the mission,
    every item, the check-in and the governance."""
    c = bundle.contract
    blocks: list[Block] = [
        context(
            f"Leader {mention(c.leader_id)}",
            f"Sponsor {mention(c.sponsor_id)}",
            f"Owner {mention(c.owner_id)}",
            f"{day(c.period_start)} – {day(c.period_end)}",
        )
    ]
    if c.mission:
        blocks.append(section(f"*Mission*\n{escape(truncate(c.mission, 1000))}"))
    for kind, (title, lines) in _term_lists(bundle, today).items():
        if lines or kind not in ("resource", "barrier"):
            blocks += sections(title, capped(lines, 8) or ["_None._"])
    approvers = ", ".join(mention(u) for u in bundle.approvers) or mention(c.sponsor_id)
    blocks.append(
        context(
            f"Check-ins {WEEKDAYS[c.checkin_weekday % 7]}s at {c.checkin_time}",
            f"Changes approved by {approvers}",
            f"Digest {escape(c.digest_cadence)}",
        )
    )
    return blocks


def build_draft_editor(
    bundle: ContractBundle,
    *,
    today: date,
    notice: str | None = None,
    agreement: AgreementState | None = None,
) -> View:
    """The draft's own view: what it holds so far, Edit and Remove for each item, a button to
    add each kind of item, and once it is complete, Send for agreement (with where the
    agreement stands)."""
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
    for kind, (title, lines) in _term_lists(bundle, today).items():
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
        blocks.append(
            context(f"Before it can be sent for agreement it needs {', '.join(missing)}.")
        )
    else:
        if agreement is not None and c.agreement_sent_at is not None:
            blocks.append(context(agreement_status(agreement)))
        blocks.append(
            ActionsBlock(
                block_id="activate",
                elements=[
                    ButtonElement(
                        text="Send for agreement"
                        if c.agreement_sent_at is None
                        else "Send for agreement again",
                        action_id=SEND,
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


# --- agreement ------------------------------------------------------------------------------


def _named(users: Sequence[str], state: AgreementState) -> str:
    return ", ".join(f"{mention(u)} ({state.role_of(u)})" for u in users) or "nobody"


def agreement_status(state: AgreementState) -> str:
    """Where the agreement stands, in a line."""
    c = state.contract
    if c.status == ContractStatus.active:
        return f"Agreed by {_named(state.agreed_by, state)}: the contract is active."
    if c.status == ContractStatus.closed:
        return "This contract is closed."
    line = f"Terms version {state.version} · agreed by {_named(state.agreed_by, state)}"
    if state.awaiting:
        return f"{line} · waiting for {_named(state.awaiting, state)}."
    if state.current is not None:
        return (
            f"{line}. Everyone agreed; it waits until {mention(c.leader_id)}'s current "
            "contract closes (or is sent again as replacing it)."
        )
    return f"{line}."


def replaces_line(state: AgreementState) -> str | None:
    c = state.contract
    if not c.replaces_current:
        return None
    if state.current is None:
        return (
            f"Sent as replacing {mention(c.leader_id)}'s current contract (there is none "
            "active now)."
        )
    return (
        f"*Replaces the current contract* of {mention(c.leader_id)}: when everyone agrees "
        "it closes (its history stays readable) and this one starts."
    )


def build_send_modal(
    bundle: ContractBundle,
    *,
    current: Contract | None,
    parties: Sequence[tuple[str, str]],
    sender: str,
) -> View:
    """Send for agreement: who will be asked, and whether it replaces the current contract."""
    c = bundle.contract
    asked = ", ".join(f"{mention(u)} ({role})" for u, role in parties)
    blocks: list[Block] = [
        section(f"*{escape(c.title)}*"),
        context(
            f"Each of {asked} gets the terms in a DM with *Agree* and *Ask for a change*. "
            "It becomes active once all have agreed to these terms; any change to the draft "
            "asks them again."
        ),
    ]
    if sender in dict(parties):
        blocks.append(context("Sending it counts as your own agreement to these terms."))
    if current is not None:
        blocks.append(
            InputBlock(
                block_id=REPLACES,
                label="The leader's current contract",
                optional=True,
                element=CheckboxesElement(
                    action_id=REPLACES,
                    options=[
                        option(
                            "yes",
                            "Replace it when everyone agrees",
                        )
                    ],
                    initial_options=[option("yes", "Replace it when everyone agrees")]
                    if c.replaces_current
                    else None,
                ),
                hint="The leader has an active contract. Unticked, this one waits until it closes.",
            )
        )
    return View(
        type="modal",
        callback_id=SEND,
        title=modal_title("Send for agreement"),
        submit="Send",
        close="Back",
        private_metadata=ContractRef.write(contract_id=c.id),
        blocks=blocks,
    )


def build_sent_view(state: AgreementState, *, outcome: str) -> View:
    c = state.contract
    blocks: list[Block] = [section(f"*{escape(c.title)}*"), section(outcome)]
    blocks.append(context(agreement_status(state)))
    return View(
        type="modal",
        callback_id=f"{SEND}_done",
        title=modal_title("Sent for agreement"),
        close="Done",
        blocks=blocks,
    )


def build_agreement_request(
    state: AgreementState, bundle: ContractBundle, *, recipient: str, today: date
) -> tuple[str, list[Block]]:
    """A party's DM: the terms, where the agreement stands, and Agree / Ask for a change."""
    c = state.contract
    role = state.role_of(recipient) or "party"
    title = escape(truncate(c.title, 200))
    text = f"Please read and agree to “{title}” (terms version {state.version}), as its {role}."
    blocks: list[Block] = [
        header(f"For your agreement: {c.title}"),
        context(
            f"Sent by {mention(c.agreement_sent_by)} · you are asked as {role} · "
            f"terms version {state.version}"
        ),
    ]
    replaces = replaces_line(state)
    if replaces:
        blocks.append(section(replaces))
    blocks += terms_blocks(bundle, today=today)
    blocks.append(DividerBlock())
    blocks.append(section(agreement_status(state)))
    if c.status == ContractStatus.draft and recipient in state.awaiting:
        ref = AgreementRef.write(contract_id=c.id, version=state.version)
        blocks.append(
            ActionsBlock(
                block_id="agreement",
                elements=[
                    ButtonElement(text="Agree", action_id=AGREE, value=ref, style="primary"),
                    ButtonElement(text="Ask for a change", action_id=ASK_CHANGE, value=ref),
                ],
            )
        )
    elif c.status == ContractStatus.draft:
        blocks.append(context("You agreed to this version. A change to the draft asks you again."))
    return truncate(text, 300), blocks[:MESSAGE_BLOCKS]


def build_superseded_request(contract: Contract, *, version: int) -> tuple[str, list[Block]]:
    """An older request DM once the terms changed: the buttons go, the new version is sent."""
    text = (
        f"“{escape(truncate(contract.title, 200))}” changed after terms version {version}: "
        "the new version was sent to you in a new message."
    )
    return text, [section(text)]


def build_change_modal(state: AgreementState) -> View:
    c = state.contract
    return View(
        type="modal",
        callback_id=ASK_CHANGE,
        title=modal_title("Ask for a change"),
        submit="Send",
        close="Cancel",
        private_metadata=AgreementRef.write(contract_id=c.id, version=state.version),
        blocks=[
            section(f"*{escape(c.title)}* · terms version {state.version}"),
            context(
                f"{mention(c.agreement_sent_by or c.created_by)} (who sent it) and the other "
                "parties read your comment; the draft stays a draft until all agree."
            ),
            text_input(
                COMMENT,
                "What should change, and why",
                max_length=COMMENT_MAX,
                multiline=True,
            ),
        ],
    )


def build_change_notice(
    state: AgreementState, *, by: str, version: int, comment: str
) -> tuple[str, list[Block]]:
    c = state.contract
    title = escape(truncate(c.title, 200))
    text = f"{mention(by)} asks for a change to “{title}” before agreeing."
    quoted = "\n".join(f"> {line}" for line in escape(comment).splitlines() or [""])
    blocks: list[Block] = [
        section(text),
        section(quoted),
        context(
            f"About terms version {version} · the draft stays a draft · change it in its "
            f"editor (/contract edit {mention(c.leader_id)}); everyone is then asked again."
        ),
    ]
    return truncate(text, 300), blocks


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
