"""Peer feedback: giving it, anonymity that holds, requests on demand and on cadence.

Anonymity. An anonymous entry stores no author id, name or e-mail, here or in the audit log,
the delivery table or an INFO log line; only `author_hash`, a keyed hash of the person and
the contract (`bot.privacy`; never of the team a request came from), which enforces
`ANONYMOUS_WEEKLY_CAP` and the threshold of different authors, and lets the author list and
delete the entry with `/feedback mine`. Its `created_at` keeps only the day (UTC midnight)
and its id is random (as every feedback id is), so neither says when it came between named
entries. An anonymous answer to a request is not linked to the request and leaves no mark on
it: requests show only who answered by name, and anonymous feedback is never counted per
request or batch, only as part of a released group. Withdrawing an anonymous entry leaves no
audit event.

The window. Anonymous entries are held, and stamped with the contract's current feedback
window: the UTC calendar period of its feedback cadence (ISO week, two ISO weeks, month;
a quarter when no cadence is set). Held entries of an earlier window are carried into the
current one, never dropped and never released alone. Once the held entries come from at
least the contract's `anonymity_threshold` different authors (different hashes, so one person
cannot reach the threshold alone), all of them are released together, by the `feedback` job,
on a later day than the last of them arrived (the leader cannot tell whose submission tipped
it). The leader gets them in one DM, grouped by expectation, shuffled within a group, without
dates; sponsor and owner read released entries with `/feedback received @leader`.

Requests (`bot.feedback.jobs`). `/contract request-feedback` and the contract's cadence send
each reviewer a DM
with a "Give feedback" button through the delivery queue (claimed once per request or per
reviewer and window); one reminder follows after `REMINDER_AFTER` (at most one per request:
its delivery key holds the request), to everyone who has not answered with their name (an
anonymous answer cannot be told apart, so the reminder says so). Feedback given by name, with
the button or with `/feedback @leader`, answers every request its giver has open on the
contract, and a cadence request of a window in which they already gave it is never sent.
Each reviewer is asked, reminded and told until when in their own zone (`users.info`).

Deleted words. When an entry is withdrawn or its author erased, the messages the bot posted
with it (the leader's DM of a named entry, the DM that released an anonymous group) are
redacted or rebuilt without it (`bot.feedback.jobs.retract_posted`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import delivery
from bot.core.calendar import feedback_window, zone_of
from bot.core.permissions import Refusal, may_read_feedback, may_request_feedback
from bot.core.text import escape
from bot.feedback.model import (
    ACTIVITY_OF_STATUS,
    ANONYMOUS_GROUPS,
    ANONYMOUS_WEEKLY_CAP,
    ANSWERED,
    CADENCE_HOUR,
    DAILY_REQUEST_LIMIT,
    DIRECT_REPORT,
    EVERYONE,
    GROUP_LABEL,
    GROUP_ORDER,
    MAX_REVIEWERS,
    ONE_PERSON,
    OPEN,
    OTHERS,
    PEER,
    REQUEST_LIMIT_WINDOW,
    REQUEST_OPEN_FOR,
    SELF,
    SPONSOR,
    STAKEHOLDER,
    STATUS_BATCHES,
    STATUS_DAYS,
    Acked,
    Asked,
    BatchStatus,
    CadenceAsk,
    Entry,
    ExpectationView,
    Given,
    GroupView,
    MineRow,
    Received,
    RequestArgs,
    Response,
    Shown,
    Target,
    ThreeSixty,
    midnight,
    reminder_key,
    shown_on,
)
from bot.people.service import cached_zones, check_people
from bot.privacy.keys import author_hash, feedback_key
from bot.privacy.model import Gone
from bot.privacy.service import authored_feedback
from bot.services import Services
from storage.db import read_only, writing
from storage.models import (
    Contract,
    ContractStatus,
    Feedback,
    FeedbackAck,
    FeedbackActivity,
    FeedbackRequest,
    Role,
    random_row_id,
)
from storage.queries.contracts import (
    ContractBundle,
    audit,
    delete_row,
    find_contract_for_leader,
    load_bundle,
    load_governance,
    lock_contract,
)
from storage.queries.feedback import (
    acks_of,
    activities_of,
    anonymous_given_since,
    contract_leaders,
    entries_about,
    expectations_of,
    feedback_requests_since,
    find_batch_request,
    held_entries,
    lock_requester,
    named_given_since,
    open_requests_of,
    release_entries,
    requests_seen_by,
    sponsored_active,
    stated_relation,
)


def relation_in(bundle: ContractBundle, user: str) -> str | None:
    """The relationship to the leader the contract states for `user`, or None.

    Leader and sponsor are themselves; then the rater groups the contract lists (`peers`,
    `direct_reports`, `stakeholders` of its feedback block); its owner, approvers and
    escalation contacts are other stakeholders. A plain reviewer's is not known.
    """
    c = bundle.contract
    if user == c.leader_id:
        return SELF
    if user == c.sponsor_id:
        return SPONSOR
    roles = bundle.roles_of(user)
    if Role.peer in roles:
        return PEER
    if Role.direct_report in roles:
        return DIRECT_REPORT
    if roles & {Role.stakeholder, Role.owner, Role.approver, Role.escalation}:
        return STAKEHOLDER
    return None


def open_groups(bundle: ContractBundle) -> tuple[str, ...]:
    """The groups someone the contract does not place may say they belong to: a group the
    contract lists is closed to others (nobody pads it to expose its members), and anyone
    may be another stakeholder. Never sponsor or self: those are one known person each."""
    return tuple(
        group
        for group in ANONYMOUS_GROUPS
        if group == STAKEHOLDER or not bundle.people_with(Role(group))
    )


async def giver_relation(
    session: AsyncSession, bundle: ContractBundle, giver: str, key: bytes | None
) -> str | None:
    """`giver`'s relationship to the leader: as the contract states it, else as they stated
    it with an earlier entry (still open to them), else None (the modal asks)."""
    known = relation_in(bundle, giver)
    if known is not None or key is None:
        return known
    c = bundle.contract
    stated = await stated_relation(
        session=session,
        contract_id=c.id,
        author_id=giver,
        author_hash=author_hash(key, user=giver, contract_id=c.id or 0),
    )
    return stated if stated in open_groups(bundle) else None


def attributed_only(bundle: ContractBundle, giver: str, relation: str | None) -> bool:
    """Sponsor and self are one person each; and whoever reads the feedback about the leader
    (sponsor, owner) would know one of a group's authors and narrow down the rest."""
    return relation in ONE_PERSON or may_read_feedback(bundle, giver)


async def feedback_target(
    session: AsyncSession, contract: Contract, *, giver: str | None = None, key: bytes | None = None
) -> Target:
    expectations = await expectations_of(session=session, contract_id=contract.id)
    relation: str | None = None
    groups: tuple[str, ...] = ANONYMOUS_GROUPS
    named_only = False
    if giver is not None:
        bundle = await load_governance(session=session, contract_id=contract.id or 0)
        if bundle is not None:
            relation = await giver_relation(session, bundle, giver, key)
            groups = open_groups(bundle)
            named_only = attributed_only(bundle, giver, relation)
    return Target(
        contract_id=contract.id or 0,
        leader_id=contract.leader_id,
        title=contract.title,
        threshold=contract.anonymity_threshold,
        expectations=tuple((e.key, e.text) for e in expectations),
        relation=relation,
        open_groups=groups,
        attributed_only=named_only,
    )


def no_contract(leader: str) -> Refusal:
    return Refusal(
        f"<@{leader}> has no active leadership contract in North Star, so there is nothing to "
        "give feedback on yet."
    )


async def target_for(
    *, session: AsyncSession, leader: str, giver: str | None = None, key: bytes | None = None
) -> Target | Refusal:
    """The leader's active contract as the feedback modal needs it (for `giver`), or why there
    is none."""
    contract = await find_contract_for_leader(session=session, leader_id=leader)
    if contract is None or contract.status != ContractStatus.active:
        return no_contract(leader)
    return await feedback_target(session, contract, giver=giver, key=key)


async def target_of(
    *,
    session: AsyncSession,
    contract_id: int,
    giver: str | None = None,
    key: bytes | None = None,
) -> Target | None:
    contract = await session.get(Contract, contract_id)
    if contract is None or contract.status != ContractStatus.active:
        return None
    return await feedback_target(session, contract, giver=giver, key=key)


async def _unused_id(session: AsyncSession) -> int:
    """A random feedback id not yet taken: ids carry no order, so no submission time."""
    while True:
        candidate = random_row_id()
        if await session.get(Feedback, candidate) is None:
            return candidate


async def give_feedback(
    *,
    session: AsyncSession,
    target: Target,
    entry: Entry,
    giver: str,
    key: bytes,
    request_id: int | None,
    now: datetime,
) -> Given | Refusal:
    """Store one entry, or why it cannot be taken (about its behaviour or its anonymity)."""
    contract = await session.get(Contract, target.contract_id)
    if contract is None or contract.status != ContractStatus.active:
        return Refusal("This contract is closed, so the feedback was not sent.", field="behaviour")
    bundle = await load_governance(session=session, contract_id=contract.id or 0)
    if bundle is None:
        return Refusal("This contract is closed, so the feedback was not sent.", field="behaviour")
    relation = await giver_relation(session, bundle, giver, key)
    if relation is None:
        if entry.relation not in open_groups(bundle):  # a crafted group, or none chosen
            return Refusal(
                f"Choose how you work with <@{contract.leader_id}> from the options given.",
                field="relation",
            )
        relation = entry.relation
    elif entry.relation not in (None, relation):  # the modal asked nothing: a crafted value
        return Refusal(
            "North Star already knows how you work with this leader; nothing was sent.",
            field="behaviour",
        )
    if entry.anonymous and attributed_only(bundle, giver, relation):
        return Refusal(
            "Your feedback goes with your name: a sponsor's or a leader's own view is one "
            "known person's, and whoever reads the feedback cannot hide in a group of it.",
            field="behaviour",
        )
    request = await session.get(FeedbackRequest, request_id) if request_id else None
    if request is not None and (request.reviewer_id != giver or request.contract_id != contract.id):
        request = None
    if entry.anonymous:
        hashed = author_hash(key, user=giver, contract_id=contract.id or 0)
        week_start = midnight(now) - timedelta(days=midnight(now).weekday())
        given = await anonymous_given_since(
            session=session, contract_id=contract.id, author_hash=hashed, since=week_start
        )
        if given >= ANONYMOUS_WEEKLY_CAP:
            return Refusal(
                f"You have given this leader {ANONYMOUS_WEEKLY_CAP} anonymous entries this week, "
                "the most North Star takes. Send it with your name, or next week.",
                field="anonymity",
            )
        row = Feedback(
            id=await _unused_id(session),
            contract_id=contract.id or 0,
            expectation_key=entry.expectation_key,
            polarity=entry.polarity,
            situation=entry.situation,
            behaviour=entry.behaviour,
            impact=entry.impact,
            anonymous=True,
            author_id=None,
            author_hash=hashed,
            request_id=None,
            window_key=feedback_window(contract.feedback_cadence, now.astimezone(UTC).date()),
            created_at=midnight(now),
            relation=relation,
        )
        session.add(row)  # the request, if any, is left as it was: nothing links the two
        await session.commit()
        return Given(feedback_id=row.id or 0, target=target, entry=entry, giver=None)

    row = Feedback(
        id=await _unused_id(session),
        contract_id=contract.id or 0,
        expectation_key=entry.expectation_key,
        polarity=entry.polarity,
        situation=entry.situation,
        behaviour=entry.behaviour,
        impact=entry.impact,
        anonymous=False,
        author_id=giver,
        request_id=request.id if request is not None else None,
        created_at=now,
        relation=relation,
    )
    session.add(row)
    await session.flush()
    if request is not None and request.status == OPEN:
        request.status, request.closed_at = ANSWERED, now
        session.add(request)
        await delivery.cancel(session=session, key=reminder_key(request))
    await answer_open_requests(session=session, contract_id=row.contract_id, giver=giver, now=now)
    audit(
        session,
        action="feedback.given",
        contract_id=contract.id,
        actor_id=giver,
        detail={
            "feedback_id": row.id,
            "expectation": entry.expectation_key,
            "polarity": entry.polarity,
            "relation": relation,
        },
        at=now,
    )
    await session.commit()
    return Given(
        feedback_id=row.id or 0, target=target, entry=entry, giver=giver, relation=relation
    )


async def answer_open_requests(
    *, session: AsyncSession, contract_id: int, giver: str, now: datetime
) -> None:
    """Feedback given by name answers every request its giver has open on the contract,
    however it was given (`/feedback @leader` as well as the request's button), and cancels
    their reminders. Only ever called for named feedback: an anonymous entry marks nothing.
    The caller commits."""
    for request in await open_requests_of(
        session=session,
        contract_id=contract_id,
        reviewer_id=giver,
        status=OPEN,
        since=now - REQUEST_OPEN_FOR,
        until=now,
    ):
        request.status, request.closed_at = ANSWERED, now
        session.add(request)
        await delivery.cancel(session=session, key=reminder_key(request))


async def reviewer_zone(session: AsyncSession, user: str, default: ZoneInfo) -> ZoneInfo:
    """A reviewer's own zone as Slack last told it (`users.info`), else `default`."""
    cached = (await cached_zones(session=session, user_ids=[user])).get(user)
    return zone_of(cached) or default


async def my_feedback(
    *, session: AsyncSession, user: str, key: bytes, team: str | None = None
) -> list[MineRow]:
    """What `user` wrote, newest first, as `/feedback mine` shows it to them alone.

    `team` is the installation's (auth.test): it finds entries an earlier version hashed with it.
    """
    entries = await authored_feedback(session=session, user=user, key=key, team=team)
    leaders = await contract_leaders(session=session)
    rows = [
        MineRow(
            feedback_id=e.id or 0,
            leader_id=leaders.get(e.contract_id, ""),
            expectation_key=e.expectation_key,
            polarity=e.polarity,
            behaviour=e.behaviour,
            anonymous=e.anonymous,
            released=e.released_at is not None,
            given_on=e.created_at.date(),
        )
        for e in entries
    ]
    return sorted(rows, key=lambda r: (r.given_on, r.feedback_id), reverse=True)


async def withdraw(
    *, session: AsyncSession, user: str, key: bytes, feedback_id: int, now: datetime
) -> Gone | None:
    """Delete one of `user`'s own entries; None if it is not theirs (or gone).

    A named entry's withdrawal is audited; an anonymous one's leaves no trace at all, so the
    leader's history cannot show that feedback below the threshold existed.
    """
    entry = await session.get(Feedback, feedback_id)
    if entry is None:
        return None
    if entry.anonymous:
        mine = entry.author_hash == author_hash(key, user=user, contract_id=entry.contract_id)
    else:
        mine = entry.author_id == user
    if not mine:
        return None
    gone = Gone.of(entry)
    if not await delete_row(session, entry):
        return None  # a double click: the other request deleted it (and audited it) first
    if not entry.anonymous:
        audit(
            session,
            action="feedback.withdrawn",
            contract_id=entry.contract_id,
            actor_id=user,
            detail={"anonymous": False},
            at=now,
        )
    await session.commit()
    return gone


async def feedback_for(
    *, session: AsyncSession, viewer: str, leader: str | None
) -> Received | Refusal:
    """Feedback about a leader for the leader, their sponsor and owner; held entries never."""
    about = leader or viewer
    contract = await find_contract_for_leader(session=session, leader_id=about)
    if contract is None:
        if leader is None:
            return Refusal(
                "You don't lead a contract, so there's no feedback about you here. Sponsors and "
                "owners: `/feedback received @leader`. What you wrote: `/feedback mine`."
            )
        return Refusal(f"<@{leader}> has no contract in North Star.")
    bundle = await load_bundle(session=session, contract_id=contract.id or 0)
    if bundle is None or not may_read_feedback(bundle, viewer):
        return Refusal(
            f"Only <@{about}>, their sponsor and the contract's owner read feedback about them. "
            "You can read what you wrote with `/feedback mine`."
        )
    attributed: list[Shown] = []
    released: list[Shown] = []
    for f in await entries_about(session=session, contract_id=contract.id):
        if not f.anonymous:
            attributed.append(Shown.of(f))
        elif f.released_at is not None:
            released.append(Shown.of(f))
    return Received(
        leader_id=about,
        attributed=attributed,
        released=released,
        expectations=tuple((e.key, e.text) for e in bundle.expectations),
        threshold=contract.anonymity_threshold,
    )


def release_plan(
    held: list[Feedback], *, threshold: int, now: datetime, force: bool = False
) -> list[tuple[str, list[Feedback]]]:
    """Which held entries to release now, and as which group: the per-group rule.

    Each rater group (peers, direct reports, other stakeholders) is released on its own once
    its held entries come from at least `threshold` different people (hashes), so a group of
    one is never shown beside a released one. The groups still below it are merged into
    *others* only when together they come from `threshold` different people. A released group
    keeps its name for good (`released_as`) and each entry is released once, so no two views
    overlap and no difference between them singles anyone out. Nothing is released on the
    day the last of its entries arrived (unless `force`): the timing says nothing about whose
    entry completed it.
    """
    by_group: dict[str, list[Feedback]] = {}
    for entry in held:
        group = entry.relation if entry.relation in ANONYMOUS_GROUPS else STAKEHOLDER
        by_group.setdefault(group or STAKEHOLDER, []).append(entry)

    def authors(entries: list[Feedback]) -> int:
        return len({entry.author_hash or f"entry:{entry.id}" for entry in entries})

    def settled(entries: list[Feedback]) -> bool:
        return force or max(entry.created_at for entry in entries) < midnight(now)

    plan: list[tuple[str, list[Feedback]]] = []
    below: list[Feedback] = []
    for group in ANONYMOUS_GROUPS:
        entries = by_group.get(group, [])
        if authors(entries) >= threshold:
            if settled(entries):
                plan.append((group, entries))
        else:
            below += entries
    if below and authors(below) >= threshold and settled(below):
        plan.append((OTHERS, below))
    return plan


async def release_held(
    *, session: AsyncSession, contract: Contract, now: datetime, force: bool = False
) -> datetime | None:
    """Release the contract's held groups that meet the threshold (`release_plan`); the
    release instant, or None when nothing was released."""
    held = await held_entries(session=session, contract_id=contract.id)
    if not held:
        return None
    window = feedback_window(contract.feedback_cadence, now.astimezone(UTC).date())
    for entry in held:
        if entry.window_key != window:  # carried over from an earlier window
            entry.window_key = window
            session.add(entry)
    plan = release_plan(held, threshold=contract.anonymity_threshold, now=now, force=force)
    if not plan:
        await session.commit()
        return None
    for group, entries in plan:
        ids = [entry.id for entry in entries]
        released = await release_entries(session=session, ids=ids, now=now, group=group)
        if released != len(ids):  # another replica released some of them meanwhile
            await session.rollback()
            return None
    audit(
        session,
        action="feedback.released",
        contract_id=contract.id,
        actor_id=None,
        detail={"entries": sum(len(entries) for _, entries in plan)},
        at=now,
    )
    await session.commit()
    return now


async def three_sixty(
    session: AsyncSession, contract_id: int, period_start: date, period_end: date
) -> ThreeSixty | None:
    """The leader's self view beside the others', per expectation: data, not blocks (for the
    report builder and the summary). None when there is no such contract.

    For each expectation in the contract's order (then entries naming none, `key` None), one
    `GroupView` per rater group with something to show, in `GROUP_ORDER` (self, peers, direct
    reports, sponsor, other stakeholders, others), each with its strengths and development
    areas:
    - named entries by their giver's relation, with author and date, given from
      `period_start` to `period_end` (UTC days, both included);
    - anonymous entries only once released, in the group they were released in (their own or
      *others*), without author or date, placed in the period by their release day so that a
      released group is never split between periods; held entries never appear.
    Who may read it is the caller's to check: the leader, the sponsor and the owner
    (`bot.core.permissions.may_read_feedback`), or a report's audience.
    """
    contract = await session.get(Contract, contract_id)
    if contract is None:
        return None
    expectations = await expectations_of(session=session, contract_id=contract_id)
    texts = {e.key: e.text for e in expectations}
    cells: dict[tuple[str | None, str, bool], list[Shown]] = {}
    for entry in await entries_about(session=session, contract_id=contract_id):
        if entry.anonymous:
            if entry.released_at is None:
                continue
            on = entry.released_at.astimezone(UTC).date()
        else:
            on = entry.created_at.astimezone(UTC).date()
        if not period_start <= on <= period_end:
            continue
        shown = Shown.of(entry)
        cells.setdefault((entry.expectation_key, shown.group, entry.anonymous), []).append(shown)
    keys: list[str | None] = [e.key for e in expectations]
    keys += sorted({k for k, _, _ in cells if k not in texts and k is not None})
    keys.append(None)
    views = []
    for key in keys:
        groups = []
        for group in GROUP_ORDER:
            for anonymous in (False, True):
                found = cells.get((key, group, anonymous))
                if not found:
                    continue
                if anonymous:  # no order that could hint at when or by whom
                    found = sorted(found, key=lambda e: (e.polarity, e.behaviour))
                groups.append(
                    GroupView(
                        group=group,
                        label=GROUP_LABEL[group],
                        anonymous=anonymous,
                        strengths=tuple(e for e in found if e.polarity == "strength"),
                        development=tuple(e for e in found if e.polarity == "development"),
                    )
                )
        if groups:
            views.append(
                ExpectationView(key=key, text=texts.get(key or "", ""), groups=tuple(groups))
            )
    return ThreeSixty(
        contract_id=contract_id,
        leader_id=contract.leader_id,
        period_start=period_start,
        period_end=period_end,
        threshold=contract.anonymity_threshold,
        expectations=tuple(views),
    )


async def requestable(
    *, session: AsyncSession, requester: str, leader: str | None
) -> ContractBundle | Refusal:
    """The contract `requester` may ask feedback for: as its leader or its sponsor."""
    if leader is not None:
        contract = await find_contract_for_leader(session=session, leader_id=leader)
        if contract is None or contract.status != ContractStatus.active:
            return Refusal(f"<@{leader}> has no active contract in North Star.")
    else:
        contract = await find_contract_for_leader(session=session, leader_id=requester)
        if contract is None or contract.status != ContractStatus.active:
            sponsored = await sponsored_active(session=session, sponsor_id=requester)
            if not sponsored:
                return Refusal(
                    "You have no active contract to ask feedback for: only a contract's leader "
                    "or sponsor can ask."
                )
            if len(sponsored) > 1:
                names = ", ".join(f"<@{c.leader_id}>" for c in sponsored)
                return Refusal(
                    f"You sponsor several contracts ({names}): add `for @leader`, e.g. "
                    "`/contract request-feedback @ana for @dana`."
                )
            contract = sponsored[0]
    bundle = await load_bundle(session=session, contract_id=contract.id or 0)
    if bundle is None or not may_request_feedback(bundle, requester):
        return Refusal("Only the leader or the sponsor of a contract can ask for feedback on it.")
    return bundle


async def create_requests(
    *,
    session: AsyncSession,
    bundle: ContractBundle,
    requester: str,
    parsed: RequestArgs,
    now: datetime,
) -> list[FeedbackRequest] | Refusal:
    """One request per reviewer, in one batch; or why none can be made."""
    c = bundle.contract
    reviewers = list(parsed.reviewers)  # the leader named is asked for their self view
    if not reviewers:
        return Refusal(
            "Name the people or the groups to ask, e.g. "
            "`/contract request-feedback @ana @raj E2` or `/contract request-feedback peers self`."
        )
    if len(reviewers) > MAX_REVIEWERS:
        return Refusal(f"Ask at most {MAX_REVIEWERS} people at a time.")
    keys = [e.key for e in bundle.expectations]
    if parsed.expectation_key is not None and parsed.expectation_key not in keys:
        return Refusal(
            f"This contract has no expectation {escape(parsed.expectation_key)}; "
            f"its expectations are {', '.join(keys)}."
        )
    await lock_requester(session, requester)
    asked = await feedback_requests_since(
        session=session, requester_id=requester, since=now - REQUEST_LIMIT_WINDOW
    )
    if asked + len(reviewers) > DAILY_REQUEST_LIMIT:
        return over_the_bound(asked)
    batch = uuid.uuid4().hex[:16]
    rows = [
        FeedbackRequest(
            contract_id=c.id or 0,
            requester_id=requester,
            reviewer_id=reviewer,
            expectation_key=parsed.expectation_key,
            batch=batch,
            created_at=now,
        )
        for reviewer in reviewers
    ]
    session.add_all(rows)
    audit(
        session,
        action="feedback.requested",
        contract_id=c.id,
        actor_id=requester,
        detail={"batch": batch, "reviewers": len(rows), "expectation": parsed.expectation_key},
        at=now,
    )
    await session.commit()
    return rows


def over_the_bound(asked: int) -> Refusal:
    """The refusal once a request would take its requester past the daily bound."""
    left = max(DAILY_REQUEST_LIMIT - asked, 0)
    more = f"you can ask {left} more now" if left else "you can ask again once a day has passed"
    return Refusal(
        f"You can ask at most {DAILY_REQUEST_LIMIT} people for feedback a day, and you have "
        f"asked {asked} in the last 24 hours: {more}. Nobody was asked this time."
    )


async def ask_for_feedback(
    *,
    services: Services,
    client: AsyncWebClient,
    requester: str,
    parsed: RequestArgs,
    now: datetime,
) -> Asked | Refusal:
    """Requests to the real, active, human members among those named, within the daily bound.

    The contract is found first, so only its leader or sponsor learns anything about the
    people named; those who cannot be asked (a bot, a deactivated account, someone Slack does
    not know here) are left out and named with why, which says nothing about any contract.
    Slack is asked with no database transaction open.
    """
    if len(parsed.reviewers) > MAX_REVIEWERS:
        return Refusal(f"Ask at most {MAX_REVIEWERS} people at a time.")
    async with services.sessions() as session:
        await read_only(session)
        bundle = await requestable(session=session, requester=requester, leader=parsed.leader)
        if isinstance(bundle, Refusal):
            return bundle
        asked = await feedback_requests_since(
            session=session, requester_id=requester, since=now - REQUEST_LIMIT_WINDOW
        )
    if parsed.groups:
        members = group_members(bundle, parsed.groups)
        if isinstance(members, Refusal):
            return members
        parsed = replace(parsed, reviewers=list(dict.fromkeys([*parsed.reviewers, *members])))
        if len(parsed.reviewers) > MAX_REVIEWERS:
            return Refusal(f"Ask at most {MAX_REVIEWERS} people at a time.")
    if parsed.reviewers and asked >= DAILY_REQUEST_LIMIT:
        return over_the_bound(asked)  # before asking Slack about anyone
    problems = await check_people(client, parsed.reviewers)
    skipped = {user: problem for user, problem in problems.items() if problem is not None}
    fit = [user for user in parsed.reviewers if user not in skipped]
    if parsed.reviewers and not fit:
        return Refusal("Nobody was asked: " + skipped_text(skipped))
    async with services.sessions() as session:
        await writing(session)
        made = await create_requests(
            session=session,
            bundle=bundle,
            requester=requester,
            parsed=replace(parsed, reviewers=fit),
            now=now,
        )
    if isinstance(made, Refusal):
        return made
    return Asked(bundle=bundle, requests=made, skipped=skipped)


def group_members(bundle: ContractBundle, groups: Sequence[str]) -> list[str] | Refusal:
    """The people of the rater groups named, as the contract lists them: the sponsor, the
    leader (for their self view), its peers, direct reports and stakeholders; `everyone` is
    all of them and its plain reviewers. A group the contract lists nobody in is refused."""
    c = bundle.contract
    listed = {
        SELF: [c.leader_id],
        SPONSOR: [c.sponsor_id],
        PEER: bundle.peers,
        DIRECT_REPORT: bundle.direct_reports,
        STAKEHOLDER: bundle.stakeholders,
    }
    members: list[str] = []
    for group in groups:
        if group == EVERYONE:
            members += [
                *bundle.peers,
                *bundle.direct_reports,
                *bundle.stakeholders,
                *bundle.reviewers,
                c.sponsor_id,
                c.leader_id,
            ]
            continue
        if not listed[group]:
            return Refusal(
                f"The contract lists no {GROUP_LABEL[group].lower()}: name the people to ask, "
                "or add them to its feedback block (`peers`, `direct_reports`, `stakeholders`)."
            )
        members += listed[group]
    return list(dict.fromkeys(members))


def cadence_people(contract: Contract, listed: Sequence[str]) -> list[str]:
    """Whom the contract's cadence asks: its reviewers and rater groups, its sponsor, and its
    leader for their self view."""
    return list(dict.fromkeys([*listed, contract.sponsor_id, contract.leader_id]))


def skipped_text(skipped: dict[str, str]) -> str:
    """`<@U1> is a bot, not a person; <@U2> is a deactivated account.`"""
    return "; ".join(f"<@{user}> {problem}" for user, problem in skipped.items()) + "."


class RequestFor:
    """Finds (or, for the cadence, makes) the request a DM is about, at sending time."""

    def __init__(self, request_id: int | None = None, cadence: CadenceAsk | None = None) -> None:
        self.request_id = request_id
        self.cadence = cadence

    async def __call__(self, session: AsyncSession) -> FeedbackRequest | None:
        if self.request_id is not None:
            request = await session.get(FeedbackRequest, self.request_id)
            return request if request is not None and request.status == OPEN else None
        assert self.cadence is not None
        ask = self.cadence
        found = await find_batch_request(session=session, batch=ask.batch, reviewer_id=ask.reviewer)
        if found is not None:
            return found if found.status == OPEN else None
        # Feedback by name earlier in this window answers the request before it is sent.
        answered = ask.since is not None and await named_given_since(
            session=session, contract_id=ask.contract_id, author_id=ask.reviewer, since=ask.since
        )
        request = FeedbackRequest(
            contract_id=ask.contract_id,
            requester_id=None,
            reviewer_id=ask.reviewer,
            batch=ask.batch,
            created_at=ask.now,
            status=ANSWERED if answered else OPEN,
            closed_at=ask.now if answered else None,
        )
        session.add(request)
        await session.commit()
        return None if answered else request


async def request_to_answer(
    *, session: AsyncSession, request_id: int, user: str, key: bytes | None = None
) -> tuple[Target, FeedbackRequest] | Refusal:
    """The request behind a "Give feedback" button, if `user` is the one asked."""
    request = await session.get(FeedbackRequest, request_id)
    if request is None or request.reviewer_id != user:
        return Refusal("This feedback request is not addressed to you.")
    contract = await session.get(Contract, request.contract_id)
    if contract is None or contract.status != ContractStatus.active:
        return Refusal("That contract is closed, so it takes no more feedback.")
    return await feedback_target(session, contract, giver=user, key=key), request


async def request_status(*, session: AsyncSession, viewer: str, now: datetime) -> list[BatchStatus]:
    """The viewer's recent requests (and, for a leader, the cadence's), newest first.

    Only who answered by name: an anonymous answer leaves no mark on a request, so no count
    per request or batch can point at the one reviewer who did not answer by name.
    """
    since = now - timedelta(days=STATUS_DAYS)
    batches: dict[str, list[tuple[FeedbackRequest, Contract]]] = {}
    for request, contract in await requests_seen_by(session=session, viewer=viewer, since=since):
        batches.setdefault(request.batch or f"request-{request.id}", []).append((request, contract))
    statuses = []
    for members in list(batches.values())[:STATUS_BATCHES]:
        first, contract = members[0]
        requests = [r for r, _ in members]
        statuses.append(
            BatchStatus(
                leader_id=contract.leader_id,
                expectation_key=first.expectation_key,
                asked_on=first.created_at.date(),
                asked=len(requests),
                answered=tuple(r.reviewer_id for r in requests if r.status == ANSWERED),
            )
        )
    return statuses


def cadence_due(contract: Contract, now: datetime, zone: ZoneInfo, *, force: bool) -> str | None:
    """The feedback window to ask the reviewers for now, or None (not yet, or outside)."""
    if not contract.feedback_cadence:
        return None
    local = now.astimezone(zone)
    if not contract.period_start <= local.date() <= contract.period_end:
        return None
    if not force and (local.weekday() >= 5 or local.hour < CADENCE_HOUR):
        return None
    return feedback_window(contract.feedback_cadence, local.date())


def hash_key(services: Services) -> bytes:
    return feedback_key(services.settings)


# --- the leader's answer to an entry shown to them ------------------------------------------

NOT_YOURS = Refusal(
    "That feedback is not one you can act on: it was withdrawn, or it is not feedback shown "
    "to you. Only the leader it is about acknowledges it or makes it an activity."
)


async def entry_for_leader(
    *, session: AsyncSession, feedback_id: int, user: str
) -> tuple[Feedback, Contract] | Refusal:
    """The entry behind a leader's button, if `user` leads its contract and it is shown to
    them (named, or anonymous and released). One refusal for every other case, so a made-up
    id says nothing about which entries exist or are held."""
    entry = await session.get(Feedback, feedback_id)
    if entry is None or (entry.anonymous and entry.released_at is None):
        return NOT_YOURS
    contract = await session.get(Contract, entry.contract_id)
    if contract is None or contract.leader_id != user:
        return NOT_YOURS
    return entry, contract


async def acknowledge(
    *, session: AsyncSession, feedback_id: int, user: str, now: datetime
) -> Acked | Refusal:
    """Record that the leader acknowledged the entry, once; a second click finds the first."""
    found = await entry_for_leader(session=session, feedback_id=feedback_id, user=user)
    if isinstance(found, Refusal):
        return found
    entry, contract = found
    acked = Acked(
        feedback_id=feedback_id,
        contract_id=contract.id or 0,
        leader_id=contract.leader_id,
        giver=None if entry.anonymous else entry.author_id,
        expectation_key=entry.expectation_key,
        given_on=shown_on(entry),
        at=now,
        first=True,
    )
    earlier = await session.get(FeedbackAck, feedback_id)
    if earlier is None:
        session.add(FeedbackAck(feedback_id=feedback_id, acknowledged_by=user, acknowledged_at=now))
        try:
            await session.commit()
            return acked
        except IntegrityError:  # the other click of a double click, on another replica
            await session.rollback()
            earlier = await session.get(FeedbackAck, feedback_id)
    at = earlier.acknowledged_at if earlier is not None else now
    return replace(acked, at=at, first=False)


async def responses_of(*, session: AsyncSession, ids: Sequence[int]) -> dict[int, Response]:
    """What the leader did with each of the entries `ids`."""
    acks = await acks_of(session=session, ids=ids)
    activities = await activities_of(session=session, ids=ids)
    found = {}
    for feedback_id in ids:
        ack = acks.get(feedback_id)
        link = activities.get(feedback_id)
        activity = ACTIVITY_OF_STATUS.get(link[1].status) if link else None
        found[feedback_id] = Response(
            acknowledged_on=ack.acknowledged_at.astimezone(UTC).date() if ack else None,
            activity=activity,
            amendment_id=link[1].id if link and activity else None,
        )
    return found


async def entry_to_make_activity(
    *, session: AsyncSession, feedback_id: int, user: str, contract_id: int | None = None
) -> tuple[Feedback, Contract] | Refusal:
    """The entry the leader makes into an activity, or why not: not theirs or not shown, of
    another contract than the form's, a contract no longer active, or made already.

    In a writing session it locks the contract, so two forms of one entry propose once."""
    found = await entry_for_leader(session=session, feedback_id=feedback_id, user=user)
    if isinstance(found, Refusal):
        return found
    entry, contract = found
    if contract_id is not None and contract_id != entry.contract_id:
        return NOT_YOURS
    if contract.status != ContractStatus.active:
        return Refusal("That contract is closed, so it takes no new activity.")
    if contract_id is not None:
        await lock_contract(session=session, contract_id=contract_id)
    made = (await responses_of(session=session, ids=[feedback_id]))[feedback_id]
    if made.activity is not None:
        return Refusal(
            f"You made this feedback into an activity already: amendment #{made.amendment_id} "
            f"({'added to the contract' if made.activity == 'added' else 'awaiting approval'})."
        )
    return entry, contract


async def link_activity(
    *, session: AsyncSession, feedback_id: int, amendment_id: int, now: datetime
) -> None:
    """Tie the entry to the amendment proposed from it (replacing a rejected one's link);
    the caller commits, with the amendment."""
    link = await session.get(FeedbackActivity, feedback_id)
    if link is None:
        link = FeedbackActivity(feedback_id=feedback_id, amendment_id=amendment_id)
    link.amendment_id, link.proposed_at = amendment_id, now
    session.add(link)
