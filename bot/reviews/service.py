"""The alignment review's rules: when it is due and to whom, who may submit it, and what a
submission records (a review row; a removal amendment for each retired item).

A review is due once per review period of the contract's `review_cadence` (quarterly unless
changed by a governance amendment), `OPEN_DAYS` before the period ends, at `REVIEW_TIME` in
each reviewer's own zone, to the leader and the sponsor of an active contract. The delivery
key (contract, recipient, period) makes it go once, whatever restarts and replicas.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.amendments.model import KINDS, Problem, refusal_to_amend
from bot.amendments.service import check_proposal, propose
from bot.core.calendar import local_instant, zone_of
from bot.core.permissions import Refusal
from bot.core.text import escape, truncate
from bot.people.service import cached_zones, refresh_zones
from bot.reviews.model import (
    CHOICES,
    KEEP,
    LEADER,
    RETIRE,
    REVIEW,
    REVIEW_TIME,
    SPONSOR,
    DueReview,
    ReviewForm,
    ReviewItem,
    ReviewPeriod,
    opens_on,
    period_named,
    review_items,
    review_period,
    reviewable,
    role_of,
)
from bot.services import Services
from storage.db import read_only
from storage.models import AlignmentReview, Contract
from storage.queries.contracts import (
    active_contract_pages,
    active_contract_people,
    load_bundle,
)
from storage.queries.delivery import settled_for
from storage.queries.reviews import reviews_of_period


async def _zones(services: Services, users: Sequence[str]) -> dict[str, ZoneInfo]:
    """Each person's own zone as Slack gave it, else the default."""
    async with services.sessions() as session:
        await read_only(session)
        cached = await cached_zones(session=session, user_ids=users)
    default = ZoneInfo(services.settings.default_timezone)
    return {u: zone_of(cached.get(u)) or default for u in users}


async def due_reviews(
    *, services: Services, client: AsyncWebClient | None, now: datetime, force: bool = False
) -> list[DueReview]:
    """The review DMs due now and not yet delivered: one per reviewer and period of each
    active contract. `force`: due regardless of the time (still once per period). Slack is
    asked about a few people's zones first; the contracts are then read a page at a time."""
    if client is not None:
        async with services.sessions() as session:
            await read_only(session)
            found = await active_contract_people(session=session)
        people = list(dict.fromkeys(u for leader, sponsor, _ in found for u in (leader, sponsor)))
        if people:
            await refresh_zones(sessions=services.sessions, client=client, user_ids=people, now=now)
    due: list[DueReview] = []
    async for contracts in active_contract_pages(sessions=services.sessions):
        reviewed = [c for c in contracts if reviewable(c)]
        due += await _due_among(services, reviewed, now=now, force=force)
    return due


async def _due_among(
    services: Services, contracts: Sequence[Contract], *, now: datetime, force: bool
) -> list[DueReview]:
    """`due_reviews` of one page of active contracts, with the zones known by now."""
    people = list(dict.fromkeys(u for c in contracts for u in (c.leader_id, c.sponsor_id)))
    if not people:
        return []
    zones = await _zones(services, people)
    found: list[DueReview] = []
    for contract in contracts:
        for role, user in ((LEADER, contract.leader_id), (SPONSOR, contract.sponsor_id)):
            zone = zones[user]
            period = review_period(contract.review_cadence, now.astimezone(zone).date())
            day = opens_on(contract.review_cadence, period)
            if not (contract.period_start <= day <= contract.period_end):
                continue
            due_at = local_instant(day, REVIEW_TIME, zone)
            ends = local_instant(period.end, "23:59", zone)
            if (force or now >= due_at) and now <= ends:
                found.append(DueReview(contract, user, role, period, zone, due_at))
    if not found:
        return []
    async with services.sessions() as session:
        await read_only(session)
        sent = await settled_for(  # sent, undeliverable, cancelled or expired
            session=session,
            kind=REVIEW,
            periods=sorted({d.period.key for d in found}),
            contract_ids=sorted({d.contract.id or 0 for d in found}),
        )
    return [d for d in found if (d.contract.id, d.recipient, d.period.key) not in sent]


GONE = "This contract no longer exists."


def _review_of(
    contract: Contract, period_key: str, user: str
) -> tuple[str, ReviewPeriod] | Refusal:
    """The role `user` reviews the contract's period in, and the period; or why not."""
    role = role_of(contract, user)
    if role is None:
        return Refusal("Only the leader and the sponsor of a contract review its alignment.")
    if not reviewable(contract):
        return Refusal(f"“{escape(contract.title)}” is closed: there is nothing to review.")
    period = period_named(contract.review_cadence, period_key)
    if period is None:
        return Refusal("This review is out of date: its period is not one of this contract's.")
    return role, period


async def may_review(
    *, session: AsyncSession, contract_id: int, period_key: str, user: str
) -> Refusal | None:
    """`review_form`'s checks on the contract alone (one statement, whatever its history):
    the review modal opens after these, and loads the rest into it."""
    contract = await session.get(Contract, contract_id)
    if contract is None:
        return Refusal(GONE)
    found = _review_of(contract, period_key, user)
    return found if isinstance(found, Refusal) else None


async def review_form(
    *, session: AsyncSession, contract_id: int, period_key: str, user: str
) -> ReviewForm | Refusal:
    """What `user` reviews for the period, or why they may not."""
    bundle = await load_bundle(session=session, contract_id=contract_id)
    if bundle is None:
        return Refusal(GONE)
    found = _review_of(bundle.contract, period_key, user)
    if isinstance(found, Refusal):
        return found
    role, period = found
    reviews = await reviews_of_period(
        session=session, contract_id=contract_id, period_key=period.key
    )
    return ReviewForm(
        bundle=bundle,
        period=period,
        reviewer=user,
        role=role,
        items=review_items(bundle),
        others=[r for r in reviews if r.reviewer_id != user],
        mine=next((r for r in reviews if r.reviewer_id == user), None),
    )


def _rationale(form: ReviewForm, note: str) -> str:
    said = f": {note}" if note else "."
    return truncate(
        f"Retired in the alignment review of {form.period.label} by the {form.role}{said}", 1000
    )


async def record_review(
    *,
    session: AsyncSession,
    form: ReviewForm,
    choices: dict[str, tuple[str, str]],
    now: datetime,
) -> tuple[AlignmentReview | None, dict[str, str]]:
    """Store the review and a removal amendment for each retired item, in one transaction.

    `choices`: block id -> (choice, note). Returns the review, or None with field errors
    (block id -> message) when a retirement cannot be proposed; (None, {}) when this person
    reviewed the period already (a double submit).
    """
    bundle = form.bundle
    refusal = refusal_to_amend(bundle, proposer=form.reviewer)
    errors: dict[str, str] = {}
    retired: list[ReviewItem] = []
    for item in form.items:
        choice, _ = choices.get(item.block_id, (KEEP, ""))
        if choice not in CHOICES:
            errors[item.block_id] = "Choose keep, amend or retire."
        elif choice == RETIRE:
            if refusal is not None:
                errors[item.block_id] = refusal.text
                continue
            problems: list[Problem] = await check_proposal(
                session, bundle, KINDS[item.kind], item.key, None
            )
            if problems:
                errors[item.block_id] = " ".join(p.text for p in problems)[:1900]
            retired.append(item)
    if errors:
        return None, errors
    review = AlignmentReview(
        contract_id=bundle.contract.id or 0,
        period_key=form.period.key,
        reviewer_id=form.reviewer,
        role=form.role,
        choices=[],
        submitted_at=now,
    )
    session.add(review)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        return None, {}
    recorded: list[dict[str, Any]] = []
    for item in form.items:
        choice, note = choices.get(item.block_id, (KEEP, ""))
        entry: dict[str, Any] = {
            "kind": item.kind,
            "key": item.key,
            "title": truncate(item.title, 200),
            "choice": choice,
            "note": note,
        }
        if item in retired:
            amendment = await propose(
                session=session,
                bundle=bundle,
                proposer=form.reviewer,
                kind=KINDS[item.kind],
                handle=item.key,
                after=None,
                rationale=_rationale(form, note),
                now=now,
                commit=False,
            )
            entry["amendment"] = amendment.id
        recorded.append(entry)
    review.choices = recorded
    session.add(review)
    await session.commit()
    return review, {}
