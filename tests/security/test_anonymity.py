"""Anonymity that survives an attacker, not only a database scan.

Request status that names nobody, one person counted once whatever team id they write from,
the hash key kept away from the data, no trace of withdrawals or submission order, and an
erasure that reaches the database files and the bot's own messages in Slack.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy import inspect
from sqlmodel import select

from bot.contracts.io import import_file
from bot.core.permissions import Refusal
from bot.feedback.jobs import feedback_job, retract_posted
from bot.feedback.model import Entry
from bot.feedback.service import give_feedback, hash_key, target_of
from bot.privacy.keys import (
    KeyUnavailable,
    announce_key,
    author_hash,
    feedback_key,
    key_file,
    legacy_author_hash,
)
from bot.privacy.service import erase_person, export_person
from bot.scheduler import JobRun
from bot.settings import SettingsError, load_settings
from storage.db import SessionFactory, create_engine, session_factory, writing
from storage.migrate import upgrade
from storage.models import AuditEvent, Contract, ContractStatus, Expectation, Feedback
from tests.bot.cli.test_main import northstar
from tests.bot.test_runtime import ROOT, free_port
from tests.conftest import EXAMPLE_CONTRACT, Bot, _block_text, import_example
from tests.fakes import FakeSlack
from tests.handlers.test_feedback_requests import ask, click_give, request_dm
from tests.handlers.test_feedback_support import (
    BEHAVIOUR,
    DANA,
    LEADER,
    OUTSIDER,
    PEER1,
    PEER2,
    PEER3,
    SPONSOR,
    answers,
    dms,
    fast_sending,
    for_modal,
    give,
    open_modal,
    say,
    settled,
    text_of,
)
from tests.harness import BOT_TOKEN, SIGNING_SECRET, filled_modal, make_settings, running_bot
from tests.storage.old_schema import add_old

PG_KEY = "a-configured-key-for-postgresql-replicas"
INSTALLATION_TEAM = "T0TEST001"  # what the fake Slack's auth.test answers


@pytest_asyncio.fixture
async def app(fake_slack: FakeSlack, database_url: str) -> AsyncIterator[Bot]:
    """The real app on SQLite (with a generated key) and on PostgreSQL (a configured key)."""
    overrides = {} if database_url.startswith("sqlite") else {"feedback_hash_key": PG_KEY}
    async with running_bot(fake_slack, database_url, **overrides) as harness:
        fast_sending(harness)
        yield harness


@pytest_asyncio.fixture
async def contract_id(app: Bot) -> int:
    return await import_example(app)


async def run_job(bot: Bot) -> None:
    await feedback_job(JobRun(services=bot.services, client=bot.app.client, force=False))


async def feedback_rows(bot: Bot) -> list[Feedback]:
    async with bot.sessions() as session:
        return list((await session.exec(select(Feedback))).all())


async def home_text(bot: Bot, user: str) -> str:
    before = len(bot.fake.calls_to("views.publish"))
    await bot.driver.app_home_opened(user)
    await bot.fake.wait_for("views.publish", count=before + 1)
    return _block_text(bot.fake.home_views[user])


async def charts_drawn(bot: Bot) -> None:
    """The contract's charts drawn and uploaded, so every summary and App Home shows them
    with its text (a chart drawn anew follows in a message or publish of its own)."""
    before = len(bot.fake.calls_to("response_url"))
    await say(bot, "/contract", "summary", user=LEADER)
    await bot.fake.wait_for(
        "response_url",
        where=lambda c: (
            c in bot.fake.calls_to("response_url")[before:] and '"image"' in json.dumps(c.args)
        ),
        timeout=30,
    )


async def what_they_see(bot: Bot) -> dict[str, str]:
    """Every view the leader and the sponsor can reach: requests, summary, history, received
    feedback, App Home and their DMs from the bot."""
    seen: dict[str, str] = {}
    await charts_drawn(bot)
    for user, about in ((LEADER, ""), (SPONSOR, f" {DANA}")):
        seen[f"{user} requests"] = await say(bot, "/contract", "request-feedback", user=user)
        seen[f"{user} summary"] = await say(bot, "/contract", f"summary{about}", user=user)
        seen[f"{user} history"] = await say(bot, "/contract", f"history{about}", user=user)
        seen[f"{user} received"] = await say(bot, "/feedback", f"received{about}", user=user)
        seen[f"{user} home"] = await home_text(bot, user)
        seen[f"{user} dms"] = json.dumps([_block_text(m) for m in dms(bot, user)])
    return seen


async def delete_mine(bot: Bot, user: str, feedback_id: int) -> str:
    """`/feedback mine`, then Delete on one entry; the list as it is afterwards."""
    mine = await open_modal(bot, "/feedback", "mine", user=user)
    before = len(bot.fake.calls_to("views.update"))
    await bot.driver.block_action(
        user=user, action_id="feedback_delete_mine", view=mine, block_id=f"mine_{feedback_id}"
    )
    await bot.fake.wait_for("views.update", count=before + 1)
    return text_of(await filled_modal(bot.fake, user))


# --- inference from request status ----------------------------------------------------------


async def test_a_padded_request_tells_nobody_who_answered_anonymously(
    app: Bot, contract_id: int
) -> None:
    """Ask Raj and two people who will never answer; Raj answers anonymously, then withdraws.
    Nothing the leader or the sponsor can open changes, on the day or the day after."""
    await ask(app, PEER2, OUTSIDER, PEER3)
    for reviewer in (PEER2, OUTSIDER, PEER3):
        await request_dm(app, reviewer)
    await settled(app)
    before = await what_they_see(app)

    modal = await click_give(app, PEER2, dms(app, PEER2)[0])
    response = await app.driver.submit_view(
        modal, for_modal(modal, answers(anonymity="anonymous")), user=PEER2
    )
    assert response.json["response_action"] == "update"
    assert await what_they_see(app) == before

    app.clock.advance(timedelta(days=1))
    await run_job(app)
    await settled(app)
    a_day_later = await what_they_see(app)
    status = a_day_later[f"{LEADER} requests"]
    assert "answered by name: nobody yet" in status
    assert "anonymous answers:" not in status.lower() and "no named answer" not in status
    assert not [user for user in (PEER2, OUTSIDER, PEER3) if user in status]

    [entry] = await feedback_rows(app)
    assert "Deleted." in await delete_mine(app, PEER2, entry.id or 0)
    assert await what_they_see(app) == a_day_later  # the withdrawal leaves no trace either
    async with app.sessions() as session:
        actions = (await session.exec(select(AuditEvent.action))).all()
    assert not [a for a in actions if a.startswith("feedback.") and a != "feedback.requested"]


async def test_two_named_answers_of_three_do_not_point_at_the_third(
    app: Bot, contract_id: int
) -> None:
    await ask(app, PEER1, PEER2, PEER3)
    for reviewer in (PEER1, PEER3):
        modal = await click_give(app, reviewer, await request_dm(app, reviewer))
        await app.driver.submit_view(modal, for_modal(modal, answers()), user=reviewer)
    modal = await click_give(app, PEER2, await request_dm(app, PEER2))
    await app.driver.submit_view(
        modal, for_modal(modal, answers(anonymity="anonymous")), user=PEER2
    )
    app.clock.advance(timedelta(days=1))
    said = await say(app, "/contract", "request-feedback", user=LEADER)
    assert f"answered by name: <@{PEER1}>, <@{PEER3}>" in said
    assert PEER2 not in said and "anonymous answers:" not in said.lower()


# --- one person meeting the threshold alone -------------------------------------------------


async def test_one_person_writing_from_three_team_ids_is_one_author(
    app: Bot, contract_id: int
) -> None:
    """Enterprise Grid and Slack Connect: one person's requests carry several team ids."""
    for n, team in enumerate(("T0TEST001", "T0GRIDWS2", "T0CONNECT")):
        app.driver.team_id = team
        response = await give(app, user=PEER1, anonymous=True, behaviour=f"{BEHAVIOUR} Team {n}.")
        assert response.json["response_action"] == "update"
    app.driver.team_id = "T0CONNECT4"
    response = await give(app, user=PEER1, anonymous=True, behaviour=f"{BEHAVIOUR} Team 4.")
    assert "3 anonymous entries this week" in response.json["errors"]["anonymity"]

    rows = await feedback_rows(app)
    assert len(rows) == 3 and len({r.author_hash for r in rows}) == 1
    app.clock.advance(timedelta(days=1))
    await run_job(app)
    assert not [m for m in dms(app, LEADER) if "Anonymous feedback" in text_of(m)]

    mine = text_of(await open_modal(app, "/feedback", "mine", user=PEER1))
    assert all(f"Team {n}." in mine for n in range(3))
    key = hash_key(app.services)
    async with app.sessions() as session:
        await writing(session)
        data = await export_person(
            session=session, user=PEER1, team="T0ELSEWHR", key=key, now=app.clock.now()
        )
    assert len(data["feedback_written"]) == 3
    async with app.sessions() as session:
        await writing(session)
        erased = await erase_person(
            session=session, user=PEER1, team="T0ELSEWHR", key=key, now=app.clock.now()
        )
    assert not isinstance(erased, Refusal) and erased.deleted["feedback"] == 3


async def test_entries_hashed_with_the_team_by_earlier_versions_are_found_and_rehashed(
    app: Bot, contract_id: int
) -> None:
    key = hash_key(app.services)
    old = legacy_author_hash(key, team=INSTALLATION_TEAM, user=PEER1, contract_id=contract_id)
    async with app.sessions() as session:
        await writing(session)
        session.add(
            Feedback(
                contract_id=contract_id,
                polarity="strength",
                behaviour=f"{BEHAVIOUR} Written before.",
                anonymous=True,
                author_hash=old,
            )
        )
        await session.commit()
    assert "Written before." in text_of(await open_modal(app, "/feedback", "mine", user=PEER1))
    [row] = await feedback_rows(app)
    assert row.author_hash == author_hash(key, user=PEER1, contract_id=contract_id)


# --- the key beside the data ---------------------------------------------------------------


def child_env(**values: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "DATABASE_URL", "PORT", "LOG_LEVEL", "FEEDBACK_"))
    }
    env.update(PYTHONPATH=str(ROOT), **values)
    return env


async def test_the_generated_key_lives_outside_the_data_folder_and_the_log_says_where(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    port = free_port()
    env = child_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        DATABASE_URL=f"sqlite:///{data / 'northstar.db'}",
        PORT=str(port),
        LOG_LEVEL="INFO",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(400):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), timeout=20)
    log = err.decode()
    assert process.returncode == 0, log

    path = key_file()
    key_hex = path.read_text().strip()
    assert f"hashed with the key in {path}" in log and key_hex not in log
    assert not path.is_relative_to(data)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    backup = tmp_path / "backup" / "copy.db"
    run = await northstar("db", "backup", str(backup), cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    copied = [*data.rglob("*"), *backup.parent.rglob("*")]
    assert {p.name for p in copied} <= {
        "northstar.db",
        "northstar.db-wal",
        "northstar.db-shm",
        "copy.db",
    }
    for file in copied:
        content = file.read_bytes()
        assert key_hex.encode() not in content and bytes.fromhex(key_hex) not in content, file


def sqlite_settings(folder: Path) -> Any:
    return make_settings(api_url="", database_url=f"sqlite+aiosqlite:///{folder}/northstar.db")


def test_a_key_beside_the_database_is_moved_out_once_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = sqlite_settings(tmp_path)
    old = tmp_path / "feedback_hash.key"
    key_hex = "ab" * 32
    old.write_text(key_hex + "\n")
    # The command line reads it where it is: it may run as another user than the bot.
    assert feedback_key(settings, create=False) == bytes.fromhex(key_hex)
    assert old.exists() and not key_file().exists()

    caplog.set_level("INFO")
    announce_key(settings)  # the bot's start-up
    assert not old.exists() and key_file().read_text().strip() == key_hex
    assert stat.S_IMODE(key_file().stat().st_mode) == 0o600
    assert f"from {old} to {key_file()}" in caplog.text and key_hex not in caplog.text
    assert feedback_key(settings) == bytes.fromhex(key_hex)


def test_a_key_beside_the_database_that_differs_is_kept_and_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = sqlite_settings(tmp_path)
    key_file().parent.mkdir(parents=True)
    key_file().write_text("cd" * 32 + "\n")
    old = tmp_path / "feedback_hash.key"
    old.write_text("ab" * 32 + "\n")
    assert feedback_key(settings) == bytes.fromhex("ab" * 32)  # this database's hashes
    assert old.exists() and key_file().read_text().strip() == "cd" * 32
    assert "differs" in caplog.text and str(old) in caplog.text


async def test_postgresql_needs_a_configured_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"DATABASE_URL": "postgresql://u@db.example/northstar"}, env_file=None)
    [problem] = caught.value.problems
    assert problem.startswith("FEEDBACK_HASH_KEY must be set") and "\n" not in problem
    configured = {"DATABASE_URL": "postgresql://u@h/n", "FEEDBACK_HASH_KEY": "k" * 32}
    assert load_settings(configured, env_file=None).feedback_hash_key == "k" * 32

    run = await northstar(
        "db", "upgrade", cwd=tmp_path, env=child_env(DATABASE_URL="postgresql://u@h/n")
    )
    assert run.code == 2 and run.err.count("\n") == 1 and "FEEDBACK_HASH_KEY" in run.err
    settings = make_settings(
        api_url="", database_url="postgresql+asyncpg://u@h/n", feedback_hash_key=None
    )
    with pytest.raises(KeyUnavailable, match="PostgreSQL"):
        feedback_key(settings)
    assert not key_file().exists()


# --- traces -----------------------------------------------------------------------------------


async def an_old_contract(sessions: SessionFactory) -> int:
    """A contract in a database at an old revision: only the columns it had then."""
    values: dict[str, Any] = {
        "id": 1,
        "title": "Head of Platform",
        "leader_id": LEADER,
        "sponsor_id": SPONSOR,
        "status": ContractStatus.active,
        "version": 1,
        "mission": "",
        "period_start": date(2027, 1, 4),
        "period_end": date(2027, 12, 17),
        "checkin_weekday": 4,
        "checkin_time": "15:00",
        "reminder_hours": 24,
        "anonymity_threshold": 3,
        "digest_cadence": "monthly",
        "digest_weekday": 0,
        "digest_time": "09:00",
        "reporting": "",
        "created_at": datetime(2027, 1, 4, tzinfo=UTC),
        "updated_at": datetime(2027, 1, 4, tzinfo=UTC),
    }
    async with sessions() as session:
        await writing(session)
        table = sa.table("contract", *(sa.column(name) for name in values))
        await session.exec(sa.insert(table).values(**values))
        session.add(Expectation(contract_id=1, key="E1", kind="impact", text="Own"))
        await session.commit()
    return 1


async def a_contract(sessions: SessionFactory) -> int:
    async with sessions() as session:
        await writing(session)
        row = Contract(
            title="Head of Platform",
            leader_id=LEADER,
            sponsor_id=SPONSOR,
            status=ContractStatus.active,
            period_start=date(2027, 1, 4),
            period_end=date(2027, 12, 17),
        )
        # Also written at an older revision (the upgrade test): only the columns it had.
        cid = await add_old(session, row) or 0
        session.add(Expectation(contract_id=cid, key="E1", kind="impact", text="Own"))
        await session.commit()
        return cid


async def test_ids_do_not_tell_when_an_anonymous_entry_came(sessions: SessionFactory) -> None:
    cid = await a_contract(sessions)
    now = datetime(2027, 3, 10, 9, tzinfo=UTC)
    given: list[tuple[bool, int]] = []
    for n in range(20):
        anonymous = n % 2 == 1
        async with sessions() as session:
            await writing(session)
            target = await target_of(session=session, contract_id=cid)
            assert target is not None
            entry = Entry(
                "E1", "strength", "Review", f"{BEHAVIOUR} {n}", "Risks", anonymous, "peer"
            )
            done = await give_feedback(
                session=session,
                target=target,
                entry=entry,
                giver=f"U0PEOPLE{n:02d}",
                key=b"k" * 32,
                request_id=None,
                now=now + timedelta(minutes=n),
            )
        assert not isinstance(done, Refusal)
        given.append((anonymous, done.feedback_id))
    ids = [i for _, i in given]
    assert ids != sorted(ids) and ids != sorted(ids, reverse=True)
    for anonymous_id in (i for anonymous, i in given if anonymous):
        assert all(abs(anonymous_id - other) > 1 for other in ids if other != anonymous_id)


@asynccontextmanager
async def empty_database(kind: str, folder: Path) -> AsyncIterator[str]:
    """A database of its own, migrated by the test (PostgreSQL: created and dropped)."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'old.db'}"
        return
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    import asyncpg

    name = f"northstar_migration_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(base.replace("postgresql+asyncpg", "postgresql"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_the_upgrade_renumbers_old_anonymous_entries_and_drops_their_trail(
    kind: str, tmp_path: Path
) -> None:
    async with empty_database(kind, tmp_path) as url:
        await upgrade(url, "0003_feedback")
        engine = create_engine(url)
        sessions = session_factory(engine)
        cid = await an_old_contract(sessions)
        async with sessions() as session:
            await writing(session)
            for n in range(1, 7):
                await add_old(
                    session,
                    Feedback(
                        id=n,
                        contract_id=cid,
                        polarity="strength",
                        behaviour=f"entry {n}",
                        anonymous=n % 2 == 0,
                        author_id=None if n % 2 == 0 else "U1",
                        author_hash=f"v1:{n}" if n % 2 == 0 else None,
                    ),
                )
            withdrawn = {"contract_id": cid, "action": "feedback.withdrawn"}
            session.add(AuditEvent(**withdrawn, actor_id=None, detail={"anonymous": True}))  # type: ignore[arg-type]
            session.add(AuditEvent(**withdrawn, actor_id="U1", detail={"anonymous": False}))  # type: ignore[arg-type]
            await session.commit()
        await engine.dispose()

        await upgrade(url)
        engine = create_engine(url)
        async with session_factory(engine)() as session:
            rows = {f.behaviour: f for f in (await session.exec(select(Feedback))).all()}
            events = (await session.exec(select(AuditEvent))).all()
            connection = await session.connection()
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        await engine.dispose()
    assert [rows[f"entry {n}"].id for n in (1, 3, 5)] == [1, 3, 5]
    renumbered = [rows[f"entry {n}"].id or 0 for n in (2, 4, 6)]
    assert not set(renumbered) & set(range(1, 8))
    assert [(e.actor_id, e.detail) for e in events] == [("U1", {"anonymous": False})]
    assert "feedback_answer_mark" not in tables


# --- erase ------------------------------------------------------------------------------------


MARK_NAMED = "Zanzibar-named-7f3a"
MARK_ANONYMOUS = "Quokka-anonymous-91c2"


async def released_with(bot: Bot, *, named: str, anonymous: str) -> None:
    """Pia gives one named and one anonymous entry; Raj and Paul make the group release."""
    await give(bot, user=PEER1, behaviour=f"{BEHAVIOUR} {named}")
    await bot.fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == LEADER)
    await give(bot, user=PEER1, anonymous=True, behaviour=f"{BEHAVIOUR} {anonymous}")
    await give(bot, user=PEER2, anonymous=True, behaviour=f"{BEHAVIOUR} Raj's view.")
    await give(bot, user=PEER3, anonymous=True, behaviour=f"{BEHAVIOUR} Paul's view.")
    bot.clock.advance(timedelta(days=1))
    await run_job(bot)
    await settled(bot)
    leader_sees = json.dumps(dms(bot, LEADER))
    assert named in leader_sees and anonymous in leader_sees and "Raj's view." in leader_sees


def still_in_slack(bot: Bot) -> str:
    return json.dumps(dms(bot, LEADER), ensure_ascii=False)


async def test_erase_leaves_no_text_in_the_sqlite_files_and_redacts_the_bots_messages(
    bot: Bot, example_contract: int, sqlite_url: str, tmp_path: Path
) -> None:
    fast_sending(bot)
    await released_with(bot, named=MARK_NAMED, anonymous=MARK_ANONYMOUS)
    database = Path(sqlite_url.split("///", 1)[1])
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": bot.fake.api_url,
        "DATABASE_URL": sqlite_url,
        "LOG_LEVEL": "WARNING",
    }
    run = await northstar("privacy", "erase", PEER1, cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    assert "messages in Slack that carried their feedback are redacted" in run.out

    files = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
    assert database in files
    for file in files:
        content = file.read_bytes()
        for mark in (MARK_NAMED, MARK_ANONYMOUS):
            assert mark.encode() not in content, f"{mark} is still readable in {file.name}"
    shown = still_in_slack(bot)
    assert MARK_NAMED not in shown and MARK_ANONYMOUS not in shown
    assert "This feedback was removed" in shown
    assert "Raj's view." in shown and "Paul's view." in shown  # the group, without Pia's entry


async def test_every_sqlite_connection_zeroes_what_it_deletes(tmp_path: Path) -> None:
    """Some SQLite builds (Debian's) zero deleted content by default, others do not: the bot
    asks for it on every connection, so the raw-bytes test holds on any build."""

    class Recorder:
        isolation_level: str | None = "DEFERRED"

        def __init__(self) -> None:
            self.sql: list[str] = []

        def cursor(self) -> Recorder:
            return self

        def execute(self, sql: str) -> None:
            self.sql.append(sql)

        def close(self) -> None:
            pass

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    recorder = Recorder()
    [on_connect] = [
        listener
        for listener in engine.sync_engine.pool.dispatch.connect
        if getattr(listener, "__name__", "") == "_on_connect"
    ]
    on_connect(recorder, None)
    await engine.dispose()
    assert "PRAGMA secure_delete=ON" in recorder.sql


async def test_erase_redacts_the_bots_messages_on_either_database(
    app: Bot, contract_id: int
) -> None:
    await released_with(app, named=MARK_NAMED, anonymous=MARK_ANONYMOUS)
    async with app.sessions() as session:
        await writing(session)
        erased = await erase_person(
            session=session,
            user=PEER1,
            team=INSTALLATION_TEAM,
            key=hash_key(app.services),
            now=app.clock.now(),
        )
    assert not isinstance(erased, Refusal) and len(erased.posted) == 2
    assert await retract_posted(app.services, app.app.client, erased.posted) == []
    shown = still_in_slack(app)
    assert MARK_NAMED not in shown and MARK_ANONYMOUS not in shown
    assert PEER1 not in shown and "Raj's view." in shown
    assert "2 entries" in shown  # the release, rebuilt with what is left


async def test_withdrawing_named_feedback_takes_it_out_of_the_leaders_dm(
    app: Bot, contract_id: int
) -> None:
    await give(app, user=PEER1, behaviour=f"{BEHAVIOUR} {MARK_NAMED}")
    await app.fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == LEADER)
    await settled(app)
    [entry] = await feedback_rows(app)
    assert "Deleted." in await delete_mine(app, PEER1, entry.id or 0)
    await app.fake.wait_for("chat.update")
    shown = still_in_slack(app)
    assert MARK_NAMED not in shown and PEER1 not in shown and "removed" in shown


async def test_a_peers_export_leaves_out_the_contract_they_may_not_read(
    app: Bot, contract_id: int
) -> None:
    """Pia reviews Dana's contract; she may not read it in Slack, so her export has only
    the rows that name her, without the contract's versions or texts."""
    await give(app, user=PEER1, behaviour=f"{BEHAVIOUR} {MARK_NAMED}")
    key = hash_key(app.services)
    async with app.sessions() as session:
        await writing(session)
        contract = await session.get(Contract, contract_id)
        assert contract is not None
        peer = await export_person(
            session=session, user=PEER1, team=INSTALLATION_TEAM, key=key, now=app.clock.now()
        )
        sponsor = await export_person(
            session=session, user=SPONSOR, team=INSTALLATION_TEAM, key=key, now=app.clock.now()
        )
    text = json.dumps(peer, ensure_ascii=False, default=str)
    assert contract.mission[:40] not in text and "Team engagement score" not in text
    [version] = peer["records"]["contract_version"]
    assert "snapshot" not in version and version["mentions_you_in"] == ["snapshot"]
    assert peer["records"]["contract_person"][0]["user_id"] == PEER1
    assert MARK_NAMED in text  # what she wrote is hers
    sponsor_versions = sponsor["records"]["contract_version"]
    assert sponsor_versions and "snapshot" in sponsor_versions[0]


@pytest.mark.postgres
async def test_erase_on_postgresql_says_what_stays_on_disk(
    fake_slack: FakeSlack, postgres_url: str, tmp_path: Path
) -> None:
    """Where the command line cannot wipe the files itself, it says what is left to do."""
    async with running_bot(fake_slack, postgres_url, feedback_hash_key=PG_KEY) as bot:
        fast_sending(bot)
        _, problems = await import_file(
            EXAMPLE_CONTRACT,
            sessions=bot.sessions,
            client=bot.app.client,
            draft=False,
            now=bot.clock.now(),
        )
        assert problems == []
        await give(bot, user=PEER1, behaviour=f"{BEHAVIOUR} {MARK_NAMED}")
        await bot.fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == LEADER)
        await settled(bot)
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": bot.fake.api_url,
            "DATABASE_URL": postgres_url,
            "FEEDBACK_HASH_KEY": PG_KEY,
            "LOG_LEVEL": "WARNING",
        }
        run = await northstar("privacy", "erase", PEER1, cwd=tmp_path, env=env)
        assert run.code == 0, run.err
        assert "VACUUM" in run.out and MARK_NAMED not in still_in_slack(bot)
        assert await feedback_rows(bot) == []
