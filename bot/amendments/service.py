"""Amendments to an active contract: proposed in Slack, decided by its approvers, applied once.

An amendment changes one item (an expectation, activity, indicator, milestone, resource or
barrier), adds one or removes one. It keeps the item as it was (`before`) and as proposed
(`after`), both in the import format, and goes from `pending` to exactly one of:

- `applied`: every approver approved; the item, the contract's next version with its snapshot
  and an audit event were written in one transaction;
- `rejected`: an approver rejected it, with a reason;
- `stale`: at an approval the item no longer matched `before` (another amendment or an import
  changed it), or the change no longer fitted the contract; it can never apply.

A proposal is checked with the import format's own rules: the whole contract with the change
made is validated by `contract_schema.validate_document`, and the problems the change brings
count (a contract built in Slack may carry older ones). Removing an item that carries recorded
data is refused, as an import refuses it.

Staleness is decided per item, not by `base_version`: every amendment and every import bumps
the version, and a change elsewhere in the contract should not void a proposal.

Deciding locks the amendment and contract rows (SELECT ... FOR UPDATE on PostgreSQL; on SQLite
a write transaction begins IMMEDIATE), so a double click, or the last two approvers clicking
at once, applies a change exactly once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.amendments.model import (
    APPROVED,
    GOVERNANCE,
    GOVERNANCE_KEY,
    KINDS,
    REJECTED,
    REQUIRED_LISTS,
    AmendmentState,
    AmendmentStatus,
    Decision,
    GovernanceTerms,
    History,
    Item,
    ItemKind,
    Outcome,
    Problem,
    SummaryView,
    change_lines,
    change_of,
    changed_document,
    deciders,
    find_item,
    governance_after,
    governance_changes,
    governance_of,
    governance_problems,
    governance_unchanged,
    import_rule_problems,
    items_in,
    kind_named,
    refusal_to_amend,
    version_reason,
)
from bot.checkins.model import REMINDER
from bot.contracts.document import ITEM_LISTS, snapshot
from bot.contracts.io import add_version, recorded_data, write_item
from bot.contracts.model import items_of
from bot.contracts.schema import validate_document
from bot.core import rules
from bot.core.permissions import Refusal, may_propose, may_read
from bot.core.text import escape
from storage.db import SessionFactory, writing
from storage.models import (
    Amendment,
    AmendmentApproval,
    Contract,
    ContractPerson,
    ContractStatus,
    ContractVersion,
    DeliveryStatus,
    MilestoneStatus,
    Role,
)
from storage.queries.amendments import (
    amendments_by_id,
    approval_by,
    approvals_of,
    deciding_people,
    deciding_people_of,
    find_version,
    lock_amendment,
    pending_amendments,
    pending_amendments_of,
    version_made_by,
    version_numbers,
    versions_of,
)
from storage.queries.checkins import scheduled_of
from storage.queries.contracts import (
    ContractBundle,
    audit,
    audit_events,
    contracts_for_user,
    find_contract_for_leader,
    load_bundle,
    load_governance,
    lock_contract,
    replace_people,
)

_INDEXED = re.compile(
    r"^(?P<list>[a-z_]+)\[(?P<index>\d+)\](?P<rest>[^:]*): (?P<message>.*)$", re.S
)


def _by_handle(doc: dict[str, Any], problems: Sequence[str]) -> list[str]:
    """Problems with list indexes replaced by the items' handles, so they compare across
    documents where items moved."""
    kinds = {kind.list_name: kind for kind in KINDS.values()}
    named = []
    for problem in problems:
        match = _INDEXED.match(problem)
        kind = kinds.get(match["list"]) if match else None
        if match and kind is not None:
            handles = [h for h, _ in items_in(doc, kind)]
            index = int(match["index"])
            if index < len(handles):
                problem = f"{match['list']}[{handles[index]}]{match['rest']}: {match['message']}"
        named.append(problem)
    return named


def _where(path: str) -> str:
    """`milestones[M1].threshold` -> `M1 threshold`: a path as a person reads it."""
    match = re.fullmatch(r"[a-z_]+\[(?P<handle>[^\]]+)\]\.?(?P<rest>.*)", path)
    if match:
        return f"{match['handle']} {match['rest']}".strip()
    return "the contract" if path == "(document)" else path.replace("_", " ")


def proposal_problems(
    doc: dict[str, Any], kind: ItemKind, handle: str | None, after: Item | None
) -> list[Problem]:
    """What the import format's rules say against making this change to `doc`.

    `handle` names the item changed or removed (None: `after` is a new item). Problems the
    document had already do not count.
    """
    existing = items_in(doc, kind)
    if after is None and kind.list_name in REQUIRED_LISTS and len(existing) == 1:
        return [Problem(None, f"A contract needs at least one {kind.label}; change it instead.")]
    changed = changed_document(doc, kind, handle, after)
    _, before_problems = validate_document(doc)
    _, after_problems = validate_document(changed)
    known = set(_by_handle(doc, before_problems))
    if after is None:
        target = None
    elif handle is not None:
        target = handle
    else:
        target = str(after.get("key")) if kind.keyed else f"{kind.prefix}{len(existing) + 1}"
    own = f"{kind.list_name}[{target}]"
    found = []
    for problem in _by_handle(changed, after_problems):
        if problem in known:
            continue
        path, _, message = problem.partition(": ")
        if target is not None and path == own:
            found.append(Problem(None, message))
        elif target is not None and path.startswith(own + "."):
            found.append(Problem(path[len(own) + 1 :].split(".")[0].split("[")[0], message))
        else:
            found.append(Problem(None, f"{_where(path)}: {message}"))
    return found


async def removal_problems(
    session: AsyncSession, bundle: ContractBundle, kind: ItemKind, handle: str
) -> list[Problem]:
    """Why the item cannot be removed: it carries recorded data (as an import refuses)."""
    if not kind.keyed:
        return []
    row = next((r for r in items_of(bundle, kind.name) if r.key == handle), None)
    if row is None:
        return []
    found = await recorded_data(session, bundle, {kind.list_name: [row]})
    return [
        Problem(None, f"{handle} {reason} and cannot be removed; propose a change instead.")
        for _, _, reason in found
    ]


async def check_proposal(
    session: AsyncSession,
    bundle: ContractBundle,
    kind: ItemKind,
    handle: str | None,
    after: Item | None,
) -> list[Problem]:
    """Everything against proposing this change to the contract as it now stands."""
    doc = snapshot(bundle)
    if handle is not None and after is not None and find_item(doc, kind, handle) == after:
        return [Problem(None, "Nothing changed: edit a field, or close this form.")]
    problems = proposal_problems(doc, kind, handle, after)
    if after is None and handle is not None:
        problems += await removal_problems(session, bundle, kind, handle)
    return problems


async def contract_to_amend(
    *, session: AsyncSession, viewer: str, leader: str | None
) -> ContractBundle | Refusal:
    """The active contract `viewer` may propose an amendment to, or why there is none: the
    contract and its people, a few small statements; `load_bundle` it to show it."""
    if leader is None:
        own = await find_contract_for_leader(session=session, leader_id=viewer)
        if own is not None:
            return await _amendable(session, own, viewer)
        mine = [
            c
            for c in await contracts_for_user(session=session, user_id=viewer)
            if viewer in {c.sponsor_id, c.owner_id} and c.status == ContractStatus.active
        ]
        if not mine:
            return Refusal(
                "You have no active contract to amend. Name the leader, like "
                "`/contract amend @dana`, if you sponsor or own theirs."
            )
        if len(mine) > 1:
            names = ", ".join(sorted({f"<@{c.leader_id}>" for c in mine}))
            return Refusal(
                f"You sponsor or own several contracts ({names}): name the leader, like "
                "`/contract amend @dana`."
            )
        return await _amendable(session, mine[0], viewer)
    contract = await find_contract_for_leader(session=session, leader_id=leader)
    if contract is None:
        return Refusal(f"<@{leader}> has no contract in North Star.")
    return await _amendable(session, contract, viewer)


async def _amendable(
    session: AsyncSession, contract: Contract, viewer: str
) -> ContractBundle | Refusal:
    """The contract with its people only (enough to check, not to show), or why not."""
    bundle = await load_governance(session=session, contract_id=contract.id or 0)
    if bundle is None or not may_propose(bundle, viewer):
        return Refusal(
            "Only the leader, sponsor or owner of a contract can propose an amendment; "
            "its approvers decide on it."
        )
    return refusal_to_amend(bundle, proposer=viewer) or bundle


async def pending_keys(session: AsyncSession, contract_id: int, kind: ItemKind) -> set[str]:
    """Keys that pending amendments of `kind` will add: a new proposal must not take them."""
    rows = await pending_amendments(session=session, contract_id=contract_id, item_type=kind.name)
    # `before` is JSON: a stored None is JSON null, not SQL NULL, so it is tested here.
    return {a.item_key for a in rows if a.before is None and a.item_key}


async def new_key(session: AsyncSession, bundle: ContractBundle, kind: ItemKind) -> str:
    """The next free key for a new item, past those of items and of pending additions."""
    taken = {h for h, _ in items_in(snapshot(bundle), kind)}
    taken |= await pending_keys(session, bundle.contract.id or 0, kind)
    number = len(items_of(bundle, kind.name)) + 1
    while f"{kind.prefix}{number}" in taken:
        number += 1
    return f"{kind.prefix}{number}"


async def propose(
    *,
    session: AsyncSession,
    bundle: ContractBundle,
    proposer: str,
    kind: ItemKind,
    handle: str | None,
    after: Item | None,
    rationale: str,
    now: datetime,
    commit: bool = True,
) -> Amendment:
    """Store a pending amendment (checked with `check_proposal` first) and commit (unless
    `commit` is false: then it is part of the caller's unit of work)."""
    before = find_item(snapshot(bundle), kind, handle) if handle is not None else None
    key = handle if handle is not None else (after or {}).get("key")
    amendment = Amendment(
        contract_id=bundle.contract.id or 0,
        proposer_id=proposer,
        item_type=kind.name,
        item_key=key,
        before=before,
        after=after,
        rationale=rationale,
        status=AmendmentStatus.pending,
        base_version=bundle.contract.version,
        created_at=now,
    )
    session.add(amendment)
    await session.flush()
    audit(
        session,
        action="amendment.proposed",
        contract_id=bundle.contract.id,
        actor_id=proposer,
        detail={
            "amendment": amendment.id,
            "item": key,
            "kind": kind.name,
            "change": change_of(amendment),
            "changes": change_lines(kind, key, before, after),
        },
        at=now,
    )
    if commit:
        await session.commit()
    return amendment


def governance_rule_problems(bundle: ContractBundle, terms: GovernanceTerms) -> list[Problem]:
    """What the contract's rules and the import format's say against these governance terms;
    at most one problem a field, the contract's own first."""
    problems = governance_problems(bundle.contract.leader_id, terms)
    seen = {p.field for p in problems}
    for problem in import_rule_problems(snapshot(bundle), terms):
        if problem.field is None or problem.field not in seen:
            problems.append(problem)
            seen.add(problem.field)
    return problems


def check_governance(bundle: ContractBundle, after: GovernanceTerms) -> list[Problem]:
    """Everything against proposing these governance terms for the contract as it stands."""
    problems = governance_rule_problems(bundle, after)
    if not problems and after.model_dump(mode="json") == governance_of(bundle):
        return [Problem(None, "Nothing changed: edit a field, or close this form.")]
    return problems


async def propose_governance(
    *,
    session: AsyncSession,
    bundle: ContractBundle,
    proposer: str,
    after: GovernanceTerms,
    rationale: str,
    now: datetime,
) -> Amendment:
    """Store a pending governance amendment (checked with `check_governance` first), commit."""
    before = governance_of(bundle)
    proposed = after.model_dump(mode="json")
    amendment = Amendment(
        contract_id=bundle.contract.id or 0,
        proposer_id=proposer,
        item_type=GOVERNANCE.name,
        item_key=GOVERNANCE_KEY,
        before=before,
        after=proposed,
        rationale=rationale,
        status=AmendmentStatus.pending,
        base_version=bundle.contract.version,
        created_at=now,
    )
    session.add(amendment)
    await session.flush()
    audit(
        session,
        action="amendment.proposed",
        contract_id=bundle.contract.id,
        actor_id=proposer,
        detail={
            "amendment": amendment.id,
            "item": GOVERNANCE_KEY,
            "kind": GOVERNANCE.name,
            "change": "change",
            "changes": change_lines(GOVERNANCE, GOVERNANCE_KEY, before, proposed),
        },
        at=now,
    )
    await session.commit()
    return amendment


async def _approvers(session: AsyncSession, contract: Contract, proposer: str | None) -> list[str]:
    """Who must approve an amendment by `proposer` to the contract as it now stands."""
    people = await deciding_people(session=session, contract_id=contract.id)
    approvers = [user for role, user in people if role == Role.approver]
    return deciders(
        approvers or [contract.sponsor_id],
        proposer=proposer,
        owner=contract.owner_id,
        escalation=[user for role, user in people if role == Role.escalation],
    )


async def _approvals(session: AsyncSession, ids: Sequence[int]) -> list[AmendmentApproval]:
    return await approvals_of(session=session, amendment_ids=ids)


async def load_state(*, session: AsyncSession, amendment_id: int) -> AmendmentState | None:
    amendment = await session.get(Amendment, amendment_id)
    if amendment is None:
        return None
    contract = await session.get(Contract, amendment.contract_id)
    if contract is None:
        return None
    version = None
    if amendment.status == AmendmentStatus.applied:
        version = await version_made_by(session=session, amendment_id=amendment_id)
    return AmendmentState(
        amendment=amendment,
        contract=contract,
        approvers=await _approvers(session, contract, amendment.proposer_id),
        approvals=await _approvals(session, [amendment_id]),
        version=version,
    )


async def pending_states(*, session: AsyncSession, contract: Contract) -> list[AmendmentState]:
    """The contract's pending amendments, oldest first."""
    amendments = await pending_amendments(session=session, contract_id=contract.id)
    if not amendments:
        return []
    approvers = {
        p: await _approvers(session, contract, p) for p in {a.proposer_id for a in amendments}
    }
    approvals = await _approvals(session, [a.id or 0 for a in amendments])
    return [
        AmendmentState(
            amendment=a,
            contract=contract,
            approvers=approvers[a.proposer_id],
            approvals=[x for x in approvals if x.amendment_id == a.id],
        )
        for a in amendments
    ]


async def pending_states_of(
    *, session: AsyncSession, contracts: Sequence[Contract]
) -> dict[int, list[AmendmentState]]:
    """`pending_states` of many contracts in three statements, by contract id."""
    by_id = {c.id or 0: c for c in contracts}
    found: dict[int, list[AmendmentState]] = {cid: [] for cid in by_id}
    amendments = await pending_amendments_of(session=session, contract_ids=list(by_id))
    if not amendments:
        return found
    people = await deciding_people_of(
        session=session, contract_ids=list({a.contract_id for a in amendments})
    )
    approvals = await _approvals(session, [a.id or 0 for a in amendments])
    for a in amendments:
        contract = by_id[a.contract_id]
        deciding = people.get(a.contract_id, [])
        approvers = [user for role, user in deciding if role == Role.approver]
        found[a.contract_id].append(
            AmendmentState(
                amendment=a,
                contract=contract,
                approvers=deciders(
                    approvers or [contract.sponsor_id],
                    proposer=a.proposer_id,
                    owner=contract.owner_id,
                    escalation=[user for role, user in deciding if role == Role.escalation],
                ),
                approvals=[x for x in approvals if x.amendment_id == a.id],
            )
        )
    return found


async def pending_on_item(
    *, session: AsyncSession, contract: Contract, kind: str, key: str | None
) -> list[int]:
    """Ids of the pending amendments to one item (none for a new item)."""
    if key is None:
        return []
    return [
        s.id
        for s in await pending_states(session=session, contract=contract)
        if (s.amendment.item_type, s.amendment.item_key) == (kind, key)
    ]


async def decide(
    *,
    sessions: SessionFactory,
    amendment_id: int,
    user: str,
    approve: bool,
    reason: str = "",
    now: datetime,
) -> Decision:
    """Record `user`'s approval or rejection; apply the change when it was the last approval.

    Everything happens in one transaction, with the amendment row locked first.
    """
    async with sessions() as session:
        await writing(session)
        try:
            decision = await _decide(session, amendment_id, user, approve, reason, now)
            await session.commit()
            return decision
        except IntegrityError:
            await session.rollback()
    async with sessions() as session:
        mine = await approval_by(session=session, amendment_id=amendment_id, approver_id=user)
    if mine is not None:
        return Decision(Outcome.already, amendment_id)
    return Decision(
        Outcome.conflict,
        amendment_id,
        "Another change to this contract was saved at the same moment; nothing was recorded. "
        "Please click again.",
    )


async def _decide(
    session: AsyncSession,
    amendment_id: int,
    user: str,
    approve: bool,
    reason: str,
    now: datetime,
) -> Decision:
    amendment = await lock_amendment(session=session, amendment_id=amendment_id)
    if amendment is None:
        return Decision(Outcome.missing, amendment_id)
    contract = await lock_contract(session=session, contract_id=amendment.contract_id)
    if contract is None:
        return Decision(Outcome.missing, amendment_id)
    approvers = await _approvers(session, contract, amendment.proposer_id)
    if user not in approvers:
        return Decision(Outcome.not_approver, amendment_id, approvers=tuple(approvers))
    if amendment.status != AmendmentStatus.pending:
        return Decision(Outcome.closed, amendment_id, amendment.decision_reason)
    approvals = await _approvals(session, [amendment_id])
    if any(a.approver_id == user for a in approvals):
        return Decision(Outcome.already, amendment_id)

    if not approve:
        session.add(
            AmendmentApproval(
                amendment_id=amendment_id,
                approver_id=user,
                decision=REJECTED,
                reason=reason,
                decided_at=now,
            )
        )
        _close(amendment, AmendmentStatus.rejected, reason, now)
        audit(
            session,
            action="amendment.rejected",
            contract_id=contract.id,
            actor_id=user,
            detail={"amendment": amendment_id, "reason": reason},
            at=now,
        )
        return Decision(Outcome.rejected, amendment_id, reason)

    bundle = await load_bundle(session=session, contract_id=contract.id or 0)
    if bundle is None:
        return Decision(Outcome.missing, amendment_id)
    why = await stale_reason(session, bundle, amendment)
    if why is not None:
        _close(amendment, AmendmentStatus.stale, why, now)
        audit(
            session,
            action="amendment.stale",
            contract_id=contract.id,
            actor_id=user,
            detail={"amendment": amendment_id, "reason": why},
            at=now,
        )
        return Decision(Outcome.stale, amendment_id, why)

    session.add(
        AmendmentApproval(
            amendment_id=amendment_id, approver_id=user, decision=APPROVED, decided_at=now
        )
    )
    approved = {a.approver_id for a in approvals if a.decision == APPROVED} | {user}
    if not set(approvers) <= approved:
        audit(
            session,
            action="amendment.approved",
            contract_id=contract.id,
            actor_id=user,
            detail={"amendment": amendment_id},
            at=now,
        )
        return Decision(Outcome.waiting, amendment_id, approvers=tuple(approvers))
    version = await _apply(session, bundle, amendment, actor=user, now=now)
    return Decision(Outcome.applied, amendment_id, f"version {version}")


def _close(amendment: Amendment, status: AmendmentStatus, reason: str, now: datetime) -> None:
    amendment.status = status
    amendment.decision_reason = reason
    amendment.decided_at = now


async def stale_reason(
    session: AsyncSession, bundle: ContractBundle, amendment: Amendment
) -> str | None:
    """Why the amendment can no longer apply to the contract as it now stands, or None."""
    kind = kind_named(amendment.item_type) or GOVERNANCE
    if kind is GOVERNANCE:
        now = governance_of(bundle)
        if not governance_unchanged(now, amendment.before):
            return "the governance changed after this amendment was proposed"
        problems = governance_rule_problems(bundle, governance_after(now, amendment.after))
        if problems:
            listed = "; ".join(p.text for p in problems)
            return f"it no longer fits the contract as it now stands ({listed})"
        return None
    doc = snapshot(bundle)
    handle = amendment.item_key
    if amendment.before is not None:
        current = find_item(doc, kind, handle)
        if current is None:
            return f"{handle} was removed after this amendment was proposed"
        if current != amendment.before:
            return f"{handle} changed after this amendment was proposed"
    elif kind.keyed and find_item(doc, kind, handle) is not None:
        return f"another change added an item {handle} after this amendment was proposed"
    existing = handle if amendment.before is not None else None
    problems = proposal_problems(doc, kind, existing, amendment.after)
    if amendment.after is None and handle is not None:
        problems += await removal_problems(session, bundle, kind, handle)
    if problems:
        listed = "; ".join(p.text for p in problems)
        return f"it no longer fits the contract as it now stands ({listed})"
    return None


def _row_for(bundle: ContractBundle, kind: ItemKind, handle: str | None) -> Any | None:
    rows = items_of(bundle, kind.name)
    if kind.keyed:
        return next((row for row in rows if row.key == handle), None)
    number = handle[len(kind.prefix) :] if handle else ""
    index = int(number) - 1 if number.isdigit() else -1
    return rows[index] if 0 <= index < len(rows) else None


async def _apply(
    session: AsyncSession,
    bundle: ContractBundle,
    amendment: Amendment,
    *,
    actor: str,
    now: datetime,
) -> int:
    """Write the change, the next version and its audit event into the session; the version."""
    kind = kind_named(amendment.item_type) or GOVERNANCE
    contract = bundle.contract
    if kind is GOVERNANCE:
        terms = governance_after(governance_of(bundle), amendment.after)
        await _apply_governance(session, contract, terms)
    else:
        await _apply_item(session, bundle, kind, amendment, now=now)
    contract.version += 1
    contract.updated_at = now
    session.add(contract)
    _close(amendment, AmendmentStatus.applied, "", now)
    changes = change_lines(kind, amendment.item_key, amendment.before, amendment.after)
    words = governance_changes(amendment.before, amendment.after) if kind is GOVERNANCE else []
    await add_version(
        session,
        contract,
        actor_id=amendment.proposer_id,
        now=now,
        reason=version_reason(amendment)[:200],
        amendment_id=amendment.id,
    )
    audit(
        session,
        action="amendment.applied",
        contract_id=contract.id,
        actor_id=actor,
        detail={
            "amendment": amendment.id,
            "version": contract.version,
            "changes": changes,
            **({"words": words} if words else {}),
        },
        at=now,
    )
    return contract.version


async def _apply_item(
    session: AsyncSession,
    bundle: ContractBundle,
    kind: ItemKind,
    amendment: Amendment,
    *,
    now: datetime,
) -> None:
    """Write an item's change (added, changed or removed) into the session."""
    contract = bundle.contract
    row = _row_for(bundle, kind, amendment.item_key) if amendment.before is not None else None
    if amendment.after is None:
        await session.delete(row)
        return
    item = kind.model.model_validate(amendment.after)
    rows = items_of(bundle, kind.name)
    position = row.position if row is not None else max((r.position for r in rows), default=-1) + 1
    extra: dict[str, Any] = {}
    if kind.name == "milestone" and (row is None or row.due != getattr(item, "due", None)):
        # A date set now is news from now, even if its day is over (`worth_telling`).
        extra["due_set_at"] = now
    write_item(
        session,
        name=kind.list_name,
        contract_id=contract.id or 0,
        row=row,
        item=item,
        position=position,
        now=now,
        extra=extra,
    )
    if row is not None and kind.name == "milestone" and row.status == MilestoneStatus.missed:
        # A recalibrated milestone (new date or target) is decided afresh; missed_count
        # keeps the history, so a second miss still escalates.
        row.status = MilestoneStatus.pending
        row.decided_at = None


async def _replan_reminders(session: AsyncSession, contract: Contract, hours: int) -> None:
    """Check-in reminders already scheduled follow a new reminder delay: moved by the
    difference, or cancelled when there is to be no reminder."""
    shift = timedelta(hours=hours - contract.reminder_hours)
    for row in await scheduled_of(session=session, kind=REMINDER, contract_id=contract.id or 0):
        if hours == 0:
            row.status = DeliveryStatus.cancelled
        elif row.due_at is not None:
            row.due_at += shift
            row.claimed_at = row.due_at  # a scheduled row is claimable from then
        session.add(row)


async def _apply_governance(
    session: AsyncSession, contract: Contract, terms: GovernanceTerms
) -> None:
    """Set the contract's governance terms: its fields, and who holds each many-valued role.

    The scheduled loops read these fields on every run, so the next check-in prompt, reminder,
    digest, review and period report follow the new schedule and audience without anything
    being re-planned here; the feedback modal reads the rater groups when it opens.
    """
    contract.owner_id = terms.owner
    contract.anonymity_threshold = terms.anonymity_threshold
    contract.escalation_days = terms.escalation_days
    contract.feedback_cadence = terms.feedback_cadence
    contract.digest_cadence = terms.digest_cadence
    contract.review_cadence = terms.review_cadence
    contract.checkin_weekday = rules.WEEKDAY_NAMES.index(terms.checkin_weekday)
    contract.checkin_time = terms.checkin_time
    contract.checkin_timezone = terms.checkin_timezone
    if terms.reminder_hours != contract.reminder_hours:
        await _replan_reminders(session, contract, terms.reminder_hours)
    contract.reminder_hours = terms.reminder_hours
    contract.report_cadence = terms.report_cadence
    contract.report_channel = terms.report_channel
    contract_id = contract.id or 0
    for role, people in (
        (Role.approver, terms.approvers),
        (Role.escalation, terms.escalation),
        (Role.reviewer, terms.reviewers),
        (Role.report_reader, terms.report_readers),
        (Role.peer, terms.peers),
        (Role.direct_report, terms.direct_reports),
        (Role.stakeholder, terms.stakeholders),
    ):
        await replace_people(session, contract_id=contract_id, role=role, user_ids=people)


LINE_DEPTH = 20  # how many replaced contracts back a contract's line is followed


async def replaced_line(*, session: AsyncSession, contract: Contract) -> list[Contract]:
    """The contracts this one replaced on agreement, the latest first (each closed, kept)."""
    line: list[Contract] = []
    seen = {contract.id}
    previous = contract.replaces_contract_id
    while previous is not None and previous not in seen and len(line) < LINE_DEPTH:
        found = await session.get(Contract, previous)
        if found is None:
            break
        line.append(found)
        seen.add(found.id)
        previous = found.replaces_contract_id
    return line


async def history(*, session: AsyncSession, contract_id: int) -> History:
    """A contract's versions and audit log, newest first, with those of the contracts it
    replaced on agreement: one line of versions (a replacing contract's continue the old)."""
    ids_in_line = [contract_id]
    contract = await session.get(Contract, contract_id)
    if contract is not None:
        ids_in_line += [c.id or 0 for c in await replaced_line(session=session, contract=contract)]
    versions: list[ContractVersion] = []
    events = []
    for one in ids_in_line:
        versions += await versions_of(session=session, contract_id=one)
        events += await audit_events(session=session, contract_id=one)
    versions.sort(key=lambda v: (v.version, v.created_at), reverse=True)
    events.sort(key=lambda e: (e.created_at, e.id or 0), reverse=True)
    ids = [v.amendment_id for v in versions if v.amendment_id is not None]
    amendments = await amendments_by_id(session=session, ids=ids)
    return History(versions=versions, amendments=amendments, events=events)


async def version_to_show(
    *, session: AsyncSession, bundle: ContractBundle, version: int, viewer: str | None = None
) -> tuple[ContractBundle, ContractVersion] | Refusal:
    """The contract as version `version` had it, with today's recorded figures, or why not.

    A version before this contract's first is looked for in the contracts it replaced (closed,
    kept readable), shown with their own figures, to a `viewer` who may read that contract.
    """
    c = bundle.contract
    stored = await find_version(session=session, contract_id=c.id, version=version)
    if stored is None:
        for older in await replaced_line(session=session, contract=c):
            stored = await find_version(session=session, contract_id=older.id, version=version)
            if stored is None:
                continue
            old = await load_bundle(session=session, contract_id=older.id or 0)
            if old is None or (viewer is not None and not may_read(old, viewer)):
                return Refusal(
                    f"Version {version} belongs to an earlier contract of "
                    f"<@{c.leader_id}>'s that you cannot read."
                )
            return bundle_from_snapshot(stored.snapshot, current=old, version=version), stored
    if stored is None:
        numbers = await version_numbers(session=session, contract_id=c.id)
        if not numbers:
            return Refusal(
                f"“{escape(c.title)}” has no versions yet: a contract gets version 1 when it is "
                "activated."
            )
        listed = ", ".join(f"v{n}" for n in numbers)
        return Refusal(f"“{escape(c.title)}” has no version {version}. Its versions: {listed}.")
    return bundle_from_snapshot(stored.snapshot, current=bundle, version=version), stored


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) and value else None


def bundle_from_snapshot(
    data: dict[str, Any], *, current: ContractBundle, version: int
) -> ContractBundle:
    """A ContractBundle of a version's snapshot, for the ordinary summary builder.

    The terms are the snapshot's; what was recorded (measurements, activity progress,
    milestone decisions, check-ins, evidence) is today's, matched by key.
    """
    now = current.contract
    period = data.get("period") or {}
    checkin = data.get("checkin") or {}
    digest = data.get("digest") or {}
    governance = data.get("governance") or {}
    contract = Contract(
        id=now.id,
        title=data.get("title", now.title),
        leader_id=data.get("leader", now.leader_id),
        sponsor_id=data.get("sponsor", now.sponsor_id),
        owner_id=governance.get("owner"),
        status=now.status,
        version=version,
        mission=data.get("mission", ""),
        period_start=_day(period.get("start")) or now.period_start,
        period_end=_day(period.get("end")) or now.period_end,
        checkin_weekday=_weekday(checkin.get("weekday"), now.checkin_weekday),
        checkin_time=checkin.get("time", now.checkin_time),
        checkin_timezone=checkin.get("timezone"),
        feedback_cadence=(data.get("feedback") or {}).get("cadence"),
        digest_cadence=digest.get("cadence", now.digest_cadence),
        digest_weekday=_weekday(digest.get("weekday"), now.digest_weekday),
        digest_time=digest.get("time", now.digest_time),
        reporting=governance.get("reporting", ""),
        report_cadence=(governance.get("report") or {}).get("cadence"),
        report_channel=(governance.get("report") or {}).get("channel"),
        escalation_days=governance.get("escalation_days", now.escalation_days),
        recognition_channel=(data.get("recognition") or {}).get("channel"),
        created_at=now.created_at,
        updated_at=now.updated_at,
    )
    people = [
        ContractPerson(contract_id=now.id or 0, role=role, user_id=user, position=position)
        for role, users in (
            (Role.approver, governance.get("approvers") or []),
            (Role.escalation, governance.get("escalation") or []),
            (Role.reviewer, (data.get("feedback") or {}).get("reviewers") or []),
            (Role.report_reader, (governance.get("report") or {}).get("readers") or []),
            (Role.peer, (data.get("feedback") or {}).get("peers") or []),
            (Role.direct_report, (data.get("feedback") or {}).get("direct_reports") or []),
            (Role.stakeholder, (data.get("feedback") or {}).get("stakeholders") or []),
        )
        for position, user in enumerate(users)
    ]
    terms: dict[str, Any] = {}
    for kind in KINDS.values():
        spec = ITEM_LISTS[kind.list_name]
        today = {row.key: row for row in items_of(current, kind.name)} if kind.keyed else {}
        rows = []
        for position, item in enumerate(data.get(kind.list_name) or []):
            values = {
                column: _day(item.get(name)) if name in ("start", "due") else item.get(name)
                for name, column in spec.columns.items()
            }
            row = spec.model(contract_id=now.id or 0, position=position, **values)
            recorded = today.get(item.get("key"))
            if recorded is not None:
                row.id = recorded.id  # today's measurements are found by indicator id
                for name in ("status", "progress", "decided_at", "missed_count"):
                    if hasattr(recorded, name):
                        setattr(row, name, getattr(recorded, name))
            rows.append(row)
        terms[spec.bundle_list] = rows
    # Everything else the bundle holds (what was recorded) stays today's.
    return dataclasses.replace(current, contract=contract, people=people, **terms)


def _weekday(name: Any, default: int) -> int:
    return rules.WEEKDAY_NAMES.index(name) if name in rules.WEEKDAY_NAMES else default


async def summary_view(
    *,
    session: AsyncSession,
    bundle: ContractBundle,
    version: int | None,
    viewer: str | None = None,
) -> SummaryView | Refusal:
    if version is None:
        pending = await pending_states(session=session, contract=bundle.contract)
        return SummaryView(bundle=bundle, pending=pending)
    found = await version_to_show(session=session, bundle=bundle, version=version, viewer=viewer)
    if isinstance(found, Refusal):
        return found
    old, stored = found
    return SummaryView(old, [], version=stored, latest=bundle.contract.version)
