"""Contract services: which contract a person may see or edit, drafts built in Slack.

A draft becomes active through agreement (`bot.contracts.agreement`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.contracts.agreement import refresh_terms
from bot.contracts.io import recorded_data
from bot.contracts.model import (
    ITEM_MODELS,
    NO_CONTRACT_OF_YOUR_OWN,
    DraftFields,
    find_item,
    item_label,
    item_text,
    items_of,
    next_key,
    not_in_draft,
    referrers,
)
from bot.core.permissions import Refusal, may_edit, may_read
from storage.models import Contract, ContractStatus, Role
from storage.queries.contracts import (
    ContractBundle,
    audit,
    contracts_for_user,
    delete_contract,
    delete_row,
    drafts_of_leader,
    find_contract,
    find_contract_for_leader,
    load_bundle,
    lock_contract,
    replace_people,
)


class BundleLoader(Protocol):
    """How a contract is read: whole (`load_bundle`), or for what a surface shows of it."""

    async def __call__(
        self, *, session: AsyncSession, contract_id: int
    ) -> ContractBundle | None: ...


async def contract_to_show(
    *,
    session: AsyncSession,
    viewer: str,
    leader: str | None,
    load: BundleLoader = load_bundle,
) -> ContractBundle | Refusal:
    """The contract `viewer` asked about, read by `load`, or why they may not see it."""
    if leader is None or leader == viewer:
        own = await find_contract_for_leader(session=session, leader_id=viewer)
        if own is not None:
            bundle = await load(session=session, contract_id=own.id or 0)
            if bundle is not None:
                return bundle
        if leader is None:
            governed = await contracts_for_user(session=session, user_id=viewer)
            if governed:
                leaders = ", ".join(sorted({f"<@{c.leader_id}>" for c in governed}))
                return Refusal(
                    "You don't lead a contract yourself. You can read the contracts of "
                    f"{leaders}: try `/contract summary @name`."
                )
        return Refusal(NO_CONTRACT_OF_YOUR_OWN)

    contract = await find_contract_for_leader(session=session, leader_id=leader)
    if contract is None:
        return Refusal(f"<@{leader}> has no contract in North Star.")
    bundle = await load(session=session, contract_id=contract.id or 0)
    if bundle is None or not may_read(bundle, viewer):
        return Refusal(
            f"Only <@{leader}>, their sponsor and the contract's governance can read "
            "this contract. You can read the feedback you wrote with `/feedback mine`."
        )
    return bundle


ACTIVE_NOT_EDITABLE = (
    "This contract is active: it changes only through amendments the approvers accept."
)
ACTIVE_NOT_DISCARDED = (
    "This contract is active, and an active contract cannot be discarded: it changes only "
    "through amendments the approvers accept."
)
NOT_YOURS = "Only the leader, sponsor or owner of a contract can change it."


async def editable_draft(
    *, session: AsyncSession, viewer: str, leader: str | None, active: str = ACTIVE_NOT_EDITABLE
) -> ContractBundle | Refusal:
    """The draft `viewer` may edit: their own, or the named leader's (`active`: what a
    leader's active contract, which is no draft, is answered with)."""
    if leader is None:
        drafts = [
            ContractBundle(contract=c)
            for c in await contracts_for_user(session=session, user_id=viewer)
            if c.status == ContractStatus.draft and may_edit(ContractBundle(contract=c), viewer)
        ]
        if not drafts:
            return Refusal("You have no draft contract. Start one with `/contract new`.")
        if len(drafts) > 1:
            names = ", ".join(f"<@{b.contract.leader_id}>" for b in drafts)
            return Refusal(
                f"You can edit several drafts ({names}): name the leader, e.g. "
                "`/contract edit @name`."
            )
        return (
            await load_bundle(session=session, contract_id=drafts[0].contract.id or 0) or drafts[0]
        )
    mine = []
    for draft in await drafts_of_leader(session=session, leader_id=leader):
        found = await load_bundle(session=session, contract_id=draft.id or 0)
        if found is not None and may_edit(found, viewer):
            mine.append(found)
    if len(mine) == 1:
        return mine[0]
    if mine:
        return Refusal(
            f"You can edit {len(mine)} drafts for <@{leader}>: open the one you mean from "
            "North Star's Home tab."
        )
    contract = await find_contract_for_leader(session=session, leader_id=leader)
    if contract is None:
        return Refusal(f"<@{leader}> has no contract in North Star.")
    bundle = await load_bundle(session=session, contract_id=contract.id or 0)
    if bundle is None or not may_edit(bundle, viewer):
        return Refusal(NOT_YOURS)
    if bundle.contract.status != ContractStatus.draft:
        return Refusal(active)
    return bundle


async def draft_to_change(
    *, session: AsyncSession, contract_id: int, actor: str, lock: bool = False
) -> ContractBundle | Refusal:
    """The draft `contract_id` if `actor` may change it now (a button or form names it, and
    anyone can craft one): it exists, it is still a draft, and they are its leader, sponsor,
    owner or creator. `lock`: hold the contract's row until the transaction ends, so that
    changes to one draft at the same moment (a double click) run one after the other, each
    reading what the other wrote."""
    if lock:
        await lock_contract(session=session, contract_id=contract_id)
    bundle = await load_bundle(session=session, contract_id=contract_id)
    if bundle is None:
        return Refusal("That draft no longer exists: it was discarded.")
    if not may_edit(bundle, actor):
        return Refusal(NOT_YOURS)
    if bundle.contract.status != ContractStatus.draft:
        return Refusal("This contract is no longer a draft you can edit.")
    return bundle


async def create_draft(
    *, session: AsyncSession, fields: DraftFields, creator: str, now: datetime
) -> Contract:
    contract = Contract(
        title=fields.title,
        leader_id=fields.leader_id,
        sponsor_id=fields.sponsor_id,
        owner_id=owner_of(fields, actor=creator),
        status=ContractStatus.draft,
        mission=fields.mission,
        period_start=fields.period_start,
        period_end=fields.period_end,
        checkin_weekday=fields.checkin_weekday,
        checkin_time=fields.checkin_time,
        created_by=creator,
        created_at=now,
        updated_at=now,
    )
    session.add(contract)
    await session.flush()
    await replace_people(
        session, contract_id=contract.id or 0, role=Role.approver, user_ids=[fields.sponsor_id]
    )
    audit(session, action="contract.drafted", contract_id=contract.id, actor_id=creator, at=now)
    await session.commit()
    return contract


def owner_of(fields: DraftFields, *, actor: str) -> str:
    """The draft's owner: the one chosen, else the person drafting, else (when that is the
    leader) the sponsor; never nobody, and never the leader."""
    if fields.owner_id:
        return fields.owner_id
    return actor if actor != fields.leader_id else fields.sponsor_id


async def title_taken(
    *, session: AsyncSession, leader_id: str, title: str, other_than: int | None = None
) -> bool:
    found = await find_contract(session=session, leader_id=leader_id, title=title)
    return found is not None and found.id != other_than


async def update_details(
    *,
    session: AsyncSession,
    bundle: ContractBundle,
    fields: DraftFields,
    actor: str,
    now: datetime,
) -> None:
    """Change a draft's own fields; approvers that were only the old sponsor follow the new."""
    c = bundle.contract
    values: dict[str, Any] = {
        "title": fields.title,
        "sponsor_id": fields.sponsor_id,
        "owner_id": owner_of(fields, actor=actor),
        "period_start": fields.period_start,
        "period_end": fields.period_end,
        "mission": fields.mission,
        "checkin_weekday": fields.checkin_weekday,
        "checkin_time": fields.checkin_time,
    }
    changed = {k: v for k, v in values.items() if getattr(c, k) != v}
    if not changed:
        return
    if "sponsor_id" in changed and bundle.approvers == [c.sponsor_id]:
        await replace_people(
            session, contract_id=c.id or 0, role=Role.approver, user_ids=[fields.sponsor_id]
        )
    for name, value in changed.items():
        setattr(c, name, value)
    c.updated_at = now
    session.add(c)
    audit(
        session,
        action="draft.details_changed",
        contract_id=c.id,
        actor_id=actor,
        detail={k: str(v) for k, v in changed.items()},
        at=now,
    )
    await session.commit()


async def update_item(
    *,
    session: AsyncSession,
    bundle: ContractBundle,
    kind: str,
    item: Any,
    values: dict[str, Any],
    actor: str,
    now: datetime,
) -> None:
    """Change one item of a draft (its key and place stay)."""
    changed = {k: v for k, v in values.items() if getattr(item, k) != v}
    if not changed:
        return
    for name, value in changed.items():
        setattr(item, name, value)
    session.add(item)
    _touch(session, bundle.contract, now)
    audit(
        session,
        action=f"draft.{kind}_changed",
        contract_id=bundle.contract.id,
        actor_id=actor,
        detail={"item": item_label(bundle, kind, item), **{k: str(v) for k, v in changed.items()}},
        at=now,
    )
    await session.commit()


# The import format's list of each keyed kind, for what an item carries (evidence, feedback).
RECORDED_LISTS = {
    "expectation": "expectations",
    "activity": "development_activities",
    "indicator": "success_indicators",
    "milestone": "milestones",
}


async def remove_item(
    *,
    session: AsyncSession,
    bundle: ContractBundle,
    kind: str,
    item_id: int,
    actor: str,
    now: datetime,
) -> str | Refusal:
    """Remove one item of a draft; what it was called, or why not: another item refers to it
    (an activity to its expectation, a milestone to its indicator or activity), it carries
    recorded data (evidence, feedback, as an import and an amendment refuse), or it is gone
    already (a double click)."""
    item = find_item(bundle, kind, item_id)
    if item is None:
        return Refusal(not_in_draft(kind))
    label = item_label(bundle, kind, item)
    using = referrers(bundle, kind, item)
    if using:
        return Refusal(
            f"{label} cannot be removed: {', '.join(using)} "
            f"{'refers' if len(using) == 1 else 'refer'} to it. Change or remove "
            f"{'it' if len(using) == 1 else 'them'} first."
        )
    if kind in RECORDED_LISTS:
        found = await recorded_data(session, bundle, {RECORDED_LISTS[kind]: [item]})
        if found:
            reasons = " and ".join(reason for _, _, reason in found)
            return Refusal(f"{label} {reasons}, so it cannot be removed: change it instead.")
    if not await delete_row(session, item):
        await session.rollback()
        return Refusal(not_in_draft(kind))
    _touch(session, bundle.contract, now)
    audit(
        session,
        action=f"draft.{kind}_removed",
        contract_id=bundle.contract.id,
        actor_id=actor,
        detail={"item": label, "text": item_text(item)},
        at=now,
    )
    await session.commit()
    return label


async def discard_draft(
    *, session: AsyncSession, contract_id: int, actor: str, now: datetime
) -> Contract | Refusal:
    """Delete a draft with all it holds, so its title is free again for its leader.

    Only a draft, and only by who may edit it. The audit event names no contract (the row
    is gone with the draft's own events) but keeps its id, title and leader."""
    contract = await lock_contract(session=session, contract_id=contract_id)
    if contract is None:
        return Refusal("That draft no longer exists: it was discarded already.")
    bundle = await load_bundle(session=session, contract_id=contract_id)
    if bundle is None or not may_edit(bundle, actor):
        return Refusal("Only the leader, sponsor or owner of a draft can discard it.")
    if contract.status != ContractStatus.draft:
        return Refusal(ACTIVE_NOT_DISCARDED)
    await delete_contract(session, contract_id=contract_id)
    audit(
        session,
        action="draft.discarded",
        contract_id=None,
        actor_id=actor,
        detail={
            "contract_id": contract_id,
            "title": contract.title,
            "leader": contract.leader_id,
            "items": sum(len(items_of(bundle, kind)) for kind in ITEM_MODELS),
        },
        at=now,
    )
    await session.commit()
    return contract


def _touch(session: AsyncSession, contract: Contract, now: datetime) -> None:
    contract.updated_at = now
    session.add(contract)


async def add_item(
    *,
    session: AsyncSession,
    bundle: ContractBundle,
    kind: str,
    values: dict[str, Any],
    actor: str,
    now: datetime,
) -> SQLModel:
    """Add one item to a draft, with the next free key and position."""
    model = ITEM_MODELS[kind]
    key = next_key(bundle, kind)
    extra: dict[str, Any] = {"contract_id": bundle.contract.id}
    if key is not None:
        extra["key"] = key
    item = model(**values, **extra, position=len(items_of(bundle, kind)))
    session.add(item)
    contract = await session.get(Contract, bundle.contract.id)
    if contract is not None:
        contract.updated_at = now
        session.add(contract)
    audit(
        session,
        action=f"draft.{kind}_added",
        contract_id=bundle.contract.id,
        actor_id=actor,
        detail={"key": key, **{k: str(v) for k, v in values.items()}},
        at=now,
    )
    if contract is not None and contract.agreement_sent_at is not None:
        # Out for agreement: the changed terms are a new version, asked again.
        await session.flush()
        changed = await load_bundle(session=session, contract_id=contract.id or 0)
        if changed is not None:
            refresh_terms(session, changed, actor=actor, now=now)
    await session.commit()
    return item
