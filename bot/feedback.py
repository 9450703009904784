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

Requests. `/contract request-feedback` and the contract's cadence send each reviewer a DM
with a "Give feedback" button through the delivery queue (claimed once per request or per
reviewer and window); one reminder follows after `REMINDER_AFTER` (at most one per request:
its delivery key holds the request), to everyone who has not answered with their name (an
anonymous answer cannot be told apart, so the reminder says so). Feedback given by name, with
the button or with `/feedback @leader`, answers every request its giver has open on the
contract, and a cadence request of a window in which they already gave it is never sent.
Each reviewer is asked, reminded and told until when in their own zone (`users.info`).

Deleted words. When an entry is withdrawn or its author erased, the messages the bot posted
with it (the leader's DM of a named entry, the DM that released an anonymous group) are
redacted or rebuilt without it (`retract_posted`).
"""

from __future__ import annotations

import logging
import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import delivery
from bot.blocks import day, escape, truncate
from bot.checkins import cached_zones, refresh_zones, zone_of
from bot.contracts import Refusal
from bot.delivery import DeliveryKey, DeliveryQueue, Message, Outgoing, Report, queue_of
from bot.feedback_blocks import (
    ANONYMOUS,
    ATTRIBUTED,
    BEHAVIOUR_MAX,
    BEHAVIOUR_MIN,
    IMPACT_MAX,
    POLARITIES,
    SITUATION_MAX,
    BatchStatus,
    Entry,
    MineRow,
    Shown,
    Target,
    build_attributed_message,
    build_release_message,
    build_removed_message,
    build_request_message,
    fit_message,
)
from bot.mentions import user_id_of
from bot.modals import Form, _required_text
from bot.people import check_people
from bot.privacy import Gone, author_hash, authored_feedback, feedback_key
from bot.scheduler import JobRun, job
from bot.services import Services
from storage.db import read_only
from storage.models import (
    Contract,
    ContractPerson,
    ContractStatus,
    Delivery,
    DeliveryStatus,
    Expectation,
    Feedback,
    FeedbackRequest,
    Role,
    random_row_id,
)
from storage.queries import (
    ContractBundle,
    audit,
    feedback_requests_since,
    find_contract_for_leader,
    load_bundle,
    lock_requester,
)

logger = logging.getLogger(__name__)

ATTRIBUTED_NOTICE = "feedback_given"
RELEASE = "feedback_release"
REQUEST = "feedback_request"
CADENCE = "feedback_cadence"
REMINDER = "feedback_reminder"

ANONYMOUS_WEEKLY_CAP = 3
REMINDER_AFTER = timedelta(days=3)
REQUEST_OPEN_FOR = timedelta(days=14)
MAX_REVIEWERS = 20
# However many commands, one person asks at most this many people in any 24 hours.
DAILY_REQUEST_LIMIT = 20
REQUEST_LIMIT_WINDOW = timedelta(hours=24)
STATUS_DAYS = 60
STATUS_BATCHES = 10
CADENCE_HOUR = 9
WORKDAY_END = 18  # a reminder due later in a reviewer's day waits for their next working morning
RELEASE_RESEND_DAYS = 7
READERS = frozenset({Role.leader, Role.sponsor, Role.owner})
REQUESTERS = frozenset({Role.leader, Role.sponsor})
OPEN, ANSWERED, EXPIRED = "open", "answered", "expired"
EXPECTATION_KEY = re.compile(r"^[A-Za-z]\d{1,3}$")


# --- time --------------------------------------------------------------------------------


def midnight(moment: datetime) -> datetime:
    """The UTC day `moment` falls in, as its first instant: all an anonymous entry keeps."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def feedback_window(cadence: str | None, day: date) -> str:
    """The feedback window (cadence period) `day` falls in: 2027-W10, 2027-03, 2027-Q1."""
    year, week, _ = day.isocalendar()
    if cadence == "weekly":
        return f"{year}-W{week:02d}"
    if cadence == "biweekly":
        return f"{year}-W{week - (week - 1) % 2:02d}"
    if cadence == "monthly":
        return f"{day.year}-{day.month:02d}"
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def window_start(cadence: str | None, day: date) -> date:
    """The first day of the feedback window `day` falls in (as `feedback_window` names it)."""
    if cadence == "weekly":
        return day - timedelta(days=day.weekday())
    if cadence == "biweekly":
        year, week, _ = day.isocalendar()
        return date.fromisocalendar(year, week - (week - 1) % 2, 1)
    if cadence == "monthly":
        return day.replace(day=1)
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def working_moment(moment: datetime, zone: ZoneInfo) -> datetime:
    """`moment` if it falls in a working day's hours in `zone` (from `CADENCE_HOUR` to
    `WORKDAY_END`, Monday to Friday), else the next working morning there."""
    local = moment.astimezone(zone)
    if local.weekday() < 5 and CADENCE_HOUR <= local.hour < WORKDAY_END:
        return moment
    morning = local.date() + timedelta(days=0 if local.hour < CADENCE_HOUR else 1)
    while morning.weekday() >= 5:
        morning += timedelta(days=1)
    return datetime.combine(morning, time(CADENCE_HOUR), tzinfo=zone).astimezone(UTC)


async def reviewer_zone(session: AsyncSession, user: str, default: ZoneInfo) -> ZoneInfo:
    """A reviewer's own zone as Slack last told it (`users.info`), else `default`."""
    cached = (await cached_zones(session=session, user_ids=[user])).get(user)
    return zone_of(cached) or default


def open_until(request: FeedbackRequest, zone: ZoneInfo) -> str:
    """`Wed 24 Mar 2027, 20:00`: when the request closes, in the reviewer's zone."""
    until = (request.created_at + REQUEST_OPEN_FOR).astimezone(zone)
    return f"{until:%a} {day(until.date())}, {until:%H:%M}"


# --- giving ------------------------------------------------------------------------------


async def _target(session: AsyncSession, contract: Contract) -> Target:
    rows = await session.exec(
        select(Expectation)
        .where(Expectation.contract_id == contract.id)
        .order_by(col(Expectation.position), col(Expectation.id))
    )
    return Target(
        contract_id=contract.id or 0,
        leader_id=contract.leader_id,
        title=contract.title,
        threshold=contract.anonymity_threshold,
        expectations=tuple((e.key, e.text) for e in rows.all()),
    )


def no_contract(leader: str) -> Refusal:
    return Refusal(
        f"<@{leader}> has no active leadership contract in North Star, so there is nothing to "
        "give feedback on yet."
    )


async def target_for(*, session: AsyncSession, leader: str) -> Target | Refusal:
    """The leader's active contract as the feedback modal needs it, or why there is none."""
    contract = await find_contract_for_leader(session=session, leader_id=leader)
    if contract is None or contract.status != ContractStatus.active:
        return no_contract(leader)
    return await _target(session, contract)


async def target_of(*, session: AsyncSession, contract_id: int) -> Target | None:
    contract = await session.get(Contract, contract_id)
    if contract is None or contract.status != ContractStatus.active:
        return None
    return await _target(session, contract)


@dataclass(frozen=True, slots=True)
class Given:
    """Stored feedback; `giver` is None for an anonymous entry and goes nowhere further."""

    feedback_id: int
    target: Target
    entry: Entry
    giver: str | None


async def _unused_id(session: AsyncSession) -> int:
    """A random feedback id not yet taken: ids carry no order, so no submission time."""
    while True:
        candidate = random_row_id()
        if await session.get(Feedback, candidate) is None:
            return candidate


def reminder_key(request: FeedbackRequest) -> DeliveryKey:
    return DeliveryKey(REMINDER, request.contract_id, request.reviewer_id, f"request-{request.id}")


async def give_feedback(
    *,
    session: AsyncSession,
    target: Target,
    entry: Entry,
    giver: str,
    key: bytes,
    request_id: int | None,
    now: datetime,
) -> Given | dict[str, str]:
    """Store one entry; field errors (keyed by block id) when it cannot be taken."""
    contract = await session.get(Contract, target.contract_id)
    if contract is None or contract.status != ContractStatus.active:
        return {"behaviour": "This contract is no longer active, so the feedback was not sent."}
    if giver == contract.leader_id:
        return {"behaviour": "Feedback to yourself belongs in your check-in reflection."}
    request = await session.get(FeedbackRequest, request_id) if request_id else None
    if request is not None and (request.reviewer_id != giver or request.contract_id != contract.id):
        request = None
    if entry.anonymous:
        hashed = author_hash(key, user=giver, contract_id=contract.id or 0)
        week_start = midnight(now) - timedelta(days=midnight(now).weekday())
        given = await session.exec(
            select(func.count(col(Feedback.id))).where(
                Feedback.contract_id == contract.id,
                Feedback.author_hash == hashed,
                col(Feedback.created_at) >= week_start,
            )
        )
        if given.one() >= ANONYMOUS_WEEKLY_CAP:
            return {
                "anonymity": f"You have given this leader {ANONYMOUS_WEEKLY_CAP} anonymous entries "
                "this week, the most North Star takes. Send it with your name, or next week."
            }
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
        },
        at=now,
    )
    await session.commit()
    return Given(feedback_id=row.id or 0, target=target, entry=entry, giver=giver)


async def answer_open_requests(
    *, session: AsyncSession, contract_id: int, giver: str, now: datetime
) -> None:
    """Feedback given by name answers every request its giver has open on the contract,
    however it was given (`/feedback @leader` as well as the request's button), and cancels
    their reminders. Only ever called for named feedback: an anonymous entry marks nothing.
    The caller commits."""
    rows = await session.exec(
        select(FeedbackRequest).where(
            FeedbackRequest.contract_id == contract_id,
            FeedbackRequest.reviewer_id == giver,
            FeedbackRequest.status == OPEN,
            col(FeedbackRequest.created_at) <= now,
            col(FeedbackRequest.created_at) >= now - REQUEST_OPEN_FOR,
        )
    )
    for request in rows.all():
        request.status, request.closed_at = ANSWERED, now
        session.add(request)
        await delivery.cancel(session=session, key=reminder_key(request))


async def named_since(
    *, session: AsyncSession, contract_id: int, giver: str, since: datetime
) -> bool:
    """Whether `giver` gave this contract feedback by name since `since`."""
    found = await session.exec(
        select(Feedback.id)
        .where(
            Feedback.contract_id == contract_id,
            Feedback.author_id == giver,
            col(Feedback.anonymous).is_(False),
            col(Feedback.created_at) >= since,
        )
        .limit(1)
    )
    return found.first() is not None


def parse_feedback(view: dict[str, Any], target: Target) -> tuple[Entry | None, dict[str, str]]:
    """The entry, or field errors keyed by block id."""
    form = Form(view)
    errors: dict[str, str] = {}
    expectation = form.option("expectation")
    if expectation not in {key for key, _ in target.expectations}:
        errors["expectation"] = "Choose one of the leader's expectations."
    polarity = form.option("polarity")
    if polarity not in POLARITIES:
        errors["polarity"] = "Choose a strength or a development area."
    situation = _required_text(form, errors, "situation", SITUATION_MAX)
    behaviour = _required_text(form, errors, "behaviour", BEHAVIOUR_MAX)
    if behaviour and "behaviour" not in errors and len(behaviour) < BEHAVIOUR_MIN:
        errors["behaviour"] = (
            "Too short to act on: describe what they did or said, in a sentence or two."
        )
    impact = _required_text(form, errors, "impact", IMPACT_MAX)
    anonymity = form.option("anonymity")
    if anonymity not in (ATTRIBUTED, ANONYMOUS):
        errors["anonymity"] = "Choose whether your name goes with it."
    if errors:
        return None, errors
    return (
        Entry(
            expectation_key=expectation,
            polarity=polarity or "",
            situation=situation,
            behaviour=behaviour,
            impact=impact,
            anonymous=anonymity == ANONYMOUS,
        ),
        {},
    )


async def _skip(_: Delivery, __: str) -> None:
    return None


def notice_period(feedback_id: int) -> str:
    """The period key of the leader's DM about one named entry: how it is found again."""
    return f"feedback-{feedback_id}"


async def notify_leader(services: Services, client: AsyncWebClient, given: Given) -> None:
    """Attributed feedback reaches the leader at once, with the giver's name."""
    if given.giver is None:
        return
    blocks = build_attributed_message(given.entry, giver=given.giver, target=given.target)
    message = Message(text=f"New feedback from <@{given.giver}>", blocks=blocks)
    key = DeliveryKey(
        ATTRIBUTED_NOTICE,
        given.target.contract_id,
        given.target.leader_id,
        notice_period(given.feedback_id),
    )
    async with queue_of(services, client) as queue:
        await queue.deliver(
            Outgoing(
                key=key,
                build=delivery.fixed(message),
                on_undeliverable=_skip,
                expires_at=services.clock.now() + delivery.NOTICE_USEFUL,
            )
        )


# --- reading what one wrote, and withdrawing it -------------------------------------------


async def my_feedback(
    *, session: AsyncSession, user: str, key: bytes, team: str | None = None
) -> list[MineRow]:
    """What `user` wrote, newest first, as `/feedback mine` shows it to them alone.

    `team` is the installation's (auth.test): it finds entries an earlier version hashed with it.
    """
    entries = await authored_feedback(session=session, user=user, key=key, team=team)
    leaders = dict((await session.exec(select(Contract.id, Contract.leader_id))).all())
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
    await session.delete(entry)
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


async def retract_posted(
    services: Services, client: AsyncWebClient | None, gone: Sequence[Gone]
) -> list[str]:
    """Take deleted entries out of what the bot posted; the messages it could not ("C/ts").

    A named entry's DM to the leader is redacted. A released anonymous entry's group DM is
    rebuilt from the entries of that release still kept, or redacted when none is left.
    Without a client (no Slack token) nothing is changed and every message is returned.
    """
    named = [notice_period(g.feedback_id) for g in gone if not g.anonymous]
    releases = {
        (g.contract_id, released) for g in gone if g.anonymous and (released := g.released_at)
    }
    edits: list[tuple[str, str, Message]] = []
    async with services.sessions() as session:
        if named:
            notices = await session.exec(
                select(Delivery).where(
                    Delivery.kind == ATTRIBUTED_NOTICE, col(Delivery.period_key).in_(named)
                )
            )
            edits += [
                (d.slack_channel, d.slack_ts, removed_message())
                for d in notices.all()
                if d.slack_channel and d.slack_ts
            ]
        for contract_id, released_at in sorted(releases):
            sent = (
                await session.exec(
                    select(Delivery).where(
                        Delivery.kind == RELEASE,
                        Delivery.contract_id == contract_id,
                        Delivery.period_key == release_period(released_at),
                    )
                )
            ).first()
            contract = await session.get(Contract, contract_id)
            if sent is None or not sent.slack_channel or not sent.slack_ts or contract is None:
                continue
            rebuilt = await release_message(session, contract, released_at)
            edits.append((sent.slack_channel, sent.slack_ts, rebuilt or removed_message()))
    if client is None:
        return [f"{channel}/{ts}" for channel, ts, _ in edits]
    async with queue_of(services, client) as queue:
        return [
            f"{channel}/{ts}"
            for channel, ts, message in edits
            if not await queue.update(channel, ts, message)
        ]


def removed_message() -> Message:
    return Message(text="Feedback removed", blocks=build_removed_message())


# --- reading what others wrote about a leader ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    leader_id: str
    attributed: list[Shown]
    released: list[Shown]
    expectations: tuple[tuple[str, str], ...]
    threshold: int


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
    if bundle is None or not bundle.roles_of(viewer) & READERS:
        return Refusal(
            f"Only <@{about}>, their sponsor and the contract's owner read feedback about them. "
            "You can read what you wrote with `/feedback mine`."
        )
    rows = await session.exec(
        select(Feedback)
        .where(Feedback.contract_id == contract.id)
        .order_by(col(Feedback.created_at).desc(), col(Feedback.id).desc())
    )
    attributed: list[Shown] = []
    released: list[Shown] = []
    for f in rows.all():
        if not f.anonymous:
            attributed.append(
                Shown(
                    expectation_key=f.expectation_key,
                    polarity=f.polarity,
                    situation=f.situation,
                    behaviour=f.behaviour,
                    impact=f.impact,
                    author_id=f.author_id,
                    given_on=f.created_at.date(),
                )
            )
        elif f.released_at is not None:
            released.append(
                Shown(
                    expectation_key=f.expectation_key,
                    polarity=f.polarity,
                    situation=f.situation,
                    behaviour=f.behaviour,
                    impact=f.impact,
                )
            )
    return Received(
        leader_id=about,
        attributed=attributed,
        released=released,
        expectations=tuple((e.key, e.text) for e in bundle.expectations),
        threshold=contract.anonymity_threshold,
    )


# --- releasing anonymous entries -----------------------------------------------------------


async def release_held(
    *, session: AsyncSession, contract: Contract, now: datetime, force: bool = False
) -> datetime | None:
    """Release the contract's held entries when the threshold is met; the release instant.

    Not on the day the last of them arrived (unless `force`), so the release time says
    nothing about whose entry completed the set.
    """
    held = list(
        (
            await session.exec(
                select(Feedback).where(
                    Feedback.contract_id == contract.id,
                    col(Feedback.anonymous).is_(True),
                    col(Feedback.released_at).is_(None),
                )
            )
        ).all()
    )
    if not held:
        return None
    window = feedback_window(contract.feedback_cadence, now.astimezone(UTC).date())
    for entry in held:
        if entry.window_key != window:  # carried over from an earlier window
            entry.window_key = window
            session.add(entry)
    authors = {entry.author_hash or f"entry:{entry.id}" for entry in held}
    ready = len(authors) >= contract.anonymity_threshold and (
        force or max(entry.created_at for entry in held) < midnight(now)
    )
    if not ready:
        await session.commit()
        return None
    ids = [entry.id for entry in held]
    result = await session.exec(
        update(Feedback)
        .where(col(Feedback.id).in_(ids), col(Feedback.released_at).is_(None))
        .values(released_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != len(ids):  # another replica released some of them meanwhile
        await session.rollback()
        return None
    audit(
        session,
        action="feedback.released",
        contract_id=contract.id,
        actor_id=None,
        detail={"entries": len(ids)},
        at=now,
    )
    await session.commit()
    return now


def release_period(released_at: datetime) -> str:
    return released_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


async def release_message(
    session: AsyncSession, contract: Contract, released_at: datetime
) -> Message | None:
    """The leader's DM for one release: its entries still kept, or None when none is."""
    rows = await session.exec(
        select(Feedback).where(
            Feedback.contract_id == contract.id,
            col(Feedback.anonymous).is_(True),
            Feedback.released_at == released_at,
        )
    )
    entries = [
        Shown(
            expectation_key=f.expectation_key,
            polarity=f.polarity,
            situation=f.situation,
            behaviour=f.behaviour,
            impact=f.impact,
        )
        for f in rows.all()
    ]
    if not entries:
        return None
    target = await _target(session, contract)
    blocks = build_release_message(
        entries,
        expectations=target.expectations,
        threshold=contract.anonymity_threshold,
        rng=random.SystemRandom(),
    )
    return Message(
        text=f"Anonymous feedback for you: {len(entries)} entries",
        blocks=fit_message(blocks, "More than fits here: `/feedback received` shows all."),
    )


def release_outgoing(services: Services, contract: Contract, released_at: datetime) -> Outgoing:
    async def build(_: Delivery) -> Message | None:
        async with services.sessions() as session:
            return await release_message(session, contract, released_at)

    key = DeliveryKey(RELEASE, contract.id or 0, contract.leader_id, release_period(released_at))
    # As long as `_release` looks for releases not told yet.
    until = released_at + timedelta(days=RELEASE_RESEND_DAYS)
    return Outgoing(key=key, build=build, on_undeliverable=_skip, expires_at=until)


async def release_all(*, services: Services, client: AsyncWebClient, force: bool = False) -> Report:
    """Release whatever is due on every active contract and tell each leader, once."""
    now = services.clock.now()
    async with services.sessions() as session:
        contracts = list(
            (
                await session.exec(select(Contract).where(Contract.status == ContractStatus.active))
            ).all()
        )
    async with queue_of(services, client) as queue:
        for contract in contracts:
            if services.stopping.is_set():
                break
            await _release(services, queue, contract, now=now, force=force)
    return queue.report


async def _release(
    services: Services, queue: DeliveryQueue, contract: Contract, *, now: datetime, force: bool
) -> None:
    """Release what is due on one contract and tell its leader of each release not told yet."""
    async with services.sessions() as session:
        await release_held(session=session, contract=contract, now=now, force=force)
        stamps = (
            await session.exec(
                select(Feedback.released_at)
                .where(
                    Feedback.contract_id == contract.id,
                    col(Feedback.released_at) >= now - timedelta(days=RELEASE_RESEND_DAYS),
                )
                .distinct()
            )
        ).all()
        done = set(
            (
                await session.exec(
                    select(Delivery.period_key).where(
                        Delivery.kind == RELEASE,
                        Delivery.contract_id == contract.id,
                        col(Delivery.status).in_(
                            [DeliveryStatus.sent, DeliveryStatus.undeliverable]
                        ),
                    )
                )
            ).all()
        )
    for stamp in sorted(s for s in stamps if s is not None):
        if services.stopping.is_set():
            return
        if release_period(stamp) not in done:
            await queue.deliver(release_outgoing(services, contract, stamp))


# --- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestArgs:
    reviewers: list[str]
    expectation_key: str | None
    leader: str | None


def parse_request_args(args: Sequence[str]) -> RequestArgs | Refusal:
    """`@a @b [E2] [for @leader]` from the words after `request-feedback`."""
    reviewers: list[str] = []
    expectation: str | None = None
    leader: str | None = None
    words = list(args)
    index = 0
    while index < len(words):
        word = words[index]
        if word.lower() == "for" and index + 1 < len(words):
            leader = user_id_of(words[index + 1])
            if leader is None:
                return Refusal(
                    f"“{escape(truncate(words[index + 1], 80))}” is not a mention: write "
                    "`for @leader` with the name Slack offers as you type."
                )
            index += 2
            continue
        mentioned = user_id_of(word)
        if mentioned is not None:
            reviewers.append(mentioned)
        elif EXPECTATION_KEY.match(word):
            expectation = word.upper()
        else:
            return Refusal(
                f"I couldn't read “{escape(truncate(word, 80))}”: mention each person, e.g. "
                "`/contract request-feedback @ana @raj E2`."
            )
        index += 1
    return RequestArgs(list(dict.fromkeys(reviewers)), expectation, leader)


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
            sponsored = list(
                (
                    await session.exec(
                        select(Contract).where(
                            Contract.sponsor_id == requester,
                            Contract.status == ContractStatus.active,
                        )
                    )
                ).all()
            )
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
    if bundle is None or not bundle.roles_of(requester) & REQUESTERS:
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
    reviewers = [r for r in parsed.reviewers if r != c.leader_id]
    if not reviewers:
        return Refusal(
            "Name the people to ask, e.g. `/contract request-feedback @ana @raj E2`"
            + (" (not the leader: their view goes into check-ins)." if parsed.reviewers else ".")
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


@dataclass(frozen=True, slots=True)
class Asked:
    """The requests a `/contract request-feedback` made, and whom it left out, and why."""

    bundle: ContractBundle
    requests: list[FeedbackRequest]
    skipped: dict[str, str]


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
    if parsed.reviewers and asked >= DAILY_REQUEST_LIMIT:
        return over_the_bound(asked)  # before asking Slack about anyone
    problems = await check_people(client, parsed.reviewers)
    skipped = {user: problem for user, problem in problems.items() if problem is not None}
    fit = [user for user in parsed.reviewers if user not in skipped]
    if parsed.reviewers and not fit:
        return Refusal("Nobody was asked: " + skipped_text(skipped))
    async with services.sessions() as session:
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


def skipped_text(skipped: dict[str, str]) -> str:
    """`<@U1> is a bot, not a person; <@U2> is a deactivated account.`"""
    return "; ".join(f"<@{user}> {problem}" for user, problem in skipped.items()) + "."


def request_outgoing(
    services: Services,
    key: DeliveryKey,
    request_for: RequestFor,
    *,
    reminder: bool = False,
    expires_at: datetime | None = None,
) -> Outgoing:
    """A request DM (or its reminder); built when sent, from the request as it then is,
    worded in the reviewer's zone; its reminder falls in their working hours.

    Useful while the request is open (`expires_at`, `REQUEST_OPEN_FOR` after it was made)."""
    created: list[FeedbackRequest] = []
    default = ZoneInfo(services.settings.default_timezone)

    async def build(_: Delivery) -> Message | None:
        async with services.sessions() as session:
            request = await request_for(session)
            if request is None:
                return None
            contract = await session.get(Contract, request.contract_id)
            if contract is None or contract.status != ContractStatus.active:
                return None
            expectation = None
            if request.expectation_key:
                found = (
                    await session.exec(
                        select(Expectation).where(
                            Expectation.contract_id == contract.id,
                            Expectation.key == request.expectation_key,
                        )
                    )
                ).first()
                expectation = (request.expectation_key, found.text if found else "")
            zone = await reviewer_zone(session, request.reviewer_id, default)
        created.append(request)
        return Message(
            text=f"{'Reminder: ' if reminder else ''}feedback asked on <@{contract.leader_id}>",
            blocks=build_request_message(
                request_id=request.id or 0,
                leader=contract.leader_id,
                requester=request.requester_id,
                expectation=expectation,
                reminder=reminder,
                open_until=open_until(request, zone),
            ),
        )

    async def after_sent(session: AsyncSession, sent: Delivery) -> None:
        if not created or sent.sent_at is None:
            return
        request = await session.get(FeedbackRequest, created[-1].id)
        if request is None:
            return
        if reminder:
            request.reminded_at = sent.sent_at
            session.add(request)
        else:
            zone = await reviewer_zone(session, request.reviewer_id, default)
            due_at = working_moment(sent.sent_at + REMINDER_AFTER, zone)
            await delivery.schedule(
                session=session,
                key=reminder_key(request),
                due_at=due_at,
                expires_at=request.created_at + REQUEST_OPEN_FOR,
            )

    return Outgoing(
        key=key,
        build=build,
        after_sent=after_sent,
        on_undeliverable=_skip,
        expires_at=expires_at,
    )


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
        found = (
            await session.exec(
                select(FeedbackRequest).where(
                    FeedbackRequest.batch == ask.batch,
                    FeedbackRequest.reviewer_id == ask.reviewer,
                )
            )
        ).first()
        if found is not None:
            return found if found.status == OPEN else None
        # Feedback by name earlier in this window answers the request before it is sent.
        answered = ask.since is not None and await named_since(
            session=session, contract_id=ask.contract_id, giver=ask.reviewer, since=ask.since
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


@dataclass(frozen=True, slots=True)
class CadenceAsk:
    contract_id: int
    reviewer: str
    batch: str
    now: datetime
    since: datetime | None = None  # the window's first instant in the reviewer's zone


async def send_requests(
    services: Services, client: AsyncWebClient, requests: Sequence[FeedbackRequest]
) -> Report:
    await refresh_zones(
        sessions=services.sessions,
        client=client,
        user_ids=[r.reviewer_id for r in requests],
        now=services.clock.now(),
    )
    async with queue_of(services, client) as queue:
        for request in requests:
            key = DeliveryKey(
                REQUEST, request.contract_id, request.reviewer_id, f"request-{request.id}"
            )
            until = request.created_at + REQUEST_OPEN_FOR
            await queue.deliver(
                request_outgoing(services, key, RequestFor(request.id), expires_at=until)
            )
    return queue.report


async def request_to_answer(
    *, session: AsyncSession, request_id: int, user: str
) -> tuple[Target, FeedbackRequest] | Refusal:
    """The request behind a "Give feedback" button, if `user` is the one asked."""
    request = await session.get(FeedbackRequest, request_id)
    if request is None or request.reviewer_id != user:
        return Refusal("This feedback request is not addressed to you.")
    contract = await session.get(Contract, request.contract_id)
    if contract is None or contract.status != ContractStatus.active:
        return Refusal("That contract is no longer active, so it takes no more feedback.")
    return await _target(session, contract), request


async def request_status(*, session: AsyncSession, viewer: str, now: datetime) -> list[BatchStatus]:
    """The viewer's recent requests (and, for a leader, the cadence's), newest first.

    Only who answered by name: an anonymous answer leaves no mark on a request, so no count
    per request or batch can point at the one reviewer who did not answer by name.
    """
    since = now - timedelta(days=STATUS_DAYS)
    rows = await session.exec(
        select(FeedbackRequest, Contract)
        .join(Contract, col(Contract.id) == col(FeedbackRequest.contract_id))
        .where(
            col(FeedbackRequest.created_at) >= since,
            (col(FeedbackRequest.requester_id) == viewer)
            | (col(FeedbackRequest.requester_id).is_(None) & (col(Contract.leader_id) == viewer)),
        )
        .order_by(col(FeedbackRequest.created_at).desc(), col(FeedbackRequest.id))
    )
    batches: dict[str, list[tuple[FeedbackRequest, Contract]]] = {}
    for request, contract in rows.all():
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


# --- the cadence and reminders --------------------------------------------------------------


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


async def ask_on_cadence(
    *, services: Services, client: AsyncWebClient, force: bool = False
) -> Report:
    """Ask each active contract's reviewers once per feedback window, each in their own zone
    (`users.info`): on a working day from `CADENCE_HOUR`, the window read on their calendar.
    Someone Slack was never asked about waits for a later run (`force`: the default zone)."""
    now = services.clock.now()
    default = ZoneInfo(services.settings.default_timezone)
    async with services.sessions() as session:
        contracts = (
            await session.exec(
                select(Contract)
                .where(
                    Contract.status == ContractStatus.active,
                    col(Contract.feedback_cadence).is_not(None),
                )
                .order_by(col(Contract.id))
            )
        ).all()
        reviewers = await _reviewers_of(session, contracts)
    everyone = {r for people in reviewers.values() for r in people}
    await refresh_zones(sessions=services.sessions, client=client, user_ids=everyone, now=now)
    due: list[tuple[Contract, str, str, datetime]] = []
    async with services.sessions() as session:
        cached = await cached_zones(session=session, user_ids=everyone)
        for contract in contracts:
            windows: dict[str, tuple[str, datetime]] = {}
            for reviewer in reviewers.get(contract.id or 0, []):
                known = cached.get(reviewer)
                zone = (zone_of(known) or default) if known else (default if force else None)
                window = cadence_due(contract, now, zone, force=force) if zone else None
                if zone is None or window is None:
                    continue
                first = window_start(contract.feedback_cadence, now.astimezone(zone).date())
                since = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
                windows[reviewer] = (window, since)
            done = await _asked_already(session, contract, windows)
            due += [(contract, r, w, since) for r, (w, since) in windows.items() if r not in done]
    async with queue_of(services, client) as queue:
        for contract, reviewer, window, since in due:
            if services.stopping.is_set():
                return queue.report
            ask = CadenceAsk(
                contract_id=contract.id or 0,
                reviewer=reviewer,
                batch=f"cadence:{contract.id}:{window}",
                now=now,
                since=since,
            )
            key = DeliveryKey(CADENCE, contract.id or 0, reviewer, window)
            until = now + REQUEST_OPEN_FOR
            await queue.deliver(
                request_outgoing(services, key, RequestFor(cadence=ask), expires_at=until)
            )
    return queue.report


async def _reviewers_of(
    session: AsyncSession, contracts: Sequence[Contract]
) -> dict[int, list[str]]:
    """Each contract's reviewers, its leader left out, in the contract's order."""
    leaders = {c.id or 0: c.leader_id for c in contracts}
    rows = await session.exec(
        select(ContractPerson)
        .where(
            col(ContractPerson.contract_id).in_(list(leaders)),
            ContractPerson.role == Role.reviewer,
        )
        .order_by(col(ContractPerson.contract_id), col(ContractPerson.position))
    )
    found: dict[int, list[str]] = {}
    for person in rows.all():
        if person.user_id != leaders[person.contract_id]:
            found.setdefault(person.contract_id, []).append(person.user_id)
    return found


async def _asked_already(
    session: AsyncSession, contract: Contract, windows: dict[str, tuple[str, datetime]]
) -> set[str]:
    """The reviewers whose request for their window was sent, given up or cancelled."""
    if not windows:
        return set()
    rows = await session.exec(
        select(Delivery.recipient_id, Delivery.period_key).where(
            Delivery.kind == CADENCE,
            Delivery.contract_id == contract.id,
            col(Delivery.recipient_id).in_(list(windows)),
            col(Delivery.status).in_(
                [DeliveryStatus.sent, DeliveryStatus.undeliverable, DeliveryStatus.cancelled]
            ),
        )
    )
    return {user for user, period in rows.all() if windows[user][0] == period}


async def send_reminders(
    *, services: Services, client: AsyncWebClient, force: bool = False
) -> Report:
    """One reminder per open request, once it is due (`force`: every pending one); and each
    request DM a failure or a crash left unsent, again."""
    now = services.clock.now()
    async with services.sessions() as session:
        await session.exec(
            update(FeedbackRequest)
            .where(
                col(FeedbackRequest.status) == OPEN,
                col(FeedbackRequest.created_at) < now - REQUEST_OPEN_FOR,
            )
            .values(status=EXPIRED, closed_at=now)
        )
        await session.commit()
    horizon = now + REQUEST_OPEN_FOR if force else now
    due = await delivery.due_scheduled(sessions=services.sessions, kind=REMINDER, now=horizon)
    due += await delivery.due_scheduled(sessions=services.sessions, kind=REQUEST, now=now)
    async with queue_of(services, client) as queue:
        for row in due:
            if services.stopping.is_set():
                break
            claimed = await delivery.claim_due(
                sessions=services.sessions,
                delivery_id=row.id or 0,
                now=horizon if row.kind == REMINDER else now,
                owner=queue.owner,
            )
            if claimed is None:
                continue
            request_id = int(claimed.period_key.removeprefix("request-") or 0)
            key = DeliveryKey(
                claimed.kind, claimed.contract_id, claimed.recipient_id, claimed.period_key
            )
            reminder = claimed.kind == REMINDER
            outgoing = request_outgoing(services, key, RequestFor(request_id), reminder=reminder)
            await queue.send_claimed(outgoing, claimed)
    return queue.report


@job("feedback", every_seconds=600)
async def feedback_job(run: JobRun) -> str:
    """Release anonymous feedback that is due, ask reviewers on cadence, send reminders."""
    released = await release_all(services=run.services, client=run.client, force=run.force)
    asked = await ask_on_cadence(services=run.services, client=run.client, force=run.force)
    reminded = await send_reminders(services=run.services, client=run.client, force=run.force)
    return f"releases: {released}; requests: {asked}; reminders: {reminded}"


def hash_key(services: Services) -> bytes:
    return feedback_key(services.settings)
