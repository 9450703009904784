"""Agreement before anything runs: a complete draft is sent for agreement, and becomes active
only when its leader, sponsor and owner have each agreed to the current version of its terms.

The terms have a version (`contract.terms_version`) and a fingerprint of the draft as a
document (`terms_fingerprint`): whenever the draft no longer matches the fingerprint (an item
added, edited or removed, a field changed, an import), the version goes up, earlier
agreements no longer count and everyone is asked again. An agreement names the version it
was given to, once per person (`uq_agreement_once`), so a double click writes once and a
click on an old message is refused.

A leader has one active contract. A draft agreed by all while its leader has another waits
(and activates when that one closes), unless it was sent as replacing the current contract:
then the old one closes and the new one activates in the same transaction, its versions
carrying on after the old one's, so `/contract summary @dana v3` finds either.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.contracts.closing import close_contract
from bot.contracts.document import snapshot
from bot.contracts.model import (
    AgreementState,
    AgreeOutcome,
    AgreeResult,
    missing_for_activation,
    parties_of,
)
from bot.core.permissions import Refusal, may_edit
from bot.core.text import escape
from storage.db import SessionFactory, read_only, writing
from storage.models import Agreement, Contract, ContractStatus, ContractVersion
from storage.queries.contracts import (
    ContractBundle,
    active_contract_for_leader,
    agreements_of,
    audit,
    load_bundle,
    lock_contract,
)

SLACK, OUTSIDE = "slack", "outside"
ATTEMPTS = 2  # an agreement that lost a race is tried once more


def terms_fingerprint(bundle: ContractBundle) -> str:
    """What the parties agree to, as one hash: the draft as a document, and whether it
    replaces the leader's current contract."""
    terms = {"terms": snapshot(bundle), "replaces_current": bundle.contract.replaces_current}
    encoded = json.dumps(terms, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def refresh_terms(
    session: AsyncSession, bundle: ContractBundle, *, actor: str | None, now: datetime
) -> bool:
    """Bump the terms version when the draft changed since it was sent; True if it did."""
    c = bundle.contract
    found = terms_fingerprint(bundle)
    if c.terms_fingerprint == found and c.terms_version > 0:
        return False
    c.terms_version += 1
    c.terms_fingerprint = found
    c.updated_at = now
    session.add(c)
    if c.agreement_sent_at is not None and c.terms_version > 1:
        audit(
            session,
            action="contract.terms_changed",
            contract_id=c.id,
            actor_id=actor,
            detail={"version": c.terms_version},
            at=now,
        )
    return True


async def load_agreement(*, session: AsyncSession, contract_id: int) -> AgreementState | None:
    contract = await session.get(Contract, contract_id)
    if contract is None:
        return None
    agreements = await agreements_of(
        session=session, contract_id=contract_id, terms_version=contract.terms_version
    )
    active = await active_contract_for_leader(session=session, leader_id=contract.leader_id)
    current = active if active is not None and active.id != contract.id else None
    return AgreementState(contract=contract, agreements=agreements, current=current)


def _record(
    session: AsyncSession, contract: Contract, user: str, *, via: str, now: datetime
) -> None:
    session.add(
        Agreement(
            contract_id=contract.id or 0,
            terms_version=contract.terms_version,
            user_id=user,
            via=via,
            agreed_at=now,
        )
    )
    audit(
        session,
        action="contract.agreed",
        contract_id=contract.id,
        actor_id=user,
        detail={"version": contract.terms_version, "via": via},
        at=now,
    )


async def send_for_agreement(
    *,
    session: AsyncSession,
    contract_id: int,
    actor: str,
    replaces_current: bool,
    now: datetime,
) -> AgreeResult | Refusal:
    """Send a complete draft for agreement (again, after a change), and commit.

    Sending is the sender's own agreement when they are one of the parties: they wrote or
    reviewed these terms and chose to put them to the others.
    """
    await writing(session)
    contract = await lock_contract(session=session, contract_id=contract_id)
    bundle = await load_bundle(session=session, contract_id=contract_id) if contract else None
    if bundle is None or not may_edit(bundle, actor):
        return Refusal("Only the leader, sponsor or owner of a draft can send it for agreement.")
    c = bundle.contract
    if c.status == ContractStatus.active:
        return Refusal(f"“{escape(c.title)}” is active already.")
    if c.status != ContractStatus.draft:
        return Refusal(f"“{escape(c.title)}” is closed and can no longer be sent for agreement.")
    missing = missing_for_activation(bundle)
    if missing:
        return Refusal(
            f"“{escape(c.title)}” still needs {', '.join(missing)}. Add them with `/contract edit`."
        )
    c.replaces_current = replaces_current
    first = c.agreement_sent_at is None
    refresh_terms(session, bundle, actor=actor, now=now)
    c.agreement_sent_at = now
    c.agreement_sent_by = actor
    session.add(c)
    audit(
        session,
        action="contract.sent_for_agreement",
        contract_id=c.id,
        actor_id=actor,
        detail={
            "version": c.terms_version,
            "replaces_current": replaces_current,
            "again": not first,
        },
        at=now,
    )
    await session.flush()
    agreed = await agreements_of(
        session=session, contract_id=contract_id, terms_version=c.terms_version
    )
    if actor in dict(parties_of(c)) and actor not in {a.user_id for a in agreed}:
        _record(session, c, actor, via=SLACK, now=now)
    result = await _settle(session, c, by=actor, now=now, fallback=AgreeOutcome.agreed)
    await session.commit()
    return result


async def agree(
    *, sessions: SessionFactory, contract_id: int, user: str, version: int, now: datetime
) -> AgreeResult:
    """`user` agrees to version `version` of the draft's terms; the last agreement activates
    it (or supersedes the leader's active contract, or leaves it waiting). One transaction."""
    result = AgreeResult(AgreeOutcome.conflict)
    for _ in range(ATTEMPTS):
        async with sessions() as session:
            await writing(session)
            try:
                result = await _agree(session, contract_id, user, version, now)
                await session.commit()
                break
            except IntegrityError:
                # The same agreement (a double click), or another contract of the leader
                # made active at the same moment (`uq_contract_one_active`): nothing of this
                # is kept, and it is tried once more against what is there now.
                await session.rollback()
                result = AgreeResult(AgreeOutcome.conflict)
    if result.outcome == AgreeOutcome.conflict:
        async with sessions() as session:
            await read_only(session)
            mine = await agreements_of(
                session=session, contract_id=contract_id, terms_version=version
            )
        if user in {a.user_id for a in mine}:
            result = AgreeResult(AgreeOutcome.already)
    if result.state is None or result.outcome == AgreeOutcome.already:
        async with sessions() as session:
            await read_only(session)
            state = await load_agreement(session=session, contract_id=contract_id)
        result = AgreeResult(result.outcome, state, result.closed)
    return result


async def _agree(
    session: AsyncSession, contract_id: int, user: str, version: int, now: datetime
) -> AgreeResult:
    contract = await lock_contract(session=session, contract_id=contract_id)
    if contract is None:
        return AgreeResult(AgreeOutcome.missing)
    if user not in dict(parties_of(contract)):
        return AgreeResult(AgreeOutcome.not_party)
    if contract.status != ContractStatus.draft:
        return AgreeResult(AgreeOutcome.closed)
    if contract.agreement_sent_at is None:
        return AgreeResult(AgreeOutcome.not_sent)
    bundle = await load_bundle(session=session, contract_id=contract_id)
    if bundle is None:
        return AgreeResult(AgreeOutcome.missing)
    refresh_terms(session, bundle, actor=None, now=now)
    if version != contract.terms_version:
        await session.flush()
        return AgreeResult(AgreeOutcome.stale)
    agreed = await agreements_of(
        session=session, contract_id=contract_id, terms_version=contract.terms_version
    )
    if user in {a.user_id for a in agreed}:
        return AgreeResult(AgreeOutcome.already)
    _record(session, contract, user, via=SLACK, now=now)
    return await _settle(session, contract, by=user, now=now, fallback=AgreeOutcome.agreed)


async def _settle(
    session: AsyncSession,
    contract: Contract,
    *,
    by: str | None,
    now: datetime,
    fallback: AgreeOutcome,
) -> AgreeResult:
    """Activate the draft if every party agreed to its current terms and its leader has no
    other active contract (or it replaces that one); else `fallback`, or `waiting`."""
    await session.flush()
    state = await load_agreement(session=session, contract_id=contract.id or 0)
    assert state is not None
    if state.awaiting:
        return AgreeResult(fallback, state)
    old = state.current
    if old is not None and not contract.replaces_current:
        if fallback != AgreeOutcome.waiting:
            audit(
                session,
                action="contract.agreement_waiting",
                contract_id=contract.id,
                actor_id=by,
                detail={"version": contract.terms_version, "current": old.id},
                at=now,
            )
        return AgreeResult(AgreeOutcome.waiting, state)
    if old is not None:
        old = await lock_contract(session=session, contract_id=old.id or 0) or old
        await close_contract(
            session, contract=old, by=by, now=now, reason="superseded", superseded_by=contract.id
        )
    await _activate(session, contract, by=by, now=now, replaced=old, agreed=state.agreed_by)
    state = await load_agreement(session=session, contract_id=contract.id or 0)
    outcome = AgreeOutcome.superseded if old is not None else AgreeOutcome.activated
    return AgreeResult(outcome, state, old)


async def _activate(
    session: AsyncSession,
    contract: Contract,
    *,
    by: str | None,
    now: datetime,
    replaced: Contract | None,
    agreed: list[str],
) -> None:
    contract.status = ContractStatus.active
    contract.updated_at = now
    if replaced is not None:
        # The contract line carries on: the new terms are the version after the old one's.
        contract.version = replaced.version + 1
        contract.replaces_contract_id = replaced.id
    elif contract.replaces_contract_id is not None:
        # A renewal whose old contract was closed before it was agreed carries the line on too.
        previous = await session.get(Contract, contract.replaces_contract_id)
        if previous is not None:
            contract.version = previous.version + 1
    session.add(contract)
    await session.flush()
    bundle = await load_bundle(session=session, contract_id=contract.id or 0)
    assert bundle is not None
    reason = f"agreed (terms version {contract.terms_version})"
    if replaced is not None:
        reason += f"; replaces “{replaced.title}”"
    session.add(
        ContractVersion(
            contract_id=contract.id or 0,
            version=contract.version,
            snapshot=snapshot(bundle),
            reason=reason[:200],
            created_by=by,
            created_at=now,
        )
    )
    audit(
        session,
        action="contract.activated",
        contract_id=contract.id,
        actor_id=by,
        detail={
            "version": contract.version,
            "terms_version": contract.terms_version,
            "agreed": agreed,
            **({"replaces": replaced.id} if replaced is not None else {}),
        },
        at=now,
    )
    await session.flush()


async def activate_waiting(
    *, session: AsyncSession, contract_id: int, now: datetime
) -> AgreeResult:
    """A draft agreed by all that waited for its leader's active contract: refresh its terms
    and activate it once nothing is in its way (the caller commits)."""
    contract = await lock_contract(session=session, contract_id=contract_id)
    if contract is None or contract.status != ContractStatus.draft:
        return AgreeResult(AgreeOutcome.closed)
    if contract.agreement_sent_at is None:
        return AgreeResult(AgreeOutcome.not_sent)
    bundle = await load_bundle(session=session, contract_id=contract_id)
    if bundle is None:
        return AgreeResult(AgreeOutcome.missing)
    refresh_terms(session, bundle, actor=None, now=now)
    # `waiting` as the fallback: a draft still waiting is not logged again on every run.
    return await _settle(session, contract, by=None, now=now, fallback=AgreeOutcome.waiting)


async def agreed_outside_slack(
    session: AsyncSession, contract: Contract, *, operator: str, now: datetime
) -> None:
    """`contract import --agreed`: the parties agreed outside Slack, as the operator who ran
    the import says (named in the audit log); recorded for the terms as imported."""
    bundle = await load_bundle(session=session, contract_id=contract.id or 0)
    assert bundle is not None
    refresh_terms(session, bundle, actor=None, now=now)
    agreed = await agreements_of(
        session=session, contract_id=contract.id or 0, terms_version=contract.terms_version
    )
    done = {a.user_id for a in agreed}
    for user, _ in parties_of(contract):
        if user not in done:
            session.add(
                Agreement(
                    contract_id=contract.id or 0,
                    terms_version=contract.terms_version,
                    user_id=user,
                    via=OUTSIDE,
                    agreed_at=now,
                )
            )
    audit(
        session,
        action="contract.agreed_outside_slack",
        contract_id=contract.id,
        actor_id=None,
        detail={
            "version": contract.terms_version,
            "operator": operator,
            "parties": [user for user, _ in parties_of(contract)],
        },
        at=now,
    )


async def request_change(
    *,
    session: AsyncSession,
    contract_id: int,
    user: str,
    version: int,
    comment: str,
    now: datetime,
) -> tuple[AgreementState, int] | Refusal:
    """`user` asks for a change to the draft, with a comment for its drafter and the other
    parties; the draft stays a draft. The state and the audit event's id (which keys the DMs)."""
    await writing(session)
    contract = await lock_contract(session=session, contract_id=contract_id)
    if contract is None:
        return Refusal("This draft no longer exists.")
    if user not in dict(parties_of(contract)):
        return Refusal(
            "Only the leader, sponsor and owner of this contract are asked to agree to it."
        )
    if contract.status != ContractStatus.draft:
        return Refusal(
            f"“{escape(contract.title)}” is no longer a draft: propose a change with "
            "`/contract amend`."
        )
    if contract.agreement_sent_at is None:
        return Refusal(f"“{escape(contract.title)}” is not out for agreement.")
    event = audit(
        session,
        action="contract.change_requested",
        contract_id=contract.id,
        actor_id=user,
        detail={"version": version, "comment": comment},
        at=now,
    )
    await session.flush()
    event_id = event.id or 0
    await session.commit()
    state = await load_agreement(session=session, contract_id=contract_id)
    assert state is not None
    return state, event_id
