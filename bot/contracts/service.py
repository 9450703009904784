"""Contract services: which contract a person may see or edit, drafts built in Slack, activation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.contracts.document import snapshot
from bot.contracts.model import (
    ITEM_MODELS,
    NO_CONTRACT_OF_YOUR_OWN,
    DraftFields,
    already_active,
    items_of,
    missing_for_activation,
    next_key,
)
from bot.core.permissions import Refusal, may_edit, may_read
from bot.core.text import escape
from storage.models import Contract, ContractStatus, ContractVersion, Role
from storage.queries.contracts import (
    ContractBundle,
    active_contract_for_leader,
    audit,
    contracts_for_user,
    drafts_of_leader,
    find_contract,
    find_contract_for_leader,
    load_bundle,
    load_bundles,
    lock_contract,
    replace_people,
)


async def contract_to_show(
    *, session: AsyncSession, viewer: str, leader: str | None
) -> ContractBundle | Refusal:
    """The contract `viewer` asked about, or why they may not see it."""
    if leader is None or leader == viewer:
        own = await find_contract_for_leader(session=session, leader_id=viewer)
        if own is not None:
            bundle = await load_bundle(session=session, contract_id=own.id or 0)
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
    bundle = await load_bundle(session=session, contract_id=contract.id or 0)
    if bundle is None or not may_read(bundle, viewer):
        return Refusal(
            f"Only <@{leader}>, their sponsor and the contract's governance can read "
            "this contract. You can read the feedback you wrote with `/feedback mine`."
        )
    return bundle


async def bundles_for(*, session: AsyncSession, viewer: str) -> list[ContractBundle]:
    """Every contract the viewer governs or leads, with what it holds, in a constant number
    of statements however many there are."""
    return await load_bundles(
        session=session, contracts=await contracts_for_user(session=session, user_id=viewer)
    )


async def editable_draft(
    *, session: AsyncSession, viewer: str, leader: str | None
) -> ContractBundle | Refusal:
    """The draft `viewer` may edit: their own, or the named leader's."""
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
        return Refusal("Only the leader, sponsor or owner of a contract can change it.")
    if bundle.contract.status != ContractStatus.draft:
        return Refusal(
            "This contract is active: it changes only through amendments the approvers accept."
        )
    return bundle


async def create_draft(
    *, session: AsyncSession, fields: DraftFields, creator: str, now: datetime
) -> Contract:
    contract = Contract(
        title=fields.title,
        leader_id=fields.leader_id,
        sponsor_id=fields.sponsor_id,
        owner_id=creator if creator not in {fields.leader_id} else None,
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


async def title_taken(*, session: AsyncSession, leader_id: str, title: str) -> bool:
    return await find_contract(session=session, leader_id=leader_id, title=title) is not None


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
    await session.commit()
    return item


async def activate_draft(
    *, session: AsyncSession, contract_id: int, actor: str, now: datetime
) -> ContractBundle | Refusal:
    """Make a complete draft active, for `/contract activate` and the editor's button alike.

    The one rule: the actor may edit the draft (its leader, sponsor, owner or creator), the
    draft is complete, and its leader has no other active contract. The last is also a
    unique index, so of two activations at the same moment one wins and the other gets the
    same refusal; nothing of the loser is written. A contract that is active already (a
    double click) comes back as it is. The version 1 snapshot and the audit event are written
    in the same transaction as the status.
    """
    contract = await lock_contract(session=session, contract_id=contract_id)
    bundle = await load_bundle(session=session, contract_id=contract_id) if contract else None
    if bundle is None or not may_edit(bundle, actor):
        return Refusal("Only the leader, sponsor or owner of a contract can activate it.")
    c = bundle.contract
    if c.status == ContractStatus.active:
        return bundle
    if c.status != ContractStatus.draft:
        return Refusal(f"“{escape(c.title)}” is closed and can no longer be activated.")
    missing = missing_for_activation(bundle)
    if missing:
        return Refusal(
            f"“{escape(c.title)}” still needs {', '.join(missing)}. Add them with `/contract edit`."
        )
    active = await active_contract_for_leader(session=session, leader_id=c.leader_id)
    if active is not None:
        return already_active(c.leader_id)
    leader_id = c.leader_id
    try:
        c.status = ContractStatus.active
        c.updated_at = now
        session.add(c)
        session.add(
            ContractVersion(
                contract_id=contract_id,
                version=c.version,
                snapshot=snapshot(bundle),
                reason="activated",
                created_by=actor,
                created_at=now,
            )
        )
        audit(session, action="contract.activated", contract_id=contract_id, actor_id=actor, at=now)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        # Another activation won the race: this draft's own (a double click), or another
        # draft of the same leader.
        again = await load_bundle(session=session, contract_id=contract_id)
        if again is not None and again.contract.status == ContractStatus.active:
            return again
        return already_active(leader_id)
    return await load_bundle(session=session, contract_id=contract_id) or bundle
