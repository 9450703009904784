"""Check-in surfaces in Block Kit: the prompt, its reminder and states, and the modal.

The modal's block ids are the keys `bot.checkins.forms` reads: `ind:I1` an indicator value
(empty unless typed: the last value is its placeholder), `same:I1` its "no change" checkbox,
`act:D1:status` / `act:D1:progress` an activity, `ev1_item` / `ev1_url` / `ev1_note`
evidence, `wins`, `still:7` / `still:7:note` an open risk carried from an earlier check-in
(its id), `risk1` / `risk1_help` / `risk1_noticed` / `risk1_owner` a new risk, `reflection`
and `confidence`. A contract whose
items do not fit one modal continues on pushed pages (at most `MAX_PAGES`, Slack's view
stack); the closing questions are on the last page. `private_metadata` holds ids only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    DatePickerElement,
    DividerBlock,
    InputBlock,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    RadioButtonsElement,
    StaticSelectElement,
    UrlInputElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.checkins.model import SKIP_REASONS, Answers, IndicatorAsk, PeriodStatus, Plan
from bot.core.calendar import period_dates, period_label
from bot.core.progress import format_number
from bot.core.rules import value_range
from bot.core.text import escape, truncate
from bot.delivery.model import Message
from bot.lessons.blocks import share_offer
from bot.people.model import DEACTIVATED, IS_BOT
from bot.risks.model import NOTE_MAX as RISK_NOTE_MAX
from bot.risks.model import STATUS_LABEL as RISK_STATUS_LABEL
from bot.risks.model import RiskStatus
from bot.summary.blocks import ACTIVITY_MARK
from bot.summary.home import OPEN_SUMMARY
from bot.ui.blocks import (
    MODAL_TITLE,
    OPTION_TEXT,
    VIEW_BLOCKS,
    VIEW_STACK,
    capped,
    context,
    day,
    header,
    mention,
    section,
    sections,
)
from bot.ui.forms import text_input
from bot.ui.metadata import CheckinPage, CheckinRef, ContractRef
from storage.models import ActivityStatus, Contract, SuccessIndicator

CHECKIN_MODAL = "checkin"
START = "checkin_start"
EDIT = "checkin_edit"
SNOOZE = "checkin_snooze"
SKIP = "checkin_skip"
ACTIONS_BLOCK = "checkin_actions"
MAX_PAGES = VIEW_STACK
PAGE_BLOCKS = VIEW_BLOCKS - 4
EVIDENCE_SLOTS = 1
RISK_SLOTS = 2
TEXT_MAX = 3000
RISK_MAX = 1000
NOTE_MAX = 1000
URL_MAX = 2000
SKIP_LABEL = {"leave": "On leave", "sick": "Off sick", "other": "Other reason"}
CONFIDENCE_LABEL = {
    1: "1 · not confident",
    2: "2 · unsure",
    3: "3 · on the fence",
    4: "4 · fairly confident",
    5: "5 · very confident",
}
STATUS_LABEL = {
    ActivityStatus.not_started: "Not started",
    ActivityStatus.in_progress: "In progress",
    ActivityStatus.done: "Done",
    ActivityStatus.blocked: "Blocked",
}
SKIPPED_MARK = "⏭️"
CONFIRM_PREFIX = "same:"
CONFIRM_VALUE = "same"


def target_value(contract_id: int, period: str) -> str:
    """A button's value: the check-in it is about, as ids."""
    return CheckinRef.write(contract_id=contract_id, period=period)


# --- messages -----------------------------------------------------------------------------


def unit_suffix(indicator: SuccessIndicator) -> str:
    return f" {indicator.unit}" if indicator.unit else ""


def _due_lines(plan: Plan) -> list[Block]:
    indicators = [
        f"• *{a.indicator.key}* {escape(truncate(a.indicator.name, 120))} · "
        + (
            f"last {format_number(a.last)}{escape(unit_suffix(a.indicator))}"
            if a.last is not None
            else "no value yet"
        )
        for a in plan.indicators
    ]
    activities = [
        f"• {ACTIVITY_MARK.get(ActivityStatus(a.status), a.status)} *{a.key}* "
        f"{escape(truncate(a.title, 150))} · {a.progress}% · due {day(a.due)}"
        for a in plan.activities
    ]
    milestones = [
        f"• 🎯 *{m.key}* {escape(truncate(m.title, 150))} · due {day(m.due)}"
        for m in plan.milestones
    ]
    blocks: list[Block] = []
    blocks += sections(
        f"Indicators due {which_week(plan)}",
        capped(indicators, 8) or [f"_No values due {which_week(plan)}._"],
    )
    if activities:
        blocks += sections("Activities in progress", capped(activities, 8))
    if milestones:
        blocks += sections("Milestones in the next 14 days", capped(milestones, 8))
    return blocks


def _skip_menu(plan: Plan) -> StaticSelectElement:
    return StaticSelectElement(
        action_id=SKIP,
        placeholder="Skip last week…" if plan.open_until else "Skip this week…",
        options=[Option(value=r, label=SKIP_LABEL[r]) for r in SKIP_REASONS],
    )


def _open_actions(plan: Plan, *, start_text: str, snooze: bool) -> ActionsBlock:
    value = target_value(plan.contract_id, plan.period)
    elements: list[Any] = [
        ButtonElement(text=start_text, action_id=START, value=value, style="primary")
    ]
    if snooze:
        elements.append(ButtonElement(text="Snooze until tomorrow", action_id=SNOOZE, value=value))
    elements.append(_skip_menu(plan))
    return ActionsBlock(
        block_id=f"{ACTIONS_BLOCK}:{plan.contract_id}:{plan.period}", elements=elements
    )


def which_week(plan: Plan) -> str:
    """`this week`, or `last week` for a week that is over but still open."""
    return "this week" if plan.open_until is None else "last week"


def closing_day(plan: Plan) -> str:
    """The weekday the check-in closes at the end of, on the leader's clock: `Tuesday`."""
    if plan.open_until is None:
        return "Sunday"
    return f"{(plan.open_until - timedelta(microseconds=1)).astimezone(plan.zone):%A}"


def build_prompt(plan: Plan, *, notice: str | None = None) -> Message:
    """The weekly DM: the period, what is due, and Start, Snooze and Skip; for a week that is
    over but still open (a prompt missed while the bot was down), worded for last week."""
    if plan.open_until is None:
        title = f"Weekly check-in · {period_label(plan.period)}"
        text = f"Your weekly check-in for {period_label(plan.period)} is open."
    else:
        title = f"Last week's check-in · {period_label(plan.period)}"
        text = (
            f"Your check-in for last week ({period_dates(plan.period)}) is still open "
            f"until {closing_day(plan)}."
        )
    blocks: list[Block] = [header(title)]
    blocks.append(context(f"“{escape(truncate(plan.contract.title, 200))}”"))
    if plan.open_until is not None:
        blocks.append(section(f"{text} Its values count for that week."))
    if notice:
        blocks.append(context(notice))
    blocks += _due_lines(plan)
    blocks.append(_open_actions(plan, start_text="Start check-in", snooze=True))
    return Message(text=text, blocks=blocks)


def build_reminder_message(plan: Plan) -> Message:
    label = period_label(plan.period)
    blocks: list[Block] = [
        section(f"⏰ *Reminder:* your check-in for {label} is still open."),
        context(
            f"“{escape(truncate(plan.contract.title, 200))}” · "
            f"it closes on {closing_day(plan)} night."
        ),
        _open_actions(plan, start_text="Start check-in", snooze=False),
    ]
    return Message(text=f"Reminder: your check-in for {label} is still open.", blocks=blocks)


def build_submitted(plan: Plan) -> Message:
    """The prompt once answered: what was recorded, with Edit check-in and View summary."""
    checkin = plan.checkin
    label = period_label(plan.period)
    confidence = f" · confidence {checkin.confidence}/5" if checkin and checkin.confidence else ""
    values = [
        f"{a.indicator.key} {format_number(a.answered.value)}{escape(unit_suffix(a.indicator))}"
        + (" (no change)" if a.answered.confirmed else "")
        for a in plan.indicators
        if a.answered is not None
    ]
    facts = []
    if values:
        facts.append("Values: " + ", ".join(values))
    if plan.risks:
        helped = sum(r.needs_sponsor_help for r in plan.risks)
        facts.append(
            f"{len(plan.risks)} risk{'s' if len(plan.risks) != 1 else ''}"
            + (f" ({helped} for your sponsor)" if helped else "")
        )
    if plan.evidence:
        facts.append(f"{len(plan.evidence)} evidence")
    blocks: list[Block] = [
        section(f"✅ *Check-in for {label} submitted*{confidence}"),
        context(f"“{escape(truncate(plan.contract.title, 200))}”", *facts[:8]),
        ActionsBlock(
            block_id=f"{ACTIONS_BLOCK}:{plan.contract_id}:{plan.period}",
            elements=[
                ButtonElement(
                    text="Edit check-in",
                    action_id=EDIT,
                    value=target_value(plan.contract_id, plan.period),
                ),
                ButtonElement(
                    text="View summary",
                    action_id=OPEN_SUMMARY,
                    value=ContractRef.write(contract_id=plan.contract_id),
                ),
            ],
        ),
    ]
    blocks += lesson_offer(plan)
    return Message(text=f"Check-in for {label} submitted.", blocks=blocks)


def lesson_offer(plan: Plan) -> list[Block]:
    """*Share as a lesson* under an answered check-in that holds a reflection."""
    checkin = plan.checkin
    if checkin is None or checkin.id is None or not checkin.reflection.strip():
        return []
    return [share_offer("checkin", checkin.id)]


def build_skipped(plan: Plan) -> Message:
    reason = plan.checkin.skip_reason if plan.checkin else None
    label = period_label(plan.period)
    why = f" ({SKIP_LABEL.get(reason or '', reason or '').lower()})" if reason else ""
    blocks: list[Block] = [
        section(f"{SKIPPED_MARK} *Skipped {label}*{why}. See you next week."),
        ActionsBlock(
            block_id=f"{ACTIONS_BLOCK}:{plan.contract_id}:{plan.period}",
            elements=[
                ButtonElement(
                    text="Check in anyway",
                    action_id=START,
                    value=target_value(plan.contract_id, plan.period),
                )
            ],
        ),
    ]
    return Message(text=f"Skipped {label}.", blocks=blocks)


def build_period_message(plan: Plan, *, notice: str | None = None) -> Message:
    """The period's message in its current state: open, submitted or skipped."""
    if plan.answered:
        return build_submitted(plan)
    if plan.skipped:
        return build_skipped(plan)
    return build_prompt(plan, notice=notice)


def snoozed_notice(until: datetime, plan: Plan) -> str:
    local = until.astimezone(plan.zone)
    return f"⏰ Snoozed: I'll remind you {local:%A} at {local:%H:%M}."


def build_sponsor_help(plan: Plan, risk_text: str) -> Message:
    c = plan.contract
    text = (
        f"🆘 {mention(c.leader_id)} asks for your help with a risk on "
        f"“{escape(truncate(c.title, 200))}” ({period_label(plan.period)}):"
    )
    blocks: list[Block] = [
        section(text),
        section("> " + escape(truncate(risk_text, 2900)).replace("\n", "\n> ")),
        ActionsBlock(
            block_id="sponsor_help",
            elements=[
                ButtonElement(
                    text="View summary",
                    action_id=OPEN_SUMMARY,
                    value=ContractRef.write(contract_id=plan.contract_id),
                )
            ],
        ),
    ]
    return Message(
        text=f"{mention(c.leader_id)} asks for your help with a risk on “{escape(c.title)}”.",
        blocks=blocks,
    )


UNREACHABLE_WHY = {
    DEACTIVATED: "their Slack account is deactivated",
    IS_BOT: "that account is a bot, which can't be sent messages",
}


def build_undeliverable_notice(
    contract: Contract, recipient: str, what: str, error: str
) -> Message:
    why = UNREACHABLE_WHY.get(error) or (
        f"Slack answered `{escape(error)}` (the account is deactivated or gone)"
    )
    text = (
        f"I couldn't deliver {what} to {mention(recipient)} for "
        f"“{escape(truncate(contract.title, 200))}”: {why}. I've stopped trying; if they "
        "have left, the contract needs a new leader."
    )
    return Message(text=text, blocks=[section(text)])


STATUS_WORDS = {
    "answered": "✅ answered",
    "skipped": f"{SKIPPED_MARK} skipped",
    "missed": "❌ missed",
    "open": "🟡 open",
    "upcoming": "⚪ not yet due",
}


def build_history(periods: Sequence[PeriodStatus], contract_title: str) -> list[Block]:
    lines = []
    for p in periods:
        status = STATUS_WORDS.get(p.status, p.status)
        if p.status == "answered" and p.confidence:
            status += f" · confidence {p.confidence}/5"
        if p.status == "skipped" and p.skip_reason:
            status += f" ({p.skip_reason})"
        lines.append(f"• *{period_label(p.period)}* {status}")
    return [
        *sections(
            f"Your last check-ins · “{escape(truncate(contract_title, 150))}”",
            lines or ["_No check-in periods yet._"],
        )
    ]


# --- the modal ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    kind: str  # indicator | activity
    key: str
    confirmable: bool = False  # an indicator with a last value gets a "no change" checkbox

    @property
    def blocks(self) -> int:
        return 1 + self.confirmable if self.kind == "indicator" else 2


STILL_PREFIX = "still:"
RISK_BLOCKS = 4  # a new risk's text, help, noticed-on date and owner


def closing_block_count(carried: int = 0) -> int:
    return (
        1
        + 3 * EVIDENCE_SLOTS
        + 1
        + (1 + 2 * carried if carried else 0)
        + (RISK_BLOCKS * RISK_SLOTS)
        + 2
    )


def paginate(plan: Plan, page_blocks: int = PAGE_BLOCKS) -> list[list[Item]]:
    """The items on each page; the last page also holds the closing questions.

    At most `MAX_PAGES` (Slack's view stack); what does not fit waits for next week.
    """
    items = [
        Item("indicator", a.indicator.key, a.previous is not None) for a in plan.indicators
    ] + [Item("activity", a.key) for a in plan.activities]
    budget = page_blocks - 2  # the context line and a notice
    closing = closing_block_count(len(plan.carried))
    pages: list[list[Item]] = [[]]
    used = 0
    for item in items:
        if used + item.blocks > budget:
            if len(pages) == MAX_PAGES:
                break
            pages.append([])
            used = 0
        pages[-1].append(item)
        used += item.blocks
    if used + closing > budget:
        if len(pages) < MAX_PAGES:
            pages.append([])
        else:
            while pages[-1] and used + closing > budget:
                used -= pages[-1].pop().blocks
    return pages


def dropped_items(plan: Plan, page_blocks: int = PAGE_BLOCKS) -> int:
    shown = sum(len(p) for p in paginate(plan, page_blocks))
    return len(plan.indicators) + len(plan.activities) - shown


def _number_text(value: float | None) -> str | None:
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _indicator_input(plan: Plan, key: str) -> InputBlock:
    ask = plan.indicator(key)
    assert ask is not None
    indicator = ask.indicator
    low, high = value_range(indicator)
    unit = f" ({indicator.unit})" if indicator.unit else ""
    # Only what the leader typed comes back: a last value is shown, never pre-filled.
    typed = ask.answered is not None and not ask.answered.confirmed
    initial = ask.answered.value if ask.answered is not None and typed else None
    last = _last_text(ask, plan.zone)
    hint = (
        f"{indicator.cadence.capitalize()} · baseline {format_number(indicator.baseline)} → "
        f"target {format_number(indicator.target)}{unit_suffix(indicator)}"
        + (f" · {last}" if last else "")
        + ". Leave it empty if you have no new value"
        + (", or tick “no change” below." if last else ".")
    )
    return InputBlock(
        block_id=f"ind:{key}",
        label=truncate(f"{key} · {indicator.name}{unit}", 2000),
        hint=truncate(hint, 2000),
        optional=True,
        element=NumberInputElement(
            action_id=f"ind:{key}",
            is_decimal_allowed=True,
            initial_value=_number_text(initial),
            min_value=_number_text(low),
            max_value=_number_text(high),
            placeholder=truncate(last[0].upper() + last[1:], 150) if last else "No value yet",
        ),
    )


def _last_text(ask: IndicatorAsk, zone: ZoneInfo) -> str | None:
    """`last 65 points on 12 Feb 2027`: the value before this check-in, with its date."""
    before = ask.previous
    if before is None:
        return None
    when = day(before.measured_at.astimezone(zone).date())
    return f"last {format_number(before.value)}{unit_suffix(ask.indicator)} on {when}"


def _confirm_input(plan: Plan, key: str) -> InputBlock | None:
    """The explicit "no change" for an indicator with a last value: it records that value
    again, flagged as confirmed, so a value nobody typed is never a silent measurement."""
    ask = plan.indicator(key)
    if ask is None or ask.previous is None:
        return None
    value = f"{format_number(ask.previous.value)}{unit_suffix(ask.indicator)}"
    option = Option(value=CONFIRM_VALUE, label=truncate(f"No change: still {value}", OPTION_TEXT))
    ticked = ask.answered is not None and ask.answered.confirmed
    return InputBlock(
        block_id=f"{CONFIRM_PREFIX}{key}",
        label=truncate(f"{key} unchanged?", 2000),
        optional=True,
        element=CheckboxesElement(
            action_id=f"{CONFIRM_PREFIX}{key}",
            options=[option],
            initial_options=[option] if ticked else None,
        ),
    )


def _activity_inputs(plan: Plan, key: str, answers: Answers | None) -> list[Block]:
    activity = plan.activity(key)
    assert activity is not None
    status, progress = (answers.activities.get(key) if answers else None) or (
        activity.status,
        activity.progress,
    )
    options = [Option(value=s.value, label=label) for s, label in STATUS_LABEL.items()]
    chosen = next((o for o in options if o.value == status), None)
    return [
        InputBlock(
            block_id=f"act:{key}:status",
            label=truncate(f"{key} · {activity.title}", 2000),
            hint=f"Due {day(activity.due)}",
            element=StaticSelectElement(
                action_id=f"act:{key}:status", options=options, initial_option=chosen
            ),
        ),
        InputBlock(
            block_id=f"act:{key}:progress",
            label=f"{key} progress (%)",
            optional=True,
            element=NumberInputElement(
                action_id=f"act:{key}:progress",
                is_decimal_allowed=False,
                initial_value=str(progress),
                min_value="0",
                max_value="100",
            ),
        ),
    ]


def _evidence_options(plan: Plan) -> list[Option]:
    options = [
        Option(value=f"indicator:{i.key}", label=truncate(f"{i.key} {i.name}", OPTION_TEXT))
        for i in plan.all_indicators
    ]
    options += [
        Option(value=f"activity:{a.key}", label=truncate(f"{a.key} {a.title}", OPTION_TEXT))
        for a in plan.activities
    ]
    options += [
        Option(value=f"expectation:{e.key}", label=truncate(f"{e.key} {e.text}", OPTION_TEXT))
        for e in plan.expectations
    ]
    return options[:100]


def _closing_blocks(plan: Plan) -> list[Block]:
    checkin = plan.checkin if plan.answered else None
    blocks: list[Block] = [DividerBlock()]
    options = _evidence_options(plan)
    for slot in range(1, EVIDENCE_SLOTS + 1):
        saved = plan.evidence[slot - 1] if len(plan.evidence) >= slot else None
        chosen = (
            next((o for o in options if o.value == f"{saved.item_type}:{saved.item_key}"), None)
            if saved
            else None
        )
        if options:
            blocks.append(
                InputBlock(
                    block_id=f"ev{slot}_item",
                    label="Evidence for",
                    optional=True,
                    element=StaticSelectElement(
                        action_id=f"ev{slot}_item",
                        placeholder="An indicator, activity or expectation",
                        options=options,
                        initial_option=chosen,
                    ),
                )
            )
        blocks.append(
            InputBlock(
                block_id=f"ev{slot}_url",
                label="Evidence link",
                optional=True,
                element=UrlInputElement(
                    action_id=f"ev{slot}_url", initial_value=saved.url if saved else None
                ),
            )
        )
        blocks.append(
            text_input(
                f"ev{slot}_note",
                "Evidence note",
                initial=saved.note if saved else None,
                max_length=NOTE_MAX,
                optional=True,
            )
        )
    blocks.append(
        text_input(
            "wins",
            f"Wins {which_week(plan)}",
            initial=checkin.wins if checkin else None,
            max_length=TEXT_MAX,
            multiline=True,
            optional=True,
        )
    )
    blocks += carried_risk_blocks(plan)
    blocks += new_risk_blocks(plan)
    blocks.append(
        text_input(
            "reflection",
            "Reflection",
            initial=checkin.reflection if checkin else None,
            max_length=TEXT_MAX,
            multiline=True,
            optional=True,
            placeholder="What did you learn, what will you try next?",
        )
    )
    confidence_options = [
        Option(value=str(n), label=label) for n, label in CONFIDENCE_LABEL.items()
    ]
    initial = (
        confidence_options[checkin.confidence - 1]
        if checkin and checkin.confidence in CONFIDENCE_LABEL
        else None
    )
    blocks.append(
        InputBlock(
            block_id="confidence",
            label="How confident are you of reaching your targets?",
            element=RadioButtonsElement(
                action_id="confidence", options=confidence_options, initial_option=initial
            ),
        )
    )
    return blocks


# --- risks in the modal --------------------------------------------------------------------


def carried_risk_blocks(plan: Plan) -> list[Block]:
    """ "Still open?" for each risk raised before this check-in and not yet resolved."""
    if not plan.carried:
        return []
    today = plan.today or plan.day
    blocks: list[Block] = [
        context("*Open risks from earlier check-ins* · resolving one needs a note on how.")
    ]
    options = [Option(value=s.value, label=label) for s, label in RISK_STATUS_LABEL.items()]
    for risk in plan.carried:
        current = next((o for o in options if o.value == risk.status), options[0])
        raised = risk.created_at.astimezone(plan.zone).date()
        age = max((today - raised).days, 0)
        hint = f"Raised {day(raised)}, {age} day{'s' if age != 1 else ''} ago" + (
            " · needs sponsor help" if risk.needs_sponsor_help else ""
        )
        blocks.append(
            InputBlock(
                block_id=f"{STILL_PREFIX}{risk.id}",
                label=truncate(f"Still open? “{' '.join(risk.text.split())}”", 2000),
                hint=hint,
                element=RadioButtonsElement(
                    action_id=f"{STILL_PREFIX}{risk.id}",
                    options=options,
                    initial_option=current,
                ),
            )
        )
        blocks.append(
            text_input(
                f"{STILL_PREFIX}{risk.id}:note",
                "Note: how it was resolved, or what is being done",
                max_length=RISK_NOTE_MAX,
                multiline=True,
                optional=True,
                initial=risk.resolution_note if risk.status == RiskStatus.mitigating else None,
            )
        )
    return blocks


def new_risk_blocks(plan: Plan) -> list[Block]:
    """The new risks: what, whether it needs the sponsor, when first seen, who owns it."""
    blocks: list[Block] = []
    today = plan.today or plan.day
    for slot in range(1, RISK_SLOTS + 1):
        saved_risk = plan.risks[slot - 1] if len(plan.risks) >= slot else None
        blocks.append(
            text_input(
                f"risk{slot}",
                "Risk or blocker" if slot == 1 else "Another risk or blocker",
                initial=saved_risk.text if saved_risk else None,
                max_length=RISK_MAX,
                multiline=True,
                optional=True,
            )
        )
        help_option = Option(value="help", label="Needs sponsor help")
        blocks.append(
            InputBlock(
                block_id=f"risk{slot}_help",
                label="Sponsor",
                optional=True,
                element=CheckboxesElement(
                    action_id=f"risk{slot}_help",
                    options=[help_option],
                    initial_options=(
                        [help_option] if saved_risk and saved_risk.needs_sponsor_help else None
                    ),
                ),
            )
        )
        noticed = (saved_risk.noticed_on if saved_risk else None) or today
        blocks.append(
            InputBlock(
                block_id=f"risk{slot}_noticed",
                label="When did you first see this?",
                optional=True,
                element=DatePickerElement(
                    action_id=f"risk{slot}_noticed", initial_date=noticed.isoformat()
                ),
            )
        )
        owner = (saved_risk.owner_id if saved_risk else None) or plan.contract.leader_id
        blocks.append(
            InputBlock(
                block_id=f"risk{slot}_owner",
                label="Who owns it?",
                optional=True,
                element=UserSelectElement(action_id=f"risk{slot}_owner", initial_user=owner),
            )
        )
    return blocks


def build_checkin_modal(plan: Plan, *, page: int = 1, page_blocks: int = PAGE_BLOCKS) -> View:
    """Page `page` of the check-in modal for `plan` (pre-filled when editing)."""
    pages = paginate(plan, page_blocks)
    page = min(max(page, 1), len(pages))
    last = page == len(pages)
    week = plan.period.split("-W")[1].lstrip("0")
    title = (
        f"Check-in {page}/{len(pages)} · wk {week}"
        if len(pages) > 1
        else ("Edit check-in" if plan.answered else f"Check-in · week {week}")
    )
    lead = f"*{escape(truncate(plan.contract.title, 200))}* · {period_label(plan.period)}"
    if plan.answered and page == 1:
        lead += " · editing what you submitted"
    if plan.open_until is not None and page == 1:
        lead += f" · last week's, open until the end of {closing_day(plan)}"
    blocks: list[Block] = [ContextBlock(elements=[MarkdownTextObject(text=truncate(lead, 3000))])]
    items = pages[page - 1]
    if not plan.indicators and page == 1:
        blocks.append(context(f"No indicator values are due {which_week(plan)}."))
    for item in items:
        if item.kind == "indicator":
            blocks.append(_indicator_input(plan, item.key))
            if (confirm := _confirm_input(plan, item.key)) is not None:
                blocks.append(confirm)
        else:
            blocks += _activity_inputs(plan, item.key, None)
    if last:
        dropped = dropped_items(plan, page_blocks)
        if dropped:
            blocks.append(
                context(f"_{dropped} more items don't fit in Slack's modal; they wait a week._")
            )
        blocks += _closing_blocks(plan)
    return View(
        type="modal",
        callback_id=CHECKIN_MODAL,
        title=truncate(title, MODAL_TITLE),
        submit="Save" if last else "Next",
        close="Back" if page > 1 else "Cancel",
        private_metadata=CheckinPage.write(
            contract_id=plan.contract_id, period=plan.period, page=page, pages=len(pages)
        ),
        blocks=blocks,
    )
