"""Block Kit for the sponsor's digest: what needs them first, then progress; split to fit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DividerBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.amendments.blocks import APPROVE, REJECT, pending_lines
from bot.amendments.model import GOVERNANCE, AmendmentState, change_lines, governance_changes
from bot.answers.blocks import checkin_buttons, nudge_button
from bot.charts.blocks import chart_blocks
from bot.core.calendar import period_label
from bot.core.permissions import may_answer_checkin
from bot.core.progress import change_text, figures_text, format_number
from bot.core.text import escape, truncate
from bot.delivery.model import Message
from bot.digest.model import (
    NEEDS_SHOWN,
    ContractDigest,
    Digest,
    Move,
    needs_shown,
    progress_shown,
)
from bot.lessons.blocks import digest_lesson_lines
from bot.reviews.blocks import review_summary_line
from bot.risks.blocks import digest_risk_line, reply_button
from bot.summary.home import OPEN_SUMMARY
from bot.summary.reflection import SHORT_TEXT, checkin_lines
from bot.ui.blocks import (
    MESSAGE_BLOCKS,
    MESSAGE_TEXT_BUDGET,
    context,
    day,
    header,
    mention,
    section,
    sections,
    split_messages,
)
from bot.ui.metadata import ContractRef

CHANGE_LINES = 6
RISK_TEXT = 300
RISKS_LISTED = 8
RATIONALE_TEXT = 400
# Past the contracts shown in full (`bot.digest.model`), a line each for NEEDS_LISTED more
# that need the recipient; never more than MAX_PARTS messages.
NEEDS_LISTED = 40
MAX_PARTS = 4
NOTE_TEXT = 200  # room kept in each part's text budget for its "continued" note
CHECKINS_SHOWN = 2  # per contract, the newest; More opens any of them whole


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def move_line(move: Move) -> str:
    """`*I1 · Engagement* baseline 62 → latest *66* → target 75 points ·
    ▓▓▓░ 31% of the way · ↗ up 2 points from 64 · improving` (64: at the last digest)."""
    i = move.indicator
    unit = f" {escape(i.unit)}" if i.unit else ""
    was = f" from {format_number(move.before)}" if move.before is not None else " from baseline"
    change = change_text(i.baseline, i.target, move.reference, move.latest, unit, was)
    figures = figures_text(i.baseline, f"*{format_number(move.latest)}*", i.target, unit)
    return (
        f"*{escape(i.key)} · {escape(truncate(i.name, 120))}* {figures} · "
        f"{move.overall.bar} {move.overall.percent} of the way · {change}"
    )


def _title(item: ContractDigest) -> str:
    c = item.contract
    return f"*{escape(truncate(c.title, 150))}* · {mention(c.leader_id)}"


def _with_summary(lines: Sequence[str], item: ContractDigest) -> list[Block]:
    """Lines in sections, the first with an "Open summary" button for the contract."""
    blocks = sections(None, lines)
    first = blocks[0]
    assert isinstance(first, SectionBlock)
    assert isinstance(first.text, MarkdownTextObject)
    blocks[0] = SectionBlock(
        text=first.text,
        accessory=ButtonElement(
            text="Open summary",
            action_id=OPEN_SUMMARY,
            value=ContractRef.write(contract_id=item.contract.id),
        ),
    )
    return blocks


def may_decide(state: AmendmentState, recipient: str) -> bool:
    return state.pending and recipient in state.approvers and state.decision_of(recipient) is None


def amendment_blocks(state: AmendmentState, recipient: str) -> list[Block]:
    """A pending amendment the recipient approves: the change, why, Approve and Reject."""
    a = state.amendment
    if state.kind is GOVERNANCE:
        changes = governance_changes(a.before, a.after)  # in words, values escaped
        shown = [f"• {truncate(line, 300)}" for line in changes[:CHANGE_LINES]]
    else:
        changes = change_lines(state.kind, a.item_key, a.before, a.after)
        shown = [f"• `{escape(truncate(line, 300))}`" for line in changes[:CHANGE_LINES]]
    if len(changes) > CHANGE_LINES:
        shown.append(f"_…and {len(changes) - CHANGE_LINES} more changes_")
    rationale = escape(truncate(a.rationale, RATIONALE_TEXT)).replace("\n", "\n> ")
    lines = [*pending_lines([state]), *shown]
    if rationale:
        lines.append(f"> {rationale}")
    return [
        *sections(None, lines),
        ActionsBlock(
            block_id=f"digest_amendment_{state.id}",
            elements=[
                ButtonElement(
                    text="Approve", action_id=APPROVE, value=str(state.id), style="primary"
                ),
                ButtonElement(text="Reject", action_id=REJECT, value=str(state.id), style="danger"),
            ],
        ),
    ]


# --- open risks and resilience -------------------------------------------------------------


def open_risk_lines(item: ContractDigest, zone: ZoneInfo, today: date) -> list[str]:
    """Every open risk, those asking for help first, each until it is resolved; then the
    contract's resilience figures."""
    ordered = sorted(item.open_risks, key=lambda r: not r.needs_sponsor_help)
    lines = [digest_risk_line(risk, zone, today) for risk in ordered[:RISKS_LISTED]]
    if len(ordered) > RISKS_LISTED:
        lines.append(f"_…and {len(ordered) - RISKS_LISTED} more open risks: open the summary_")
    figures = item.resilience
    if lines and figures is not None and (figures.surfacing, figures.resolution) != (None, None):
        lines.append("_" + " · ".join(figures.lines()[:2]) + "_")
    return lines


RISK_BUTTON_TEXT = 40


def risk_reply_blocks(item: ContractDigest, recipient: str) -> list[Block]:
    """*Reply* beside each open risk listed, for those who answer the leader (not the leader):
    one button per risk, named by its first words."""
    if not may_answer_checkin(item.bundle, recipient) or recipient == item.contract.leader_id:
        return []
    ordered = sorted(item.open_risks, key=lambda r: not r.needs_sponsor_help)[:RISKS_LISTED]
    buttons = []
    for risk in ordered:
        if risk.checkin_id is None:
            continue
        label = "Reply: " + truncate(" ".join(risk.text.split()), RISK_BUTTON_TEXT)
        buttons.append(reply_button(risk, label))
    if not buttons:
        return []
    return [ActionsBlock(block_id=f"digest_risk_reply_{item.contract.id}", elements=buttons)]


def needs_blocks(item: ContractDigest, recipient: str, zone: ZoneInfo, today: date) -> list[Block]:
    """One contract's exceptions, in the order: milestones, check-ins, risks, amendments,
    indicators moving the wrong way."""
    first = [_title(item)]
    for m in item.missed_milestones:
        times = f" · missed {m.missed_count} times" if m.missed_count > 1 else ""
        first.append(
            f"⏰ Milestone *{escape(m.key)}* {escape(truncate(m.title, 150))} "
            f"was due {day(m.due)}{times}"
        )
    if item.missed_checkins:
        weeks = ", ".join(period_label(p) for p in item.missed_checkins[:6])
        more = len(item.missed_checkins) - 6
        first.append(
            f"📭 {_plural(len(item.missed_checkins), 'missed check-in')}: {weeks}"
            + (f" and {more} more" if more > 0 else "")
        )
    first += open_risk_lines(item, zone, today)
    listed = [s for s in item.pending if not may_decide(s, recipient)]
    first += pending_lines(listed)
    blocks = _with_summary(first, item)
    blocks += risk_reply_blocks(item, recipient)
    blocks += nudge_blocks(item)
    for state in item.pending:
        if may_decide(state, recipient):
            blocks += amendment_blocks(state, recipient)
    if item.wrong_way:
        blocks += sections(None, [f"📉 {move_line(move)}" for move in item.wrong_way])
    blocks.append(DividerBlock())
    return blocks


def progress_blocks(item: ContractDigest, digest: Digest) -> list[Block]:
    """One contract's progress since the last digest: met, moved, completed, feedback."""
    lines = [_title(item), f"_{escape(item.headline)}_"]
    for m in item.met:
        when = day(m.decided_at.astimezone(digest.zone).date()) if m.decided_at else ""
        lines.append(
            f"🎉 Milestone *{escape(m.key)}* {escape(truncate(m.title, 150))} met {when}".rstrip()
        )
    lines += [f"📈 {move_line(move)}" for move in item.moved]
    lines += [
        f"✅ *{escape(a.key)}* {escape(truncate(a.title, 150))} completed" for a in item.completed
    ]
    volume = item.feedback
    if volume.total:
        parts = [f"{volume.named} named"] if volume.named else []
        if volume.anonymous:
            parts.append(f"{volume.anonymous} anonymous")
        lines.append(
            f"💬 {_plural(volume.total, 'feedback entry', 'feedback entries')} reached "
            f"the leader ({', '.join(parts)})"
        )
    lines += [review_summary_line(review) for review in item.reviews]
    if item.trend is not None:
        lines.append(f"📊 {item.trend}")
    lines += digest_lesson_lines(item.lessons)
    if not item.has_progress:
        lines.append(f"_Nothing new since {day(digest.since_day)}._")
    return [
        *_with_summary(lines, item),
        *digest_chart_blocks(item),
        *checkin_blocks(item, digest.recipient),
        DividerBlock(),
    ]


# --- what the leader wrote: check-ins since the last digest, nudges of missed weeks --------


def checkin_blocks(item: ContractDigest, recipient: str) -> list[Block]:
    """The check-ins since the last digest (the newest `CHECKINS_SHOWN`): the week, the
    rating, wins and reflection shortened, *More* to read it whole and *Reply*."""
    replies = may_answer_checkin(item.bundle, recipient) and recipient != item.contract.leader_id
    shown = item.checkins[-CHECKINS_SHOWN:]
    blocks: list[Block] = []
    earlier = len(item.checkins) - len(shown)
    if earlier:
        blocks.append(context(f"_{_plural(earlier, 'earlier check-in')} since the last digest_"))
    for checkin in shown:
        rating = f" · confidence {checkin.confidence}/5" if checkin.confidence else ""
        lines = [f"📝 *Check-in, {period_label(checkin.period_key)}*{rating}"]
        lines += checkin_lines(checkin, limit=SHORT_TEXT)
        blocks += sections(None, lines)
        blocks.append(checkin_buttons(checkin, may_reply=replies))
    return blocks


def nudge_blocks(item: ContractDigest) -> list[Block]:
    """*Nudge* for the latest missed week, or that it was nudged already."""
    if not item.missed_checkins:
        return []
    latest = item.missed_checkins[-1]
    if latest in item.nudged:
        return [context(f"👋 Nudged about {period_label(latest)} already.")]
    return [nudge_button(item.contract.id or 0, latest)]


def digest_chart_blocks(item: ContractDigest) -> list[Block]:
    """The contract's charts under its progress, when they could be uploaded."""
    return chart_blocks(item.charts)


def app_home(home: str | None) -> str:
    """A pointer to the bot's App Home: a link when its address is known."""
    return f"<{home}|open App Home>" if home else "open North Star's *Home* tab"


def more_needing_blocks(items: Sequence[ContractDigest], home: str | None) -> list[Block]:
    """Contracts past `NEEDS_SHOWN` that need the recipient: one line each, then a count."""
    lines = [
        f"• {_title(item)} · {_plural(item.needs_count, 'item')}" for item in items[:NEEDS_LISTED]
    ]
    if len(items) > NEEDS_LISTED:
        lines.append(f"_…and {len(items) - NEEDS_LISTED} more need you: {app_home(home)}_")
    return [*sections(None, lines), DividerBlock()]


def digest_blocks(digest: Digest, *, home: str | None = None) -> list[Block]:
    """The whole digest as one list of blocks, exception-first; `home` links App Home."""
    contracts = digest.contracts
    needing = [c for c in contracts if c.needs_attention]
    count = sum(c.needs_count for c in needing)
    blocks: list[Block] = [
        header(f"North Star digest · {day(digest.today)}"),
        context(
            f"For {mention(digest.recipient)}",
            _plural(len(contracts), "contract") + " you sponsor or own",
            f"since {day(digest.since_day)}",
            f"{digest.schedule.cadence} digest",
        ),
        DividerBlock(),
    ]
    if needing:
        blocks.append(
            section(
                f"*🚩 Needs you* · {_plural(count, 'item')} on {_plural(len(needing), 'contract')}"
            )
        )
        for item in needs_shown(contracts):
            blocks += needs_blocks(item, digest.recipient, digest.zone, digest.today)
        if len(needing) > NEEDS_SHOWN:
            blocks += more_needing_blocks(needing[NEEDS_SHOWN:], home)
    else:
        blocks += [section("*🚩 Needs you*\nNothing needs you this time."), DividerBlock()]
    blocks.append(section(f"*📈 Progress since {day(digest.since_day)}*"))
    shown = progress_shown(contracts)
    for item in shown:
        blocks += progress_blocks(item, digest)
    listed = {id(c) for c in shown}
    hidden = [c for c in contracts if id(c) not in listed]
    if hidden:
        on_track = sum(1 for c in hidden if not c.needs_attention)
        counts = [f"{on_track} more on track"] if on_track else []
        if len(hidden) > on_track:
            counts.append(f"{len(hidden) - on_track} more listed above")
        blocks.append(context(f"_…and {' and '.join(counts)}: {app_home(home)}_"))
    return blocks


def digest_text(digest: Digest) -> str:
    """The notification text of a digest's first message."""
    needing = [c for c in digest.contracts if c.needs_attention]
    count = sum(c.needs_count for c in needing)
    contracts = _plural(len(digest.contracts), "contract")
    if count:
        verb = "needs" if count == 1 else "need"
        return f"North Star digest: {_plural(count, 'thing')} {verb} you ({contracts})"
    return f"North Star digest: nothing needs you; progress on {contracts}"


def build_digest(
    digest: Digest, *, home: str | None = None, text_budget: int = MESSAGE_TEXT_BUDGET
) -> list[Message]:
    """The digest as at most `MAX_PARTS` messages, each within 50 blocks and `text_budget`
    characters of block text; later ones say they continue it."""
    parts = split_messages(
        digest_blocks(digest, home=home),
        limit=MESSAGE_BLOCKS - 1,
        text_budget=max(NOTE_TEXT, text_budget - NOTE_TEXT),
    )
    if len(parts) > MAX_PARTS:
        last = parts[MAX_PARTS - 1][: MESSAGE_BLOCKS - 2]
        rest = context(f"_More than fits in a digest: the rest is in App Home, {app_home(home)}._")
        parts = [*parts[: MAX_PARTS - 1], [*last, rest]]
    total = len(parts)
    text = digest_text(digest)
    messages = [Message(text=text + (f" (1 of {total})" if total > 1 else ""), blocks=parts[0])]
    for number, part in enumerate(parts[1:], 2):
        note = f"North Star digest of {day(digest.today)}, continued ({number} of {total})"
        messages.append(Message(text=note, blocks=[context(f"_{note}_"), *part]))
    return messages
