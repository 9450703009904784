"""Block Kit for the alignment review: the DM with *Start the review*, the review modal, its
confirmation with an *Amend* button per item to amend, and the outcome as lines."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DividerBlock,
    InputBlock,
    Option,
    RadioButtonsElement,
)
from slack_sdk.models.views import View

from bot.core.text import escape, truncate
from bot.delivery.model import Message
from bot.reviews.model import (
    AMEND,
    CHOICE_LABEL,
    CHOICE_VERB,
    CHOICES,
    KEEP,
    NOTE_MAX,
    DueReview,
    ReviewForm,
    ReviewItem,
    choices_of,
)
from bot.ui.blocks import context, fit_view, header, mention, section, sections
from bot.ui.forms import modal_title, text_input
from bot.ui.metadata import ReviewItemRef, ReviewRef
from storage.models import AlignmentReview, Contract

REVIEW_START = "review_start"
REVIEW_SUBMIT = "review_submit"
REVIEW_AMEND = "review_amend"
REVIEW_TITLE = "Alignment review"
MAX_ITEMS = 30  # three blocks each keep the modal within Slack's 100


def _options() -> list[Option]:
    return [Option(value=choice, label=CHOICE_LABEL[choice]) for choice in CHOICES]


def build_review_dm(due: DueReview) -> Message:
    """The DM that opens a period's review."""
    c = due.contract
    title = escape(truncate(c.title, 200))
    other = "the sponsor" if due.role == "leader" else "the leader"
    text = f"Time for the alignment review of {title} ({due.period.label})"
    blocks: list[Block] = [
        section(
            f"*Alignment review · {due.period.label}*\n{mention(c.leader_id)}'s contract "
            f"*{title}*: are its expectations and indicators still the right ones? For each, "
            "choose *keep*, *amend* or *retire*, with a note if you like."
        ),
        context(
            f"You review as the {due.role}; {other} reviews too and sees your choices. "
            "Retiring an item proposes its removal to the approvers; amending opens the "
            "amendment form."
        ),
        ActionsBlock(
            block_id="review",
            elements=[
                ButtonElement(
                    text="Start the review",
                    action_id=REVIEW_START,
                    value=ReviewRef.write(contract_id=c.id, period=due.period.key),
                    style="primary",
                )
            ],
        ),
    ]
    return Message(text=text, blocks=blocks)


def _item_label(item: ReviewItem) -> str:
    return truncate(f"{item.key} · {' '.join(item.title.split())}", 150)


def _others_line(item: ReviewItem, others: Sequence[AlignmentReview]) -> str | None:
    said = []
    for review in others:
        for entry in choices_of(review):
            if (entry.get("kind"), entry.get("key")) != (item.kind, item.key):
                continue
            choice = str(entry.get("choice") or KEEP)
            note = str(entry.get("note") or "")
            quoted = f": “{escape(truncate(note, 200))}”" if note else ""
            said.append(
                f"{mention(review.reviewer_id)} ({escape(review.role)}) chose "
                f"*{CHOICE_LABEL.get(choice, KEEP)}*{quoted}"
            )
    return " · ".join(said) or None


def build_review_modal(form: ReviewForm) -> View:
    """Each expectation and indicator with keep / amend / retire and a note; the other
    reviewer's choices above each, once they have reviewed."""
    c = form.bundle.contract
    blocks: list[Block] = [
        section(
            f"*{escape(truncate(c.title, 200))}* · {mention(c.leader_id)} · "
            f"{form.period.label}\nIs each term still aligned with the strategy? *Retire* "
            "proposes its removal to the approvers; *Amend* offers the amendment form next."
        )
    ]
    if form.others:
        who = ", ".join(f"{mention(r.reviewer_id)} ({escape(r.role)})" for r in form.others)
        blocks.append(context(f"Already reviewed by {who}: their choices are shown per item."))
    for item in form.items[:MAX_ITEMS]:
        line = _others_line(item, form.others)
        if line:
            blocks.append(context(line))
        blocks.append(
            InputBlock(
                block_id=item.block_id,
                label=_item_label(item),
                element=RadioButtonsElement(
                    action_id=item.block_id,
                    options=_options(),
                    initial_option=Option(value=KEEP, label=CHOICE_LABEL[KEEP]),
                ),
            )
        )
        blocks.append(
            text_input(
                item.note_id,
                f"Note on {item.key}",
                max_length=NOTE_MAX,
                optional=True,
                placeholder="Why keep, amend or retire it (optional)",
            )
        )
    if len(form.items) > MAX_ITEMS:
        blocks.append(context(f"_{len(form.items) - MAX_ITEMS} more items are kept as they are._"))
    return View(
        type="modal",
        callback_id=REVIEW_SUBMIT,
        title=modal_title(REVIEW_TITLE),
        submit="Record review",
        close="Cancel",
        private_metadata=ReviewRef.write(contract_id=c.id, period=form.period.key),
        blocks=fit_view(blocks),
    )


def outcome_lines(review: AlignmentReview, *, with_notes: bool = True) -> list[str]:
    """What one review decided: `kept E1, I1 · to amend E2 · retired I4 (amendment #3)`."""
    groups: dict[str, list[str]] = {choice: [] for choice in CHOICES}
    notes = []
    for entry in choices_of(review):
        choice = str(entry.get("choice") or KEEP)
        key = escape(str(entry.get("key") or "?"))
        number = entry.get("amendment")
        groups.setdefault(choice, []).append(f"{key} (amendment #{number})" if number else key)
        if with_notes and entry.get("note"):
            notes.append(f"> {key}: {escape(truncate(str(entry['note']), 200))}")
    parts = [f"{CHOICE_VERB[c]} {', '.join(keys)}" for c, keys in groups.items() if keys]
    return [" · ".join(parts) or "nothing reviewed", *notes]


def review_summary_line(review: AlignmentReview, contract: Contract | None = None) -> str:
    """`🧭 Alignment review 2027-Q1 by @dana (leader): kept E1 · retired I4 (amendment #3)`."""
    whose = f" of *{escape(truncate(contract.title, 100))}*" if contract is not None else ""
    first, *notes = outcome_lines(review)
    head = (
        f"🧭 Alignment review {escape(review.period_key)}{whose} by "
        f"{mention(review.reviewer_id)} ({escape(review.role)}): {first}"
    )
    return "\n".join([head, *notes])


def build_review_done(form: ReviewForm, review: AlignmentReview) -> View:
    """The modal once the review is recorded: the outcome; an Amend button per item to amend."""
    c = form.bundle.contract
    blocks: list[Block] = [
        header(f"Review recorded · {form.period.label}"),
        *sections(None, outcome_lines(review)),
    ]
    retired = [e for e in choices_of(review) if e.get("amendment")]
    if retired:
        blocks.append(
            context(
                "Each retirement is proposed to the approvers as a removal amendment; you'll "
                "hear when it is decided."
            )
        )
    to_amend = [e for e in choices_of(review) if e.get("choice") == AMEND]
    if to_amend:
        blocks += [
            DividerBlock(),
            section("*To amend:* open the amendment form for each, pre-filled with the item."),
            ActionsBlock(
                block_id="review_amend",
                elements=[
                    ButtonElement(
                        text=f"Amend {truncate(str(e.get('key')), 16)}",
                        action_id=f"{REVIEW_AMEND}_{n}",
                        value=ReviewItemRef.write(
                            contract_id=c.id, kind=e.get("kind"), key=e.get("key")
                        ),
                    )
                    for n, e in enumerate(to_amend[:25])
                ],
            ),
        ]
    return View(
        type="modal",
        title=modal_title(REVIEW_TITLE),
        close="Done",
        blocks=fit_view(blocks),
    )


def build_notice(text: str) -> View:
    """A small modal that says why nothing opened (pushed over the review's confirmation)."""
    return View(
        type="modal",
        title=modal_title(REVIEW_TITLE),
        close="Close",
        blocks=[section(text)],
    )
