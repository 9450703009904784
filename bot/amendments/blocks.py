"""Block Kit for amendments: the proposal modals, the approvers' DM, history, summary lines.

The item form's block ids are the import format's field names, so a problem the import rules
find at `success_indicators[I2].target` becomes a field error on the `target` block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConversationFilter,
    ConversationSelectElement,
    DividerBlock,
    InputBlock,
    NumberInputElement,
    Option,
    OptionGroup,
    RadioButtonsElement,
    StaticSelectElement,
    TimePickerElement,
    UserMultiSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.amendments.model import (
    GOVERNANCE,
    GOVERNANCE_KEY,
    GOVERNANCE_LABEL,
    KINDS,
    AmendmentState,
    AmendmentStatus,
    History,
    Item,
    ItemKind,
    SummaryView,
    change_of,
    describe_change,
    governance_changes,
    item_title,
    items_in,
)
from bot.contracts.document import snapshot
from bot.contracts.schema import LONG_TEXT, MAX_ITEMS
from bot.core import rules
from bot.core.calendar import period_label, valid_period
from bot.core.progress import format_number
from bot.core.text import escape, truncate
from bot.risks.model import DEFAULT_ESCALATION_DAYS, MAX_ESCALATION_DAYS
from bot.summary.blocks import build_summary
from bot.ui.blocks import (
    LIST_CAP,
    OPTION_TEXT,
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
    option,
    past_ok_input,
    select_input,
    text_input,
)
from bot.ui.metadata import AmendmentForm, AmendmentRef, ContractRef
from storage.models import AuditEvent, Contract, ContractVersion
from storage.queries.contracts import ContractBundle

AMEND_CHOOSE = "amendment_choose"
AMEND_ITEM = "amendment_item"
AMEND_REJECT = "amendment_reject_reason"
APPROVE = "amendment_approve"
REJECT = "amendment_reject"
NEW = "+"
NONE = "-"
RATIONALE = "rationale"
REASON = "reason"
REASON_MAX = 1000
AUDIT_CAP = 15


# --- the item form --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of an item in the import format, as the amendment form asks for it."""

    name: str
    label: str
    type: str  # text | long | number | date | choice | expectation | indicator | activity
    choices: tuple[str, ...] = ()
    optional: bool = False
    max_length: int = 200


FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "expectation": (
        FieldSpec("kind", "Kind", "choice", rules.EXPECTATION_KINDS),
        FieldSpec("text", "What is expected", "long"),
    ),
    "activity": (
        FieldSpec("title", "Activity", "text", max_length=300),
        FieldSpec("modality", "Modality", "choice", rules.MODALITIES),
        FieldSpec("expectation", "Expectation it serves", "expectation"),
        FieldSpec("start", "Starts", "date", optional=True),
        FieldSpec("due", "Due", "date"),
        FieldSpec("demonstration", "How the learning will be shown", "long"),
    ),
    "indicator": (
        FieldSpec("name", "Name", "text", max_length=200),
        FieldSpec("unit", "Unit", "text", optional=True, max_length=32),
        FieldSpec("baseline", "Baseline", "number"),
        FieldSpec("target", "Target", "number"),
        FieldSpec("direction", "Better is", "choice", rules.DIRECTIONS),
        FieldSpec("source", "Data source", "text", max_length=200),
        FieldSpec("cadence", "Asked for", "choice", rules.INDICATOR_CADENCES),
    ),
    "milestone": (
        FieldSpec("title", "Milestone", "text", max_length=300),
        FieldSpec("due", "Due", "date"),
        FieldSpec("indicator", "Met when this indicator…", "indicator", optional=True),
        FieldSpec("threshold", "…reaches this value", "number", optional=True),
        FieldSpec("activity", "Or when this activity is done", "activity", optional=True),
    ),
    "resource": (
        FieldSpec("kind", "Kind", "choice", rules.RESOURCE_KINDS),
        FieldSpec("text", "What is committed", "long"),
    ),
    "barrier": (
        FieldSpec("risk", "Foreseeable obstacle", "long"),
        FieldSpec("contingency", "Contingency plan", "long"),
    ),
}
FIELD_LABEL = {
    "kind": "Kind",
    "text": "Text",
    "title": "Title",
    "modality": "Modality",
    "expectation": "Expectation",
    "start": "Starts",
    "due": "Due",
    "demonstration": "Demonstration",
    "name": "Name",
    "unit": "Unit",
    "baseline": "Baseline",
    "target": "Target",
    "direction": "Direction",
    "source": "Source",
    "cadence": "Cadence",
    "indicator": "Indicator",
    "threshold": "Threshold",
    "activity": "Activity",
    "risk": "Risk",
    "contingency": "Contingency",
}


def item_label(kind: ItemKind, handle: str | None, item: Item | None) -> str:
    """`I2 · Median project cycle time`, or `a new success indicator`."""
    if handle is None:
        return f"a new {kind.label}"
    title = item_title(item)
    return f"{handle} · {title}" if title else handle


def _references(bundle: ContractBundle, kind_name: str) -> list[Option]:
    """Options naming the contract's items of one kind (a milestone's indicator...)."""
    found = items_in(snapshot(bundle), KINDS[kind_name])
    return [option(key, f"{key} {item_title(item)}") for key, item in found][:100]


def _number_input(spec: FieldSpec, value: Any) -> InputBlock:
    return InputBlock(
        block_id=spec.name,
        label=spec.label,
        optional=spec.optional,
        element=NumberInputElement(
            action_id=spec.name,
            is_decimal_allowed=True,
            initial_value=str(value) if isinstance(value, int | float) else None,
        ),
    )


def _field_input(spec: FieldSpec, value: Any, bundle: ContractBundle) -> InputBlock:
    if spec.type in ("text", "long"):
        limit = LONG_TEXT if spec.type == "long" else spec.max_length
        return text_input(
            spec.name,
            spec.label,
            max_length=limit,
            multiline=spec.type == "long",
            optional=spec.optional,
            initial=str(value) if value not in (None, "") else None,
        )
    if spec.type == "number":
        return _number_input(spec, value)
    if spec.type == "date":
        initial = date.fromisoformat(value) if isinstance(value, str) else None
        return date_input(spec.name, spec.label, initial, optional=spec.optional)
    if spec.type == "choice":
        options = [option(choice) for choice in spec.choices]
    else:
        options = _references(bundle, spec.type)
    if spec.optional:
        # A picked option cannot be cleared in Slack: "none" lets a milestone switch from
        # an indicator to an activity.
        options = [option(NONE, "(none)"), *options][:100]
    return select_input(
        spec.name,
        spec.label,
        options,
        initial=value if isinstance(value, str) else None,
        optional=spec.optional,
    )


# --- the modals -----------------------------------------------------------------------------


def _mentions(users: Sequence[str]) -> str:
    return ", ".join(mention(u) for u in users) or "nobody"


def build_amend_chooser(bundle: ContractBundle, *, approvers: Sequence[str]) -> View:
    """Step one of `/contract amend`: which item, and change or remove it."""
    doc = snapshot(bundle)
    groups = []
    for kind in KINDS.values():
        options = [
            Option(
                value=f"{kind.name}:{handle}",
                label=truncate(item_label(kind, handle, item), OPTION_TEXT),
            )
            for handle, item in items_in(doc, kind)
        ][:99]
        options.append(Option(value=f"{kind.name}:{NEW}", label=f"A new {kind.label}"))
        groups.append(OptionGroup(label=kind.plural.capitalize(), options=options))
    groups.append(
        OptionGroup(
            label="Governance",
            options=[
                Option(
                    value=f"{GOVERNANCE.name}:{GOVERNANCE_KEY}",
                    label="Owner, approvers, reviewers, cadences, check-in schedule",
                )
            ],
        )
    )
    c = bundle.contract
    return View(
        type="modal",
        callback_id=AMEND_CHOOSE,
        title=modal_title("Propose an amendment"),
        submit="Next",
        close="Cancel",
        private_metadata=ContractRef.write(contract_id=c.id),
        blocks=[
            section(
                f"*{escape(truncate(c.title, 200))}* · version {c.version}\n"
                f"A change applies once every approver ({_mentions(approvers)}) accepts it."
            ),
            InputBlock(
                block_id="item",
                label="Which item?",
                element=StaticSelectElement(action_id="item", option_groups=groups),
            ),
            InputBlock(
                block_id="action",
                label="What should happen to it?",
                element=RadioButtonsElement(
                    action_id="action",
                    options=[
                        Option(value="change", label="Change it (or add the new one)"),
                        Option(value="remove", label="Remove it"),
                    ],
                    initial_option=Option(value="change", label="Change it (or add the new one)"),
                ),
            ),
        ],
    )


def build_amend_form(
    bundle: ContractBundle,
    *,
    kind: ItemKind,
    handle: str | None,
    item: Item | None,
    remove: bool,
    fingerprint: str,
    approvers: Sequence[str],
    pending: Sequence[int] = (),
    rationale: str | None = None,
    feedback_id: int | None = None,
) -> View:
    """Step two: the item's fields as they are (the proposal), or the item to remove; why.

    `rationale` pre-fills the reason; `feedback_id` names the entry a new activity is made
    from, so the submission ties the two."""
    c = bundle.contract
    named = item_label(kind, handle, item)
    blocks: list[Block] = []
    if remove:
        title = f"Remove {handle}"
        blocks += sections(f"Remove {escape(named)}", item_lines(item or {}))
    else:
        title = f"Change {handle}" if handle else f"New {kind.label}"
        verb = f"Change *{escape(named)}*" if handle else f"Add {named}"
        blocks.append(context(f"{verb}: edit the fields below. They hold the item as it is now."))
        blocks += [
            _field_input(spec, (item or {}).get(spec.name), bundle) for spec in FIELDS[kind.name]
        ]
        if kind.name == "milestone":
            blocks.append(past_ok_input())
    if pending:
        listed = ", ".join(f"#{n}" for n in pending)
        blocks.append(context(f"⚠️ Already waiting for approval on this item: {listed}."))
    blocks += [
        text_input(
            RATIONALE,
            "Why? (the approvers read this)",
            max_length=REASON_MAX,
            multiline=True,
            placeholder="What changed, and why the contract should follow",
            initial=rationale,
        ),
        context(f"Approvers: {_mentions(approvers)}. Each gets a DM to approve or reject it."),
    ]
    metadata = AmendmentForm.write(
        contract_id=c.id,
        kind=kind.name,
        handle=handle,
        remove=remove,
        fingerprint=fingerprint,
        feedback_id=feedback_id,
    )
    return View(
        type="modal",
        callback_id=AMEND_ITEM,
        title=modal_title(title),
        submit="Propose",
        close="Cancel",
        private_metadata=metadata,
        blocks=fit_view(blocks),
    )


def _users_input(
    block_id: str, value: Any, *, optional: bool = False, hint: str | None = None
) -> InputBlock:
    label = GOVERNANCE_LABEL[block_id]
    if isinstance(value, list):
        element: Any = UserMultiSelectElement(
            action_id=block_id, initial_users=value or None, max_selected_items=MAX_ITEMS
        )
    else:
        element = UserSelectElement(action_id=block_id, initial_user=value or None)
    return InputBlock(block_id=block_id, label=label, optional=optional, hint=hint, element=element)


def _whole_number_input(block_id: str, value: int, *, low: int, high: int, hint: str) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=GOVERNANCE_LABEL[block_id],
        hint=hint,
        element=NumberInputElement(
            action_id=block_id,
            is_decimal_allowed=False,
            initial_value=str(value),
            min_value=str(low),
            max_value=str(high),
        ),
    )


def _choice_input(
    block_id: str, choices: Sequence[str], value: str | None, *, hint: str | None = None
) -> InputBlock:
    options = [option(choice, choice.capitalize()) for choice in choices]
    if block_id in NO_CHOICE:
        options = [option(NONE, NO_CHOICE[block_id]), *options]
        value = value or NONE
    return select_input(block_id, GOVERNANCE_LABEL[block_id], options, initial=value, hint=hint)


NO_CHOICE = {"feedback_cadence": "Only on request", "report_cadence": "No scheduled report"}


def _channel_input(block_id: str, value: str | None, *, hint: str) -> InputBlock:
    """A public or private channel, picked from Slack's list."""
    return InputBlock(
        block_id=block_id,
        label=GOVERNANCE_LABEL[block_id],
        optional=True,
        hint=hint,
        element=ConversationSelectElement(
            action_id=block_id,
            initial_conversation=value or None,
            filter=ConversationFilter(include=["public", "private"], exclude_bot_users=True),
        ),
    )


def _rater_group_inputs(terms: Item) -> list[Block]:
    hints = {
        "peers": "Each person in one group at most, never the leader or the sponsor. Anyone "
        "else who gives feedback is asked how they work with the leader.",
        "direct_reports": None,
        "stakeholders": None,
    }
    return [
        _users_input(name, terms.get(name) or [], optional=True, hint=hint)
        for name, hint in hints.items()
    ]


def _report_inputs(terms: Item) -> list[Block]:
    return [
        _choice_input(
            "report_cadence",
            rules.REPORT_CADENCES,
            terms.get("report_cadence"),
            hint="The period report, posted the morning after each period ends.",
        ),
        _channel_input(
            "report_channel",
            terms.get("report_channel"),
            hint="Posted here; with no channel it goes to each reader by DM. Invite "
            "@North Star to the channel first.",
        ),
        _users_input(
            "report_readers",
            terms.get("report_readers") or [],
            optional=True,
            hint="They may always ask for it with /contract report.",
        ),
    ]


def build_governance_form(
    bundle: ContractBundle,
    *,
    terms: Item,
    fingerprint: str,
    approvers: Sequence[str],
    pending: Sequence[int] = (),
) -> View:
    """The governance amendment: every governance field as it is now, and why."""
    c = bundle.contract
    blocks: list[Block] = [
        context(
            f"Change how *{escape(truncate(c.title, 200))}* is governed and scheduled, who "
            "gives feedback in which group and who gets its report. The fields hold the terms "
            "as they are now; the current approvers decide."
        ),
        _users_input(
            "owner", terms.get("owner") or "", hint="Answers for the contract; not the leader."
        ),
        _users_input("approvers", terms.get("approvers") or []),
        _users_input("escalation", terms.get("escalation") or [], optional=True),
        _whole_number_input(
            "escalation_days",
            int(terms.get("escalation_days") or DEFAULT_ESCALATION_DAYS),
            low=1,
            high=MAX_ESCALATION_DAYS,
            hint="An open risk that needs help goes to the escalation contacts after this.",
        ),
        _users_input("reviewers", terms.get("reviewers") or [], optional=True),
        *_rater_group_inputs(terms),
        _whole_number_input(
            "anonymity_threshold",
            int(terms.get("anonymity_threshold") or rules.ANONYMITY_MIN),
            low=rules.ANONYMITY_MIN,
            high=rules.ANONYMITY_MAX,
            hint="Anonymous feedback shows once this many entries exist.",
        ),
        _choice_input("feedback_cadence", rules.INDICATOR_CADENCES, terms.get("feedback_cadence")),
        _choice_input("digest_cadence", rules.DIGEST_CADENCES, terms.get("digest_cadence")),
        _choice_input("review_cadence", rules.REVIEW_CADENCES, terms.get("review_cadence")),
        _choice_input("checkin_weekday", rules.WEEKDAY_NAMES, terms.get("checkin_weekday")),
        InputBlock(
            block_id="checkin_time",
            label=GOVERNANCE_LABEL["checkin_time"],
            element=TimePickerElement(
                action_id="checkin_time", initial_time=terms.get("checkin_time") or None
            ),
        ),
        text_input(
            "checkin_timezone",
            GOVERNANCE_LABEL["checkin_timezone"],
            max_length=64,
            optional=True,
            initial=terms.get("checkin_timezone"),
            placeholder="Europe/Berlin",
            hint="An IANA time zone; leave empty for the leader's own Slack time zone.",
        ),
        _whole_number_input(
            "reminder_hours",
            int(terms.get("reminder_hours") or 0),
            low=0,
            high=rules.REMINDER_HOURS_MAX,
            hint="Hours after an unanswered check-in prompt; 0 for no reminder.",
        ),
        *_report_inputs(terms),
    ]
    if pending:
        listed = ", ".join(f"#{n}" for n in pending)
        blocks.append(context(f"⚠️ Already waiting for approval on the governance: {listed}."))
    blocks += [
        text_input(
            RATIONALE,
            "Why? (the approvers read this)",
            max_length=REASON_MAX,
            multiline=True,
            placeholder="What changed, and why the contract should follow",
        ),
        context(
            f"Decided by the current approvers: {_mentions(approvers)}. Each gets a DM to "
            "approve or reject it."
        ),
    ]
    metadata = AmendmentForm.write(
        contract_id=c.id, kind=GOVERNANCE.name, handle=GOVERNANCE_KEY, fingerprint=fingerprint
    )
    return View(
        type="modal",
        callback_id=AMEND_ITEM,
        title=modal_title("Change governance"),
        submit="Propose",
        close="Cancel",
        private_metadata=metadata,
        blocks=fit_view(blocks),
    )


def build_amend_sent(state: AmendmentState) -> View:
    """What the form turns into once the amendment is stored."""
    return View(
        type="modal",
        title=modal_title("Amendment proposed"),
        close="Done",
        blocks=[
            section(
                f"✅ Amendment *#{state.id}* ({escape(describe_change(state.amendment))}) is "
                f"waiting for {_mentions(state.awaiting)}."
            ),
            context(
                "Each approver gets a DM with the change. You'll hear here in a DM when "
                "it is decided."
            ),
        ],
    )


def build_reject_modal(state: AmendmentState) -> View:
    return View(
        type="modal",
        callback_id=AMEND_REJECT,
        title=modal_title(f"Reject #{state.id}"),
        submit="Reject",
        close="Cancel",
        private_metadata=AmendmentRef.write(amendment_id=state.id),
        blocks=[
            section(
                f"Reject amendment *#{state.id}*: {escape(describe_change(state.amendment))}, "
                f"proposed by {mention(state.amendment.proposer_id)}?"
            ),
            text_input(
                REASON,
                "Why? (the proposer reads this)",
                max_length=REASON_MAX,
                multiline=True,
            ),
        ],
    )


# --- showing an item and a change -----------------------------------------------------------


def _shown(name: str, value: Any, limit: int = 600) -> str:
    if value is None or value == "":
        return "—"
    if name in ("start", "due") and isinstance(value, str):
        try:
            return day(date.fromisoformat(value))
        except ValueError:
            return escape(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value)
    return escape(truncate(str(value), limit)).replace("\n", " ")


def _names(*items: Item | None) -> list[str]:
    names: list[str] = []
    for item in items:
        names += [n for n in item or {} if n != "key" and n not in names]
    return names


def item_lines(item: Item) -> list[str]:
    """One `• *Label*: value` line per field of an import-format item."""
    return [f"• *{FIELD_LABEL.get(n, n)}*: {_shown(n, item.get(n))}" for n in _names(item)]


def diff_lines(before: Item, after: Item) -> tuple[list[str], list[str]]:
    """(a line per changed field, the labels of the unchanged ones)."""
    changed, same = [], []
    for name in _names(before, after):
        old, new = before.get(name), after.get(name)
        label = FIELD_LABEL.get(name, name)
        if old == new:
            same.append(label)
            continue
        a, b = _shown(name, old), _shown(name, new)
        if len(a) + len(b) <= 120:
            changed.append(f"• *{label}*: ~{a}~ → *{b}*")
        else:
            changed.append(f"• *{label}*\n   _was:_ {a}\n   _now:_ {b}")
    return changed, same


def change_blocks(state: AmendmentState) -> list[Block]:
    """The item before and after, readably."""
    amendment, kind = state.amendment, state.kind
    before, after = amendment.before, amendment.after
    if kind is GOVERNANCE:
        words = [f"• {line}" for line in governance_changes(before, after)]
        return sections("Change the governance", words or ["_Nothing changes._"])
    named = escape(item_label(kind, amendment.item_key, before or after))
    what = change_of(amendment)
    if what == "add":
        return sections(f"New {kind.label}: {named}", item_lines(after or {}))
    if what == "remove":
        return sections(f"Remove {kind.label} {named}", item_lines(before or {}))
    changed, same = diff_lines(before or {}, after or {})
    blocks = sections(f"Change {kind.label} {named}", changed)
    if same:
        blocks.append(context(f"Unchanged: {', '.join(same)}."))
    return blocks


def _quote(text: str, limit: int = 1500) -> str:
    return "\n".join(f"> {line}" for line in escape(truncate(text, limit)).splitlines() or [""])


def status_line(state: AmendmentState, *, recipient: str | None = None) -> str:
    """Where the amendment stands, as one line."""
    a = state.amendment
    if a.status == AmendmentStatus.applied:
        by = _mentions(state.approved_by)
        return f"✅ Approved by {by} and applied: the contract is now at version {state.version}."
    if a.status == AmendmentStatus.rejected:
        rejection = state.rejection
        who = mention(rejection.approver_id) if rejection else "an approver"
        return f"❌ Rejected by {who}: {escape(truncate(a.decision_reason, 1000))}"
    if a.status == AmendmentStatus.stale:
        return (
            f"⚠️ Not applied: {escape(truncate(a.decision_reason, 1000))}. "
            "Propose it again with `/contract amend` if it still makes sense."
        )
    waiting = f"waiting for {_mentions(state.awaiting)}."
    if recipient is not None and state.decision_of(recipient) is not None:
        return f"⏳ You approved it; {waiting}"
    if state.approved_by:
        return f"⏳ Approved by {_mentions(state.approved_by)}; {waiting}"
    return f"⏳ Waiting for {_mentions(state.awaiting)}."


def build_request(state: AmendmentState, *, recipient: str) -> tuple[str, list[Block]]:
    """An approver's DM: the change, why, where it stands, and Approve / Reject while open."""
    a, c = state.amendment, state.contract
    blocks: list[Block] = [
        section(
            f"*Amendment #{state.id}* to {mention(c.leader_id)}'s contract "
            f"*{escape(truncate(c.title, 200))}*"
        ),
        context(
            f"Proposed by {mention(a.proposer_id)} · {day(a.created_at.date())} · "
            f"against version {a.base_version}"
        ),
        *change_blocks(state),
        section(f"*Why*\n{_quote(a.rationale)}"),
        DividerBlock(),
        section(status_line(state, recipient=recipient)),
    ]
    if state.pending and state.decision_of(recipient) is None:
        blocks.append(
            ActionsBlock(
                block_id="amendment_decision",
                elements=[
                    ButtonElement(
                        text="Approve", action_id=APPROVE, value=str(state.id), style="primary"
                    ),
                    ButtonElement(
                        text="Reject", action_id=REJECT, value=str(state.id), style="danger"
                    ),
                ],
            )
        )
    text = (
        f"Amendment #{state.id} to {escape(truncate(c.title, 200))}: {escape(describe_change(a))}"
    )
    return truncate(text, 300), blocks


def build_outcome(state: AmendmentState) -> tuple[str, list[Block]]:
    """The proposer's DM once the amendment is decided."""
    a, c = state.amendment, state.contract
    what = escape(describe_change(a))
    title = escape(truncate(c.title, 200))
    if a.status == AmendmentStatus.applied:
        text = f"Your amendment #{state.id} ({what}) to “{title}” was approved and applied."
    elif a.status == AmendmentStatus.rejected:
        text = f"Your amendment #{state.id} ({what}) to “{title}” was rejected."
    else:
        text = f"Your amendment #{state.id} ({what}) to “{title}” was not applied."
    blocks: list[Block] = [section(text), *change_blocks(state), section(status_line(state))]
    return text, blocks


# --- summaries and history ------------------------------------------------------------------


def pending_lines(states: Sequence[AmendmentState]) -> list[str]:
    """One line per pending amendment, for the contract summary."""
    lines = []
    for state in states:
        a = state.amendment
        named = escape(truncate(item_title(a.before or a.after), 80))
        approved = len(state.approved_by)
        lines.append(
            f"⏳ *#{state.id}* {escape(describe_change(a))}"
            f"{f' · {named}' if named else ''} · proposed by {mention(a.proposer_id)} "
            f"{day(a.created_at.date())} · {approved} of {len(state.approvers)} approvals, "
            f"waiting for {_mentions(state.awaiting)}"
        )
    return lines


def _when(at: datetime, zone: ZoneInfo | None = None) -> str:
    """A time each reader sees in their own time zone: Slack renders the token in the
    reader's; the fallback text (for clients that do not) is in `zone`, the viewer's."""
    local = at.astimezone(zone or UTC)
    fallback = f"{day(local.date())} {local:%H:%M} {local.tzname() or 'UTC'}"
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


_AUDIT_LABEL = {
    "contract.drafted": "drafted the contract",
    "contract.activated": "activated the contract",
    "contract.imported": "imported the contract",
    "amendment.proposed": "proposed amendment",
    "amendment.approved": "approved amendment",
    "amendment.rejected": "rejected amendment",
    "amendment.stale": "found amendment out of date:",
    "amendment.applied": "approved and applied amendment",
}


_DETAIL_NAMES = {
    "title": "title",
    "sponsor_id": "sponsor",
    "owner_id": "owner",
    "period_start": "period",
    "period_end": "period",
    "mission": "mission",
    "checkin_weekday": "check-in day",
    "checkin_time": "check-in time",
}


def _detail_names(detail: dict[str, Any]) -> str:
    """`title, sponsor and period`: which of a draft's own fields an edit changed."""
    names = list(dict.fromkeys(_DETAIL_NAMES.get(k, "details") for k in detail)) or ["details"]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def audit_line(event: AuditEvent, zone: ZoneInfo | None = None) -> str:
    """One audit event as a line. Only the contract's own actions name their actor: events
    other features write may concern people a reader must not see (anonymous feedback)."""
    detail = event.detail or {}
    action = event.action
    number = f" #{detail['amendment']}" if "amendment" in detail else ""
    if action.startswith("draft.") and action.endswith("_added"):
        label = f"added {detail.get('key') or 'an item'} to the draft"
    elif action == "draft.details_changed":
        label = f"changed the draft's {_detail_names(detail)}"
    elif action.startswith("draft.") and action.endswith(("_changed", "_removed")):
        item = escape(str(detail.get("item") or "an item"))
        done = "changed" if action.endswith("_changed") else "removed"
        label = f"{done} {item} {'in' if done == 'changed' else 'from'} the draft"
    elif action == "draft.discarded":
        label = f"discarded the draft “{escape(truncate(str(detail.get('title') or ''), 200))}”"
    elif action == "contract.amended":
        count = len(detail.get("changes") or [])
        label = f"amended the contract by import: version {detail.get('version')}, "
        label += f"{count} change{'s' if count != 1 else ''}"
    elif action in _AUDIT_LABEL:
        label = _AUDIT_LABEL[action] + number
        if action == "amendment.proposed" and detail.get("change"):
            label += f" ({detail['change']} {detail.get('item') or detail.get('kind') or ''})"
        if action == "amendment.applied":
            label += f": version {detail.get('version')}"
            words = detail.get("words")
            if isinstance(words, list) and words:
                # Written by `governance_changes`: checked user ids as mentions, values
                # escaped already.
                label += " (" + truncate("; ".join(map(str, words)), 600) + ")"
        if action in ("amendment.rejected", "amendment.stale") and detail.get("reason"):
            label += f": {escape(truncate(str(detail['reason']), 200))}"
    else:
        described = describe_event(event, zone)
        if described is None:
            return f"{_when(event.created_at, zone)} · `{escape(action)}`"
        text, by_actor = described
        if not (by_actor and event.actor_id):
            return f"{_when(event.created_at, zone)} · {text[:1].upper()}{text[1:]}"
        return f"{_when(event.created_at, zone)} · {mention(event.actor_id)} {text}"
    actor = mention(event.actor_id) if event.actor_id else "_the command line_"
    return f"{_when(event.created_at, zone)} · {actor} {label}"


def describe_event(event: AuditEvent, zone: ZoneInfo | None = None) -> tuple[str, bool] | None:
    """What an event of the check-ins, evidence, feedback and milestones did, in words, and
    whether its actor may be named (never for feedback: who gave it stays with the
    feedback's own rules); None for an action this does not know."""
    detail = event.detail or {}
    action = event.action
    period = valid_period(detail.get("period"))
    week = period_label(period) if period else "a week"
    count = detail.get("reviewers") or detail.get("entries") or 0
    about = f" on {escape(str(detail['expectation']))}" if detail.get("expectation") else ""
    milestone = escape(str(detail.get("milestone") or ""))
    if action in ("checkin.submitted", "checkin.edited"):
        return f"{action.removeprefix('checkin.')} the check-in for {week}", True
    if action == "checkin.skipped":
        why = f" ({escape(str(detail['reason']))})" if detail.get("reason") else ""
        return f"skipped the check-in for {week}{why}", True
    if action == "checkin.snoozed":
        until = _instant(detail.get("until"))
        return f"snoozed the reminder for {week}" + (
            f" until {_when(until, zone)}" if until else ""
        ), True
    if action == "evidence.added":
        item = escape(str(detail.get("item") or "").partition(":")[2]) or "an item"
        return f"added evidence for {item}", True
    if action == "feedback.requested":
        return f"asked {count} {'person' if count == 1 else 'people'} for feedback{about}", True
    if action == "feedback.given":
        return f"feedback was given by name{about}", False
    if action == "feedback.withdrawn":
        return "feedback given by name was withdrawn", False
    if action == "feedback.released":
        return f"{count} anonymous feedback entries were released to the leader together", False
    if action in ("milestone.met", "milestone.missed"):
        return f"milestone {milestone} was {action.removeprefix('milestone.')}", False
    if action == "milestone.support_requested":
        return f"asked for support after milestone {milestone} was missed", True
    if action == "contract.closed":
        text = "closed the contract"
        if detail.get("superseded_by"):
            text += " (replaced by a new contract)"
        if detail.get("reason") and detail["reason"] != "superseded":
            text += f": {escape(truncate(str(detail['reason']), 200))}"
        return text, True
    if action == "contract.reflection":
        return "wrote the closing reflection", True
    if action == "contract.renewed":
        return (
            f"renewed the contract: the draft contract {escape(str(detail.get('draft') or ''))} "
            "replaces it once its leader, sponsor and owner agree",
            True,
        )
    if action == "contract.sent_for_agreement":
        replacing = " as replacing the current contract" if detail.get("replaces_current") else ""
        again = " again" if detail.get("again") else ""
        return (
            f"sent terms version {detail.get('version')} for agreement{again}{replacing}",
            True,
        )
    if action == "contract.agreed":
        return f"agreed to terms version {detail.get('version')}", True
    if action == "contract.agreed_outside_slack":
        parties = ", ".join(mention(str(u)) for u in detail.get("parties") or [])
        operator = escape(truncate(str(detail.get("operator") or "unknown"), 64))
        return (
            f"agreement of {parties or 'the parties'} to terms version {detail.get('version')} "
            f"was given outside Slack, as recorded by {operator} (contract import --agreed)",
            False,
        )
    if action == "contract.change_requested":
        comment = escape(truncate(str(detail.get("comment") or ""), 200))
        return f"asked for a change to terms version {detail.get('version')}: “{comment}”", True
    if action == "contract.terms_changed":
        return (
            f"the draft changed: terms version {detail.get('version')}, asked for agreement again",
            False,
        )
    if action == "contract.agreement_waiting":
        return (
            "everyone agreed; the contract waits for the leader's active contract to close",
            False,
        )
    if action == "risk.resolved":
        note = escape(truncate(str(detail.get("note") or ""), 200))
        return "resolved a risk" + (f": {note}" if note else ""), True
    if action == "contract.returned_to_draft":
        return "the contract went back to draft: a leader has one active contract at a time", False
    return None


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def version_line(version: ContractVersion, history: History, zone: ZoneInfo | None = None) -> str:
    amendment = history.amendments.get(version.amendment_id or 0)
    if amendment is not None:
        who = f"proposed by {mention(amendment.proposer_id)}"
        reason = escape(f"amendment #{amendment.id}: {describe_change(amendment)}")
        if amendment.item_type == GOVERNANCE.name:
            reason += " (" + "; ".join(governance_changes(amendment.before, amendment.after)) + ")"
    else:
        who = f"by {mention(version.created_by)}" if version.created_by else ""
        reason = escape(version.reason or "—")
    who = f" · {who}" if who else ""
    return f"*v{version.version}* · {_when(version.created_at, zone)} · {reason}{who}"


def build_history(
    contract: Contract, history: History, zone: ZoneInfo | None = None
) -> list[Block]:
    """Versions and the audit log of a contract, newest first; times in `zone`, the viewer's."""
    blocks: list[Block] = [
        header(f"History: {contract.title}"),
        context(
            f"Leader {mention(contract.leader_id)} · now at version {contract.version}",
            "See an old version with `/contract summary @leader v1`.",
        ),
    ]
    versions = [version_line(v, history, zone) for v in history.versions]
    blocks += sections(
        "Versions", capped(versions, LIST_CAP) or ["_None yet: drafts get versions once active._"]
    )
    blocks.append(DividerBlock())
    events = [audit_line(e, zone) for e in history.events]
    blocks += sections("Audit log", capped(events, AUDIT_CAP) or ["_Nothing recorded._"])
    return blocks


def build_contract_summary(
    view: SummaryView, *, today: date, viewer: str | None = None
) -> list[Block]:
    """The ordinary summary, with pending amendments, or an old version marked as such;
    `viewer` gets the buttons that are theirs to use."""
    blocks = build_summary(
        view.bundle, today=today, pending=pending_lines(view.pending), viewer=viewer
    )
    stored = view.version
    if stored is not None:
        reason = f" · {escape(truncate(stored.reason, 200))}" if stored.reason else ""
        blocks.insert(
            2,
            context(
                f"📜 *Version {stored.version}* of {view.latest} · {_when(stored.created_at)}"
                f"{reason}. The terms as they stood then; the figures are today's."
            ),
        )
    return blocks
