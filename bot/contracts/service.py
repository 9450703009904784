"""Contract services: which contract a person may see or edit, drafts built in Slack.

A draft becomes active through agreement (`bot.contracts.agreement`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.contracts.agreement import refresh_terms
from bot.contracts.model import (
    ITEM_MODELS,
    NO_CONTRACT_OF_YOUR_OWN,
    DraftFields,
    items_of,
    next_key,
)
from bot.core.permissions import Refusal, may_edit, may_read
from storage.models import Contract, ContractStatus, Role
from storage.queries.contracts import (
    ContractBundle,
    audit,
    contracts_for_user,
    drafts_of_leader,
    find_contract,
    find_contract_for_leader,
    load_bundle,
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
    bundles = []
    for contract in await contracts_for_user(session=session, user_id=viewer):
        bundle = await load_bundle(session=session, contract_id=contract.id or 0)
        if bundle is not None:
            bundles.append(bundle)
    return bundles


async def editable_draft(
    *, session: AsyncSession, viewer: str, leader: str | None
) -> ContractBundle | Refusal:
    """The draft `viewer` may edit: their own, or the named leader's."""
    if leader is None:
        drafts = [
            b
            for b in await bundles_for(session=session, viewer=viewer)
            if b.contract.status == ContractStatus.draft and may_edit(b, viewer)
        ]
        if not drafts:
            return Refusal("You have no draft contract. Start one with `/contract new`.")
        if len(drafts) > 1:
            names = ", ".join(f"<@{b.contract.leader_id}>" for b in drafts)
            return Refusal(
                f"You can edit several drafts ({names}): name the leader, e.g. "
                "`/contract edit @name`."
            )
        return drafts[0]
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
    if contract is not None and contract.agreement_sent_at is not None:
        # Out for agreement: the changed terms are a new version, asked again.
        await session.flush()
        changed = await load_bundle(session=session, contract_id=contract.id or 0)
        if changed is not None:
            refresh_terms(session, changed, actor=actor, now=now)
    await session.commit()
    return item
