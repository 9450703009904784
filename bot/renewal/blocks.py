"""Block Kit for a contract's end: the owner's and sponsor's Close / Renew message, the
leader's request for a closing reflection, the modals, and what a decision leaves behind."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement
from slack_sdk.models.views import View

from bot.contracts.blocks import agreement_status
from bot.contracts.model import AgreementState
from bot.core.text import escape, truncate
from bot.delivery import Message
from bot.renewal.model import REASON_MAX, REFLECTION_MAX, FinalFigures, renewed_text
from bot.summary.blocks import closed_lines, reflection_lines
from bot.summary.home import EDIT_DRAFT
from bot.ui.blocks import capped, context, day, header, mention, section, sections
from bot.ui.forms import modal_title, text_input
from bot.ui.metadata import ContractRef
from storage.models import Contract
from storage.queries.contracts import ContractBundle

END_CLOSE = "contract_end_close"
END_RENEW = "contract_end_renew"
WRITE_REFLECTION = "contract_write_reflection"
REFLECTION_MODAL = "contract_reflection"
CLOSE_MODAL = "contract_close"
CLOSE_TITLE = "Close contract"
REFLECTION = "reflection"
REASON = "reason"


def figure_lines(figures: FinalFigures) -> list[str]:
    """The final figures, each indicator and the milestones, in words."""
    lines = [f"• {escape(f.text())}" for f in figures.indicators] or ["_No indicators._"]
    lines.append(f"*Milestones:* {figures.milestone_line}")
    if figures.met:
        lines.append("✅ Met: " + escape(", ".join(figures.met)))
    if figures.missed:
        lines.append("❗ Missed: " + escape(", ".join(figures.missed)))
    return capped(lines)


def _decision_buttons(contract: Contract) -> ActionsBlock:
    value = ContractRef.write(contract_id=contract.id)
    return ActionsBlock(
        block_id="contract_end",
        elements=[
            ButtonElement(text="Close", action_id=END_CLOSE, value=value, style="primary"),
            ButtonElement(text="Renew", action_id=END_RENEW, value=value),
        ],
    )


def build_end_decision(bundle: ContractBundle, figures: FinalFigures, *, reminder: bool) -> Message:
    """To the owner and the sponsor: the period is over; close it, or renew it."""
    c = bundle.contract
    title = escape(truncate(c.title, 200))
    lead = (
        f"Reminder: “{title}” ended on {day(c.period_end)} and still waits for a decision."
        if reminder
        else f"The period of “{title}” ended on {day(c.period_end)}."
    )
    blocks: list[Block] = [
        header("Contract period ended" if not reminder else "Still to decide"),
        section(
            f"{lead}\nLeader {mention(c.leader_id)} · {day(c.period_start)} – {day(c.period_end)}"
        ),
        *sections("Final figures", figure_lines(figures)),
        section(reflection_lines(c)[0]),
        context(
            "*Close* ends it: its check-ins, feedback and digests stop, and it stays readable. "
            "*Renew* starts a new draft for the same leader with the indicators' latest values "
            "as the new baselines and sends it for agreement; when the leader, sponsor and "
            "owner have agreed it replaces this one, which then closes and stays readable."
        ),
        _decision_buttons(c),
    ]
    return Message(text=lead, blocks=blocks)


def build_reflection_request(bundle: ContractBundle) -> Message:
    """To the leader: the period is over; a few lines looking back go with the closing."""
    c = bundle.contract
    text = (
        f"The period of your contract “{escape(truncate(c.title, 200))}” ended on "
        f"{day(c.period_end)}. Your owner and sponsor now close or renew it."
    )
    return Message(
        text=text,
        blocks=[
            section(text),
            section(
                "Would you write a closing reflection? What you achieved, what you learned, "
                "what you would carry into the next period. They will see it with the final "
                "figures, and it stays in the contract's record."
            ),
            ActionsBlock(
                block_id="contract_reflection",
                elements=[
                    ButtonElement(
                        text="Write a reflection",
                        action_id=WRITE_REFLECTION,
                        value=ContractRef.write(contract_id=c.id),
                        style="primary",
                    )
                ],
            ),
        ],
    )


def build_reflection_modal(contract: Contract) -> View:
    return View(
        type="modal",
        callback_id=REFLECTION_MODAL,
        title=modal_title("Closing reflection"),
        submit="Save",
        close="Cancel",
        private_metadata=ContractRef.write(contract_id=contract.id),
        blocks=[
            section(f"*{escape(truncate(contract.title, 200))}*"),
            text_input(
                REFLECTION,
                "Looking back on this period",
                max_length=REFLECTION_MAX,
                multiline=True,
                initial=contract.closing_reflection,
                placeholder="What you achieved, what you learned, what you carry forward",
            ),
        ],
    )


def build_close_modal(bundle: ContractBundle, figures: FinalFigures, reason: str = "") -> View:
    """`/contract close`: the final figures, an optional reason, a confirmation."""
    c = bundle.contract
    return View(
        type="modal",
        callback_id=CLOSE_MODAL,
        title=modal_title(CLOSE_TITLE),
        submit="Close contract",
        close="Cancel",
        private_metadata=ContractRef.write(contract_id=c.id),
        blocks=[
            section(
                f"Close “{escape(truncate(c.title, 200))}” of {mention(c.leader_id)}? Its "
                "check-ins, feedback requests, reminders and digests stop; it stays readable."
            ),
            *sections("Final figures", figure_lines(figures)),
            section(reflection_lines(c)[0]),
            text_input(
                REASON,
                "Reason (optional)",
                max_length=REASON_MAX,
                multiline=True,
                optional=True,
                initial=reason or None,
                placeholder="Why it closes now",
            ),
        ],
    )


def build_decided(contract: Contract, what: str) -> Message:
    """What the Close / Renew message becomes once decided."""
    return Message(text=what, blocks=[section(what), *sections(None, closed_lines(contract))])


def _draft_button(draft: Contract, text: str = "Open the draft") -> ActionsBlock:
    return ActionsBlock(
        block_id="renewal_draft",
        elements=[
            ButtonElement(
                text=text,
                action_id=EDIT_DRAFT,
                value=ContractRef.write(contract_id=draft.id),
                style="primary",
            )
        ],
    )


def build_renewed(
    old: Contract,
    draft: Contract,
    *,
    already: bool,
    missing: list[str] | None = None,
    awaiting: list[str] | None = None,
) -> Message:
    """To the renewer: the draft made and sent for agreement (`awaiting` the others), or
    what it still needs before it can be sent (`missing`), with the button to its editor."""
    if already:
        lead = renewed_text(old, draft)
        return Message(text=lead, blocks=[section(lead), _draft_button(draft)])
    lead = (
        f"Renewed: “{escape(truncate(draft.title, 200))}” is a new draft for "
        f"{mention(draft.leader_id)}, {day(draft.period_start)} – {day(draft.period_end)}."
    )
    carried = (
        "The indicators' latest values are its baselines, their targets kept; the activities "
        "not done and the milestones not met moved into the new period."
    )
    if missing:
        next_step = (
            f"It still needs {', '.join(missing)} before it can be sent for agreement: open "
            "the draft, add them, then *Send for agreement*."
        )
    elif awaiting:
        next_step = (
            f"Sent for agreement: {', '.join(mention(u) for u in awaiting)} got the terms in a "
            "DM. When everyone has agreed it replaces "
            f"“{escape(truncate(old.title, 200))}”, which closes then and stays readable."
        )
    else:
        next_step = "Everyone has agreed."
    return Message(
        text=lead,
        blocks=[
            section(lead),
            section(next_step),
            context(
                carried + " Until the renewal is agreed the old contract stays active; its "
                "period is over, so it asks nobody for check-ins or feedback."
            ),
            _draft_button(draft),
        ],
    )


def build_renewal_pending(bundle: ContractBundle, draft: Contract) -> Message:
    """What the other decider's Close / Renew message becomes once one of them renewed."""
    text = renewed_text(bundle.contract, draft)
    return Message(
        text=text,
        blocks=[
            header("Contract renewed"),
            section(text),
            context(
                "It replaces the old contract once its leader, sponsor and owner agree; the "
                "old one then closes and stays readable. If the draft is discarded, you can "
                "close or renew again here."
            ),
        ],
    )


def build_closed_notice(contract: Contract, recipient: str) -> Message:
    """To the leader, sponsor and owner who did not close it themselves."""
    yours = "your contract" if recipient == contract.leader_id else "the contract"
    text = (
        f"{escape(truncate(contract.title, 200))}: {yours} of {mention(contract.leader_id)} "
        f"is closed."
    )
    return Message(text=text, blocks=[section(text), *sections(None, closed_lines(contract))])


def draft_agreement_line(state: AgreementState) -> str:
    """A draft on App Home: not sent yet, or where its agreement stands."""
    if state.contract.agreement_sent_at is None:
        return "Not sent for agreement yet."
    return "Sent for agreement. " + agreement_status(state)


def renewal_line(state: AgreementState) -> str:
    """An active contract whose renewal awaits agreement, on App Home and in its summary."""
    draft = state.contract
    title = escape(truncate(draft.title, 200))
    if draft.agreement_sent_at is None:
        return (
            f"*Renewal in preparation:* “{title}” still has to be completed and sent for "
            "agreement; this contract stays active until it is agreed."
        )
    return (
        f"*Renewal awaiting agreement:* “{title}”. {agreement_status(state)} When everyone "
        "has agreed it replaces this contract, which then closes."
    )
