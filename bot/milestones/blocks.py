"""Block Kit for milestone decisions: recognition, recalibration, notes and escalations."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.core.calendar import period_label
from bot.core.progress import format_number
from bot.core.text import escape, truncate
from bot.delivery.model import Message
from bot.lessons.blocks import share_offer
from bot.milestones.model import (
    ESCALATION,
    MET,
    MET_NOTE,
    MET_POST,
    MISSED,
    MISSED_NOTE,
    Decided,
    threshold_of,
)
from bot.summary.home import OPEN_SUMMARY
from bot.ui.blocks import SECTION_TEXT, context, day, mention, section
from bot.ui.forms import modal_title, text_input
from bot.ui.metadata import ContractRef, MissRef
from storage.models import ActivityStatus

PROPOSE = "milestone_propose"
ASK_SUPPORT = "milestone_ask_support"
SUPPORT_MODAL = "milestone_support_modal"
SUPPORT_INPUT = "need"
SUPPORT_LIMIT = 1000
RECALIBRATE_BLOCK = "milestone_recalibrate"
ACTIVITY_STATE = {
    ActivityStatus.not_started: "not started",
    ActivityStatus.in_progress: "in progress",
    ActivityStatus.done: "done",
    ActivityStatus.blocked: "blocked",
}


def button_value(decided: Decided) -> str:
    """What the recalibration buttons carry: the milestone and which miss they answer."""
    m = decided.milestone
    return MissRef.write(milestone=m.id, miss=m.missed_count)


def named(decided: Decided) -> str:
    m = decided.milestone
    return f"*{escape(m.key)} · {escape(truncate(m.title, 200))}*"


def keyed(decided: Decided, between: str = ":") -> str:
    """`M1: Engagement at 68`, escaped, for a notification's text."""
    m = decided.milestone
    return f"{escape(m.key)}{between} {escape(truncate(m.title, 200))}"


def contract_name(decided: Decided) -> str:
    return f"“{escape(truncate(decided.contract.title, 200))}”"


def _unit(decided: Decided) -> str:
    unit = decided.indicator.unit if decided.indicator is not None else ""
    return f" {escape(unit)}" if unit else ""


def state_line(decided: Decided) -> str:
    """What the milestone was decided on, in a sentence."""
    m, indicator, activity = decided.milestone, decided.indicator, decided.activity
    if m.indicator_key and indicator is not None:
        name = escape(truncate(indicator.name, 150))
        threshold = format_number(threshold_of(m, indicator))
        if decided.value is None:
            return f"No value of {name} was recorded (threshold {threshold}{_unit(decided)})."
        return (
            f"{name} is at *{format_number(decided.value)}*{_unit(decided)} "
            f"(threshold {threshold}{_unit(decided)})."
        )
    if m.activity_key and activity is not None:
        title = escape(truncate(activity.title, 150))
        if activity.status == ActivityStatus.done:
            return f"“{title}” is done."
        state = ACTIVITY_STATE.get(activity.status, activity.status)  # type: ignore[call-overload]
        progress = f", {activity.progress}%" if activity.status == "in_progress" else ""
        return f"“{title}” is {state}{progress}."
    return ""


def _summary_button(decided: Decided) -> ButtonElement:
    return ButtonElement(
        text="Open summary",
        action_id=OPEN_SUMMARY,
        value=ContractRef.write(contract_id=decided.contract.id),
    )


def _with_summary(text: str, decided: Decided) -> SectionBlock:
    return SectionBlock(
        text=MarkdownTextObject(text=truncate(text, SECTION_TEXT)),
        accessory=_summary_button(decided),
    )


def build_recognition(decided: Decided) -> Message:
    """The leader's DM when a milestone is met."""
    m = decided.milestone
    blocks: list[Block] = [
        section(f"🎉 *Milestone met!* {named(decided)}\n{state_line(decided)}"),
        context(f"{contract_name(decided)} · due {day(m.due)} · your sponsor has been told"),
    ]
    return Message(text=f"🎉 You met milestone {keyed(decided)}", blocks=blocks)


def build_met_note(decided: Decided) -> Message:
    """The sponsor's note that a milestone was met."""
    c, m = decided.contract, decided.milestone
    text = (
        f"🎉 {mention(c.leader_id)} met milestone {named(decided)} on {contract_name(decided)}.\n"
        f"{state_line(decided)}"
    )
    return Message(
        text=f"{mention(c.leader_id)} met milestone {keyed(decided)}",
        blocks=[_with_summary(text, decided), context(f"Due {day(m.due)}")],
    )


def build_met_post(decided: Decided) -> Message:
    """The recognition channel's post: who, and which milestone (no figures)."""
    c, m = decided.contract, decided.milestone
    text = (
        f"🎉 Congratulations {mention(c.leader_id)}: milestone "
        f"*{escape(truncate(m.title, 200))}* is met!"
    )
    return Message(
        text=f"🎉 {mention(c.leader_id)} met a milestone: {escape(truncate(m.title, 200))}",
        blocks=[section(text)],
    )


def build_recalibration(decided: Decided, *, asked: bool = False) -> Message:
    """The leader's DM when a milestone is missed: recalibrate by amendment or ask for support."""
    c, m = decided.contract, decided.milestone
    blocks: list[Block] = [
        section(
            f"⏰ *Milestone missed:* {named(decided)}\n"
            f"It was due {day(m.due)}. {state_line(decided)}"
        ),
        context(f"{contract_name(decided)} · miss {m.missed_count}"),
    ]
    if m.missed_count >= 2 and decided.escalation:
        told = ", ".join(mention(u) for u in decided.escalation)
        blocks.append(
            context(f"This milestone has been missed {m.missed_count} times, so {told} were told.")
        )
    blocks.append(
        section(
            "Let's recalibrate: propose a new date or target (your approvers decide on it), "
            f"or ask {mention(c.sponsor_id)} for support."
        )
    )
    value = button_value(decided)
    elements = [
        ButtonElement(
            text="Propose a new date or target", action_id=PROPOSE, value=value, style="primary"
        )
    ]
    if not asked:
        elements.append(
            ButtonElement(text="Ask my sponsor for support", action_id=ASK_SUPPORT, value=value)
        )
    blocks.append(ActionsBlock(block_id=RECALIBRATE_BLOCK, elements=elements))
    if asked:
        blocks.append(context(f"✅ You asked {mention(c.sponsor_id)} for support."))
    if m.id is not None:
        blocks.append(share_offer("milestone", m.id))
    return Message(
        text=f"⏰ Milestone {keyed(decided, ' was missed:')}. Let's recalibrate.",
        blocks=blocks,
    )


def build_missed_note(decided: Decided) -> Message:
    """The sponsor's note that a milestone was missed."""
    c, m = decided.contract, decided.milestone
    text = (
        f"⏰ {mention(c.leader_id)} missed milestone {named(decided)} on "
        f"{contract_name(decided)} (due {day(m.due)}).\n{state_line(decided)}"
    )
    blocks: list[Block] = [
        _with_summary(text, decided),
        context(
            "I've asked them to recalibrate: propose a new date or target, or ask you for support."
            + (f" This is miss {m.missed_count}." if m.missed_count > 1 else "")
        ),
    ]
    return Message(
        text=f"{mention(c.leader_id)} missed milestone {keyed(decided)}",
        blocks=blocks,
    )


def build_escalation(decided: Decided) -> Message:
    """An escalation contact's DM: a milestone was missed again."""
    c, m = decided.contract, decided.milestone
    text = (
        f"⚠️ {mention(c.leader_id)}'s milestone {named(decided)} on {contract_name(decided)} "
        f"was missed again (miss {m.missed_count}, due {day(m.due)}).\n{state_line(decided)}"
    )
    return Message(
        text=f"Escalation: {mention(c.leader_id)} missed milestone {escape(m.key)} again",
        blocks=[
            _with_summary(text, decided),
            context(f"Sponsor {mention(c.sponsor_id)} · you are an escalation contact"),
        ],
    )


def build_support_request(decided: Decided, need: str = "", week: str | None = None) -> Message:
    """The sponsor's DM when the leader asks for support with a missed milestone: the
    contract, the milestone and what the leader says they need, in their words."""
    c, m = decided.contract, decided.milestone
    text = (
        f"🆘 {mention(c.leader_id)} asks for your support with milestone {named(decided)} on "
        f"{contract_name(decided)}, missed on {day(m.due)}.\n{state_line(decided)}"
    )
    blocks: list[Block] = [_with_summary(text, decided)]
    if need.strip():
        quoted = escape(truncate(need.strip(), SUPPORT_LIMIT)).replace("\n", "\n> ")
        blocks.append(section(f"*What they need*\n> {quoted}"))
    if week:
        blocks.append(context(f"Asked in {period_label(week)}"))
    return Message(
        text=f"{mention(c.leader_id)} asks for your support with milestone {escape(m.key)}",
        blocks=blocks,
    )


def build_support_modal(decided: Decided) -> View:
    """Ask my sponsor for support: what the leader needs, in a sentence or two (required)."""
    c, m = decided.contract, decided.milestone
    return View(
        type="modal",
        callback_id=SUPPORT_MODAL,
        title=modal_title("Ask for support"),
        submit="Send",
        close="Cancel",
        private_metadata=button_value(decided),
        blocks=[
            context(
                f"To {mention(c.sponsor_id)} about milestone {named(decided)} "
                f"(due {day(m.due)}) on {contract_name(decided)}."
            ),
            text_input(
                SUPPORT_INPUT,
                "What do you need?",
                max_length=SUPPORT_LIMIT,
                multiline=True,
                placeholder="Time, a decision, an introduction, budget…",
            ),
        ],
    )


def build_notice(kind: str, decided: Decided, *, recipient: str) -> Message:
    """The message of one notice kind (see bot.milestones) for `recipient`."""
    if kind == MET:
        return build_recognition(decided)
    if kind == MET_NOTE:
        return build_met_note(decided)
    if kind == MET_POST:
        return build_met_post(decided)
    if kind == MISSED:
        return build_recalibration(decided)
    if kind == MISSED_NOTE:
        return build_missed_note(decided)
    if kind == ESCALATION:
        return build_escalation(decided)
    raise ValueError(f"no milestone notice of kind {kind!r} (for {recipient})")
