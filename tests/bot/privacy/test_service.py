"""Privacy: the hash key's home, keyed hashes, and `northstar privacy export|erase`."""

from __future__ import annotations

import json
import stat
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.core.permissions import Refusal
from bot.privacy.keys import (
    KeyUnavailable,
    author_hash,
    erasure_mark,
    feedback_key,
    key_file,
    legacy_author_hash,
)
from bot.privacy.service import erase_person, export_person
from bot.settings import SettingsError, load_settings
from storage.db import SessionFactory, writing
from storage.models import (
    AuditEvent,
    Contract,
    ContractPerson,
    Evidence,
    Expectation,
    Feedback,
    Measurement,
    SuccessIndicator,
)
from tests.bot.cli.test_main import northstar
from tests.conftest import Bot
from tests.handlers.test_feedback_support import (
    BEHAVIOUR,
    PEER1,
    PEER2,
    fast_sending,
    give,
    traces_of,
)
from tests.harness import make_settings

KEY = b"s" * 32
TEAM = "T0TEST001"
NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)


# --- the key ----------------------------------------------------------------------------


def test_a_generated_key_lives_in_the_config_folder_readable_by_its_owner_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(api_url="", database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    with pytest.raises(KeyUnavailable, match="no key file"):
        feedback_key(settings, create=False)
    key = feedback_key(settings)
    path = key_file()
    assert path.parent.name == "northstar" and not path.is_relative_to(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(key) == 32 and bytes.fromhex(path.read_text().strip()) == key
    assert "FEEDBACK_HASH_KEY is not set" in caplog.text and str(path) in caplog.text
    assert feedback_key(settings, create=False) == key
    assert list(tmp_path.iterdir()) == []  # nothing beside the database


def test_a_configured_key_is_used_and_no_file_is_made(tmp_path: Path) -> None:
    settings = make_settings(
        api_url="",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite",
        feedback_hash_key="x" * 40,
    )
    assert feedback_key(settings, create=False) == b"x" * 40
    assert not key_file().exists()


def test_a_damaged_key_file_is_not_replaced(tmp_path: Path) -> None:
    settings = make_settings(api_url="", database_url=f"sqlite+aiosqlite:///{tmp_path}/d.sqlite")
    key_file().parent.mkdir(parents=True)
    key_file().write_text("not hex")
    with pytest.raises(KeyUnavailable, match="not hexadecimal"):
        feedback_key(settings)
    assert key_file().read_text() == "not hex"


def test_a_short_configured_key_is_a_configuration_problem() -> None:
    with pytest.raises(SettingsError, match="FEEDBACK_HASH_KEY must be at least 32"):
        load_settings({"FEEDBACK_HASH_KEY": "short"}, env_file=None)
    assert load_settings({"FEEDBACK_HASH_KEY": "k" * 32}, env_file=None).feedback_hash_key


def test_keyed_hashes_depend_on_key_purpose_person_and_contract() -> None:
    base = author_hash(KEY, user="U1", contract_id=1)
    assert base.startswith("v2:") and "U1" not in base
    assert base == author_hash(KEY, user="U1", contract_id=1)
    others = {
        author_hash(b"t" * 32, user="U1", contract_id=1),
        author_hash(KEY, user="U2", contract_id=1),
        author_hash(KEY, user="U1", contract_id=2),
        legacy_author_hash(KEY, team=TEAM, user="U1", contract_id=1),
        erasure_mark(KEY, team=TEAM, user="U1"),
    }
    assert base not in others and len(others) == 5


# --- export and erase on the database ---------------------------------------------------


async def seed(sessions: SessionFactory) -> int:
    """A contract on which Pia reviews, writes feedback (named and not) and adds evidence."""
    async with sessions() as session:
        await writing(session)
        contract = Contract(
            title="Head of Platform",
            leader_id="U0LEAD001",
            sponsor_id="U0SPON001",
            owner_id=PEER1,
            created_by=PEER1,
            status="active",
            period_start=date(2027, 1, 4),
            period_end=date(2027, 12, 17),
        )
        session.add(contract)
        await session.flush()
        cid = contract.id or 0
        session.add(Expectation(contract_id=cid, key="E1", kind="impact", text="Own"))
        session.add(ContractPerson(contract_id=cid, role="reviewer", user_id=PEER1))
        indicator = SuccessIndicator(
            contract_id=cid,
            key="I1",
            name="NPS",
            baseline=1,
            target=2,
            direction="increase",
            cadence="monthly",
        )
        session.add(indicator)
        await session.flush()
        session.add(Measurement(indicator_id=indicator.id or 0, value=1.5, recorded_by=PEER1))
        common = {"contract_id": cid, "expectation_key": "E1", "polarity": "strength"}
        session.add(Feedback(**common, behaviour="Named by Pia", author_id=PEER1))  # type: ignore[arg-type]
        hashed = author_hash(KEY, user=PEER1, contract_id=cid)
        session.add(Feedback(**common, behaviour="Pia, held", anonymous=True, author_hash=hashed))  # type: ignore[arg-type]
        session.add(
            Feedback(
                **common,  # type: ignore[arg-type]
                behaviour=f"Raj: worked with <@{PEER1}|pia> on it",
                anonymous=True,
                author_hash="v1:someone-else",
                released_at=NOW,
            )
        )
        session.add(
            Feedback(**common, behaviour="Raj, still held", anonymous=True, author_hash="v1:x")  # type: ignore[arg-type]
        )
        session.add(
            Evidence(
                contract_id=cid, item_type="indicator", item_key="I1", note="Pia's", added_by=PEER1
            )
        )
        session.add(
            Evidence(
                contract_id=cid,
                item_type="indicator",
                item_key="I1",
                note=f"Thanks <@{PEER1}>",
                added_by="U0LEAD001",
            )
        )
        session.add(
            AuditEvent(
                contract_id=cid, actor_id=PEER1, action="feedback.given", detail={"by": PEER1}
            )
        )
        await session.commit()
        return cid


async def test_an_authors_export_has_what_they_wrote_and_no_hash(
    sessions: SessionFactory,
) -> None:
    await seed(sessions)
    async with sessions() as session:
        await writing(session)
        data = await export_person(session=session, user=PEER1, team=TEAM, key=KEY, now=NOW)
    text = json.dumps(data, default=str)
    written = {e["behaviour"]: e["status"] for e in data["feedback_written"]}
    assert written == {"Named by Pia": "attributed", "Pia, held": "anonymous, held"}
    assert "v1:" not in text and "Raj" not in text.split('"records"')[0]
    assert data["records"]["contract_person"][0]["user_id"] == PEER1
    assert {"contract", "measurement", "evidence", "audit_event"} <= set(data["records"])
    assert "feedback" not in data["records"]


async def test_a_leaders_export_has_released_feedback_without_its_authors(
    sessions: SessionFactory,
) -> None:
    await seed(sessions)
    async with sessions() as session:
        await writing(session)
        data = await export_person(session=session, user="U0LEAD001", team=TEAM, key=KEY, now=NOW)
    received = {e["behaviour"]: e["from"] for e in data["feedback_received"]}
    assert received == {
        "Named by Pia": PEER1,
        f"Raj: worked with <@{PEER1}|pia> on it": "anonymous",
    }
    assert "Raj, still held" not in json.dumps(data) and "v1:" not in json.dumps(data)


async def test_erasing_a_leader_or_sponsor_is_refused(sessions: SessionFactory) -> None:
    await seed(sessions)
    async with sessions() as session:
        await writing(session)
        refused = await erase_person(session=session, user="U0SPON001", team=TEAM, key=KEY, now=NOW)
    assert isinstance(refused, Refusal) and "sponsors" in refused.text


async def test_erasing_removes_what_they_wrote_and_unnames_them_everywhere(
    sessions: SessionFactory,
) -> None:
    cid = await seed(sessions)
    async with sessions() as session:
        await writing(session)
        erased = await erase_person(session=session, user=PEER1, team=TEAM, key=KEY, now=NOW)
    assert not isinstance(erased, Refusal)
    assert erased.deleted["feedback"] == 2 and erased.deleted["evidence"] == 1
    assert erased.deleted["contract_person"] == 1
    assert await traces_of(sessions, [PEER1]) == []
    async with sessions() as session:
        behaviours = set((await session.exec(select(Feedback.behaviour))).all())
        contract = await session.get(Contract, cid)
        events = (await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all()
        notes = set((await session.exec(select(Evidence.note))).all())
    assert behaviours == {"Raj: worked with [erased user] on it", "Raj, still held"}
    assert notes == {"Thanks [erased user]"}
    assert contract is not None and (contract.owner_id, contract.created_by) == (None, None)
    assert events[0].actor_id is None and events[0].detail == {"by": "[erased user]"}
    last = events[-1]
    assert (last.action, last.actor_id, last.contract_id) == ("privacy.erased", None, None)
    assert last.detail["subject"] == erasure_mark(KEY, team=TEAM, user=PEER1)
    assert last.detail["rows_deleted"] == sum(erased.deleted.values())

    async with sessions() as session:
        await writing(session)
        again = await erase_person(session=session, user=PEER1, team=TEAM, key=KEY, now=NOW)
    assert not isinstance(again, Refusal) and again.previously == [NOW]


# --- the command line, against the data the bot wrote ------------------------------------


@pytest.fixture
def env(bot: Bot, sqlite_url: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_API_URL": bot.fake.api_url,
        "DATABASE_URL": sqlite_url,
        "LOG_LEVEL": "WARNING",
    }


async def test_export_and_erase_from_the_command_line(
    bot: Bot, example_contract: int, env: dict[str, str], tmp_path: Path
) -> None:
    fast_sending(bot)
    await give(bot, user=PEER1, anonymous=True, behaviour=f"{BEHAVIOUR} Pia anonymous.")
    await give(bot, user=PEER1, behaviour=f"{BEHAVIOUR} Pia named.")
    await give(bot, user=PEER2, anonymous=True, behaviour=f"{BEHAVIOUR} Raj anonymous.")

    run = await northstar("privacy", "export", PEER1, cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    data = json.loads(run.out)
    written = sorted(e["behaviour"].rsplit(" ", 2)[-2:][0] for e in data["feedback_written"])
    assert written == ["Pia", "Pia"] and "Raj anonymous" not in run.out and "v1:" not in run.out

    run = await northstar("privacy", "export", "dana", cwd=tmp_path, env=env)
    assert run.code == 1 and "not a Slack user id" in run.err

    run = await northstar("privacy", "erase", "U0LEAD001", cwd=tmp_path, env=env)
    assert run.code == 1 and "still leads or sponsors" in run.err

    run = await northstar("privacy", "erase", PEER1, cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    assert "Deleted: " in run.out and "2 feedback" in run.out
    assert await traces_of(bot.sessions, [PEER1]) == []
    async with bot.sessions() as session:
        left = (await session.exec(select(Feedback.behaviour))).all()
    assert left == [f"{BEHAVIOUR} Raj anonymous."]


async def test_the_command_line_never_makes_a_new_key(tmp_path: Path, env: dict[str, str]) -> None:
    elsewhere = dict(env, DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/other.db")
    run = await northstar("privacy", "export", PEER1, "--team", TEAM, cwd=tmp_path, env=elsewhere)
    assert run.code == 2 and "no key file" in run.err
    assert not (tmp_path / "feedback_hash.key").exists() and not key_file().exists()
