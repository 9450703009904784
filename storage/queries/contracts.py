"""Data access for contracts: keyword-only functions; the ones that write own their commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, delete, func, inspect, or_
from sqlalchemy.orm.util import identity_key
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import SessionFactory, read_only
from storage.models import (
    Agreement,
    AuditEvent,
    Barrier,
    CheckIn,
    Contract,
    ContractPerson,
    ContractStatus,
    Delivery,
    DevelopmentActivity,
    Evidence,
    Expectation,
    Feedback,
    Measurement,
    Milestone,
    Resource,
    Risk,
    Role,
    SuccessIndicator,
)
from storage.queries.measurements import Reach, first_reaching_ids, newest_ids
from storage.types import utcnow

RECENT_EVIDENCE = 5
# What a bundle loaded for a list (`recent=True`) keeps of each indicator's values: the
# latest and the one before, which its progress and last change are told from.
RECENT_VALUES = 2
# The active contracts a job that goes through a whole organisation holds at once.
ACTIVE_PAGE = 500


@dataclass
class ContractBundle:
    """A contract with everything it holds, loaded in one unit of work."""

    contract: Contract
    people: list[ContractPerson] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    activities: list[DevelopmentActivity] = field(default_factory=list)
    indicators: list[SuccessIndicator] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    barriers: list[Barrier] = field(default_factory=list)
    measurements: dict[int, list[Measurement]] = field(default_factory=dict)
    checkins: list[CheckIn] = field(default_factory=list)
    evidence_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    # When each item last got evidence, and the newest pieces (most recent first).
    evidence_latest: dict[tuple[str, str], datetime] = field(default_factory=dict)
    recent_evidence: list[Evidence] = field(default_factory=list)
    # (expectation key or "", polarity) -> entries the leader can read: named, or released.
    feedback_themes: dict[tuple[str, str], int] = field(default_factory=dict)
    # (expectation key or "", group, polarity) -> the same entries by rater group: a named
    # entry's relation, an anonymous one's group as released.
    feedback_groups: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # Every risk raised in its check-ins, oldest first (open and resolved).
    risks: list[Risk] = field(default_factory=list)
    # A bundle loaded for a list (`load_bundles(recent=True)`) holds the latest values of
    # each indicator only, instead of its check-ins the periods answered, and no
    # `recent_evidence`; one loaded for a summary (`add_summary_history` on top) holds as
    # well the few check-ins, values and pieces of evidence a summary shows. Whatever reads
    # the whole history (charts, a digest, a report) loads the whole bundle.
    recent: bool = False
    answered_keys: tuple[str, ...] = ()

    @property
    def answered_periods(self) -> tuple[str, ...]:
        """The periods with an answered check-in, in order (a period key sorts as its week)."""
        if self.recent:
            return self.answered_keys
        return tuple(sorted({k.period_key for k in self.checkins if k.status == "answered"}))

    def people_with(self, role: Role) -> list[str]:
        return [p.user_id for p in self.people if p.role == role]

    @property
    def approvers(self) -> list[str]:
        return self.people_with(Role.approver)

    @property
    def escalation(self) -> list[str]:
        return self.people_with(Role.escalation)

    @property
    def reviewers(self) -> list[str]:
        return self.people_with(Role.reviewer)

    @property
    def peers(self) -> list[str]:
        return self.people_with(Role.peer)

    @property
    def direct_reports(self) -> list[str]:
        return self.people_with(Role.direct_report)

    @property
    def stakeholders(self) -> list[str]:
        return self.people_with(Role.stakeholder)

    def roles_of(self, user_id: str) -> set[Role]:
        c = self.contract
        roles = {Role(p.role) for p in self.people if p.user_id == user_id}
        if c.leader_id == user_id:
            roles.add(Role.leader)
        if c.sponsor_id == user_id:
            roles.add(Role.sponsor)
        if c.owner_id == user_id:
            roles.add(Role.owner)
        return roles

    def indicator(self, key: str) -> SuccessIndicator | None:
        return next((i for i in self.indicators if i.key == key), None)

    def latest(self, indicator: SuccessIndicator) -> Measurement | None:
        series = self.measurements.get(indicator.id or 0, [])
        return series[-1] if series else None


async def load_bundle(*, session: AsyncSession, contract_id: int) -> ContractBundle | None:
    found = await load_bundles(session=session, contracts=[contract_id])
    return found[0] if found else None


async def load_governance(*, session: AsyncSession, contract_id: int) -> ContractBundle | None:
    """A contract with its people only: enough to check who may do what, in two statements."""
    contract = await session.get(Contract, contract_id)
    if contract is None:
        return None
    rows = await session.exec(
        select(ContractPerson)
        .where(ContractPerson.contract_id == contract_id)
        .order_by(col(ContractPerson.position), col(ContractPerson.id))
    )
    return ContractBundle(contract=contract, people=list(rows.all()))


def _already_loaded(session: AsyncSession, ids: Sequence[int]) -> dict[int, Contract]:
    """The contracts among `ids` this session holds already, loaded, not expired and not
    marked for deletion: the very objects a new select would return (it never overwrites
    what a session holds)."""
    held = session.sync_session.identity_map
    deleting = session.sync_session.deleted
    found: dict[int, Contract] = {}
    for cid in ids:
        contract = held.get(identity_key(Contract, cid))
        if (
            isinstance(contract, Contract)
            and not inspect(contract).expired_attributes
            and contract not in deleting
        ):
            found[cid] = contract
    return found


async def load_bundles(
    *, session: AsyncSession, contracts: Sequence[int | Contract], recent: bool = False
) -> list[ContractBundle]:
    """The bundles of many contracts, in the order given (unknown ids left out), in the same
    dozen statements whether there is one contract or hundreds, a week of history or years.

    `recent`: for a list of contracts, what it shows of each and no more, so that reading
    it does not grow with their history: each indicator's `RECENT_VALUES` latest values, of
    the check-ins only the periods answered, and of the evidence only its counts
    (`ContractBundle.recent`)."""
    given = [c for c in contracts if isinstance(c, Contract)]
    ids = list(dict.fromkeys(c if isinstance(c, int) else c.id or 0 for c in contracts))
    if not ids:
        return []
    known = {c.id or 0: c for c in given} | _already_loaded(session, ids)
    missing = [cid for cid in ids if cid not in known]
    if missing:
        fetched = await session.exec(select(Contract).where(col(Contract.id).in_(missing)))
        known.update((c.id or 0, c) for c in fetched.all())
    bundles = {
        cid: ContractBundle(contract=known[cid], recent=recent) for cid in ids if cid in known
    }
    ids = list(bundles)
    if not ids:
        return []

    async def children(model: Any, order: Any) -> dict[int, list[Any]]:
        rows = await session.exec(
            select(model)
            .where(col(model.contract_id).in_(ids))
            .order_by(model.contract_id, order, model.id)
        )
        found: dict[int, list[Any]] = {}
        for row in rows.all():
            found.setdefault(row.contract_id, []).append(row)
        return found

    for name, model, order in (
        ("people", ContractPerson, ContractPerson.position),
        ("expectations", Expectation, Expectation.position),
        ("activities", DevelopmentActivity, DevelopmentActivity.position),
        ("indicators", SuccessIndicator, SuccessIndicator.position),
        ("milestones", Milestone, Milestone.position),
        ("resources", Resource, Resource.position),
        ("barriers", Barrier, Barrier.position),
        ("checkins", CheckIn, CheckIn.period_key),
        ("risks", Risk, Risk.created_at),
    ):
        if name == "checkins" and recent:
            continue
        for cid, rows in (await children(model, order)).items():
            setattr(bundles[cid], name, rows)
    if recent:
        # A row a contract, its periods in one string (`2027-W03,2027-W04`: a period key
        # holds no comma), not a row a check-in.
        answered = await session.exec(
            select(CheckIn.contract_id, func.aggregate_strings(col(CheckIn.period_key), ","))
            .where(col(CheckIn.contract_id).in_(ids), CheckIn.status == "answered")
            .group_by(col(CheckIn.contract_id))
        )
        for cid, periods in answered.all():
            bundles[cid].answered_keys = tuple(sorted(set(periods.split(","))))
    owner = {i.id: cid for cid, b in bundles.items() for i in b.indicators if i.id is not None}
    if owner:
        of_these = col(SuccessIndicator.contract_id).in_(ids)
        query = select(Measurement).join(
            SuccessIndicator, col(SuccessIndicator.id) == col(Measurement.indicator_id)
        )
        if recent:
            query = query.where(col(Measurement.id).in_(newest_ids(of_these, keep=RECENT_VALUES)))
        else:
            query = query.where(of_these)
        measured = await session.exec(
            query.order_by(col(Measurement.measured_at), col(Measurement.id))
        )
        for m in measured.all():
            bundles[owner[m.indicator_id]].measurements.setdefault(m.indicator_id, []).append(m)
    evidence = await session.exec(
        select(  # type: ignore[call-overload]  # five columns: sqlmodel types up to four
            Evidence.contract_id,
            Evidence.item_type,
            Evidence.item_key,
            func.count(col(Evidence.id)),
            func.max(col(Evidence.created_at)),
        )
        .where(col(Evidence.contract_id).in_(ids))
        .group_by(col(Evidence.contract_id), col(Evidence.item_type), col(Evidence.item_key))
    )
    for cid, item_type, item_key, count, latest in evidence.all():
        bundles[cid].evidence_counts[(item_type, item_key)] = count
        bundles[cid].evidence_latest[(item_type, item_key)] = latest
    if not recent:  # the newest pieces are shown by a summary, not in a list
        await _add_newest_evidence(session, bundles)
    # Never an anonymous entry's own relation: only the group it was released in.
    group = case(
        (col(Feedback.anonymous).is_(True), col(Feedback.released_as)),
        else_=col(Feedback.relation),
    )
    # One statement for both counts (by theme, and by rater group).
    by_group = await session.exec(
        select(  # type: ignore[call-overload]  # five columns: typed overloads stop at four
            Feedback.contract_id,
            Feedback.expectation_key,
            group,
            Feedback.polarity,
            func.count(col(Feedback.id)),
        )
        .where(
            col(Feedback.contract_id).in_(ids),
            or_(col(Feedback.anonymous).is_(False), col(Feedback.released_at).is_not(None)),
        )
        .group_by(
            col(Feedback.contract_id), col(Feedback.expectation_key), group, col(Feedback.polarity)
        )
    )
    for cid, expectation_key, shown_as, polarity, count in by_group.all():
        bundle = bundles[cid]
        theme = (expectation_key or "", polarity)
        bundle.feedback_themes[theme] = bundle.feedback_themes.get(theme, 0) + count
        slot = (expectation_key or "", shown_as or "stakeholder", polarity)
        bundle.feedback_groups[slot] = bundle.feedback_groups.get(slot, 0) + count
    return list(bundles.values())


async def _add_newest_evidence(session: AsyncSession, bundles: dict[int, ContractBundle]) -> None:
    """Each contract's `RECENT_EVIDENCE` newest pieces of evidence, newest first."""
    rank = (
        func.row_number()
        .over(
            partition_by=col(Evidence.contract_id),
            order_by=(col(Evidence.created_at).desc(), col(Evidence.id).desc()),
        )
        .label("rank")
    )
    of_these = col(Evidence.contract_id).in_(list(bundles))
    ranked = select(Evidence.id, rank).where(of_these).subquery()
    pieces = await session.exec(
        select(Evidence)
        .join(ranked, ranked.c.id == col(Evidence.id))
        .where(ranked.c.rank <= RECENT_EVIDENCE)
        .order_by(col(Evidence.created_at).desc(), col(Evidence.id).desc())
    )
    for piece in pieces.all():
        bundles[piece.contract_id].recent_evidence.append(piece)


def _newest_answered(ids: Sequence[int], *where: Any, keep: int) -> Select[Any]:
    """The ids of each contract's `keep` newest answered check-ins (by week) among `where`."""
    rank = func.row_number().over(
        partition_by=col(CheckIn.contract_id),
        order_by=(col(CheckIn.period_key).desc(), col(CheckIn.id).desc()),
    )
    ranked = (
        select(col(CheckIn.id).label("id"), rank.label("rank"))
        .where(col(CheckIn.contract_id).in_(ids), CheckIn.status == "answered", *where)
        .subquery()
    )
    return select(ranked.c.id).where(ranked.c.rank <= keep)


async def add_summary_history(
    *,
    session: AsyncSession,
    bundles: Sequence[ContractBundle],
    rated: int,
    reaches: Sequence[Reach],
) -> None:
    """What a summary shows of the history, on bundles loaded for a list (`recent=True`), in
    three statements however long the history: the newest pieces of evidence; of the
    check-ins the `rated` newest answered weeks with a confidence (its trend) and the newest
    answered one with words (wins or a reflection; the forms store them stripped, so one
    left blank is ''); and among the values the first to reach each of `reaches` (a missed
    milestone's recovery), merged into each indicator's series in time order."""
    by_id = {b.contract.id or 0: b for b in bundles}
    if not by_id:
        return
    ids = list(by_id)
    await _add_newest_evidence(session, by_id)
    worded = or_(col(CheckIn.wins) != "", col(CheckIn.reflection) != "")
    shown = await session.exec(
        select(CheckIn)
        .where(
            or_(
                col(CheckIn.id).in_(
                    _newest_answered(ids, col(CheckIn.confidence).is_not(None), keep=rated)
                ),
                col(CheckIn.id).in_(_newest_answered(ids, worded, keep=1)),
            )
        )
        .order_by(col(CheckIn.contract_id), col(CheckIn.period_key), col(CheckIn.id))
    )
    for checkin in shown.all():
        by_id[checkin.contract_id].checkins.append(checkin)
    firsts = first_reaching_ids(reaches)
    if firsts is None:
        return
    owner = {i.id: b for b in by_id.values() for i in b.indicators if i.id is not None}
    reached = await session.exec(select(Measurement).where(col(Measurement.id).in_(firsts)))
    for value in reached.all():
        series = owner[value.indicator_id].measurements.setdefault(value.indicator_id, [])
        if all(m.id != value.id for m in series):
            series.append(value)
            series.sort(key=lambda m: (m.measured_at, m.id or 0))


async def find_contract_for_leader(*, session: AsyncSession, leader_id: str) -> Contract | None:
    """The leader's one active contract, else the one they were given last.

    A leader has at most one active contract (`uq_contract_one_active`), so every lookup finds
    the same one; with none active, the newest by creation, never by the last edit, so
    working on an older draft does not switch which contract the leader's name finds.
    """
    active = await active_contract_for_leader(session=session, leader_id=leader_id)
    if active is not None:
        return active
    rows = await session.exec(
        select(Contract).where(Contract.leader_id == leader_id).order_by(col(Contract.id).desc())
    )
    return rows.first()


async def active_contract_for_leader(*, session: AsyncSession, leader_id: str) -> Contract | None:
    """The leader's active contract: there is at most one."""
    rows = await session.exec(
        select(Contract)
        .where(Contract.leader_id == leader_id, Contract.status == ContractStatus.active)
        .order_by(col(Contract.id))
    )
    return rows.first()


async def drafts_of_leader(*, session: AsyncSession, leader_id: str) -> list[Contract]:
    """The leader's draft contracts, oldest first."""
    rows = await session.exec(
        select(Contract)
        .where(Contract.leader_id == leader_id, Contract.status == ContractStatus.draft)
        .order_by(col(Contract.id))
    )
    return list(rows.all())


async def find_contract(*, session: AsyncSession, leader_id: str, title: str) -> Contract | None:
    rows = await session.exec(
        select(Contract).where(Contract.leader_id == leader_id, Contract.title == title)
    )
    return rows.first()


async def contracts_for_user(*, session: AsyncSession, user_id: str) -> list[Contract]:
    """Every contract the user leads, sponsors, owns, approves or is an escalation for."""
    governed = select(ContractPerson.contract_id).where(
        ContractPerson.user_id == user_id,
        col(ContractPerson.role).in_([Role.approver, Role.escalation]),
    )
    rows = await session.exec(
        select(Contract)
        .where(
            or_(
                col(Contract.leader_id) == user_id,
                col(Contract.sponsor_id) == user_id,
                col(Contract.owner_id) == user_id,
                col(Contract.id).in_(governed),
            )
        )
        .order_by(col(Contract.status), col(Contract.title))
    )
    return list(rows.all())


async def list_contracts(
    *, session: AsyncSession, contract_ids: Sequence[int] | None = None
) -> list[Contract]:
    query = select(Contract).order_by(col(Contract.id))
    if contract_ids is not None:
        query = query.where(col(Contract.id).in_(contract_ids))
    return list((await session.exec(query)).all())


async def measurements_of(*, session: AsyncSession, contract_id: int) -> list[Measurement]:
    rows = await session.exec(
        select(Measurement)
        .join(SuccessIndicator, col(SuccessIndicator.id) == col(Measurement.indicator_id))
        .where(SuccessIndicator.contract_id == contract_id)
        .order_by(col(SuccessIndicator.position), col(Measurement.measured_at))
    )
    return list(rows.all())


def audit(
    session: AsyncSession,
    *,
    action: str,
    contract_id: int | None,
    actor_id: str | None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Add an audit event to the session's unit of work (the caller commits)."""
    event = AuditEvent(
        contract_id=contract_id,
        actor_id=actor_id,
        action=action,
        detail=detail or {},
        created_at=at or utcnow(),
    )
    session.add(event)
    return event


async def replace_people(
    session: AsyncSession, *, contract_id: int, role: Role, user_ids: Iterable[str]
) -> None:
    """Set the holders of a many-valued role (the caller commits)."""
    await session.exec(
        delete(ContractPerson).where(
            col(ContractPerson.contract_id) == contract_id, col(ContractPerson.role) == role
        )
    )
    for position, user_id in enumerate(dict.fromkeys(user_ids)):
        session.add(
            ContractPerson(contract_id=contract_id, role=role, user_id=user_id, position=position)
        )


async def delete_row(session: AsyncSession, row: Any) -> bool:
    """Delete one row by its id (the caller commits); False if it was gone already, deleted
    by another transaction since it was read (on PostgreSQL the delete waits for that one to
    commit, then finds nothing)."""
    result = await session.exec(delete(type(row)).where(col(type(row).id) == row.id))
    return bool(result.rowcount)


async def delete_contract(session: AsyncSession, *, contract_id: int) -> None:
    """Delete a contract and, by the foreign keys' cascade, all it holds (the caller commits)."""
    await session.exec(delete(Contract).where(col(Contract.id) == contract_id))


async def audit_events(*, session: AsyncSession, contract_id: int) -> list[AuditEvent]:
    rows = await session.exec(
        select(AuditEvent)
        .where(AuditEvent.contract_id == contract_id)
        .order_by(col(AuditEvent.created_at), col(AuditEvent.id))
    )
    return list(rows.all())


async def active_contracts(
    *, session: AsyncSession, contract_ids: Sequence[int] | None = None
) -> list[Contract]:
    """The active contracts (of `contract_ids`, when given), by id."""
    query = select(Contract).where(Contract.status == ContractStatus.active)
    if contract_ids is not None:
        query = query.where(col(Contract.id).in_(list(contract_ids)))
    return list((await session.exec(query.order_by(col(Contract.id)))).all())


async def active_contract_pages(
    *, sessions: SessionFactory, size: int | None = None
) -> AsyncIterator[list[Contract]]:
    """The active contracts by id, `size` (`ACTIVE_PAGE`) at a time, each page read in a
    read-only transaction of its own (after the last id of the page before), so that a job
    going through 10,000 contracts holds 500 of them, not all."""
    size = size or ACTIVE_PAGE
    after = 0
    while True:
        async with sessions() as session:
            await read_only(session)
            rows = await session.exec(
                select(Contract)
                .where(Contract.status == ContractStatus.active, col(Contract.id) > after)
                .order_by(col(Contract.id))
                .limit(size)
            )
            page = list(rows.all())
        if page:
            yield page
        if len(page) < size:
            return
        after = page[-1].id or 0


async def active_leader_zones(*, session: AsyncSession) -> list[tuple[str, str | None]]:
    """(leader, check-in time zone as written) of each active contract, by contract id: two
    columns, not 10,000 contracts."""
    rows = await session.exec(
        select(Contract.leader_id, Contract.checkin_timezone)
        .where(Contract.status == ContractStatus.active)
        .order_by(col(Contract.id))
    )
    return list(rows.all())


async def active_contract_people(*, session: AsyncSession) -> list[tuple[str, str, str | None]]:
    """(leader, sponsor, owner) of each active contract, by contract id."""
    rows = await session.exec(
        select(Contract.leader_id, Contract.sponsor_id, Contract.owner_id)
        .where(Contract.status == ContractStatus.active)
        .order_by(col(Contract.id))
    )
    return list(rows.all())


async def active_contract_ids(*, session: AsyncSession) -> list[int]:
    """The ids of the active contracts, in order."""
    query = select(Contract.id).where(Contract.status == ContractStatus.active)
    return [cid for cid in (await session.exec(query.order_by(col(Contract.id)))).all() if cid]


async def lock_contract(*, session: AsyncSession, contract_id: int) -> Contract | None:
    """The contract's row, locked until the transaction ends (SELECT ... FOR UPDATE on
    PostgreSQL; SQLite's write transactions are serial already), read afresh."""
    rows = await session.exec(
        select(Contract)
        .where(col(Contract.id) == contract_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return rows.first()


async def feedback_per_expectation(
    *, session: AsyncSession, contract_id: int | None, keys: Sequence[str]
) -> dict[str, int]:
    """How many feedback entries each of the contract's expectations `keys` has."""
    counted = await session.exec(
        select(Feedback.expectation_key, func.count())
        .where(Feedback.contract_id == contract_id, col(Feedback.expectation_key).in_(keys))
        .group_by(col(Feedback.expectation_key))
    )
    return {key: count for key, count in counted.all() if key is not None}


async def agreements_of(
    *, session: AsyncSession, contract_id: int, terms_version: int | None = None
) -> list[Agreement]:
    """The agreements given to a draft's terms (to one version of them, when named), in order."""
    query = select(Agreement).where(Agreement.contract_id == contract_id)
    if terms_version is not None:
        query = query.where(Agreement.terms_version == terms_version)
    rows = await session.exec(query.order_by(col(Agreement.agreed_at), col(Agreement.id)))
    return list(rows.all())


async def drafts_out_for_agreement(*, session: AsyncSession) -> list[Contract]:
    """Drafts sent for agreement and not yet active, oldest first."""
    rows = await session.exec(
        select(Contract)
        .where(
            Contract.status == ContractStatus.draft,
            col(Contract.agreement_sent_at).is_not(None),
        )
        .order_by(col(Contract.id))
    )
    return list(rows.all())


async def contract_messages(
    *, session: AsyncSession, kind: str, contract_id: int
) -> list[Delivery]:
    """The deliveries of one kind about one contract (its agreement DMs, say)."""
    rows = await session.exec(
        select(Delivery)
        .where(Delivery.kind == kind, Delivery.contract_id == contract_id)
        .order_by(col(Delivery.id))
    )
    return list(rows.all())
