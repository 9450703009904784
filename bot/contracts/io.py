"""Contracts in: validate and import files in the import format (bot.contracts.export: out).

An import writes nothing unless every document of the file is valid and every e-mail
address resolves; all documents of one file are stored in one transaction. Importing a
contract that is already stored (same leader and title) is an administrative amendment: the
contract is updated in place, item by item through their keys, so recorded measurements,
evidence and progress stay attached; an import never deletes recorded data.

Drafts carry no versions: a contract's first readable version is written when it becomes
active (by an import with `--agreed`, or when its parties agree: `bot.contracts.agreement`).
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.contracts.agreement import agreed_outside_slack, refresh_terms
from bot.contracts.document import ITEM_LISTS, diff_documents, snapshot
from bot.contracts.schema import (
    MAX_FILE_BYTES,
    SLACK_USER,
    ContractDocument,
    DocumentError,
    is_email,
    normalised,
    parse_documents,
    validate_document,
)
from bot.core import rules
from bot.people.service import check_person, own_user_id, problem_with
from storage.db import SessionFactory, writing
from storage.models import (
    ActivityStatus,
    Contract,
    ContractStatus,
    ContractVersion,
    DevelopmentActivity,
    MilestoneStatus,
    Role,
)
from storage.queries.contracts import (
    ContractBundle,
    active_contract_for_leader,
    audit,
    feedback_per_expectation,
    find_contract,
    load_bundle,
    replace_people,
)

AMENDMENT_REASON = "administrative amendment (import)"
MAX_PROBLEM_CHARS = 300
ACTIVATION_REASON = "activated (import)"


@dataclass
class ImportResult:
    """What importing one document did. `notes` say what was asked for but not done."""

    contract_id: int
    title: str
    leader_id: str
    outcome: Literal["created", "unchanged", "updated"]
    version: int
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class ContractImportError(Exception):
    """An import the stored contract refuses; `problems` are `path: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- people ---------------------------------------------------------------------------


PERSON_FIELDS = (
    "leader",
    "sponsor",
    "governance.owner",
    "governance.approvers",
    "governance.escalation",
    "governance.report.readers",
    "feedback.reviewers",
    "feedback.peers",
    "feedback.direct_reports",
    "feedback.stakeholders",
)


def _person_slots(data: Any) -> Iterator[tuple[str, Any, str | int]]:
    """(path, container, index) of every person written in a document dict."""
    for field_path in PERSON_FIELDS:
        *parents, name = field_path.split(".")
        container = data
        for parent in parents:
            container = container.get(parent) if isinstance(container, dict) else None
        if not isinstance(container, dict):
            continue
        value = container.get(name)
        if isinstance(value, str):
            yield field_path, container, name
        elif isinstance(value, list):
            for index, person in enumerate(value):
                if isinstance(person, str):
                    yield f"{field_path}[{index}]", value, index


def _emails_in(data: Any) -> list[tuple[str, str]]:
    """(path, address) of every e-mail address given for a person."""
    found = ((path, box[at]) for path, box, at in _person_slots(data))
    return [(path, person.strip()) for path, person in found if is_email(person)]


class _Directory:
    """E-mail addresses to Slack user ids, and whether each user may take a part in a
    contract; each distinct address and user is asked of Slack once."""

    def __init__(self, client: AsyncWebClient | None) -> None:
        self.client = client
        self.answers: dict[str, tuple[str | None, str | None]] = {}
        self.checked: dict[str, str | None] = {}

    async def problem_with(self, user_id: str) -> str | None:
        """Why `user_id` cannot take a part (a bot, deactivated, unknown here), or None.

        Without a Slack client nobody can be checked, and None is the answer.
        """
        if self.client is None:
            return None
        if user_id not in self.checked:
            own_id = await own_user_id(self.client)
            self.checked[user_id] = await check_person(self.client, user_id, own_id=own_id)
        return self.checked[user_id]

    async def lookup(self, email: str) -> tuple[str | None, str | None]:
        """(user id, None) or (None, why not)."""
        key = email.lower()
        if key not in self.answers:
            self.answers[key] = await self._ask(email)
        return self.answers[key]

    async def _ask(self, email: str) -> tuple[str | None, str | None]:
        if self.client is None:
            return None, (
                f"{email} is an e-mail address: looking it up in Slack needs SLACK_BOT_TOKEN "
                "(or give the Slack user id instead)"
            )
        try:
            response = await self.client.users_lookupByEmail(email=email)
        except SlackApiError as error:
            code = error.response.get("error")
            if code == "users_not_found":
                return None, f"no Slack user with e-mail {email}"
            hint = " (the app needs the users:read.email scope)" if code == "missing_scope" else ""
            return None, f"could not look up {email} in Slack: {code}{hint}"
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as error:
            why = str(error) or type(error).__name__
            return None, f"could not reach Slack to look up {email}: {why}"
        user = response.get("user") or {}
        if user.get("deleted"):
            return None, f"{email} belongs to a deactivated Slack user"
        self.checked[str(user["id"])] = problem_with(user, own_id=await own_user_id(self.client))
        return str(user["id"]), None


async def resolve_people(
    doc: ContractDocument, *, client: AsyncWebClient | None
) -> tuple[ContractDocument, list[str]]:
    """The document with every e-mail address replaced by its Slack user id, or the problems."""
    data = normalised(doc)
    if not _emails_in(data):
        return doc, []
    data, problems = await _resolve(data, _Directory(client))
    if problems:
        return doc, problems
    resolved, problems = validate_document(data)
    return (resolved, []) if resolved is not None else (doc, problems)


def emails_to_look_up(doc: ContractDocument) -> list[tuple[str, str]]:
    """(path, address) of each e-mail address a valid document still holds: an import looks
    them up in Slack (`users.lookupByEmail`)."""
    return _emails_in(normalised(doc))


async def _resolve(
    data: Any, directory: _Directory, *, defer_lookups: bool = False
) -> tuple[Any, list[str]]:
    """A copy of a document dict with its e-mail addresses replaced by Slack user ids, and a
    problem for each address that does not resolve, at the first place it is written.

    `defer_lookups` without a Slack client leaves the addresses as they are, for an import
    to look up (validating offline)."""
    resolved = copy.deepcopy(data)
    problems: list[str] = []
    reported: set[str] = set()
    if defer_lookups and directory.client is None:
        return resolved, problems
    for path, box, at in _person_slots(resolved):
        if not is_email(box[at]):
            continue
        email = box[at].strip()
        user_id, problem = await directory.lookup(email)
        if user_id is not None:
            box[at] = user_id
        elif email.lower() not in reported:
            reported.add(email.lower())
            problems.append(f"{path}: {problem}")
    return resolved, problems


async def _people_problems(data: Any, directory: _Directory) -> list[str]:
    """`path: problem` for each Slack user id written for a person who cannot take a part in
    a contract: North Star itself, another bot, a deactivated account, an unknown id."""
    problems = []
    for path, box, at in _person_slots(data):
        user_id = box[at].strip()
        if not SLACK_USER.fullmatch(user_id):
            continue
        problem = await directory.problem_with(user_id)
        if problem is not None:
            problems.append(f"{path}: {user_id} {problem}")
    return problems


# --- validating and importing files -----------------------------------------------------


async def read_contract_file(path: str | Path) -> str:
    """The text of a contract file; DocumentError when it cannot be read or is larger than
    `MAX_FILE_BYTES` (known from its size, or from reading one byte more than that: a
    device such as /dev/zero claims no size)."""
    file = Path(path)
    too_large = f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB; a contract file is far smaller"

    def read() -> bytes:
        with file.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size > MAX_FILE_BYTES:
                raise DocumentError(too_large)
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise DocumentError(too_large)
        return data

    try:
        data = await asyncio.to_thread(read)
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DocumentError(f"{path}: not a UTF-8 text file") from None
    except OSError as error:
        raise DocumentError(f"{path}: cannot read the file: {error.strerror}") from None


async def validate_text(
    text: str, *, filename: str, client: AsyncWebClient | None, defer_lookups: bool = False
) -> tuple[list[ContractDocument], list[str]]:
    """Parse, validate and resolve every document; the documents only when all are clean.

    Problems of the n-th document of a file with several start with `[n] `. Without a client
    and with `defer_lookups`, e-mail addresses stay in the documents unresolved
    (`emails_to_look_up`) instead of being problems: the form is checked offline.
    """
    try:
        found = parse_documents(text, filename=filename)
    except DocumentError as error:
        return [], [str(error)]
    several = len(found) > 1
    directory = _Directory(client)
    docs: list[ContractDocument] = []
    problems: list[str] = []
    first_of: dict[tuple[str, str], int] = {}
    for index, data in enumerate(found, 1):
        tag = f"[{index}] " if several else ""
        resolved, unknown = await _resolve(data, directory, defer_lookups=defer_lookups)
        doc, own = validate_document(resolved)
        own += unknown
        own += await _people_problems(resolved, directory)
        problems += [tag + problem for problem in own]
        if doc is None or own:
            continue
        identity = (doc.leader, doc.title)
        if identity in first_of:
            problems.append(
                f"{tag}title: document {first_of[identity]} has the same leader and title"
            )
        first_of.setdefault(identity, index)
        docs.append(doc)
    if problems:
        return [], [truncate_problem(problem) for problem in problems]
    return docs, []


def truncate_problem(problem: str, limit: int = MAX_PROBLEM_CHARS) -> str:
    """A problem line cut to `limit` characters, whatever value it quotes."""
    return problem if len(problem) <= limit else problem[: limit - 1] + "…"


async def validate_file(
    path: str | Path, *, client: AsyncWebClient | None, defer_lookups: bool = False
) -> tuple[list[ContractDocument], list[str]]:
    """`validate_text` for a file on disk."""
    try:
        text = await read_contract_file(path)
    except DocumentError as error:
        return [], [str(error)]
    return await validate_text(text, filename=str(path), client=client, defer_lookups=defer_lookups)


async def import_text(
    text: str,
    *,
    filename: str,
    sessions: SessionFactory,
    client: AsyncWebClient | None,
    draft: bool,
    now: datetime,
    actor_id: str | None = None,
    for_agreement: bool = False,
    operator: str | None = None,
) -> tuple[list[ImportResult], list[str]]:
    """Import every document of a file's text in one transaction, or nothing and the problems.

    `draft=False` stores an active contract whose parties agreed outside Slack (`--agreed`,
    recorded in the audit log with `operator`, who ran the import); `for_agreement` (with
    `draft`) sends the draft for agreement, its DMs going out with the bot's next run of
    the `agreements` job.
    """
    docs, problems = await validate_text(text, filename=filename, client=client)
    if problems:
        return [], problems
    results: list[ImportResult] = []
    async with sessions() as session:
        await writing(session)
        try:
            for index, doc in enumerate(docs, 1):
                tag = f"[{index}] " if len(docs) > 1 else ""
                try:
                    results.append(
                        await import_document(
                            doc,
                            session=session,
                            actor_id=actor_id,
                            draft=draft,
                            now=now,
                            for_agreement=for_agreement,
                            operator=operator,
                        )
                    )
                except ContractImportError as error:
                    problems += [tag + problem for problem in error.problems]
            if problems:
                await session.rollback()
                return [], problems
            await session.commit()
        except IntegrityError:
            # A concurrent write won (the same contract, or another active contract of the
            # same leader); nothing of this import is kept.
            await session.rollback()
            return [], [
                f"{filename}: another change to the same contract or leader was saved at the "
                "same time; nothing was imported, run the import again"
            ]
    return results, []


async def import_file(
    path: str | Path,
    *,
    sessions: SessionFactory,
    client: AsyncWebClient | None,
    draft: bool,
    now: datetime,
    actor_id: str | None = None,
    for_agreement: bool = False,
    operator: str | None = None,
) -> tuple[list[ImportResult], list[str]]:
    """`import_text` for a file on disk."""
    try:
        text = await read_contract_file(path)
    except DocumentError as error:
        return [], [str(error)]
    return await import_text(
        text,
        filename=str(path),
        sessions=sessions,
        client=client,
        draft=draft,
        now=now,
        actor_id=actor_id,
        for_agreement=for_agreement,
        operator=operator,
    )


# --- importing one document -----------------------------------------------------------


async def import_document(
    doc: ContractDocument,
    *,
    session: AsyncSession,
    actor_id: str | None,
    draft: bool,
    now: datetime,
    for_agreement: bool = False,
    operator: str | None = None,
) -> ImportResult:
    """Create, or amend in place, the contract of one resolved document (the caller commits).

    Raises ContractImportError when the stored contract refuses the change, and ValueError
    when the document still holds e-mail addresses (see `resolve_people`).
    """
    emails = _emails_in(normalised(doc))
    if emails:
        listed = ", ".join(f"{path} ({email})" for path, email in emails)
        raise ValueError(f"resolve the e-mail addresses first: {listed}")
    existing = await find_contract(session=session, leader_id=doc.leader, title=doc.title)
    if existing is None:
        result = await _create(doc, session=session, actor_id=actor_id, draft=draft, now=now)
    else:
        bundle = await load_bundle(session=session, contract_id=existing.id or 0)
        if bundle is None:
            raise LookupError(f"contract {existing.id} vanished during the import")
        result = await _amend(bundle, doc, session=session, actor_id=actor_id, draft=draft, now=now)
    contract = await session.get(Contract, result.contract_id)
    assert contract is not None
    if not draft and result.outcome != "unchanged" and contract.status == ContractStatus.active:
        if existing is None or result.changes[:1] == ["status: draft -> active"]:
            await agreed_outside_slack(
                session, contract, operator=operator or actor_id or "unknown", now=now
            )
    elif draft and for_agreement and contract.status == ContractStatus.draft:
        await _send_imported(session, contract, actor_id=actor_id, now=now)
        result.notes.append(
            "sent for agreement: its leader, sponsor and owner each get a DM from the "
            "running bot, and it starts once all have agreed (--agreed: agreed outside Slack)"
        )
    await session.flush()
    return result


async def _send_imported(
    session: AsyncSession, contract: Contract, *, actor_id: str | None, now: datetime
) -> None:
    """An imported draft out for agreement: the `agreements` job sends its DMs."""
    await session.flush()
    bundle = await load_bundle(session=session, contract_id=contract.id or 0)
    assert bundle is not None
    first = contract.agreement_sent_at is None
    changed = refresh_terms(session, bundle, actor=actor_id, now=now)
    if first or changed:
        contract.agreement_sent_at = now
        contract.agreement_sent_by = actor_id
        session.add(contract)
        audit(
            session,
            action="contract.sent_for_agreement",
            contract_id=contract.id,
            actor_id=actor_id,
            detail={"version": contract.terms_version, "by_import": True, "again": not first},
            at=now,
        )


async def _create(
    doc: ContractDocument,
    *,
    session: AsyncSession,
    actor_id: str | None,
    draft: bool,
    now: datetime,
) -> ImportResult:
    status = ContractStatus.draft if draft else ContractStatus.active
    if status == ContractStatus.active:
        await _refuse_second_active(session, doc, contract_id=None)
    contract = Contract(
        title=doc.title,
        leader_id=doc.leader,
        sponsor_id=doc.sponsor,
        period_start=doc.period.start,
        period_end=doc.period.end,
        status=status,
        version=1,
        created_by=actor_id,
        created_at=now,
        updated_at=now,
    )
    _set_fields(contract, doc)
    session.add(contract)
    await session.flush()
    contract_id = contract.id or 0
    await _write_items(session, contract_id=contract_id, bundle=None, doc=doc, now=now)
    if status == ContractStatus.active:
        await add_version(session, contract, actor_id=actor_id, now=now, reason="import")
    audit(
        session,
        action="contract.imported",
        contract_id=contract_id,
        actor_id=actor_id,
        detail={"title": doc.title, "status": str(status), "version": 1},
        at=now,
    )
    await session.flush()
    return ImportResult(contract_id, doc.title, doc.leader, "created", 1)


async def _amend(
    bundle: ContractBundle,
    doc: ContractDocument,
    *,
    session: AsyncSession,
    actor_id: str | None,
    draft: bool,
    now: datetime,
) -> ImportResult:
    contract = bundle.contract
    contract_id = contract.id or 0
    if contract.status == ContractStatus.closed:
        raise ContractImportError(
            [
                f"title: the contract {doc.title!r} of {doc.leader} is closed and cannot be "
                "changed; import it under a new title to start a new one"
            ]
        )
    was_draft = contract.status == ContractStatus.draft
    activate = was_draft and not draft
    notes = []
    if draft and not was_draft:
        notes.append("the contract is active and stays active: an import never demotes it")
    before, after = snapshot(bundle), normalised(doc)
    if before == after and not activate:
        return ImportResult(
            contract_id, doc.title, doc.leader, "unchanged", contract.version, notes=notes
        )
    refused = await _removal_problems(session, bundle, doc)
    if refused:
        raise ContractImportError(refused)

    if activate:
        await _refuse_second_active(session, doc, contract_id=contract_id)
    changes = diff_documents(before, after)
    reason = ACTIVATION_REASON if activate else AMENDMENT_REASON
    if activate:
        changes.insert(0, "status: draft -> active")
        contract.status = ContractStatus.active
    elif not was_draft:
        contract.version += 1
    _set_fields(contract, doc)
    contract.updated_at = now
    await _write_items(session, contract_id=contract_id, bundle=bundle, doc=doc, now=now)
    if contract.status == ContractStatus.active:
        await add_version(session, contract, actor_id=actor_id, now=now, reason=reason)
    audit(
        session,
        action="contract.activated" if activate else "contract.amended",
        contract_id=contract_id,
        actor_id=actor_id,
        detail={
            "reason": reason,
            "version": contract.version,
            "status": str(contract.status),
            "changes": changes,
        },
        at=now,
    )
    await session.flush()
    return ImportResult(
        contract_id, doc.title, doc.leader, "updated", contract.version, changes, notes
    )


async def _refuse_second_active(
    session: AsyncSession, doc: ContractDocument, *, contract_id: int | None
) -> None:
    """A leader has one active contract at a time (`uq_contract_one_active`)."""
    active = await active_contract_for_leader(session=session, leader_id=doc.leader)
    if active is not None and active.id != contract_id:
        raise ContractImportError(
            [
                f"leader: {doc.leader} already has an active contract ({active.title!r}), and "
                "a leader has one active contract at a time; import this one with --draft"
            ]
        )


async def add_version(
    session: AsyncSession,
    contract: Contract,
    *,
    actor_id: str | None,
    now: datetime,
    reason: str,
    amendment_id: int | None = None,
) -> None:
    """A readable snapshot of the contract as it now stands in the session (caller commits)."""
    await session.flush()
    bundle = await load_bundle(session=session, contract_id=contract.id or 0)
    if bundle is None:
        raise LookupError(f"contract {contract.id} vanished while saving a version")
    session.add(
        ContractVersion(
            contract_id=contract.id or 0,
            version=contract.version,
            snapshot=snapshot(bundle),
            reason=reason,
            amendment_id=amendment_id,
            created_by=actor_id,
            created_at=now,
        )
    )


def _set_fields(contract: Contract, doc: ContractDocument) -> None:
    """Copy the document's contract-level fields (all but title and leader) onto the row."""
    contract.sponsor_id = doc.sponsor
    contract.owner_id = doc.governance.owner
    contract.mission = doc.mission
    contract.period_start = doc.period.start
    contract.period_end = doc.period.end
    contract.checkin_weekday = rules.WEEKDAY_NAMES.index(doc.checkin.weekday)
    contract.checkin_time = doc.checkin.time
    contract.checkin_timezone = doc.checkin.timezone
    contract.feedback_cadence = doc.feedback.cadence
    contract.anonymity_threshold = doc.feedback.anonymity_threshold
    contract.digest_cadence = doc.digest.cadence
    contract.digest_weekday = rules.WEEKDAY_NAMES.index(doc.digest.weekday)
    contract.digest_time = doc.digest.time
    contract.reporting = doc.governance.reporting
    report = doc.governance.report
    contract.report_cadence = report.cadence if report is not None else None
    contract.report_channel = report.channel if report is not None else None
    contract.escalation_days = doc.governance.escalation_days
    contract.recognition_channel = doc.recognition.channel


async def _write_items(
    session: AsyncSession,
    *,
    contract_id: int,
    bundle: ContractBundle | None,
    doc: ContractDocument,
    now: datetime,
) -> None:
    """Store the document's people and items: keyed items by key, keyless ones replaced."""
    for role, people in (
        (Role.approver, doc.governance.approvers),
        (Role.escalation, doc.governance.escalation),
        (Role.reviewer, doc.feedback.reviewers),
        (Role.report_reader, doc.governance.report.readers if doc.governance.report else []),
        (Role.peer, doc.feedback.peers),
        (Role.direct_report, doc.feedback.direct_reports),
        (Role.stakeholder, doc.feedback.stakeholders),
    ):
        await replace_people(session, contract_id=contract_id, role=role, user_ids=people)

    for name, items in ITEM_LISTS.items():
        stored = list(getattr(bundle, items.bundle_list)) if bundle is not None else []
        by_key = {row.key: row for row in stored} if items.keyed else {}
        leftovers = [] if items.keyed else stored
        for position, item in enumerate(getattr(doc, name)):
            row = by_key.pop(item.key, None) if items.keyed else None
            write_item(
                session,
                name=name,
                contract_id=contract_id,
                row=row,
                item=item,
                position=position,
                now=now,
            )
        for row in [*leftovers, *by_key.values()]:
            await session.delete(row)


def write_item(
    session: AsyncSession,
    *,
    name: str,
    contract_id: int,
    row: Any | None,
    item: BaseModel,
    position: int,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    """Store one item of the document list `name`: change `row` where it differs, or add it;
    `extra` holds columns outside the document to set as well."""
    items = ITEM_LISTS[name]
    values = {column: getattr(item, f) for f, column in items.columns.items()}
    values["position"] = position
    values.update(extra or {})
    if row is None:
        new = {"updated_at": now} if items.model is DevelopmentActivity else {}
        session.add(items.model(contract_id=contract_id, **values, **new))
        return
    for column, value in values.items():
        if getattr(row, column) != value:
            setattr(row, column, value)


async def _removal_problems(
    session: AsyncSession, bundle: ContractBundle, doc: ContractDocument
) -> list[str]:
    """Why items the document leaves out cannot go: they carry recorded data."""
    removed: dict[str, list[Any]] = {}
    for name, items in ITEM_LISTS.items():
        if items.keyed:
            kept = {item.key for item in getattr(doc, name)}
            stored = getattr(bundle, items.bundle_list)
            removed[name] = [row for row in stored if row.key not in kept]
    return [
        f"{name}: {row.key} {reason} and cannot be removed by import"
        for name, row, reason in await recorded_data(session, bundle, removed)
    ]


async def recorded_data(
    session: AsyncSession, bundle: ContractBundle, rows: dict[str, list[Any]]
) -> list[tuple[str, Any, str]]:
    """(list name, row, what it carries) for each of these stored keyed items with data."""
    feedback: dict[str, int] = {}
    if rows.get("expectations"):
        feedback = await feedback_per_expectation(
            session=session,
            contract_id=bundle.contract.id,
            keys=[e.key for e in rows["expectations"]],
        )
    return [
        (name, row, reason)
        for name, found in rows.items()
        for row in found
        for reason in _recorded(bundle, name, row, feedback)
    ]


def _recorded(
    bundle: ContractBundle, name: str, row: Any, feedback: dict[str, int]
) -> Iterator[str]:
    measurements = len(bundle.measurements.get(row.id, [])) if name == "success_indicators" else 0
    if measurements:
        yield f"has {_count(measurements, 'recorded measurement')}"
    evidence = bundle.evidence_counts.get((ITEM_LISTS[name].evidence_type or "", row.key), 0)
    if evidence:
        yield f"has {_count(evidence, 'piece', 'pieces')} of evidence"
    if feedback.get(row.key) and name == "expectations":
        yield f"has {_count(feedback[row.key], 'feedback entry', 'feedback entries')}"
    if name == "development_activities" and (
        row.status != ActivityStatus.not_started or row.progress
    ):
        yield f"has recorded progress ({row.status}, {row.progress}%)"
    if name == "milestones" and row.status != MilestoneStatus.pending:
        yield f"is already {row.status}"


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"
