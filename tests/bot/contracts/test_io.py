"""Contract files in and out: validation, import into a real database, export, round trips."""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import itertools
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func
from sqlmodel import SQLModel, select

from bot.contracts.document import snapshot
from bot.contracts.export import CSV_COLUMNS, dump_documents, export_contracts, export_csv
from bot.contracts.io import ImportResult, import_file, import_text, resolve_people, validate_file
from bot.contracts.schema import DocumentError, normalised, parse_documents, validate_document
from storage.db import SessionFactory, create_engine, session_factory, writing
from storage.models import (
    AuditEvent,
    Barrier,
    Contract,
    ContractPerson,
    ContractStatus,
    ContractVersion,
    DevelopmentActivity,
    Evidence,
    Expectation,
    Feedback,
    Measurement,
    Milestone,
    Resource,
    SuccessIndicator,
)
from storage.queries.contracts import load_bundle
from tests.conftest import BOT_TOKEN
from tests.fakes import FakeSlack

SHARED_EXAMPLE = Path(__file__).resolve().parents[4] / "shared" / "examples" / "contract.yml"
DATA = Path(__file__).resolve().parents[2] / "data"
NOW = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
TABLES: tuple[type[SQLModel], ...] = (
    Contract,
    ContractPerson,
    ContractVersion,
    AuditEvent,
    Expectation,
    DevelopmentActivity,
    SuccessIndicator,
    Milestone,
    Resource,
    Barrier,
    Measurement,
)


# --- helpers ----------------------------------------------------------------------------


@pytest_asyncio.fixture
async def client(fake_slack: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    yield AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)


def data_of(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DATA / name).read_text())
    return loaded


def write(tmp_path: Path, *docs: dict[str, Any], name: str = "contract.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True))
    return path


async def import_path(
    path: Path,
    sessions: SessionFactory,
    client: AsyncWebClient | None,
    *,
    draft: bool = False,
    now: datetime = NOW,
    for_agreement: bool = False,
) -> tuple[list[ImportResult], list[str]]:
    return await import_file(
        path,
        sessions=sessions,
        client=client,
        draft=draft,
        now=now,
        actor_id="U0HRBP001",
        for_agreement=for_agreement,
    )


async def import_ok(
    path: Path, sessions: SessionFactory, client: AsyncWebClient | None, **kwargs: Any
) -> list[ImportResult]:
    results, problems = await import_path(path, sessions, client, **kwargs)
    assert problems == []
    return results


async def row_counts(sessions: SessionFactory) -> dict[str, int]:
    counts = {}
    async with sessions() as session:
        for table in TABLES:
            result = await session.exec(select(func.count()).select_from(table))
            counts[str(table.__tablename__)] = result.one()
    return counts


async def rows(sessions: SessionFactory, model: Any, *where: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.exec(select(model).where(*where).order_by(model.id))).all())


async def add_measurements(
    sessions: SessionFactory, contract_id: int, key: str, values: list[float]
) -> None:
    async with sessions() as session:
        await writing(session)
        found = await session.exec(
            select(SuccessIndicator).where(
                SuccessIndicator.contract_id == contract_id, SuccessIndicator.key == key
            )
        )
        indicator = found.one()
        for day, value in enumerate(values):
            session.add(
                Measurement(
                    indicator_id=indicator.id or 0,
                    value=value,
                    measured_at=NOW + timedelta(days=day),
                    source="check-in",
                    recorded_by="U0PEER002",
                )
            )
        await session.commit()


async def exported(sessions: SessionFactory, **filters: Any) -> list[dict[str, Any]]:
    filters.setdefault("contract_ids", None)
    filters.setdefault("leader_id", None)
    async with sessions() as session:
        return await export_contracts(session=session, **filters)


# --- the example files ------------------------------------------------------------------


@pytest.mark.skipif(not SHARED_EXAMPLE.exists(), reason="shared/examples/contract.yml is absent")
async def test_shared_example_validates_once_emails_resolve(
    client: AsyncWebClient, fake_slack: FakeSlack
) -> None:
    docs, problems = await validate_file(SHARED_EXAMPLE, client=client)
    assert problems == []
    (doc,) = docs
    assert doc.feedback.reviewers == ["U0PEER001", "U0PEER002", "U0PEER003"]
    assert [c.args["email"] for c in fake_slack.calls_to("users.lookupByEmail")] == [
        "peer.three@example.com"
    ]


async def test_fixture_imports_with_every_field_stored(
    sessions: SessionFactory, client: AsyncWebClient, fake_slack: FakeSlack
) -> None:
    (result,) = await import_ok(DATA / "contract.yml", sessions, client)
    assert (result.outcome, result.version, result.leader_id) == ("created", 1, "U0PEER002")
    lookups = [c.args["email"].lower() for c in fake_slack.calls_to("users.lookupByEmail")]
    assert sorted(lookups) == ["hana@example.com", "peer.three@example.com", "victor@example.com"]

    async with sessions() as session:
        bundle = await load_bundle(session=session, contract_id=result.contract_id)
    assert bundle is not None
    contract = bundle.contract
    assert contract.status == ContractStatus.active and contract.created_by == "U0HRBP001"
    assert (contract.sponsor_id, contract.owner_id) == ("U0VP00001", "U0HRBP001")
    assert (contract.checkin_weekday, contract.checkin_time) == (3, "16:30")
    assert contract.checkin_timezone == "Asia/Kolkata"
    assert (contract.digest_cadence, contract.digest_weekday, contract.digest_time) == (
        "biweekly",
        1,
        "08:15",
    )
    assert (contract.feedback_cadence, contract.anonymity_threshold) == ("biweekly", 4)
    assert contract.mission == (
        "Make customer support a source of product insight, not only a cost centre."
    )
    assert bundle.approvers == ["U0VP00001"]
    assert bundle.reviewers == ["U0PEER001", "U0PEER003"]
    assert bundle.escalation == ["U0LEAD001"]
    assert [(e.key, e.kind, e.position) for e in bundle.expectations] == [
        ("E1", "impact", 0),
        ("E2", "behavior", 1),
    ]
    assert [(i.key, i.baseline, i.target) for i in bundle.indicators] == [
        ("BACKLOG", 120, 40),
        ("CSAT", 81.5, 88),
    ]
    assert [(m.key, m.indicator_key, m.threshold, m.activity_key) for m in bundle.milestones] == [
        ("M1", "BACKLOG", 80, None),
        ("M2", None, None, "D1"),
    ]
    assert bundle.activities[1].start is None

    (version,) = await rows(sessions, ContractVersion)
    assert (version.version, version.reason, version.created_by) == (1, "import", "U0HRBP001")
    assert version.snapshot == snapshot(bundle)
    assert version.snapshot["sponsor"] == "U0VP00001"
    event, agreed = await rows(sessions, AuditEvent)
    assert (event.action, event.contract_id, event.created_at) == (
        "contract.imported",
        result.contract_id,
        NOW,
    )
    # An active import says its parties agreed outside Slack (`--agreed`).
    assert agreed.action == "contract.agreed_outside_slack"
    assert agreed.detail["version"] == 1 and agreed.detail["operator"] == "U0HRBP001"


async def test_minimal_contract_takes_the_defaults(sessions: SessionFactory) -> None:
    (result,) = await import_ok(DATA / "minimal.yml", sessions, None)
    (doc,) = await exported(sessions)
    assert doc["checkin"] == {"weekday": "friday", "time": "15:00"}
    assert doc["digest"] == {"cadence": "monthly", "weekday": "monday", "time": "09:00"}
    assert doc["feedback"] == {
        "reviewers": [],
        "peers": [],
        "direct_reports": [],
        "stakeholders": [],
        "anonymity_threshold": 3,
    }
    assert doc["governance"] == {
        "approvers": ["U0SPON001"],
        "escalation": [],
        "escalation_days": 14,
        "reporting": "",
    }
    assert "recognition" not in doc
    (contract,) = await rows(sessions, Contract)
    assert (contract.checkin_weekday, contract.owner_id, contract.feedback_cadence) == (
        4,
        None,
        None,
    )
    assert result.outcome == "created"


async def test_each_distinct_email_is_looked_up_once(
    client: AsyncWebClient, fake_slack: FakeSlack
) -> None:
    data = data_of("minimal.yml")
    data["sponsor"] = "Victor@Example.com"
    data["governance"] = {"approvers": ["victor@example.com"], "escalation": ["VICTOR@example.com"]}
    doc, problems = validate_document(data)
    assert doc is not None and problems == []
    resolved, problems = await resolve_people(doc, client=client)
    assert problems == []
    assert (resolved.sponsor, resolved.governance.escalation) == ("U0VP00001", ["U0VP00001"])
    assert resolved.governance.approvers == ["U0VP00001"]
    assert len(fake_slack.calls_to("users.lookupByEmail")) == 1


async def test_emails_without_a_slack_client_need_the_bot_token() -> None:
    doc, _ = validate_document({**data_of("minimal.yml"), "sponsor": "sam@example.com"})
    assert doc is not None
    same, problems = await resolve_people(doc, client=None)
    assert same is doc
    assert len(problems) == 1
    assert problems[0].startswith("sponsor: sam@example.com")
    assert "SLACK_BOT_TOKEN" in problems[0]


# --- bad documents ----------------------------------------------------------------------


def change(edit: Callable[[dict[str, Any]], None]) -> Callable[[], str]:
    """A bad file: the fixture with one edit, as YAML text."""

    def text() -> str:
        data = data_of("contract.yml")
        edit(data)
        return yaml.safe_dump(data, sort_keys=False)

    return text


def indicator(index: int, **values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["success_indicators"][index].update(values)


def milestone(index: int, **values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["milestones"][index].update(values)


BAD_DOCUMENTS: dict[str, tuple[Callable[[], str], str]] = {
    "malformed yaml": (
        lambda: "title: [unclosed\nleader: U0LEAD001\n",
        "bad.yml: line 2, column 7: expected ',' or ']'",
    ),
    "malformed json": (
        lambda: '{"title": "x",\n "leader": }',
        "bad.yml: line 2, column 12: Expecting value",
    ),
    "yaml duplicate key": (
        lambda: "title: A\ntitle: B\n",
        "bad.yml: line 2, column 1: duplicate key 'title'",
    ),
    "not a mapping": (lambda: "- just\n- a list\n", "bad.yml: document 1 is a text"),
    "wrong type": (
        change(indicator(0, baseline="a lot")),
        "success_indicators[0].baseline: Input should be a valid number",
    ),
    "text for a list": (
        change(lambda d: d.update(expectations="be great")),
        "expectations: Input should be a valid list",
    ),
    "missing field": (
        change(lambda d: d.pop("mission")),
        "mission: required",
    ),
    "unknown key": (
        change(lambda d: d["expectations"][0].update(txet="typo")),
        "expectations[0].txet: unknown field; did you mean text?",
    ),
    "unknown top-level key": (
        change(lambda d: d.update(sponser="U0SPON001")),
        "sponser: unknown field; did you mean sponsor?",
    ),
    "target equals baseline": (
        change(indicator(1, target=81.5)),
        "success_indicators[1].target: must differ from baseline",
    ),
    "direction mismatch": (
        change(indicator(0, target=150)),
        "success_indicators[0].target: must be below the baseline",
    ),
    "unknown direction": (
        change(indicator(0, direction="down")),
        "success_indicators[0].direction: must be one of increase, decrease, got 'down'",
    ),
    "duplicate key": (
        change(lambda d: d["expectations"][1].update(key="E1")),
        "expectations[1].key: duplicate key E1 (already used by expectations[0])",
    ),
    "malformed key": (
        change(lambda d: d["expectations"][1].update(key="e-2")),
        "expectations[1].key: must be a key of 1 to 16 capital letters",
    ),
    "dangling expectation": (
        change(lambda d: d["development_activities"][0].update(expectation="E9")),
        "development_activities[0].expectation: no expectation with key E9 (keys: E1, E2)",
    ),
    "dangling indicator": (
        change(milestone(0, indicator="NPS")),
        "milestones[0].indicator: no success indicator with key NPS",
    ),
    "dangling activity": (
        change(milestone(1, activity="D7")),
        "milestones[1].activity: no activity with key D7",
    ),
    "milestone with both": (
        change(milestone(1, indicator="CSAT", threshold=85)),
        "milestones[1]: is decided by an indicator (with threshold) or by an activity, not both",
    ),
    "milestone with neither": (
        change(lambda d: d["milestones"][1].pop("activity")),
        "milestones[1]: needs an indicator and threshold, or an activity",
    ),
    "indicator without threshold": (
        change(lambda d: d["milestones"][0].pop("threshold")),
        "milestones[0].threshold: required with indicator",
    ),
    "threshold outside the range": (
        change(milestone(0, threshold=20)),
        "milestones[0].threshold: 20 must lie between the indicator's baseline and target "
        "(BACKLOG: 120 -> 40)",
    ),
    "date outside the period": (
        change(milestone(0, due="2030-01-01")),
        "milestones[0].due: 2030-01-01 must fall within the contract period "
        "(2027-02-01 to 2027-11-30)",
    ),
    "start before the period": (
        change(lambda d: d["development_activities"][0].update(start="2027-01-15")),
        "development_activities[0].start: 2027-01-15 must fall within the contract period",
    ),
    "start after due": (
        change(lambda d: d["development_activities"][0].update(start="2027-06-01")),
        "development_activities[0].start: must be on or before due (2027-05-31)",
    ),
    "period backwards": (
        change(lambda d: d["period"].update(end="2027-01-01")),
        "period.end: must be after the period start (2027-02-01)",
    ),
    "not a date": (
        change(lambda d: d["period"].update(start="next monday")),
        "period.start: must be a date YYYY-MM-DD, got 'next monday'",
    ),
    "bad time": (
        change(lambda d: d["checkin"].update(time="25:00")),
        'checkin.time: must be a time "HH:MM" (24-hour clock) such as "15:00", got \'25:00\'',
    ),
    "bad digest time": (
        change(lambda d: d["digest"].update(time=900)),
        'digest.time: must be a time "HH:MM"',
    ),
    "bad weekday": (
        change(lambda d: d["checkin"].update(weekday="fryday")),
        "checkin.weekday: must be one of monday, tuesday",
    ),
    "bad timezone": (
        change(lambda d: d["checkin"].update(timezone="Mars/Olympus_Mons")),
        "checkin.timezone: 'Mars/Olympus_Mons' is not an IANA time zone such as Europe/Berlin",
    ),
    "bad person": (
        change(lambda d: d.update(leader="dana")),
        "leader: must be a Slack user id (such as U0LEAD001) or an e-mail address, got 'dana'",
    ),
    "bad person in a list": (
        change(lambda d: d["governance"].update(escalation=["U0LEAD001", "#general"])),
        "governance.escalation[1]: must be a Slack user id",
    ),
    "unknown e-mail": (
        change(lambda d: d["governance"].update(escalation=["nobody@example.com"])),
        "governance.escalation[0]: no Slack user with e-mail nobody@example.com",
    ),
    "anonymity threshold too low": (
        change(lambda d: d["feedback"].update(anonymity_threshold=1)),
        "feedback.anonymity_threshold: Input should be greater than or equal to 2",
    ),
    "title too long": (
        change(lambda d: d.update(title="x" * 201)),
        "title: String should have at most 200 characters",
    ),
    "no indicators": (
        change(lambda d: d.update(success_indicators=[], milestones=d["milestones"][1:])),
        "success_indicators: List should have at least 1 item",
    ),
    "bad channel": (
        change(lambda d: d.update(recognition={"channel": "#wins"})),
        "recognition.channel: must be a Slack channel id such as C0WINS001, got '#wins'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
async def test_a_bad_document_is_reported_and_nothing_is_written(
    case: str, tmp_path: Path, sessions: SessionFactory, client: AsyncWebClient
) -> None:
    text, expected = BAD_DOCUMENTS[case]
    path = tmp_path / "bad.yml"
    path.write_text(text())
    before = await row_counts(sessions)
    results, problems = await import_path(path, sessions, client)
    assert results == []
    problems = [p.removeprefix(f"{tmp_path}/") for p in problems]
    assert any(p.startswith(expected) for p in problems), problems
    assert not any("Traceback" in p or "Value error" in p for p in problems)
    assert await row_counts(sessions) == before == dict.fromkeys(before, 0)


async def test_every_problem_is_reported_at_once(client: AsyncWebClient, tmp_path: Path) -> None:
    """A field error does not hide the rules across fields, nor an unknown e-mail."""
    data = data_of("contract.yml")
    data["success_indicators"][1]["target"] = data["success_indicators"][1]["baseline"]
    data["milestones"][0]["due"] = "2030-01-01"
    data["development_activities"][1]["expectation"] = "E7"
    data["governance"]["escalation"] = ["nobody@example.com"]
    docs, problems = await validate_file(write(tmp_path, data), client=client)
    assert docs == []
    assert problems == [
        "success_indicators[1].target: must differ from baseline",
        "development_activities[1].expectation: no expectation with key E7 (keys: E1, E2)",
        "milestones[0].due: 2030-01-01 must fall within the contract period "
        "(2027-02-01 to 2027-11-30)",
        "governance.escalation[0]: no Slack user with e-mail nobody@example.com",
    ]


async def test_a_bad_second_document_stops_the_whole_file(
    tmp_path: Path, sessions: SessionFactory, client: AsyncWebClient
) -> None:
    good = data_of("minimal.yml")
    bad = {**data_of("contract.yml")}
    bad["success_indicators"][1]["target"] = 81.5
    results, problems = await import_path(write(tmp_path, good, bad), sessions, client)
    assert results == []
    assert problems == ["[2] success_indicators[1].target: must differ from baseline"]
    assert set((await row_counts(sessions)).values()) == {0}


async def test_the_same_contract_twice_in_one_file_is_refused(
    tmp_path: Path, sessions: SessionFactory
) -> None:
    minimal = data_of("minimal.yml")
    results, problems = await import_path(write(tmp_path, minimal, minimal), sessions, None)
    assert results == []
    assert problems == ["[2] title: document 1 has the same leader and title"]


async def test_several_documents_import_together(
    tmp_path: Path, sessions: SessionFactory, client: AsyncWebClient
) -> None:
    path = write(tmp_path, data_of("minimal.yml"), data_of("contract.yml"))
    results = await import_ok(path, sessions, client)
    assert [(r.title, r.outcome) for r in results] == [
        ("Minimal contract", "created"),
        ("Support Director: FY2027 leadership contract", "created"),
    ]
    json_path = tmp_path / "both.json"
    json_path.write_text(json.dumps(await exported(sessions)))
    again = await import_ok(json_path, sessions, None)
    assert [r.outcome for r in again] == ["unchanged", "unchanged"]


# --- importing again --------------------------------------------------------------------


async def test_importing_the_same_file_again_changes_nothing(
    sessions: SessionFactory, client: AsyncWebClient
) -> None:
    (first,) = await import_ok(DATA / "contract.yml", sessions, client)
    before = await row_counts(sessions)
    (contract,) = await rows(sessions, Contract)
    (again,) = await import_ok(DATA / "contract.yml", sessions, client, now=NOW + timedelta(days=1))
    assert (again.outcome, again.version, again.changes) == ("unchanged", 1, [])
    assert again.contract_id == first.contract_id
    assert await row_counts(sessions) == before
    (same,) = await rows(sessions, Contract)
    assert same.updated_at == contract.updated_at == NOW


async def test_a_changed_file_amends_the_contract_in_place(
    tmp_path: Path, sessions: SessionFactory, client: AsyncWebClient
) -> None:
    (first,) = await import_ok(DATA / "contract.yml", sessions, client)
    await add_measurements(sessions, first.contract_id, "BACKLOG", [118, 109, 97])
    indicators = {i.key: i.id for i in await rows(sessions, SuccessIndicator)}

    data = data_of("contract.yml")
    data["success_indicators"][0]["target"] = 30
    data["success_indicators"].append(
        {
            "key": "FCR",
            "name": "First-contact resolution",
            "unit": "%",
            "baseline": 55,
            "target": 70.5,
            "direction": "increase",
            "source": "Helpdesk report",
            "cadence": "monthly",
        }
    )
    m4 = {"key": "M4", "title": "FCR at 60", "due": "2027-09-30"}
    data["milestones"].append({**m4, "indicator": "FCR", "threshold": 60})
    data["resources"] = []
    data["checkin"]["time"] = "17:00"
    data["governance"]["escalation"] = ["U0LEAD001", "U0OUTSIDE"]
    later = NOW + timedelta(days=2)
    (result,) = await import_ok(write(tmp_path, data), sessions, client, now=later)

    assert (result.outcome, result.version, result.contract_id) == (
        "updated",
        2,
        first.contract_id,
    )
    assert result.changes == [
        "success_indicators[BACKLOG].target: 40 -> 30",
        "success_indicators[FCR]: added",
        "milestones[M4]: added",
        "resources[0]: removed",
        "checkin.time: 16:30 -> 17:00",
        "governance.escalation: [U0LEAD001] -> [U0LEAD001, U0OUTSIDE]",
    ]
    after = {i.key: i.id for i in await rows(sessions, SuccessIndicator)}
    assert after["BACKLOG"] == indicators["BACKLOG"] and after["CSAT"] == indicators["CSAT"]
    kept = await rows(sessions, Measurement, Measurement.indicator_id == indicators["BACKLOG"])
    assert [m.value for m in kept] == [118, 109, 97]
    assert await rows(sessions, Resource) == []

    versions = await rows(sessions, ContractVersion)
    assert [(v.version, v.reason) for v in versions] == [
        (1, "import"),
        (2, "administrative amendment (import)"),
    ]
    assert versions[1].snapshot["success_indicators"][0]["target"] == 30
    events = await rows(sessions, AuditEvent)
    assert [e.action for e in events] == [
        "contract.imported",
        "contract.agreed_outside_slack",
        "contract.amended",
    ]
    assert events[2].detail["changes"] == result.changes
    assert events[2].created_at == later
    (contract,) = await rows(sessions, Contract)
    assert (contract.version, contract.updated_at, contract.checkin_time) == (2, later, "17:00")


async def test_reordering_items_is_a_change(tmp_path: Path, sessions: SessionFactory) -> None:
    data = data_of("minimal.yml")
    data["expectations"].append({"key": "E2", "kind": "decision", "text": "Pick a vendor."})
    await import_ok(write(tmp_path, data, name="first.yml"), sessions, None)
    ids = [e.id for e in await rows(sessions, Expectation)]
    data["expectations"].reverse()
    (result,) = await import_ok(write(tmp_path, data, name="second.yml"), sessions, None)
    assert result.changes == ["expectations: new order E2, E1"]
    assert [e.id for e in await rows(sessions, Expectation)] == ids
    (doc,) = await exported(sessions)
    assert [e["key"] for e in doc["expectations"]] == ["E2", "E1"]


async def test_removing_an_indicator_with_measurements_is_refused(
    tmp_path: Path, sessions: SessionFactory
) -> None:
    (first,) = await import_ok(DATA / "minimal.yml", sessions, None)
    data = data_of("minimal.yml")
    data["success_indicators"].append(
        {
            "key": "I3",
            "name": "Failed builds",
            "unit": "builds",
            "baseline": 40,
            "target": 5,
            "direction": "decrease",
            "source": "CI",
            "cadence": "weekly",
        }
    )
    await import_ok(write(tmp_path, data), sessions, None)
    await add_measurements(sessions, first.contract_id, "I3", [38, 33, 31, 24])
    before = await row_counts(sessions)
    async with sessions() as session:
        stored = await load_bundle(session=session, contract_id=first.contract_id)
        assert stored is not None
        snapshot_before = snapshot(stored)

    data["success_indicators"].pop()
    data["mission"] = "Something else entirely."
    results, problems = await import_path(write(tmp_path, data), sessions, None)
    assert results == []
    assert problems == [
        "success_indicators: I3 has 4 recorded measurements and cannot be removed by import"
    ]
    assert await row_counts(sessions) == before
    async with sessions() as session:
        stored = await load_bundle(session=session, contract_id=first.contract_id)
        assert stored is not None and snapshot(stored) == snapshot_before
        assert stored.contract.version == 2


async def test_removing_items_without_recorded_data_is_allowed(
    tmp_path: Path, sessions: SessionFactory, client: AsyncWebClient
) -> None:
    await import_ok(DATA / "contract.yml", sessions, client)
    data = data_of("contract.yml")
    data["success_indicators"].pop()
    data["barriers"] = []
    (result,) = await import_ok(write(tmp_path, data), sessions, client)
    assert result.changes == ["success_indicators[CSAT]: removed", "barriers[0]: removed"]
    assert [i.key for i in await rows(sessions, SuccessIndicator)] == ["BACKLOG"]


async def test_an_item_with_evidence_or_progress_stays(
    tmp_path: Path, sessions: SessionFactory, client: AsyncWebClient
) -> None:
    (first,) = await import_ok(DATA / "contract.yml", sessions, client)
    async with sessions() as session:
        await writing(session)
        session.add(Evidence(contract_id=first.contract_id, item_type="expectation", item_key="E2"))
        activity = (
            await session.exec(select(DevelopmentActivity).where(DevelopmentActivity.key == "D2"))
        ).one()
        activity.status, activity.progress = "in_progress", 40
        session.add(activity)
        session.add(
            Feedback(contract_id=first.contract_id, expectation_key="E2", polarity="strength")
        )
        met = (await session.exec(select(Milestone).where(Milestone.key == "M2"))).one()
        met.status = "met"
        session.add(met)
        await session.commit()
    before = await row_counts(sessions)
    data = data_of("contract.yml")
    data["expectations"].pop()
    data["development_activities"].pop()
    data["milestones"].pop()
    results, problems = await import_path(write(tmp_path, data), sessions, client)
    assert results == []
    assert problems == [
        "expectations: E2 has 1 piece of evidence and cannot be removed by import",
        "expectations: E2 has 1 feedback entry and cannot be removed by import",
        "development_activities: D2 has recorded progress (in_progress, 40%) "
        "and cannot be removed by import",
        "milestones: M2 is already met and cannot be removed by import",
    ]
    assert await row_counts(sessions) == before


async def test_a_closed_contract_is_not_changed(tmp_path: Path, sessions: SessionFactory) -> None:
    await import_ok(DATA / "minimal.yml", sessions, None)
    async with sessions() as session:
        await writing(session)
        contract = (await session.exec(select(Contract))).one()
        contract.status = ContractStatus.closed
        session.add(contract)
        await session.commit()
    data = data_of("minimal.yml")
    data["mission"] = "Changed."
    _, problems = await import_path(write(tmp_path, data), sessions, None)
    assert len(problems) == 1 and "is closed" in problems[0]


async def test_drafts_have_no_version_until_an_import_activates_them(
    tmp_path: Path, sessions: SessionFactory
) -> None:
    (draft,) = await import_ok(DATA / "minimal.yml", sessions, None, draft=True)
    assert (draft.outcome, draft.version) == ("created", 1)
    (contract,) = await rows(sessions, Contract)
    assert contract.status == ContractStatus.draft
    assert await rows(sessions, ContractVersion) == []

    data = data_of("minimal.yml")
    data["mission"] = "Ship the new build pipeline, and retire the old one."
    (edited,) = await import_ok(write(tmp_path, data), sessions, None, draft=True)
    assert (edited.outcome, edited.version) == ("updated", 1)
    assert edited.changes[0].startswith("mission: Ship the new build pipeline. -> Ship")
    assert await rows(sessions, ContractVersion) == []

    (active,) = await import_ok(write(tmp_path, data), sessions, None)
    assert (active.outcome, active.version, active.changes) == (
        "updated",
        1,
        ["status: draft -> active"],
    )
    (version,) = await rows(sessions, ContractVersion)
    assert (version.version, version.reason) == (1, "activated (import)")
    (contract,) = await rows(sessions, Contract)
    assert contract.status == ContractStatus.active
    events = [e.action for e in await rows(sessions, AuditEvent)]
    assert events == [
        "contract.imported",
        "contract.amended",
        "contract.activated",
        "contract.agreed_outside_slack",
    ]

    (again,) = await import_ok(write(tmp_path, data), sessions, None, draft=True)
    assert (again.outcome, again.changes) == ("unchanged", [])
    assert again.notes == ["the contract is active and stays active: an import never demotes it"]


# --- export -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
async def test_export_then_import_is_unchanged(
    fmt: str, tmp_path: Path, sessions: SessionFactory, client: AsyncWebClient
) -> None:
    (first,) = await import_ok(DATA / "contract.yml", sessions, client)
    docs = await exported(sessions, contract_ids=[first.contract_id])
    text = dump_documents(docs, "yaml" if fmt == "yaml" else "json")
    path = tmp_path / f"export.{fmt}"
    path.write_text(text)
    (again,) = await import_ok(path, sessions, None)
    assert (again.outcome, again.version) == ("unchanged", 1)

    (doc,) = docs
    assert doc["sponsor"] == "U0VP00001" and doc["governance"]["owner"] == "U0HRBP001"
    assert doc["success_indicators"][0]["baseline"] == 120
    assert isinstance(doc["success_indicators"][0]["baseline"], int)
    assert doc["success_indicators"][1]["baseline"] == 81.5
    if fmt == "yaml":
        assert "\n  start: 2027-02-01\n" in text and "\nbaseline: 120.0" not in text
        assert 'time: "16:30"' in text and not text.startswith("---")
    else:
        assert json.loads(text)["period"] == {"start": "2027-02-01", "end": "2027-11-30"}


async def test_export_of_several_contracts_and_filters(
    tmp_path: Path, sessions: SessionFactory
) -> None:
    other = data_of("minimal.yml")
    other["leader"], other["title"] = "U0PEER001", "Another contract"
    results = await import_ok(write(tmp_path, data_of("minimal.yml"), other), sessions, None)
    ids = [r.contract_id for r in results]

    everything = await exported(sessions)
    assert [d["title"] for d in everything] == ["Minimal contract", "Another contract"]
    stream = dump_documents(everything, "yaml")
    assert stream.startswith("---") and stream.count("\n---") == 1
    assert [d["title"] for d in parse_documents(stream, filename="all.yml")] == [
        "Minimal contract",
        "Another contract",
    ]
    assert isinstance(json.loads(dump_documents(everything, "json")), list)
    assert isinstance(json.loads(dump_documents(everything[:1], "json")), dict)
    assert [d["title"] for d in await exported(sessions, leader_id="U0PEER001")] == [
        "Another contract"
    ]
    assert [d["title"] for d in await exported(sessions, contract_ids=[ids[0]])] == [
        "Minimal contract"
    ]
    assert await exported(sessions, contract_ids=[ids[0]], leader_id="U0PEER001") == []


async def test_csv_has_one_row_per_measurement(
    sessions: SessionFactory, client: AsyncWebClient
) -> None:
    (result,) = await import_ok(DATA / "contract.yml", sessions, client)
    await add_measurements(sessions, result.contract_id, "BACKLOG", [118, 109.5])
    await add_measurements(sessions, result.contract_id, "CSAT", [82])
    async with sessions() as session:
        text = await export_csv(session=session, contract_ids=None, leader_id=None)
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == list(CSV_COLUMNS)
    assert len(table) == 4
    title = "Support Director: FY2027 leadership contract"
    assert table[1] == [
        str(result.contract_id),
        title,
        "U0PEER002",
        "BACKLOG",
        "Escalated tickets open longer than 7 days",
        "tickets",
        "120",
        "40",
        "decrease",
        "2027-03-10T09:00:00Z",
        "118",
        "check-in",
        "U0PEER002",
        "",
    ]
    assert [row[3] for row in table[1:]] == ["BACKLOG", "BACKLOG", "CSAT"]
    assert [row[10] for row in table[1:]] == ["118", "109.5", "82"]
    assert table[3][6:8] == ["81.5", "88"]
    async with sessions() as session:
        empty = await export_csv(session=session, contract_ids=None, leader_id="U0NOBODY1")
    assert empty == ",".join(CSV_COLUMNS) + "\n"


# --- the file format --------------------------------------------------------------------


def test_yaml_reads_times_and_words_as_text() -> None:
    (doc,) = parse_documents(
        "checkin:\n  time: 15:00\n  weekday: no\nbaseline: 1e3\ncode: 010\n", filename="x.yml"
    )
    assert doc == {
        "checkin": {"time": "15:00", "weekday": "no"},
        "baseline": 1000.0,
        "code": "010",
    }


def test_a_json_list_is_several_documents() -> None:
    docs = parse_documents('[{"title": "a"}, {"title": "b"}]', filename="x.json")
    assert docs == [{"title": "a"}, {"title": "b"}]


def test_an_empty_file_is_one_problem() -> None:
    with pytest.raises(DocumentError, match=r"^empty\.yml: no contract in the file$"):
        parse_documents("# nothing here\n", filename="empty.yml")


def test_problems_of_a_non_mapping_name_the_document() -> None:
    doc, problems = validate_document(["not", "a", "contract"])
    assert doc is None
    assert problems == [
        "(document): must be a mapping of title, leader, sponsor, period, mission, "
        "expectations, development_activities, success_indicators, milestones, resources, "
        "barriers, checkin, feedback, digest, governance, recognition"
    ]


async def test_a_missing_file_is_one_problem(tmp_path: Path, sessions: SessionFactory) -> None:
    results, problems = await import_path(tmp_path / "nope.yml", sessions, None)
    assert results == []
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'nope.yml'}: cannot read")


async def test_import_text_without_a_file(sessions: SessionFactory) -> None:
    results, problems = await import_text(
        (DATA / "minimal.yml").read_text(),
        filename="upload.yml",
        sessions=sessions,
        client=None,
        draft=False,
        now=NOW,
    )
    assert problems == [] and [r.outcome for r in results] == ["created"]


# --- round trips, generated ---------------------------------------------------------------


KEYS = st.from_regex(r"[A-Z][A-Z0-9_]{0,15}", fullmatch=True)
WORDS = (
    st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)
    .map(str.strip)
    .filter(bool)
)
NUMBERS = st.one_of(
    st.integers(-1_000_000, 1_000_000),
    st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False),
)


@st.composite
def indicator_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    keys = draw(st.lists(KEYS, min_size=1, max_size=6, unique=True))
    indicators = []
    for key in keys:
        baseline, target = draw(NUMBERS), draw(NUMBERS)
        if target == baseline:
            target = baseline + 1 if baseline < 0 else baseline - 1
        indicators.append(
            {
                "key": key,
                "name": draw(WORDS),
                "unit": draw(st.one_of(st.just(""), WORDS.filter(lambda w: len(w) <= 32))),
                "baseline": baseline,
                "target": target,
                "direction": "increase" if target > baseline else "decrease",
                "source": draw(WORDS),
                "cadence": draw(st.sampled_from(["weekly", "biweekly", "monthly", "quarterly"])),
            }
        )
    return indicators


_titles = itertools.count(1)


async def _round_trip(url: str, indicators: list[dict[str, Any]], fmt: str) -> None:
    data = copy.deepcopy(data_of("minimal.yml"))
    number = next(_titles)
    data["title"] = f"Generated contract {number}"
    data["leader"] = f"U0GEN{number:05d}"  # a leader has one active contract at a time
    data["success_indicators"] = indicators
    data["milestones"] = [
        {"key": "M1", "title": "Pairing done", "due": "2027-03-01", "activity": "D1"}
    ]
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        text = json.dumps(data, default=str)
        (created,), problems = await import_text(
            text, filename="generated.json", sessions=sessions, client=None, draft=False, now=NOW
        )
        assert problems == []
        async with sessions() as session:
            docs = await export_contracts(
                session=session, contract_ids=[created.contract_id], leader_id=None
            )
        doc, _ = validate_document(data)
        assert doc is not None and docs == [normalised(doc)]
        dumped = dump_documents(docs, "yaml" if fmt == "yaml" else "json")
        (again,), problems = await import_text(
            dumped, filename=f"export.{fmt}", sessions=sessions, client=None, draft=False, now=NOW
        )
        assert problems == []
        assert (again.outcome, again.contract_id) == ("unchanged", created.contract_id)
    finally:
        await engine.dispose()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(indicators=indicator_sets(), fmt=st.sampled_from(["yaml", "json"]))
def test_generated_indicators_round_trip_unchanged(
    sqlite_url: str, indicators: list[dict[str, Any]], fmt: str
) -> None:
    asyncio.run(_round_trip(sqlite_url, indicators, fmt))


async def test_an_import_for_agreement_is_a_draft_sent_for_agreement(
    tmp_path: Path, sessions: SessionFactory
) -> None:
    (sent,) = await import_ok(DATA / "minimal.yml", sessions, None, draft=True, for_agreement=True)
    assert "sent for agreement" in " ".join(sent.notes)
    (contract,) = await rows(sessions, Contract)
    assert contract.status == ContractStatus.draft
    assert contract.agreement_sent_at == NOW and contract.terms_version == 1
    assert await rows(sessions, ContractVersion) == []
    events = [e.action for e in await rows(sessions, AuditEvent)]
    assert events == ["contract.imported", "contract.sent_for_agreement"]

    # The same file again changes nothing; a changed one is a new terms version.
    await import_ok(DATA / "minimal.yml", sessions, None, draft=True, for_agreement=True)
    (contract,) = await rows(sessions, Contract)
    assert contract.terms_version == 1
    data = data_of("minimal.yml")
    data["mission"] = "Ship the new build pipeline, and retire the old one."
    await import_ok(write(tmp_path, data), sessions, None, draft=True, for_agreement=True)
    (contract,) = await rows(sessions, Contract)
    assert contract.terms_version == 2


# --- rater groups ------------------------------------------------------------------------


async def test_rater_groups_import_and_export_round_trip(
    tmp_path: Path, sessions: SessionFactory, client: AsyncWebClient
) -> None:
    data = data_of("contract.yml")
    data["feedback"].update(
        peers=["U0PEER001", "peer.three@example.com"],
        direct_reports=["U0OUTSIDE"],
        stakeholders=["U0HRBP001"],
    )
    await import_ok(write(tmp_path, data), sessions, client)
    [doc] = await exported(sessions)
    feedback = doc["feedback"]
    assert feedback["peers"] == ["U0PEER001", "U0PEER003"]
    assert feedback["direct_reports"] == ["U0OUTSIDE"]
    assert feedback["stakeholders"] == ["U0HRBP001"]


async def test_a_person_is_in_one_rater_group_and_never_the_leader_or_sponsor(
    tmp_path: Path, client: AsyncWebClient
) -> None:
    data = data_of("contract.yml")
    data["feedback"].update(
        peers=["U0PEER002", "U0PEER001"],  # the leader, then a peer
        direct_reports=["U0PEER001", "victor@example.com"],  # the peer again, the sponsor
    )
    docs, problems = await validate_file(write(tmp_path, data), client=client)
    assert docs == []
    assert problems == [
        "feedback.peers[0]: is the leader, whose own view is the self view: leave them out",
        "feedback.direct_reports[0]: is already in feedback.peers: one group per person",
        "feedback.direct_reports[1]: is the sponsor, who gives feedback as the sponsor: "
        "leave them out",
    ]
