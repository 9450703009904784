"""Evidence: a message, a link or a note tied to one indicator, activity or expectation.

Added from any Slack message with the "Add as evidence" shortcut (its permalink and a bounded
excerpt are kept, never its author: as the signed shortcut payload named the message, kept on
the server until the modal is submitted, never as the modal carries it), or with
`/contract evidence`. The leader adds to their
own contract; a sponsor or owner picks among the contracts they sponsor or own. An item with
no evidence for `STALE_AFTER` (counted from the contract's start, or the activity's) is stale.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.permissions import Refusal, may_add_evidence
from bot.evidence.model import (
    SOURCE_TOKEN_BYTES,
    KeptSource,
    NewEvidence,
    SourceMessage,
    item_value,
    items_of,
)
from storage.models import ContractStatus, Evidence
from storage.queries.contracts import ContractBundle, audit, load_bundle, load_bundles
from storage.queries.evidence import (
    add_evidence_source,
    claim_evidence_source,
    evidence_contracts,
    find_evidence_source,
)


async def remember_source(
    *, session: AsyncSession, user: str, message: SourceMessage, now: datetime
) -> str:
    """Keep the message of a signed shortcut payload on the server; the token its modal
    carries instead of the message itself."""
    token = secrets.token_urlsafe(SOURCE_TOKEN_BYTES)
    await add_evidence_source(
        session=session,
        token=token,
        user_id=user,
        channel=message.channel[:32],
        message_ts=message.ts[:32],
        excerpt=message.excerpt,
        now=now,
    )
    return token


async def kept_source(
    *, session: AsyncSession, token: str, user: str, now: datetime
) -> KeptSource | None:
    """The message `user`'s shortcut kept under `token`: None if unknown, someone else's,
    used already or expired."""
    row = await find_evidence_source(session=session, token=token, user_id=user, now=now)
    if row is None:
        return None
    message = SourceMessage(row.channel, row.message_ts, row.excerpt, row.permalink)
    return KeptSource(id=row.id or 0, message=message)


async def contracts_for_evidence(*, session: AsyncSession, user: str) -> list[ContractBundle]:
    """Active contracts `user` may add evidence to: their own first, then those they
    sponsor or own; loaded for a list (their items, not their history)."""
    return await load_bundles(
        session=session,
        contracts=await evidence_contracts(session=session, user=user),
        recent=True,
    )


async def may_add_any(*, session: AsyncSession, user: str) -> bool:
    """Whether `user` has any contract to add evidence to: one small statement."""
    return bool(await evidence_contracts(session=session, user=user, limit=1))


async def add_evidence(
    *,
    session: AsyncSession,
    user: str,
    new: NewEvidence,
    now: datetime,
    source_id: int | None = None,
) -> Evidence | Refusal:
    """Store one piece of evidence, or why the contract or the item won't take it.

    `source_id`, a kept shortcut message, is marked used in the same transaction: the same
    message is added once, however often its modal is submitted."""
    bundle = await load_bundle(session=session, contract_id=new.contract_id)
    if bundle is not None and bundle.contract.status == ContractStatus.closed:
        return Refusal("This contract is closed, so it takes no more evidence.", field="item")
    if (
        bundle is None
        or bundle.contract.status != ContractStatus.active
        or not may_add_evidence(bundle, user)
    ):
        return Refusal(
            "You can add evidence only to an active contract you lead, sponsor or own.",
            field="item",
        )
    if new.item_key not in {key for key, _ in items_of(bundle).get(new.item_type, [])}:
        return Refusal("Choose an item of this contract.", field="item")
    if source_id is not None and not await claim_evidence_source(
        session=session, source_id=source_id, now=now
    ):
        return Refusal("This message has been added as evidence already.", field="item")
    row = Evidence(
        contract_id=new.contract_id,
        item_type=new.item_type,
        item_key=new.item_key,
        url=new.url,
        note=new.note,
        excerpt=new.excerpt,
        source=new.source,
        added_by=user,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    audit(
        session,
        action="evidence.added",
        contract_id=new.contract_id,
        actor_id=user,
        detail={"evidence_id": row.id, "item": item_value(new.item_type, new.item_key)},
        at=now,
    )
    await session.commit()
    return row


async def set_permalink(*, session: AsyncSession, evidence_id: int, url: str) -> None:
    row = await session.get(Evidence, evidence_id)
    if row is not None and not row.url:
        row.url = url
        session.add(row)
        await session.commit()
