"""Data access for feedback: entries, anonymous ones held and released, requests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    Amendment,
    Contract,
    ContractPerson,
    ContractStatus,
    Delivery,
    Expectation,
    Feedback,
    FeedbackAck,
    FeedbackActivity,
    FeedbackRequest,
    Role,
)


async def expectations_of(*, session: AsyncSession, contract_id: int | None) -> list[Expectation]:
    rows = await session.exec(
        select(Expectation)
        .where(Expectation.contract_id == contract_id)
        .order_by(col(Expectation.position), col(Expectation.id))
    )
    return list(rows.all())


async def find_expectation(
    *, session: AsyncSession, contract_id: int | None, key: str
) -> Expectation | None:
    rows = await session.exec(
        select(Expectation).where(Expectation.contract_id == contract_id, Expectation.key == key)
    )
    return rows.first()


async def anonymous_given_since(
    *, session: AsyncSession, contract_id: int | None, author_hash: str, since: datetime
) -> int:
    """How many entries one (hashed) author gave the contract since `since`."""
    given = await session.exec(
        select(func.count(col(Feedback.id))).where(
            Feedback.contract_id == contract_id,
            Feedback.author_hash == author_hash,
            col(Feedback.created_at) >= since,
        )
    )
    return given.one()


async def contract_leaders(*, session: AsyncSession) -> dict[int, str]:
    """Every contract's leader, by contract id."""
    rows = await session.exec(select(Contract.id, Contract.leader_id))
    return {cid: leader for cid, leader in rows.all() if cid is not None}


async def entries_about(*, session: AsyncSession, contract_id: int | None) -> list[Feedback]:
    """Every entry given on the contract, newest first."""
    rows = await session.exec(
        select(Feedback)
        .where(Feedback.contract_id == contract_id)
        .order_by(col(Feedback.created_at).desc(), col(Feedback.id).desc())
    )
    return list(rows.all())


async def held_entries(*, session: AsyncSession, contract_id: int | None) -> list[Feedback]:
    """The contract's anonymous entries not released yet."""
    rows = await session.exec(
        select(Feedback).where(
            Feedback.contract_id == contract_id,
            col(Feedback.anonymous).is_(True),
            col(Feedback.released_at).is_(None),
        )
    )
    return list(rows.all())


async def release_entries(
    *, session: AsyncSession, ids: Sequence[int | None], now: datetime, group: str
) -> int:
    """Release the held entries `ids` at `now` as `group`; how many this call released (another
    replica may have released some meanwhile). The caller commits."""
    result = await session.exec(
        update(Feedback)
        .where(col(Feedback.id).in_(ids), col(Feedback.released_at).is_(None))
        .values(released_at=now, released_as=group)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


async def released_together(
    *, session: AsyncSession, contract_id: int | None, released_at: datetime
) -> list[Feedback]:
    """The anonymous entries of one release that are still kept."""
    rows = await session.exec(
        select(Feedback).where(
            Feedback.contract_id == contract_id,
            col(Feedback.anonymous).is_(True),
            Feedback.released_at == released_at,
        )
    )
    return list(rows.all())


async def contracts_to_release(*, session: AsyncSession, since: datetime) -> list[int]:
    """The contracts with anonymous entries still held or released since `since`: the only
    ones a release run has anything to do for (only a release sets `released_at`)."""
    rows = await session.exec(
        select(Feedback.contract_id)
        .where(
            col(Feedback.anonymous).is_(True),
            or_(col(Feedback.released_at).is_(None), col(Feedback.released_at) >= since),
        )
        .distinct()
    )
    return sorted(contract_id for contract_id in rows.all() if contract_id is not None)


async def releases_since(
    *, session: AsyncSession, contract_id: int | None, since: datetime
) -> list[datetime]:
    """When the contract's entries released since `since` were released, once each."""
    rows = await session.exec(
        select(Feedback.released_at)
        .where(Feedback.contract_id == contract_id, col(Feedback.released_at) >= since)
        .distinct()
    )
    return [stamp for stamp in rows.all() if stamp is not None]


async def sponsored_active(*, session: AsyncSession, sponsor_id: str) -> list[Contract]:
    rows = await session.exec(
        select(Contract).where(
            Contract.sponsor_id == sponsor_id, Contract.status == ContractStatus.active
        )
    )
    return list(rows.all())


async def cadence_contracts(*, session: AsyncSession) -> list[Contract]:
    """Active contracts that ask their reviewers for feedback on a cadence, by id."""
    rows = await session.exec(
        select(Contract)
        .where(
            Contract.status == ContractStatus.active, col(Contract.feedback_cadence).is_not(None)
        )
        .order_by(col(Contract.id))
    )
    return list(rows.all())


async def feedback_requests_since(
    *, session: AsyncSession, requester_id: str, since: datetime
) -> int:
    """How many people `requester_id` asked for feedback since `since` (the daily bound)."""
    rows = await session.exec(
        select(func.count(col(FeedbackRequest.id))).where(
            FeedbackRequest.requester_id == requester_id,
            col(FeedbackRequest.created_at) >= since,
        )
    )
    return rows.one()


async def lock_requester(session: AsyncSession, requester_id: str) -> None:
    """Serialise the requests of one person until the transaction ends, so a bound counted
    in it holds under concurrent commands (SQLite's write transactions are serial already)."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        await session.exec(
            select(func.pg_advisory_xact_lock(func.hashtext("feedback_request:" + requester_id)))
        )


async def find_batch_request(
    *, session: AsyncSession, batch: str, reviewer_id: str
) -> FeedbackRequest | None:
    rows = await session.exec(
        select(FeedbackRequest).where(
            FeedbackRequest.batch == batch, FeedbackRequest.reviewer_id == reviewer_id
        )
    )
    return rows.first()


async def requests_seen_by(
    *, session: AsyncSession, viewer: str, since: datetime
) -> list[tuple[FeedbackRequest, Contract]]:
    """Requests since `since` that `viewer` made, or (for a leader) the cadence made for
    them, with their contracts, newest first."""
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
    return list(rows.all())


async def expire_requests(
    *, session: AsyncSession, status: str, expired: str, before: datetime, now: datetime
) -> None:
    """Close the requests still `status` that were made before `before` (caller commits)."""
    await session.exec(
        update(FeedbackRequest)
        .where(col(FeedbackRequest.status) == status, col(FeedbackRequest.created_at) < before)
        .values(status=expired, closed_at=now)
    )


async def deliveries_of(
    *,
    session: AsyncSession,
    kind: str,
    periods: Sequence[str],
    contract_id: int | None = None,
) -> list[Delivery]:
    """The deliveries of `kind` (to the contract, when given) for any of `periods`."""
    query = select(Delivery).where(Delivery.kind == kind, col(Delivery.period_key).in_(periods))
    if contract_id is not None:
        query = query.where(Delivery.contract_id == contract_id)
    return list((await session.exec(query)).all())


async def periods_told(
    *, session: AsyncSession, kind: str, contract_id: int | None, statuses: Sequence[str]
) -> set[str]:
    """The periods of the contract's deliveries of `kind` that are `statuses`."""
    rows = await session.exec(
        select(Delivery.period_key).where(
            Delivery.kind == kind,
            Delivery.contract_id == contract_id,
            col(Delivery.status).in_(statuses),
        )
    )
    return set(rows.all())


async def recipients_told(
    *,
    session: AsyncSession,
    kind: str,
    contract_id: int | None,
    recipients: Sequence[str],
    statuses: Sequence[str],
) -> set[tuple[str, str]]:
    """(recipient, period) of the contract's deliveries of `kind` to any of `recipients`
    that are `statuses`: who got (or will never get) which period's."""
    rows = await session.exec(
        select(Delivery.recipient_id, Delivery.period_key).where(
            Delivery.kind == kind,
            Delivery.contract_id == contract_id,
            col(Delivery.recipient_id).in_(recipients),
            col(Delivery.status).in_(statuses),
        )
    )
    return set(rows.all())


async def reviewers_of(
    *, session: AsyncSession, contract_ids: Sequence[int]
) -> dict[int, list[str]]:
    """Each contract's reviewers (those its rater groups name too), in the contract's order."""
    rows = await session.exec(
        select(ContractPerson)
        .where(
            col(ContractPerson.contract_id).in_(contract_ids),
            col(ContractPerson.role).in_(
                [Role.reviewer, Role.peer, Role.direct_report, Role.stakeholder]
            ),
        )
        .order_by(col(ContractPerson.contract_id), col(ContractPerson.position))
    )
    found: dict[int, list[str]] = {}
    for person in rows.all():
        people = found.setdefault(person.contract_id, [])
        if person.user_id not in people:
            people.append(person.user_id)
    return found


async def open_requests_of(
    *,
    session: AsyncSession,
    contract_id: int | None,
    reviewer_id: str,
    status: str,
    since: datetime,
    until: datetime,
) -> list[FeedbackRequest]:
    """The reviewer's requests on the contract still `status`, made from `since` to `until`."""
    rows = await session.exec(
        select(FeedbackRequest).where(
            FeedbackRequest.contract_id == contract_id,
            FeedbackRequest.reviewer_id == reviewer_id,
            FeedbackRequest.status == status,
            col(FeedbackRequest.created_at) <= until,
            col(FeedbackRequest.created_at) >= since,
        )
    )
    return list(rows.all())


async def named_given_since(
    *, session: AsyncSession, contract_id: int | None, author_id: str, since: datetime
) -> bool:
    """Whether `author_id` gave the contract feedback by name since `since`."""
    found = await session.exec(
        select(Feedback.id)
        .where(
            Feedback.contract_id == contract_id,
            Feedback.author_id == author_id,
            col(Feedback.anonymous).is_(False),
            col(Feedback.created_at) >= since,
        )
        .limit(1)
    )
    return found.first() is not None


async def acks_of(*, session: AsyncSession, ids: Sequence[int]) -> dict[int, FeedbackAck]:
    """The acknowledgements of the entries `ids`, by entry."""
    if not ids:
        return {}
    rows = await session.exec(select(FeedbackAck).where(col(FeedbackAck.feedback_id).in_(ids)))
    return {row.feedback_id: row for row in rows.all()}


async def activities_of(
    *, session: AsyncSession, ids: Sequence[int]
) -> dict[int, tuple[FeedbackActivity, Amendment]]:
    """The amendment proposed from each of the entries `ids` that has one, by entry."""
    if not ids:
        return {}
    rows = await session.exec(
        select(FeedbackActivity, Amendment)
        .join(Amendment, col(Amendment.id) == col(FeedbackActivity.amendment_id))
        .where(col(FeedbackActivity.feedback_id).in_(ids))
    )
    return {link.feedback_id: (link, amendment) for link, amendment in rows.all()}


async def entries_of_amendment(*, session: AsyncSession, amendment_id: int) -> list[Feedback]:
    """The entries an amendment was proposed from (one, as the form makes them)."""
    rows = await session.exec(
        select(Feedback)
        .join(FeedbackActivity, col(FeedbackActivity.feedback_id) == col(Feedback.id))
        .where(FeedbackActivity.amendment_id == amendment_id)
    )
    return list(rows.all())


async def stated_relation(
    *, session: AsyncSession, contract_id: int | None, author_id: str, author_hash: str
) -> str | None:
    """The relationship to the leader a person stated with an earlier entry on the contract
    (found by their id or, for anonymous ones, their keyed hash), if any."""
    found = await session.exec(
        select(Feedback.relation)
        .where(
            Feedback.contract_id == contract_id,
            (col(Feedback.author_id) == author_id) | (col(Feedback.author_hash) == author_hash),
            col(Feedback.relation).is_not(None),
        )
        .limit(1)
    )
    return found.first()
