"""Modals for building a draft contract in Slack: the new-contract modal, the editor, items."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    DividerBlock,
    InputBlock,
    TimePickerElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.contracts.model import AgreementState, missing_for_activation
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
from bot.ui.metadata import AgreementRef, ContractRef
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
            context(
                "A draft stays private to its leader, sponsor and you. Once complete, it is "
                "sent for agreement: it starts when leader, sponsor and owner all agree."
            ),
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


def _term_lists(bundle: ContractBundle, today: date) -> dict[str, list[str]]:
    return {
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
    for title, lines in _term_lists(bundle, today).items():
        if lines or title not in ("Resources", "Barriers"):
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
    """The draft's own view: what it holds so far, a button to add each kind of item, and
    once it is complete, Send for agreement (with where the agreement stands)."""
    c = bundle.contract
    blocks: list[Block] = []
    if notice:
        blocks.append(context(notice))
    blocks += sections(escape(c.title), [f"Leader <@{c.leader_id}> · sponsor <@{c.sponsor_id}>"])
    blocks.append(DividerBlock())
    for title, lines in _term_lists(bundle, today).items():
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
