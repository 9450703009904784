"""Block Kit for feedback: the modal, what the leader receives, requests and `/feedback mine`."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import date, datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    DividerBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    RadioButtonsElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.core.text import escape, truncate
from bot.feedback.model import (
    ANONYMOUS,
    ATTRIBUTED,
    BEHAVIOUR_MAX,
    GROUP_LABEL,
    GROUP_ORDER,
    IMPACT_MAX,
    POLARITIES,
    RELATION_CHOICE,
    SELF,
    SITUATION_MAX,
    SPONSOR,
    BatchStatus,
    Entry,
    MineRow,
    Response,
    Shown,
    Target,
)
from bot.ui.blocks import (
    MESSAGE_BLOCKS,
    VIEW_BLOCKS,
    capped,
    context,
    day,
    section,
    sections,
)
from bot.ui.forms import modal_title, option, text_input
from bot.ui.metadata import FeedbackEntryRef, FeedbackModal, FeedbackRequestRef
from storage.queries.contracts import ContractBundle

GIVE_FEEDBACK = "feedback_give"
REQUEST_GIVE = "feedback_request_give"
DELETE_MINE = "feedback_delete_mine"
MINE_VIEW = "feedback_mine"
ACKNOWLEDGE = "feedback_acknowledge"
MAKE_ACTIVITY = "feedback_make_activity"
ENTRY_BLOCK = "feedback_entry_"  # + the entry's id: the leader's buttons for one entry

POLARITY_LABEL = {"strength": "💪 A strength", "development": "🌱 A development area"}
POLARITY_SHORT = {"strength": "💪 strength", "development": "🌱 development area"}
RELATION_AS = {
    "peer": "a peer",
    "direct_report": "a direct report",
    "sponsor": "your sponsor",
    "stakeholder": "a stakeholder",
}
RELATION_SHORT = {
    "self": "self view",
    "peer": "peer",
    "direct_report": "direct report",
    "sponsor": "sponsor",
    "stakeholder": "stakeholder",
}

MINE_LISTED = 40
RECEIVED_LISTED = 20


def metadata(contract_id: int, request_id: int | None = None) -> str:
    return FeedbackModal.write(contract_id=contract_id, request_id=request_id)


def group_rule(threshold: int) -> str:
    """The per-group anonymity rule, as the modal states it."""
    return (
        "Anonymous feedback is shown per group (peers, direct reports, other stakeholders), "
        f"only once {threshold} different people of that group have given some, all together "
        "and without dates. A smaller group is held, or shown merged with other small groups as "
        f"“others” once together they are {threshold} people; never on its own."
    )


def build_feedback_modal(
    target: Target,
    *,
    first_words: str = "",
    expectation_key: str | None = None,
    request_id: int | None = None,
) -> View:
    """Situation, behaviour, impact; strength or development; expectation; how the giver works
    with the leader when it is not known; attributed or not, where anonymity is possible."""
    options = [option(key, f"{key} · {text}") for key, text in target.expectations[:100]]
    chosen = next((o for o in options if o.value == expectation_key), None)
    polarity = [option(p, POLARITY_LABEL[p]) for p in POLARITIES]
    self_view = target.relation == SELF
    intro = (
        f"Your self view · _{escape(truncate(target.title, 200))}_\nHow you see your own "
        "leadership, shown with your name beside what your peers, reports and sponsor say."
        if self_view
        else f"Feedback for <@{target.leader_id}> · _{escape(truncate(target.title, 200))}_"
    )
    blocks: list[Block] = [
        section(intro),
        InputBlock(
            block_id="expectation",
            label="Which expectation it concerns",
            element=StaticSelectElement(
                action_id="expectation", options=options, initial_option=chosen
            ),
        ),
        InputBlock(
            block_id="polarity",
            label="It shows",
            element=RadioButtonsElement(action_id="polarity", options=polarity),
        ),
        text_input(
            "situation",
            "Situation: when and where",
            max_length=SITUATION_MAX,
            multiline=True,
            hint="e.g. Q2 review",
        ),
        text_input(
            "behaviour",
            "Behaviour: what they did or said" if not self_view else "Behaviour: what you did",
            max_length=BEHAVIOUR_MAX,
            multiline=True,
            initial=first_words,
            hint="Something observable they can repeat or change.",
        ),
        text_input("impact", "Impact: what it led to", max_length=IMPACT_MAX, multiline=True),
    ]
    if target.relation is None:
        groups = [option(g, RELATION_CHOICE[g]) for g in target.open_groups]
        blocks += [
            section(f"*How do you work with <@{target.leader_id}>?*"),
            InputBlock(
                block_id="relation",
                label="Your relationship to them",
                element=RadioButtonsElement(action_id="relation", options=groups),
                hint="Your feedback is counted and shown with this group's.",
            ),
        ]
    if target.attributed_only:
        if not self_view:
            blocks.append(context(_named_only_note(target)))
    else:
        anonymity = [
            Option(
                value=ATTRIBUTED,
                label="With my name",
                description="The leader sees it now, with your name.",
            ),
            Option(
                value=ANONYMOUS,
                label="Anonymously",
                description=truncate(
                    f"Shown only once {target.threshold} people of your group have given "
                    "some; your name is never stored.",
                    75,
                ),
            ),
        ]
        blocks += [
            InputBlock(
                block_id="anonymity",
                label="Give it",
                element=RadioButtonsElement(
                    action_id="anonymity", options=anonymity, initial_option=anonymity[0]
                ),
            ),
            context(group_rule(target.threshold)),
        ]
    return View(
        type="modal",
        callback_id=GIVE_FEEDBACK,
        title=modal_title("Your self view" if self_view else "Give feedback"),
        submit="Send",
        close="Cancel",
        private_metadata=metadata(target.contract_id, request_id),
        blocks=blocks,
    )


def _named_only_note(target: Target) -> str:
    if target.relation == SPONSOR:
        return (
            f"As <@{target.leader_id}>'s sponsor you give feedback with your name: a sponsor is "
            "one person, so it could not be anonymous. It is shown as the sponsor's view."
        )
    return (
        f"You read the feedback about <@{target.leader_id}>, so yours goes with your name: "
        "knowing your own entry would narrow down who wrote the others in your group."
    )


def build_thanks(target: Target, *, anonymous: bool) -> View:
    """What the modal turns into once the feedback is stored."""
    if anonymous:
        text = (
            f"Thank you. Your feedback for <@{target.leader_id}> is held without your name until "
            f"{target.threshold} people of your group have given anonymous feedback; then it is "
            "shown together with theirs, grouped by expectation and without dates (or, with "
            "other small groups, as “others”).\n"
            "`/feedback mine` lists what you wrote and lets you delete it."
        )
    elif target.relation == SELF:
        text = (
            "Thank you. Your self view is kept with your contract; it is shown beside what "
            "others say in `/feedback received` and your summary."
        )
    else:
        text = (
            f"Thank you. <@{target.leader_id}> has your feedback, with your name.\n"
            "`/feedback mine` lists what you wrote."
        )
    return View(
        type="modal",
        callback_id=f"{GIVE_FEEDBACK}_done",
        title=modal_title("Feedback sent" if not anonymous else "Feedback held"),
        close="Done",
        blocks=[section(text)],
    )


def _sbi_lines(entry: Shown | Entry) -> list[str]:
    """Situation, behaviour and impact as separate lines, so none is cut to fit a block."""
    return [
        f"_Situation:_ {escape(entry.situation)}",
        f"_Behaviour:_ {escape(entry.behaviour)}",
        f"_Impact:_ {escape(entry.impact)}",
    ]


def _expectation_label(key: str | None, text: str) -> str:
    if not key:
        return "_No expectation named_"
    return f"*{escape(key)}* {escape(truncate(text, 150))}" if text else f"*{escape(key)}*"


def build_attributed_message(
    entry: Entry | Shown,
    *,
    giver: str,
    target: Target,
    relation: str | None = None,
    feedback_id: int | None = None,
    response: Response | None = None,
) -> list[Block]:
    """The leader's DM for feedback given with a name; with the entry's id, the leader's
    *Acknowledge* and *Make it an activity* under it."""
    key = entry.expectation_key
    as_ = f" · as {RELATION_AS[relation]}" if relation in RELATION_AS else ""
    actions = [] if feedback_id is None else [entry_actions(feedback_id, response or Response())]
    return [
        section(
            f"*<@{giver}> gave you feedback*{as_} · {POLARITY_SHORT[entry.polarity]}\n"
            f"{_expectation_label(key, target.expectation_text(key))}"
        ),
        *sections(None, _sbi_lines(entry)),
        *actions,
        context("`/feedback received` lists all the feedback you have."),
    ]


def entry_value(feedback_id: int) -> str:
    return FeedbackEntryRef.write(feedback_id=feedback_id)


def entry_actions(feedback_id: int, response: Response) -> ActionsBlock:
    """The leader's buttons for one entry, saying what they did with it already."""
    value = entry_value(feedback_id)
    acknowledged = response.acknowledged_on
    activity = response.activity
    return ActionsBlock(
        block_id=f"{ENTRY_BLOCK}{feedback_id}",
        elements=[
            ButtonElement(
                text=f"Acknowledged ✓ {day(acknowledged)}" if acknowledged else "Acknowledge",
                action_id=ACKNOWLEDGE,
                value=value,
            ),
            ButtonElement(
                text=(
                    f"Activity {activity} · #{response.amendment_id}"
                    if activity
                    else "Make it an activity"
                ),
                action_id=MAKE_ACTIVITY,
                value=value,
                style=None if activity else "primary",
            ),
        ],
    )


def activity_rationale(on: date, *, anonymous: bool) -> str:
    """The amendment's reason, pre-filled (the leader may edit it)."""
    return f"From {'anonymous ' if anonymous else ''}feedback of {day(on)}."


def build_ack_notice(*, leader: str, given_on: date, expectation_key: str | None) -> list[Block]:
    """The giver's DM: the leader acknowledged their feedback (named entries only)."""
    about = f" on {escape(expectation_key)}" if expectation_key else ""
    return [section(f"<@{leader}> acknowledged your feedback{about} of {day(given_on)}. Thanks!")]


def grouped(
    entries: Sequence[Shown], order: Sequence[str], *, shuffle: random.Random | None = None
) -> list[tuple[str | None, list[Shown]]]:
    """Entries by expectation, in the contract's order; within a group shuffled when asked."""
    groups: dict[str | None, list[Shown]] = {}
    for entry in entries:
        groups.setdefault(entry.expectation_key, []).append(entry)
    rank = {key: index for index, key in enumerate(order)}
    keys = sorted(groups, key=lambda k: (k is None, rank.get(k or "", len(rank)), k or ""))
    result = []
    for key in keys:
        group = list(groups[key])
        if shuffle is not None:
            shuffle.shuffle(group)
        result.append((key, group))
    return result


def _anonymous_lines(
    entries: Sequence[Shown], expectations: Sequence[tuple[str, str]], rng: random.Random
) -> list[Block]:
    texts = dict(expectations)
    blocks: list[Block] = []
    for key, group in grouped(entries, [k for k, _ in expectations], shuffle=rng):
        lines: list[str] = []
        for entry in group:
            lines += [f"\n{POLARITY_SHORT[entry.polarity]}", *_sbi_lines(entry)]
        # The label is mrkdwn already (`*E2* Grow two…`): a line, not a title to bold again.
        blocks += sections(None, [_expectation_label(key, texts.get(key or "", "")), *lines])
    return blocks


def _anonymous_groups(
    entries: Sequence[Shown],
    expectations: Sequence[tuple[str, str]],
    rng: random.Random,
    responses: Mapping[int, Response] | None = None,
) -> list[Block]:
    """Released anonymous entries by the group they were released in, then by expectation.
    With `responses`, each entry stands alone with the leader's buttons under it."""
    blocks: list[Block] = []
    for group in GROUP_ORDER:
        members = [e for e in entries if e.group == group]
        if not members:
            continue
        blocks.append(section(f"*{GROUP_LABEL[group]}* · {_count(len(members), 'entry')}"))
        blocks += (
            _anonymous_lines(members, expectations, rng)
            if responses is None
            else _anonymous_entries(members, expectations, rng, responses)
        )
    return blocks


def _count(n: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


def build_release_message(
    entries: Sequence[Shown],
    *,
    expectations: Sequence[tuple[str, str]],
    threshold: int,
    rng: random.Random,
    responses: Mapping[int, Response] | None = None,
) -> list[Block]:
    """Held anonymous entries, released together: by group, by expectation, shuffled,
    undated. With `responses`, each entry stands alone with the leader's buttons under it."""
    return [
        section(
            f"*Anonymous feedback for you* · {len(entries)} entries, each group from at least "
            f"{threshold} people, released together. They are grouped by rater group and "
            "expectation and shuffled; North Star keeps neither their authors nor their dates."
        ),
        DividerBlock(),
        *_anonymous_groups(entries, expectations, rng, responses),
    ]


def _anonymous_entries(
    entries: Sequence[Shown],
    expectations: Sequence[tuple[str, str]],
    rng: random.Random,
    responses: Mapping[int, Response],
) -> list[Block]:
    texts = dict(expectations)
    blocks: list[Block] = []
    for key, group in grouped(entries, [k for k, _ in expectations], shuffle=rng):
        blocks.append(section(_expectation_label(key, texts.get(key or "", ""))))
        for entry in group:
            blocks += sections(None, [POLARITY_SHORT[entry.polarity], *_sbi_lines(entry)])
            if entry.feedback_id is not None:
                response = responses.get(entry.feedback_id, Response())
                blocks.append(entry_actions(entry.feedback_id, response))
    return blocks


def fit_message(blocks: Sequence[Block], note: str) -> list[Block]:
    """Blocks for one message: past Slack's limit, the tail gives way to `note`."""
    if len(blocks) <= MESSAGE_BLOCKS:
        return list(blocks)
    return [*blocks[: MESSAGE_BLOCKS - 1], context(note)]


def build_received(
    *,
    leader: str,
    attributed: Sequence[Shown],
    released: Sequence[Shown],
    expectations: Sequence[tuple[str, str]],
    threshold: int,
    rng: random.Random,
) -> list[Block]:
    """`/feedback received`: named feedback, newest first, then released anonymous entries."""
    blocks: list[Block] = [section(f"*Feedback for <@{leader}>*")]
    texts = dict(expectations)
    named: list[str] = []
    for e in attributed[:RECEIVED_LISTED]:
        label = _expectation_label(e.expectation_key, texts.get(e.expectation_key or "", ""))
        named += [
            f"\n*<@{e.author_id}>* ({RELATION_SHORT.get(e.group, e.group)}) · {day(e.given_on)} · "
            f"{POLARITY_SHORT[e.polarity]} · {label}",
            *_sbi_lines(e),
        ]
    if len(attributed) > RECEIVED_LISTED:
        named.append(f"_…and {len(attributed) - RECEIVED_LISTED} earlier entries_")
    blocks += sections("With a name", named or ["_None yet._"])
    blocks.append(DividerBlock())
    if released:
        blocks.append(section(f"*Anonymous* · {len(released)} entries, released in groups"))
        blocks += _anonymous_groups(released, expectations, rng)
    else:
        blocks.append(section("*Anonymous*\n_None released yet._"))
    blocks.append(context(group_rule(threshold)))
    return blocks


def build_mine_modal(rows: Sequence[MineRow], *, notice: str | None = None) -> View:
    blocks: list[Block] = []
    if notice:
        blocks.append(context(notice))
    if not rows:
        blocks.append(
            section("You haven't written any feedback yet. `/feedback @leader` to start.")
        )
    else:
        blocks.append(
            context(
                "Only you can see this list. Anonymous entries carry no name; North Star finds "
                "them for you with a keyed hash."
            )
        )
    for row in rows[:MINE_LISTED]:
        status = (
            "with your name"
            if not row.anonymous
            else ("anonymous, released" if row.released else "anonymous, held")
        )
        blocks.append(
            SectionBlock(
                block_id=f"mine_{row.feedback_id}",
                text=MarkdownTextObject(
                    text=truncate(
                        f"*To <@{row.leader_id}>* · {escape(row.expectation_key or '')} · "
                        f"{POLARITY_SHORT.get(row.polarity, row.polarity)} · {status} · "
                        f"{day(row.given_on)}\n>{escape(truncate(row.behaviour, 200))}",
                        3000,
                    )
                ),
                accessory=ButtonElement(
                    text="Delete",
                    action_id=DELETE_MINE,
                    value=str(row.feedback_id),
                    style="danger",
                    confirm=ConfirmObject(
                        title="Delete this feedback?",
                        text="It is removed for good, also from what the leader can read.",
                        confirm="Delete",
                        deny="Keep",
                    ),
                ),
            )
        )
    if len(rows) > MINE_LISTED:
        blocks.append(context(f"_…and {len(rows) - MINE_LISTED} older entries._"))
    return View(
        type="modal",
        callback_id=MINE_VIEW,
        title=modal_title("Your feedback"),
        close="Close",
        blocks=blocks[:VIEW_BLOCKS],
    )


def request_value(request_id: int) -> str:
    return FeedbackRequestRef.write(request_id=request_id)


def build_request_message(
    *,
    request_id: int,
    leader: str,
    requester: str | None,
    expectation: tuple[str, str] | None,
    reminder: bool = False,
    open_until: datetime | None = None,
    self_view: bool = False,
) -> list[Block]:
    """The reviewer's DM: who asks, about what, until when (`open_until`, shown on the
    reviewer's own wall clock: give it in their zone), and the button that opens the modal.
    `self_view`: the leader is asked how they see their own leadership."""
    if self_view:
        asker = (
            f"<@{requester}> asks for your self view on your"
            if requester and requester != leader
            else "It's time for your self view on your"
        )
    else:
        asker = (
            f"<@{requester}> asks for your feedback on <@{leader}>'s"
            if requester
            else f"It's time for your regular feedback on <@{leader}>'s"
        )
    lines = [f"{'*Reminder:* ' if reminder else ''}{asker} leadership contract."]
    if expectation is not None:
        lines.append(f"About {_expectation_label(*expectation)}")
    blocks: list[Block] = [
        section("\n".join(lines)),
        ActionsBlock(
            block_id="feedback_request",
            elements=[
                ButtonElement(
                    text="Give feedback",
                    action_id=REQUEST_GIVE,
                    value=request_value(request_id),
                    style="primary",
                )
            ],
        ),
        context(
            "Your self view is shown with your name, beside what others say."
            if self_view
            else "With your name or anonymously: you choose in the form. Anonymous feedback is "
            "shown only together with other people's of your group.",
            f"Open until {open_until:%a} {day(open_until.date())}, {open_until:%H:%M} (your time)."
            if open_until
            else "",
        ),
    ]
    if reminder:
        blocks.append(
            context("If you already answered anonymously, thank you: you can ignore this.")
        )
    return blocks


def status_lines(batches: Sequence[BatchStatus]) -> list[str]:
    """Named answers only. Never who has not answered by name, nor any anonymous count: beside
    the people asked, either would point at whoever answered anonymously."""
    lines = []
    for b in batches:
        about = f" on {escape(b.expectation_key)}" if b.expectation_key else ""
        named = ", ".join(f"<@{r}>" for r in b.answered) if b.answered else "nobody yet"
        lines.append(
            f"*<@{b.leader_id}>{about}* · asked {day(b.asked_on)} of {b.asked} · "
            f"answered by name: {named}"
        )
    return lines


STATUS_NOTE = (
    "Anonymous answers are never counted per request: they reach the leader together with "
    "other people's, once enough people have given some."
)


def build_removed_message() -> list[Block]:
    """What a message carrying deleted feedback becomes: no trace of its words or author."""
    return [section("_This feedback was removed; North Star no longer keeps it._")]


def theme_lines(bundle: ContractBundle) -> list[str]:
    """Feedback themes of the summary: strengths and development areas per expectation.

    Counts only what the leader can read (named entries and released anonymous ones).
    """
    lines = []
    keys = [e.key for e in bundle.expectations]
    seen = {key for key, _ in bundle.feedback_themes}
    for key in [*keys, *sorted(k for k in seen if k not in keys)]:
        strengths = bundle.feedback_themes.get((key, "strength"), 0)
        development = bundle.feedback_themes.get((key, "development"), 0)
        if not strengths and not development:
            continue
        parts = []
        if strengths:
            parts.append(f"{strengths} strength{'s' if strengths != 1 else ''}")
        if development:
            parts.append(f"{development} development area{'s' if development != 1 else ''}")
        label = f"*{escape(key)}*" if key else "_no expectation_"
        lines.append(f"{label} · {', '.join(parts)}")
    return capped(lines)


def three_sixty_lines(bundle: ContractBundle) -> list[str]:
    """The 360 view of the summary: per expectation, strengths and development areas from the
    leader's self view beside each rater group's (named entries by their giver's relation,
    anonymous ones by the group they were released in; held ones never)."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for (key, group, polarity), count in bundle.feedback_groups.items():
        cell = counts.setdefault((key, group), {})
        cell[polarity] = cell.get(polarity, 0) + count
    keys = [e.key for e in bundle.expectations]
    seen = {key for key, _ in counts}
    lines = []
    for key in [*keys, *sorted(k for k in seen if k not in keys)]:
        parts = []
        for group in GROUP_ORDER:
            cell = counts.get((key, group)) or {}
            if not cell:
                continue
            said = []
            if cell.get("strength"):
                said.append(_count(cell["strength"], "strength"))
            if cell.get("development"):
                said.append(_count(cell["development"], "development area"))
            parts.append(f"{GROUP_LABEL[group]}: {', '.join(said)}")
        if parts:
            label = f"*{escape(key)}*" if key else "_no expectation_"
            lines.append(f"{label} · {' · '.join(parts)}")
    return capped(lines)
