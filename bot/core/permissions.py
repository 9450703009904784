"""Who may do what with a contract: every permission rule, read from the contract's roles,
and the `Refusal` a person gets when they may not (or when there is nothing to give them).

Leader, sponsor, owner, approvers and escalation contacts read a contract; its leader,
sponsor, owner and creator change a draft; its leader, sponsor and owner propose amendments,
add evidence and resolve risks (as does a risk's owner who reads the contract); its leader,
sponsor and owner read the feedback about the leader, and its leader and sponsor ask for
feedback. A peer reads only what they wrote (`bot.feedback`).
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.models import Role
from storage.queries.contracts import ContractBundle


@dataclass(frozen=True, slots=True)
class Refusal:
    """A short sentence telling the person why they get nothing; `field` names what it is
    about when it answers a form (the form's surface puts it by that field)."""

    text: str
    field: str | None = None


READERS = frozenset({Role.leader, Role.sponsor, Role.owner, Role.approver, Role.escalation})
PROPOSERS = frozenset({Role.leader, Role.sponsor, Role.owner})
EVIDENCE_ADDERS = frozenset({Role.leader, Role.sponsor, Role.owner})
FEEDBACK_READERS = frozenset({Role.leader, Role.sponsor, Role.owner})
FEEDBACK_REQUESTERS = frozenset({Role.leader, Role.sponsor})
CHECKIN_ANSWERERS = frozenset({Role.sponsor, Role.owner, Role.approver})
NUDGERS = frozenset({Role.sponsor, Role.owner})


def may_read(bundle: ContractBundle, user_id: str) -> bool:
    """Whether `user_id` reads the contract: its summary, history and App Home entry."""
    return bool(bundle.roles_of(user_id) & READERS)


def may_ask_report(bundle: ContractBundle, user_id: str) -> bool:
    """Who may ask for the period report of a contract: its owner and its report readers."""
    return bool(bundle.roles_of(user_id) & {Role.owner, Role.report_reader})


def may_edit(bundle: ContractBundle, user_id: str) -> bool:
    """Who may change a draft directly: its leader, sponsor, owner and creator."""
    c = bundle.contract
    return user_id in {c.leader_id, c.sponsor_id, c.owner_id, c.created_by}


def may_propose(bundle: ContractBundle, user_id: str) -> bool:
    """Who may propose an amendment (its approvers decide on it)."""
    c = bundle.contract
    return user_id in {c.leader_id, c.sponsor_id, c.owner_id}


def may_close(bundle: ContractBundle, user_id: str) -> bool:
    """Who closes a contract with `/contract close`: its owner."""
    return bundle.contract.owner_id is not None and bundle.contract.owner_id == user_id


def may_decide_end(bundle: ContractBundle, user_id: str) -> bool:
    """Who closes or renews a contract at the end of its period: its owner or its sponsor."""
    c = bundle.contract
    return user_id in {c.owner_id, c.sponsor_id}


def may_resolve_risk(bundle: ContractBundle, user_id: str, risk_owner: str | None) -> bool:
    """Who resolves a risk: the contract's leader, sponsor and owner, and the risk's owner
    while they read the contract (the summary they resolve it from is theirs to read)."""
    c = bundle.contract
    if user_id in {c.leader_id, c.sponsor_id, c.owner_id}:
        return True
    return risk_owner is not None and risk_owner == user_id and may_read(bundle, user_id)


def may_add_evidence(bundle: ContractBundle, user_id: str) -> bool:
    return bool(bundle.roles_of(user_id) & EVIDENCE_ADDERS)


def may_read_feedback(bundle: ContractBundle, user_id: str) -> bool:
    """Feedback about a leader: the leader, their sponsor and the contract's owner."""
    return bool(bundle.roles_of(user_id) & FEEDBACK_READERS)


def may_request_feedback(bundle: ContractBundle, user_id: str) -> bool:
    return bool(bundle.roles_of(user_id) & FEEDBACK_REQUESTERS)


def may_answer_checkin(bundle: ContractBundle, user_id: str) -> bool:
    """Who replies to a leader's check-in: those who govern the contract (sponsor, owner,
    approvers); escalation contacts read it but answer through the sponsor."""
    return bool(bundle.roles_of(user_id) & CHECKIN_ANSWERERS)


def may_nudge(bundle: ContractBundle, user_id: str) -> bool:
    """Who nudges a leader about a missed check-in: the digest's readers, sponsor and owner."""
    return bool(bundle.roles_of(user_id) & NUDGERS)
