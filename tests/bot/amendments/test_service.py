"""The amendment service: checks with the import rules, deciding once, staleness, versions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.amendments.model import (
    KINDS,
    Outcome,
    Problem,
    changed_document,
    find_item,
    items_in,
    version_argument,
)
from bot.amendments.service import (
    check_proposal,
    decide,
    proposal_problems,
    propose,
    version_to_show,
)
from bot.contracts.document import snapshot
from bot.contracts.io import import_text
from bot.contracts.schema import normalised, parse_documents, validate_document
from bot.core.permissions import Refusal
from bot.summary.blocks import build_summary
from storage.db import SessionFactory, writing
from storage.models import (
    Amendment,
    AmendmentApproval,
    Contract,
    ContractVersion,
    Measurement,
    Resource,
    SuccessIndicator,
)
from storage.queries.contracts import load_bundle
from tests.conftest import EXAMPLE_CONTRACT

LEADER, SPONSOR, OWNER, PEER = "U0LEAD001", "U0SPON001", "U0HRBP001", "U0PEER001"
NOW = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
INDICATOR, MILESTONE, EXPECTATION = KINDS["indicator"], KINDS["milestone"], KINDS["expectation"]
RESOURCE, ACTIVITY = KINDS["resource"], KINDS["activity"]


def example_text(*replacements: tuple[str, str]) -> str:
    text = EXAMPLE_CONTRACT.read_text(encoding="utf-8").replace(
        "peer.three@example.com", "U0PEER003"
    )
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    return text


def example_doc() -> dict[str, Any]:
    (data,) = parse_documents(example_text(), filename="contract.yml")
    doc, problems = validate_document(data)
    assert doc is not None, problems
    return normalised(doc)


async def imported(sessions: SessionFactory, *replacements: tuple[str, str]) -> int:
    results, problems = await import_text(
        example_text(*replacements),
        filename="contract.yml",
        sessions=sessions,
        client=None,
        draft=False,
        now=NOW,
    )
    assert problems == [], problems
    return results[0].contract_id


async def proposed(
    sessions: SessionFactory,
    contract_id: int,
    kind: str = "indicator",
    handle: str | None = "I2",
    change: dict[str, Any] | None = None,
    *,
    remove: bool = False,
) -> int:
    """A pending amendment of the stored contract: `change` merged into the item."""
    async with sessions() as session:
        await writing(session)
        bundle = await load_bundle(session=session, contract_id=contract_id)
        assert bundle is not None
        before = find_item(snapshot(bundle), KINDS[kind], handle) if handle else {}
        after = None if remove else {**(before or {}), **(change or {})}
        problems = await check_proposal(session, bundle, KINDS[kind], handle, after)
        assert problems == [], problems
        amendment = await propose(
            session=session,
            bundle=bundle,
            proposer=LEADER,
            kind=KINDS[kind],
            handle=handle,
            after=after,
            rationale="because",
            now=NOW,
        )
    return amendment.id or 0


async def rows(sessions: SessionFactory, model: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.exec(select(model))).all())


# --- checks with the import rules (pure) ------------------------------------------------------


def test_a_field_problem_lands_on_its_field() -> None:
    doc = example_doc()
    i2 = find_item(doc, INDICATOR, "I2")
    assert i2 is not None
    problems = proposal_problems(doc, INDICATOR, "I2", {**i2, "target": 45})
    assert problems == [Problem("target", "must differ from baseline")]
    problems = proposal_problems(doc, INDICATOR, "I2", {**i2, "source": ""})
    assert [p.field for p in problems] == ["source"]


def test_a_problem_elsewhere_is_named_by_its_item() -> None:
    doc = example_doc()
    i1 = find_item(doc, INDICATOR, "I1")
    assert i1 is not None
    (problem,) = proposal_problems(doc, INDICATOR, "I1", {**i1, "target": 66})
    assert problem.field is None
    assert problem.message.startswith("M1 threshold: 68 must lie between")


def test_references_and_removals_follow_the_import_rules() -> None:
    doc = example_doc()
    new = {
        "key": "D4",
        "title": "Shadow the CFO",
        "modality": "experiential",
        "expectation": "E9",
        "due": "2027-05-01",
        "demonstration": "A budget written alone.",
    }
    (problem,) = proposal_problems(doc, ACTIVITY, None, new)
    assert problem.field == "expectation" and problem.message.startswith(
        "no expectation with key E9"
    )
    (problem,) = proposal_problems(doc, EXPECTATION, "E1", None)
    assert problem.message.startswith("D1 expectation: no expectation with key E1")
    only = {**doc, "expectations": doc["expectations"][:1]}
    only["development_activities"] = []
    (problem,) = proposal_problems(only, EXPECTATION, "E1", None)
    assert "needs at least one expectation" in problem.message


def test_problems_the_contract_had_already_do_not_count() -> None:
    """A contract built in Slack may lack what the import format asks (a mission here)."""
    doc = {**example_doc(), "mission": ""}
    assert validate_document(doc)[1]
    i2 = find_item(doc, INDICATOR, "I2")
    assert i2 is not None
    assert proposal_problems(doc, INDICATOR, "I2", {**i2, "target": 28}) == []


def test_keyless_items_are_named_by_place() -> None:
    doc = example_doc()
    assert [h for h, _ in items_in(doc, RESOURCE)] == ["R1", "R2", "R3"]
    added = changed_document(doc, RESOURCE, None, {"kind": "platform", "text": "A sandbox"})
    assert [h for h, _ in items_in(added, RESOURCE)] == ["R1", "R2", "R3", "R4"]
    removed = changed_document(doc, RESOURCE, "R2", None)
    assert [i["kind"] for _, i in items_in(removed, RESOURCE)] == ["budget", "expert"]
    (problem,) = proposal_problems(doc, RESOURCE, "R2", {"kind": "time", "text": ""})
    assert problem.field == "text"
    assert doc == example_doc()  # nothing was changed in place


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["<@U1>", "v3"], (3, ["<@U1>"])),
        (["V12"], (12, [])),
        (["<@U1>"], (None, ["<@U1>"])),
        (["version3"], (None, ["version3"])),
        ([], (None, [])),
    ],
)
def test_version_argument(args: list[str], expected: tuple[int | None, list[str]]) -> None:
    assert version_argument(args) == expected


# --- deciding, on SQLite and PostgreSQL -------------------------------------------------------


async def test_applied_in_one_transaction(sessions: SessionFactory) -> None:
    contract_id = await imported(sessions)
    amendment_id = await proposed(sessions, contract_id, change={"target": 28})
    decision = await decide(
        sessions=sessions, amendment_id=amendment_id, user=SPONSOR, approve=True, now=NOW
    )
    assert decision.outcome == Outcome.applied
    (contract,) = await rows(sessions, Contract)
    assert contract.version == 2
    versions = sorted(await rows(sessions, ContractVersion), key=lambda v: v.version)
    assert [(v.version, v.amendment_id) for v in versions] == [(1, None), (2, amendment_id)]
    (amendment,) = await rows(sessions, Amendment)
    assert (amendment.status, amendment.decided_at) == ("applied", NOW)


async def test_the_last_two_approvers_at_once_apply_it_once(sessions: SessionFactory) -> None:
    contract_id = await imported(
        sessions, ("approvers: [U0SPON001]", "approvers: [U0SPON001, U0HRBP001]")
    )
    amendment_id = await proposed(sessions, contract_id, change={"target": 28})
    decisions = await asyncio.gather(
        *(
            decide(sessions=sessions, amendment_id=amendment_id, user=u, approve=True, now=NOW)
            for u in (SPONSOR, OWNER)
        )
    )
    assert sorted(d.outcome for d in decisions) == [Outcome.applied, Outcome.waiting]
    assert len(await rows(sessions, AmendmentApproval)) == 2
    assert [v.version for v in await rows(sessions, ContractVersion)].count(2) == 1
    (contract,) = await rows(sessions, Contract)
    assert contract.version == 2


async def test_a_double_click_is_one_approval(sessions: SessionFactory) -> None:
    contract_id = await imported(sessions)
    amendment_id = await proposed(sessions, contract_id, change={"target": 28})
    decisions = await asyncio.gather(
        *(
            decide(
                sessions=sessions, amendment_id=amendment_id, user=SPONSOR, approve=True, now=NOW
            )
            for _ in range(3)
        )
    )
    outcomes = sorted(d.outcome for d in decisions)
    assert outcomes.count(Outcome.applied) == 1
    assert set(outcomes) - {Outcome.applied} <= {Outcome.closed, Outcome.already}
    assert len(await rows(sessions, AmendmentApproval)) == 1
    (contract,) = await rows(sessions, Contract)
    assert contract.version == 2


async def test_who_may_decide_and_when(sessions: SessionFactory) -> None:
    contract_id = await imported(sessions)
    amendment_id = await proposed(sessions, contract_id, change={"target": 28})

    async def by(user: str, approve: bool = True) -> Outcome:
        decision = await decide(
            sessions=sessions,
            amendment_id=amendment_id,
            user=user,
            approve=approve,
            reason="no",
            now=NOW,
        )
        return decision.outcome

    assert await by(PEER) == Outcome.not_approver
    assert await by(LEADER) == Outcome.not_approver  # proposing is not approving
    assert await by(SPONSOR, approve=False) == Outcome.rejected
    assert await by(SPONSOR) == Outcome.closed
    missing = await decide(sessions=sessions, amendment_id=999, user=SPONSOR, approve=True, now=NOW)
    assert missing.outcome == Outcome.missing
    (i2,) = [i for i in await rows(sessions, SuccessIndicator) if i.key == "I2"]
    assert i2.target == 30


async def test_an_import_of_the_item_makes_it_stale(sessions: SessionFactory) -> None:
    contract_id = await imported(sessions)
    amendment_id = await proposed(sessions, contract_id, change={"target": 28})
    await imported(sessions, ("target: 30", "target: 32"))
    decision = await decide(
        sessions=sessions, amendment_id=amendment_id, user=SPONSOR, approve=True, now=NOW
    )
    assert decision.outcome == Outcome.stale
    assert decision.why == "I2 changed after this amendment was proposed"
    (amendment,) = await rows(sessions, Amendment)
    assert (amendment.status, amendment.decision_reason) == ("stale", decision.why)
    assert await rows(sessions, AmendmentApproval) == []


async def test_a_change_that_no_longer_fits_is_stale(sessions: SessionFactory) -> None:
    """M1's threshold moves to 70 first; then I1's target of 69 no longer fits M1."""
    contract_id = await imported(sessions)
    target = await proposed(sessions, contract_id, "indicator", "I1", {"target": 69})
    threshold = await proposed(sessions, contract_id, "milestone", "M1", {"threshold": 70})
    for amendment_id, expected in ((threshold, Outcome.applied), (target, Outcome.stale)):
        decision = await decide(
            sessions=sessions, amendment_id=amendment_id, user=SPONSOR, approve=True, now=NOW
        )
        assert decision.outcome == expected
    assert "no longer fits" in decision.why and "M1 threshold" in decision.why


async def test_removing_and_keyless_changes(sessions: SessionFactory) -> None:
    contract_id = await imported(sessions)
    first = await proposed(sessions, contract_id, "resource", "R2", {"text": "Six hours a week"})
    second = await proposed(sessions, contract_id, "resource", "R1", remove=True)
    for amendment_id in (first, second):
        decision = await decide(
            sessions=sessions, amendment_id=amendment_id, user=SPONSOR, approve=True, now=NOW
        )
        assert decision.outcome == Outcome.applied
    texts = [r.text for r in sorted(await rows(sessions, Resource), key=lambda r: r.position)]
    assert texts == [
        "Six hours a week",
        "Monthly hour with the VP of Engineering as subject-matter expert",
    ]


async def test_a_removal_is_refused_once_data_was_recorded(sessions: SessionFactory) -> None:
    contract_id = await imported(sessions)
    amendment_id = await proposed(sessions, contract_id, "indicator", "I3", remove=True)
    async with sessions() as session:
        await writing(session)
        i3 = (
            await session.exec(select(SuccessIndicator).where(SuccessIndicator.key == "I3"))
        ).one()
        session.add(Measurement(indicator_id=i3.id or 0, value=50, measured_at=NOW))
        await session.commit()
    decision = await decide(
        sessions=sessions, amendment_id=amendment_id, user=SPONSOR, approve=True, now=NOW
    )
    assert decision.outcome == Outcome.stale
    assert "I3 has 1 recorded measurement and cannot be removed" in decision.why


# --- old versions ---------------------------------------------------------------------------


async def test_an_old_version_has_its_terms_and_todays_figures(sessions: SessionFactory) -> None:
    contract_id = await imported(sessions)
    amendment_id = await proposed(sessions, contract_id, change={"target": 28})
    await decide(sessions=sessions, amendment_id=amendment_id, user=SPONSOR, approve=True, now=NOW)
    async with sessions() as session:
        await writing(session)
        i2 = (
            await session.exec(select(SuccessIndicator).where(SuccessIndicator.key == "I2"))
        ).one()
        session.add(Measurement(indicator_id=i2.id or 0, value=40, measured_at=NOW))
        await session.commit()
    async with sessions() as session:
        bundle = await load_bundle(session=session, contract_id=contract_id)
        assert bundle is not None
        found = await version_to_show(session=session, bundle=bundle, version=1)
        missing = await version_to_show(session=session, bundle=bundle, version=3)
    assert isinstance(missing, Refusal) and missing.text.endswith("Its versions: v1, v2.")
    assert not isinstance(found, Refusal)
    old, stored = found
    assert stored.version == 1 and old.contract.version == 1
    then, now = old.indicator("I2"), bundle.indicator("I2")
    assert then is not None and now is not None and (then.target, now.target) == (30, 28)
    assert snapshot(old) == stored.snapshot
    text = str([b.to_dict() for b in build_summary(old, today=NOW.date() + timedelta(days=1))])
    assert "baseline 45 → latest *40* → target 30 days" in text  # old target, new value
