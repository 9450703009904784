"""Risk surfaces in Block Kit: the open risks with their Resolve buttons, the resilience
figures, the resolve modal and its confirmation, and the escalation DM."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    InteractiveElement,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.core.text import escape, truncate
from bot.delivery.model import Message
from bot.lessons.blocks import share_button
from bot.risks.model import (
    NOTE_MAX,
    REPLY,
    STATUS_MARK,
    Resilience,
    Resolved,
    RiskStatus,
    RiskToResolve,
    raised_on,
)
from bot.ui.blocks import context, day, mention, section, sections
from bot.ui.forms import text_input
from bot.ui.metadata import ContractRef, RiskRef
from storage.models import Contract, Risk

RESOLVE = "risk_resolve"
RESOLVE_MODAL = "risk_resolve"
NOTE_BLOCK = "note"
RISK_TEXT = 300
DIGEST_RISK_TEXT = 200
SHOWN_RISKS = 10
# The summary's "Open summary" action (`bot.summary.home.OPEN_SUMMARY`, which shows the open
# risks through this package, so it can't be imported from there).
OPEN_SUMMARY = "home_open_summary"


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def risk_line(risk: Risk, zone: ZoneInfo, today: date) -> str:
    """`🔴 open · 🆘 needs help · raised 3 Mar 2027 (12 days ago) · noticed 1 Mar 2027 ·
    owner @dana` and the risk's words on the next line."""
    raised = raised_on(risk, zone)
    status = STATUS_MARK.get(RiskStatus(risk.status), escape(risk.status))
    parts = [status]
    if risk.needs_sponsor_help:
        parts.append("🆘 needs help")
    parts.append(f"raised {day(raised)} ({_days(max((today - raised).days, 0))} ago)")
    if risk.noticed_on is not None:
        parts.append(f"noticed {day(risk.noticed_on)}")
    if risk.owner_id:
        parts.append(f"owner {mention(risk.owner_id)}")
    text = escape(truncate(" ".join(risk.text.split()), RISK_TEXT))
    line = f"{' · '.join(parts)}\n“{text}”"
    if risk.status == RiskStatus.mitigating and risk.resolution_note:
        line += f"\n↳ _{escape(truncate(risk.resolution_note, RISK_TEXT))}_"
    return line


def digest_risk_line(risk: Risk, zone: ZoneInfo, today: date) -> str:
    """One line for the digest: `🆘 “text” · mitigating · raised 3 Mar 2027, 12 days ago`."""
    raised = raised_on(risk, zone)
    mark = "🆘" if risk.needs_sponsor_help else "⚠️"
    text = escape(truncate(" ".join(risk.text.split()), DIGEST_RISK_TEXT))
    state = " · mitigating" if risk.status == RiskStatus.mitigating else ""
    owner = (
        f" · owner {mention(risk.owner_id)}"
        if risk.owner_id and risk.owner_id != risk.raised_by
        else ""
    )
    age = _days(max((today - raised).days, 0))
    return f"{mark} “{text}”{state} · raised {day(raised)}, {age} ago{owner}"


def reply_button(risk: Risk, label: str = "Reply") -> ButtonElement:
    """*Reply* beside an open risk: answer the leader about it (checked again when pressed)."""
    return ButtonElement(text=label, action_id=REPLY, value=RiskRef.write(risk_id=risk.id))


def open_risk_blocks(
    risks: Sequence[Risk], zone: ZoneInfo, today: date, *, resolvable: bool, repliable: bool = False
) -> list[Block]:
    """The open risks, oldest first, each with a Resolve button when the reader may use it
    and, when `repliable`, *Reply* for those who answer the leader (buttons are checked again
    when pressed)."""
    shown = [r for r in risks if r.status != RiskStatus.resolved]
    if not shown:
        return []
    blocks: list[Block] = [section(f"*Open risks* ({len(shown)})")]
    for risk in shown[:SHOWN_RISKS]:
        accessory = (
            ButtonElement(text="Resolve", action_id=RESOLVE, value=RiskRef.write(risk_id=risk.id))
            if resolvable
            else None
        )
        blocks.append(
            SectionBlock(
                block_id=f"risk_{risk.id}",
                text=MarkdownTextObject(text=truncate(risk_line(risk, zone, today), 3000)),
                accessory=accessory,
            )
        )
        if repliable and risk.checkin_id is not None:
            blocks.append(
                ActionsBlock(block_id=f"risk_reply_{risk.id}", elements=[reply_button(risk)])
            )
    if len(shown) > SHOWN_RISKS:
        blocks.append(context(f"_…and {len(shown) - SHOWN_RISKS} more open risks._"))
    return blocks


def resilience_blocks(figures: Resilience) -> list[Block]:
    """The resilience figures, when there is anything to show."""
    if not figures.open_count and not figures.resolved_count and not figures.recovered:
        return []
    return sections("Resilience", [f"• {line}" for line in figures.lines()])


def resilience_cells(figures: Resilience) -> dict[str, str]:
    """The figures as report cells: empty where there is nothing to measure yet."""

    def cell(value: float | None) -> str:
        if value is None:
            return ""
        return str(int(value)) if float(value).is_integer() else str(value)

    return {
        "risk_surfacing_days": cell(figures.surfacing),
        "risk_resolution_days": cell(figures.resolution),
        "milestone_recovery_days": cell(figures.recovery),
        "open_risks": str(figures.open_count),
    }


def build_resolve_modal(found: RiskToResolve, zone: ZoneInfo, today: date) -> View:
    return View(
        type="modal",
        callback_id=RESOLVE_MODAL,
        title="Resolve risk",
        submit="Resolve",
        close="Cancel",
        private_metadata=RiskRef.write(risk_id=found.risk.id),
        blocks=[
            context(f"“{escape(truncate(found.contract.title, 200))}”"),
            section(risk_line(found.risk, zone, today)),
            text_input(
                NOTE_BLOCK,
                "How was it resolved?",
                max_length=NOTE_MAX,
                multiline=True,
                placeholder="What was done, and what is left to watch.",
            ),
        ],
    )


def resolved_actions(resolved: Resolved) -> list[InteractiveElement]:
    """The buttons under a resolved risk's confirmation: *Share as a lesson*, when the
    leader resolved it (only the leader shares lessons from their contract's sources)."""
    risk = resolved.risk
    if risk.id is None or risk.resolved_by != resolved.contract.leader_id:
        return []
    return [share_button("risk", risk.id)]


def build_resolved_blocks(resolved: Resolved, zone: ZoneInfo) -> list[Block]:
    """What the person who resolved a risk sees (or, for a second click, how it was
    resolved first), with `resolved_actions` beneath."""
    risk = resolved.risk
    when = day(risk.resolved_at.astimezone(zone).date()) if risk.resolved_at else "earlier"
    head = (
        f"This risk was already resolved by {mention(risk.resolved_by)} on {when}."
        if resolved.already
        else f"✅ Resolved on {when}."
    )
    text = escape(truncate(" ".join(risk.text.split()), RISK_TEXT))
    blocks: list[Block] = [
        section(head),
        section(f"“{text}”\n↳ _{escape(truncate(risk.resolution_note or '', 1000))}_"),
        context(f"“{escape(truncate(resolved.contract.title, 200))}”"),
    ]
    actions = resolved_actions(resolved)
    if actions:
        blocks.append(ActionsBlock(block_id=f"resolved_{risk.id}", elements=actions))
    return blocks


def build_resolved_view(resolved: Resolved, zone: ZoneInfo) -> View:
    return View(
        type="modal",
        title="Risk resolved",
        close="Done",
        blocks=build_resolved_blocks(resolved, zone),
    )


def build_escalation(
    risk: Risk, contract: Contract, age: int, zone: ZoneInfo, now: datetime
) -> Message:
    """To an escalation contact: an open risk that needs help, past the contract's days."""
    text = (
        f"⚠️ A risk on “{escape(truncate(contract.title, 200))}” has needed help for "
        f"{_days(age)} without being resolved (the contract escalates after "
        f"{_days(contract.escalation_days)})."
    )
    blocks: list[Block] = [
        section(text),
        section(risk_line(risk, zone, now.astimezone(zone).date())),
        context(
            f"Leader {mention(contract.leader_id)}",
            f"Sponsor {mention(contract.sponsor_id)}",
            f"Owner {mention(risk.owner_id or contract.leader_id)}",
        ),
        ActionsBlock(
            block_id="risk_escalation",
            elements=[
                ButtonElement(
                    text="View summary",
                    action_id=OPEN_SUMMARY,
                    value=ContractRef.write(contract_id=contract.id),
                )
            ],
        ),
    ]
    return Message(
        text=f"A risk on “{escape(contract.title)}” needs help ({_days(age)}).", blocks=blocks
    )
