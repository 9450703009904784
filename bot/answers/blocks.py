"""Block Kit for answers to check-ins: the whole check-in, the reply modal, the messages the
leader gets (a threaded reply, a nudge), the digest's buttons and the history's replies."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, DividerBlock
from slack_sdk.models.views import View

from bot.answers.model import (
    HISTORY_REPLY_TEXT,
    MORE,
    NUDGE,
    REPLY,
    REPLY_INPUT,
    REPLY_LIMIT,
    REPLY_MODAL,
    Nudged,
    RiskShown,
    Shown,
)
from bot.checkins.blocks import START, target_value
from bot.core.calendar import period_label
from bot.core.text import escape, truncate
from bot.delivery.model import Message
from bot.risks.model import REPLY_MODAL as RISK_REPLY_MODAL
from bot.ui.blocks import context, day, header, mention, section, sections
from bot.ui.forms import modal_title, text_input
from bot.ui.metadata import CheckinRecordRef, CheckinRef, RiskRef
from storage.models import CheckIn, CheckInReply, Contract, Risk


def _contract_name(contract: Contract) -> str:
    return f"“{escape(truncate(contract.title, 150))}”"


def _quote(text: str) -> str:
    """Typed text as a mrkdwn quote, escaped, every line quoted."""
    return "> " + escape(text.strip()).replace("\n", "\n> ")


CHECKIN_TITLE = "Check-in"
REPLY_TITLE = "Reply to check-in"
RISK_REPLY_TITLE = "Reply to risk"
RISK_NAMED = 120  # how much of a risk's text a reply on it names


def reply_line(reply: CheckInReply, limit: int | None = None, risk: str | None = None) -> str:
    """`↩️ <@sponsor> 9 Mar 2027: “…”`, with `on risk: …` when it answers a risk."""
    text = " ".join(reply.text.split())
    shown = escape(truncate(text, limit) if limit else text)
    on = ""
    if risk is not None:
        on = f" on risk: _{escape(truncate(' '.join(risk.split()), RISK_NAMED))}_"
    return f"↩️ {mention(reply.author_id)} {day(reply.created_at.date())}{on}: “{shown}”"


def checkin_buttons(checkin: CheckIn, *, may_reply: bool) -> ActionsBlock:
    """*More* (the whole check-in) and, for those who answer check-ins, *Reply*."""
    value = CheckinRecordRef.write(checkin_id=checkin.id)
    elements = [ButtonElement(text="More", action_id=MORE, value=value)]
    if may_reply:
        elements.append(ButtonElement(text="Reply", action_id=REPLY, value=value))
    return ActionsBlock(block_id=f"checkin_answer_{checkin.id}", elements=elements)


def nudge_button(contract_id: int, period: str) -> ActionsBlock:
    """*Nudge* on a missed week: one friendly reminder to the leader."""
    return ActionsBlock(
        block_id=f"checkin_nudge_{contract_id}_{period}",
        elements=[
            ButtonElement(
                text=f"Nudge about week {int(period.split('-W')[1])}",
                action_id=NUDGE,
                value=CheckinRef.write(contract_id=contract_id, period=period),
            )
        ],
    )


def build_checkin_view(shown: Shown) -> View:
    """The whole check-in in a modal: the leader's wins and reflection in full, the rating,
    the replies it got, and *Reply* for those who answer check-ins."""
    c, checkin = shown.bundle.contract, shown.checkin
    blocks: list[Block] = [
        header(f"Check-in · {period_label(checkin.period_key)}"),
        context(
            f"{mention(c.leader_id)} on {_contract_name(c)}",
            f"saved {day(checkin.updated_at.date())}",
        ),
    ]
    if checkin.wins.strip():
        blocks += sections("Wins", [_quote(checkin.wins)])
    if checkin.reflection.strip():
        blocks += sections("Reflection", [_quote(checkin.reflection)])
    if checkin.confidence is not None:
        blocks.append(section(f"*Confidence* {checkin.confidence}/5"))
    if not (checkin.wins.strip() or checkin.reflection.strip()):
        blocks.append(section("_No wins or reflection written this week._"))
    if shown.replies:
        blocks.append(DividerBlock())
        blocks += sections(
            "Replies",
            [reply_line(r, risk=shown.risk_texts.get(r.id or 0)) for r in shown.replies],
        )
    if shown.may_reply:
        blocks.append(
            ActionsBlock(
                block_id="checkin_answer",
                elements=[
                    ButtonElement(
                        text="Reply",
                        action_id=REPLY,
                        value=CheckinRecordRef.write(checkin_id=checkin.id),
                        style="primary",
                    )
                ],
            )
        )
    return View(type="modal", title=modal_title(CHECKIN_TITLE), close="Close", blocks=blocks[:100])


def build_reply_modal(shown: Shown) -> View:
    """A short modal: what to tell the leader about their check-in."""
    c, checkin = shown.bundle.contract, shown.checkin
    return View(
        type="modal",
        callback_id=REPLY_MODAL,
        title=modal_title(REPLY_TITLE),
        submit="Send",
        close="Cancel",
        private_metadata=CheckinRecordRef.write(checkin_id=checkin.id),
        blocks=[
            context(
                f"To {mention(c.leader_id)} about {period_label(checkin.period_key)} "
                f"on {_contract_name(c)}: it goes under their check-in, and stays with it."
            ),
            text_input(
                REPLY_INPUT,
                "Your reply",
                max_length=REPLY_LIMIT,
                multiline=True,
                placeholder="What you noticed, a question, an offer of help…",
            ),
        ],
    )


def build_risk_reply_modal(found: RiskShown) -> View:
    """A short modal: what to tell the leader about a risk they raised."""
    c, checkin = found.shown.bundle.contract, found.shown.checkin
    risk = escape(truncate(" ".join(found.risk.text.split()), 300))
    return View(
        type="modal",
        callback_id=RISK_REPLY_MODAL,
        title=modal_title(RISK_REPLY_TITLE),
        submit="Send",
        close="Cancel",
        private_metadata=RiskRef.write(risk_id=found.risk.id),
        blocks=[
            section(f"*Risk* raised {period_label(checkin.period_key)}:\n> {risk}"),
            context(
                f"To {mention(c.leader_id)} on {_contract_name(c)}: it goes under their "
                "check-in for that week, and stays with it."
            ),
            text_input(
                REPLY_INPUT,
                "Your reply",
                max_length=REPLY_LIMIT,
                multiline=True,
                placeholder="An offer of help, a question, someone to talk to…",
            ),
        ],
    )


def build_risk_reply_message(
    contract: Contract, checkin: CheckIn, risk: Risk, reply: CheckInReply
) -> Message:
    """The leader's copy of a reply on a risk, threaded under that week's check-in prompt."""
    label = period_label(checkin.period_key)
    named = escape(truncate(" ".join(risk.text.split()), 300))
    return Message(
        text=f"{mention(reply.author_id)} replied about a risk you raised in {label}",
        blocks=[
            section(
                f"↩️ {mention(reply.author_id)} replied about a risk you raised in {label} "
                f"(_{named}_):\n{_quote(reply.text)}"
            ),
            context(f"{_contract_name(contract)} · kept with the check-in: `/checkin history`"),
        ],
    )


def build_reply_message(contract: Contract, checkin: CheckIn, reply: CheckInReply) -> Message:
    """The leader's copy of a reply, threaded under their check-in prompt when there is one."""
    return Message(
        text=f"{mention(reply.author_id)} replied to your check-in for "
        f"{period_label(checkin.period_key)}",
        blocks=[
            section(
                f"↩️ {mention(reply.author_id)} replied to your check-in for "
                f"{period_label(checkin.period_key)}:\n{_quote(reply.text)}"
            ),
            context(f"{_contract_name(contract)} · kept with the check-in: `/checkin history`"),
        ],
    )


def build_nudge_message(contract: Contract, nudged: Nudged, *, answerable: bool) -> Message:
    """The leader's one friendly reminder about a missed week; Start while it can be answered."""
    label = period_label(nudged.period)
    blocks: list[Block] = [
        section(
            f"👋 {mention(nudged.by)} would love to hear how {label} went: your check-in for "
            "it is missing. A few lines on wins and what you learned help them support you."
        ),
        context(_contract_name(contract)),
    ]
    if answerable:
        blocks.append(
            ActionsBlock(
                block_id=f"checkin_nudged_{contract.id}_{nudged.period}",
                elements=[
                    ButtonElement(
                        text="Start check-in",
                        action_id=START,
                        value=target_value(contract.id or 0, nudged.period),
                        style="primary",
                    )
                ],
            )
        )
    else:
        blocks.append(context("That week has closed; `/checkin` opens this week's."))
    return Message(text=f"A nudge about your check-in for {label}", blocks=blocks)


def nudge_outcome_text(nudged: Nudged) -> str:
    """What the person who clicked Nudge is told."""
    label = period_label(nudged.period)
    if nudged.new:
        return f"I've nudged {mention(nudged.leader)} about their check-in for {label}."
    return (
        f"{mention(nudged.leader)} was already nudged about {label}, by {mention(nudged.by)} "
        f"on {day(nudged.at.date())}: one reminder a week is enough."
    )


def history_reply_blocks(
    replies: Sequence[tuple[str, CheckInReply, str | None]],
) -> list[Block]:
    """`/checkin history`'s replies: each week's answers from the sponsor and governors,
    naming the risk when one answers a risk."""
    if not replies:
        return []
    lines = [
        f"*{period_label(period)}* {reply_line(reply, HISTORY_REPLY_TEXT, risk)}"
        for period, reply, risk in replies
    ]
    return sections("Replies to your check-ins", lines)
