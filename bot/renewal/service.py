"""The rules at a contract's end: who closes or renews it, the leader's reflection, the renewal
draft, and which contracts' periods have ended. No Slack here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.contracts.agreement import load_agreement
from bot.contracts.closing import close_contract
from bot.contracts.model import AgreementState
from bot.core.calendar import local_instant
from bot.core.permissions import Refusal, may_close, may_decide_end, may_edit, may_read
from bot.core.text import escape, truncate
from bot.people.service import zone_for
from bot.renewal.model import (
    DECIDE_WITHIN,
    REASON_MAX,
    REFLECTION_MAX,
    renewal_plan,
    renewed_text,
)
from storage.models import (
    Barrier,
    Contract,
    ContractStatus,
    DevelopmentActivity,
    Expectation,
    Milestone,
    Resource,
    Role,
    SuccessIndicator,
)
from storage.queries.closing import ended_active_contracts, renewal_of
from storage.queries.contracts import (
    ContractBundle,
    audit,
    contracts_for_user,
    load_bundle,
    lock_contract,
    replace_people,
)

NOT_OWNER = (
    "Only the contract's owner can close it with `/contract close`; its sponsor can close it "
    "at the end of its period."
)
NOT_DECIDER = "Only the contract's owner or sponsor can close or renew it."


def closed_text(c: Contract) -> str:
    """`“Title” was closed on 20 Dec 2027 by @sam`: what a second click or a late one hears."""
    when = f" on {c.closed_at.date():%-d %b %Y}" if c.closed_at else ""
    who = f" by <@{c.closed_by}>" if c.closed_by else ""
    return f"“{escape(c.title)}” was closed{when}{who}."


@dataclass(frozen=True, slots=True)
class Closed:
    bundle: ContractBundle
    already: bool  # closed before this request: nothing was written


@dataclass(frozen=True, slots=True)
class Renewed:
    old: ContractBundle
    draft: Contract
    already: bool  # renewed before this request: nothing was written


async def pending_renewal(*, session: AsyncSession, contract_id: int) -> Contract | None:
    """The renewal draft of an active contract that still waits (made, not yet agreed): its
    end-of-period decision is made while it exists; discarding it opens the decision again."""
    found = await renewal_of(session=session, contract_id=contract_id)
    return found if found is not None and found.status == ContractStatus.draft else None


async def closable(*, session: AsyncSession, viewer: str, leader: str | None) -> Contract | Refusal:
    """The contract `/contract close [@leader]` is about: the active contract the viewer owns
    (of `leader`, when named). The contract alone: the close modal opens after this, and
    loads the final figures into it."""
    owned = [
        c
        for c in await contracts_for_user(session=session, user_id=viewer)
        if c.status == ContractStatus.active and (leader is None or c.leader_id == leader)
    ]
    mine = [c for c in owned if c.owner_id == viewer]
    if not mine:
        if owned or leader is not None:
            return Refusal(NOT_OWNER)
        return Refusal("You own no active contract, so there is nothing for you to close.")
    if len(mine) > 1:
        names = ", ".join(f"<@{c.leader_id}>" for c in mine)
        return Refusal(
            f"You own several active contracts ({names}): name the leader, e.g. "
            "`/contract close @dana`."
        )
    return mine[0]


async def close_as(
    *,
    session: AsyncSession,
    contract_id: int,
    user: str,
    now: datetime,
    reason: str,
    owner_only: bool,
) -> Closed | Refusal:
    """Close the contract for `user`, if they may; a contract closed already comes back as
    it is (a double click writes once). The caller began the unit of work as writing."""
    row = await lock_contract(session=session, contract_id=contract_id)
    bundle = await load_bundle(session=session, contract_id=contract_id) if row else None
    allowed = may_close if owner_only else may_decide_end
    if bundle is None or not allowed(bundle, user):
        return Refusal(NOT_OWNER if owner_only else NOT_DECIDER)
    c = bundle.contract
    if c.status == ContractStatus.closed:
        return Closed(bundle, already=True)
    if c.status != ContractStatus.active:
        return Refusal(f"“{escape(c.title)}” is a draft, not an active contract.")
    if not owner_only:
        renewing = await pending_renewal(session=session, contract_id=contract_id)
        if renewing is not None:
            return Refusal(renewed_text(c, renewing))
    await close_contract(
        session, contract=c, by=user, now=now, reason=truncate(reason.strip(), REASON_MAX)
    )
    await session.commit()
    again = await load_bundle(session=session, contract_id=contract_id)
    return Closed(again or bundle, already=False)


async def record_reflection(
    *, session: AsyncSession, contract_id: int, user: str, text: str, now: datetime
) -> Contract | Refusal:
    """Keep the leader's closing reflection (a later one replaces it)."""
    row = await lock_contract(session=session, contract_id=contract_id)
    if row is None or row.leader_id != user:
        return Refusal("Only the contract's leader writes its closing reflection.")
    if row.status == ContractStatus.draft:
        return Refusal("A draft has no closing reflection.")
    row.closing_reflection = truncate(text.strip(), REFLECTION_MAX)
    row.updated_at = now
    session.add(row)
    audit(
        session,
        action="contract.reflection",
        contract_id=row.id,
        actor_id=user,
        detail={"summary": f"<@{user}> wrote the closing reflection."},
        at=now,
    )
    await session.commit()
    return row


async def renew(
    *, session: AsyncSession, contract_id: int, user: str, now: datetime
) -> Renewed | Refusal:
    """A new draft for the same leader carrying the contract over (`bot.renewal.model`), made
    to replace the contract when its leader, sponsor and owner agree to it: until then the old
    one stays active (its period over, so its loops are quiet) and its end-of-period decision
    is made. A second click, or the other decider's, finds the draft and writes nothing."""
    row = await lock_contract(session=session, contract_id=contract_id)
    bundle = await load_bundle(session=session, contract_id=contract_id) if row else None
    if bundle is None or not may_decide_end(bundle, user):
        return Refusal(NOT_DECIDER)
    c = bundle.contract
    existing = await renewal_of(session=session, contract_id=contract_id)
    if existing is not None:
        return Renewed(bundle, existing, already=True)
    if c.status != ContractStatus.active:
        return Refusal(closed_text(c) + " It can no longer be renewed.")
    taken = {x.title for x in await contracts_for_user(session=session, user_id=c.leader_id)}
    plan = renewal_plan(bundle, taken_titles=taken)
    draft = Contract(
        title=plan.title,
        leader_id=c.leader_id,
        sponsor_id=c.sponsor_id,
        owner_id=c.owner_id,
        status=ContractStatus.draft,
        mission=c.mission,
        period_start=plan.period_start,
        period_end=plan.period_end,
        checkin_weekday=c.checkin_weekday,
        checkin_time=c.checkin_time,
        checkin_timezone=c.checkin_timezone,
        reminder_hours=c.reminder_hours,
        feedback_cadence=c.feedback_cadence,
        anonymity_threshold=c.anonymity_threshold,
        digest_cadence=c.digest_cadence,
        digest_weekday=c.digest_weekday,
        digest_time=c.digest_time,
        reporting=c.reporting,
        report_cadence=c.report_cadence,
        report_channel=c.report_channel,
        recognition_channel=c.recognition_channel,
        created_by=user,
        created_at=now,
        updated_at=now,
        replaces_contract_id=contract_id,
        replaces_current=True,
    )
    session.add(draft)
    await session.flush()
    new_id = draft.id or 0
    for role in (
        Role.approver,
        Role.escalation,
        Role.reviewer,
        Role.report_reader,
        Role.peer,
        Role.direct_report,
        Role.stakeholder,
    ):
        await replace_people(
            session, contract_id=new_id, role=role, user_ids=bundle.people_with(role)
        )
    for model, items in (
        (Expectation, plan.expectations),
        (DevelopmentActivity, plan.activities),
        (SuccessIndicator, plan.indicators),
        (Milestone, plan.milestones),
        (Resource, plan.resources),
        (Barrier, plan.barriers),
    ):
        for values in items:
            session.add(model(contract_id=new_id, **values))
    audit(
        session,
        action="contract.drafted",
        contract_id=new_id,
        actor_id=user,
        detail={
            "summary": f"Drafted by <@{user}> as the renewal of “{c.title}” (contract "
            f"{contract_id}), its indicators' latest values the new baselines.",
            "renews": contract_id,
        },
        at=now,
    )
    audit(
        session,
        action="contract.renewed",
        contract_id=contract_id,
        actor_id=user,
        detail={
            "summary": f"Renewed by <@{user}> as the draft “{plan.title}” (contract {new_id}); "
            "it replaces this contract once its leader, sponsor and owner agree.",
            "draft": new_id,
        },
        at=now,
    )
    await session.commit()
    return Renewed(bundle, draft, already=False)


async def readable(*, session: AsyncSession, contract_id: int, user: str) -> ContractBundle | None:
    bundle = await load_bundle(session=session, contract_id=contract_id)
    return bundle if bundle is not None and may_read(bundle, user) else None


@dataclass(frozen=True, slots=True)
class Ended:
    """An active contract whose period is over in its zone, and since when."""

    contract: Contract
    zone: ZoneInfo
    ended_at: datetime  # midnight after its last day, in its zone

    @property
    def remind_at(self) -> datetime:
        return self.ended_at + REMIND_AFTER


REMIND_AFTER = DECIDE_WITHIN


async def ended_contracts(
    *, session: AsyncSession, now: datetime, default_zone: str
) -> list[Ended]:
    """The active contracts whose last day is over in their own zone."""
    ended = []
    for contract in await ended_active_contracts(session=session, before=now + timedelta(days=1)):
        zone = await zone_for(session=session, contract=contract, default=default_zone)
        at = local_instant(contract.period_end + timedelta(days=1), "00:00", zone)
        if now >= at:
            ended.append(Ended(contract, zone, at))
    return ended


@dataclass(frozen=True, slots=True)
class Standing:
    """Where the agreement of the viewer's drafts stands, and of each active contract's
    renewal that waits for agreement (keyed by the old contract's id)."""

    drafts: dict[int, AgreementState]
    renewals: dict[int, AgreementState]


async def agreement_standing(
    *, session: AsyncSession, bundles: list[ContractBundle], viewer: str
) -> Standing:
    """For App Home and the summary: the drafts `viewer` may edit (a party, or who drafted
    them), and the active contracts they read whose renewal awaits agreement."""
    drafts: dict[int, AgreementState] = {}
    renewals: dict[int, AgreementState] = {}
    for bundle in bundles:
        c = bundle.contract
        if c.status == ContractStatus.draft and may_edit(bundle, viewer):
            state = await load_agreement(session=session, contract_id=c.id or 0)
            if state is not None:
                drafts[c.id or 0] = state
        elif c.status == ContractStatus.active:
            draft = await pending_renewal(session=session, contract_id=c.id or 0)
            if draft is not None:
                state = await load_agreement(session=session, contract_id=draft.id or 0)
                if state is not None:
                    renewals[c.id or 0] = state
    return Standing(drafts, renewals)
