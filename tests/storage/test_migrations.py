"""Migrations never destroy data, and run once: every step down and up with a row in every table,
on SQLite and PostgreSQL; replicas migrating together; read-only commands that never migrate.

The tests read the revisions from the migration scripts and the tables from the database
itself, so every future migration is covered without a change here.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from storage.db import create_engine
from storage.migrate import (
    MigrationError,
    SchemaNotCurrent,
    alembic_config,
    downgrade,
    is_search_index,
    migration_engine,
    pending_changes,
    require_current,
    run_guarded,
    upgrade,
)
from tests.bot.cli.test_main import ROOT, northstar
from tests.conftest import EXAMPLE_CONTRACT
from tests.fakes import FakeSlack
from tests.harness import BOT_TOKEN

WRITTEN_BY_TRIGGERS = {"contract_history"}
ROWS = 2  # rows per table: enough for every link to point somewhere other than row 1
REPAIR = "0007_repair_feedback_links"
T = TypeVar("T")


# --- databases: a new, empty one per test --------------------------------------------------


async def _postgres_admin(statement: str) -> None:
    import asyncpg

    base = os.environ["TEST_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(base)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, not even Alembic's table: SQLite, and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    name = f"northstar_migrations_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    except OSError:
        pytest.skip(f"no PostgreSQL server answers at {base}")
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def on(url: str, work: Callable[[Connection], T]) -> T:
    """Run `work` on a connection of the app's own engine (foreign keys on) and commit."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def chain() -> list[str]:
    """Every revision, base first; the history must stay one line."""
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, "the migrations have more than one head"
    revisions = list(reversed(list(script.walk_revisions())))
    for lower, upper in itertools.pairwise(revisions):
        assert upper.down_revision == lower.revision, f"{upper.revision} is not a single step"
    return [r.revision for r in revisions]


def current(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


# --- a row in every table, and what must survive ---------------------------------------------


def reflected(connection: Connection) -> sa.MetaData:
    metadata = sa.MetaData()
    # The lessons' FTS5 index and its shadow tables are SQLite's to fill, through triggers.
    metadata.reflect(connection, only=lambda name, _: not is_search_index(name))
    metadata.remove(metadata.tables["alembic_version"])
    return metadata


def value(column: sa.Column[Any], i: int) -> object:
    """A valid value for `column` in row `i`; a link points at row `i` of its table."""
    for key in column.foreign_keys:
        return value(key.column, i)
    kind = column.type.python_type
    if kind is datetime:
        return datetime(2027, 1, 4, 9, 0, tzinfo=UTC) + timedelta(minutes=i)
    if kind is date:
        return date(2027, 1, 4) + timedelta(days=i)
    if kind is bool:
        return i % 2 == 0
    if kind in (int, float, Decimal):
        return kind(i)
    if kind in (dict, list):
        return kind()
    length = getattr(column.type, "length", None) or 40
    return f"{i}{column.name}"[:length]


def row(table: sa.Table, i: int, **values: object) -> dict[str, object]:
    return {c.name: value(c, i) for c in table.columns} | values


def fill(connection: Connection) -> None:
    """ROWS rows in every table there is, parents first, every nullable link set too (the
    tables that triggers write fill themselves: a row for each of the ROWS contracts)."""
    for table in reflected(connection).sorted_tables:
        if table.name in WRITTEN_BY_TRIGGERS:
            continue
        connection.execute(table.insert(), [row(table, i) for i in range(1, ROWS + 1)])


State = dict[str, dict[str, object]]


def snapshot(connection: Connection) -> State:
    """Per table: its row count, and every value of every column that links to another."""
    state: State = {}
    for table in reflected(connection).sorted_tables:
        entry: dict[str, object] = {
            "rows": connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        }
        for column in table.columns:
            if column.foreign_keys:
                values = connection.execute(sa.select(column)).scalars().all()
                entry[column.name] = sorted(
                    values, key=lambda v: (v is None, 0 if v is None else v)
                )
        state[table.name] = entry
    return state


def orphans(connection: Connection) -> list[str]:
    """Rows whose link points at no row, found the same way on both databases."""
    found = []
    for table in reflected(connection).sorted_tables:
        for key in table.foreign_keys:
            child, parent = key.parent, key.column
            missing = connection.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(
                    child.is_not(None),
                    ~sa.exists().where(parent == child),
                )
            ).scalar_one()
            if missing:
                found.append(f"{table.name}.{child.name}: {missing}")
    return found


def assert_kept(before: State, after: State, step: str, only: set[str] | None = None) -> None:
    tables = set(before) & set(after) & (only if only is not None else set(before))
    for name in sorted(tables):
        columns = set(before[name]) & set(after[name])
        kept = {c: before[name][c] for c in columns}
        now = {c: after[name][c] for c in columns}
        assert now == kept, f"{step}: {name} changed"


# --- every step, with data ------------------------------------------------------------------


async def test_every_migration_keeps_every_row_down_and_up(empty_url: str) -> None:
    revisions = chain()
    await upgrade(empty_url)
    await on(empty_url, fill)
    full = await on(empty_url, snapshot)
    assert set(full) == set(SQLModel.metadata.tables), "a table of the models was not filled"
    assert all(t["rows"] == ROWS for t in full.values())

    # Each step from the head down: down one and up again, then down for the next step.
    for below, revision in reversed(list(itertools.pairwise(revisions))):
        before = await on(empty_url, snapshot)
        await downgrade(empty_url, below)
        down = await on(empty_url, snapshot)
        assert_kept(before, down, f"{revision} down")
        assert await on(empty_url, orphans) == [], f"{revision} down"
        await upgrade(empty_url, revision)
        up = await on(empty_url, snapshot)
        assert_kept(before, up, f"{revision} down and up", only=set(down))
        assert await on(empty_url, orphans) == [], f"{revision} down and up"
        await downgrade(empty_url, below)

    # From the first revision, its tables still full, up to the head one step at a time.
    bottom = await on(empty_url, snapshot)
    assert_kept(full, bottom, "the way down")
    for revision in revisions[1:]:
        before = await on(empty_url, snapshot)
        await upgrade(empty_url, revision)
        assert_kept(before, await on(empty_url, snapshot), f"{revision} up")
        assert await on(empty_url, orphans) == [], f"{revision} up"
    assert await on(empty_url, current) == (revisions[-1],)
    assert_kept(full, await on(empty_url, snapshot), "the way back up", only=set(bottom))
    assert await pending_changes(empty_url) == []
    expected = SQLITE_TRIGGERS if empty_url.startswith("sqlite") else POSTGRES_TRIGGERS
    assert await on(empty_url, triggers) == expected


# What keeps derived rows in step, outside the models: the lessons' search index (SQLite) and
# each contract's history number (`0027_chart_history`). A batch migration that rebuilds one
# of these tables on SQLite drops the triggers on it and must create them again.
HISTORY_SOURCES = ("contract", "success_indicator", "milestone", "checkin", "measurement")
SQLITE_TRIGGERS = {"lesson_search_ai", "lesson_search_ad", "lesson_search_au"} | {
    f"history_{table}_{event}"
    for table in HISTORY_SOURCES
    for event in ("insert", "update", "delete", "moved")
}
POSTGRES_TRIGGERS = {f"history_{table}" for table in HISTORY_SOURCES}


def triggers(connection: Connection) -> set[str]:
    if connection.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    return set(connection.exec_driver_sql(query).scalars())


async def test_base_to_head_to_base_to_head(empty_url: str) -> None:
    for _ in range(2):
        await upgrade(empty_url)
        assert await pending_changes(empty_url) == []
        expected = SQLITE_TRIGGERS if empty_url.startswith("sqlite") else POSTGRES_TRIGGERS
        assert await on(empty_url, triggers) == expected
        await downgrade(empty_url, "base")
        assert await on(empty_url, lambda c: reflected(c).tables) == {}
    await upgrade(empty_url)
    assert await pending_changes(empty_url) == []


async def test_feedback_keeps_its_request_through_0003(empty_url: str) -> None:
    """The reported loss: 0003 rebuilds feedback_request, and every link was set to NULL."""
    await upgrade(empty_url, "0002_checkins")
    await on(empty_url, fill)
    await upgrade(empty_url, "0003_feedback")
    await downgrade(empty_url, "0002_checkins")
    await upgrade(empty_url, "0003_feedback")
    links = await on(
        empty_url, lambda c: c.execute(sa.text("SELECT request_id FROM feedback")).scalars().all()
    )
    assert sorted(links) == list(range(1, ROWS + 1))


def rebuild(connection: Connection) -> None:
    """What a batch migration does on SQLite: copy, DROP TABLE, rename."""
    operations = Operations(MigrationContext.configure(connection))
    for name in ("contract", "feedback_request", "checkin", "amendment", "success_indicator"):
        with operations.batch_alter_table(name, recreate="always"):
            pass


async def test_rebuilding_a_parent_table_cascades_nothing(sqlite_url: str) -> None:
    await on(sqlite_url, fill)
    before = await on(sqlite_url, snapshot)
    engine = migration_engine(sqlite_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_guarded, rebuild)
    finally:
        await engine.dispose()
    assert_kept(before, await on(sqlite_url, snapshot), "rebuilt")
    assert await on(sqlite_url, orphans) == []
    assert await pending_changes(sqlite_url) == []

    # On an ordinary connection (foreign keys on) the guard refuses to start.
    with pytest.raises(MigrationError, match="foreign keys are on"):
        await on(sqlite_url, lambda c: run_guarded(c, rebuild))
    assert_kept(before, await on(sqlite_url, snapshot), "refused")


async def test_a_migration_that_leaves_dangling_rows_is_rolled_back(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dangling.db'}"
    revisions = chain()
    await upgrade(url, revisions[-2])
    await on(url, fill)
    with sqlite3.connect(tmp_path / "dangling.db") as raw:  # foreign keys are off by default
        raw.execute("UPDATE contract_version SET contract_id = 99 WHERE id = 2")
    raw.close()
    with pytest.raises(MigrationError, match=r"1 row\(s\) pointing at missing rows"):
        await upgrade(url)
    assert await on(url, current) == (revisions[-2],)  # nothing of the migration was kept
    run = await northstar("db", "upgrade", cwd=tmp_path, env={"DATABASE_URL": url})
    assert run.code == 1 and "contract_version row 2 -> contract" in run.err, run.err
    assert "Traceback" not in run.err


# --- the repair of what 0003 did ------------------------------------------------------------


async def test_lost_answer_links_are_restored_where_they_are_certain(empty_url: str) -> None:
    below = ScriptDirectory.from_config(alembic_config()).get_revision(REPAIR).down_revision
    assert isinstance(below, str)
    await upgrade(empty_url, below)
    closed = datetime(2027, 3, 1, 10, 15, 30, 123456, tzinfo=UTC)

    def lose_links(connection: Connection) -> None:
        tables = reflected(connection).tables
        fill(connection)
        request, feedback = tables["feedback_request"], tables["feedback"]

        def ask(i: int, reviewer: str, status: str, at: datetime | None) -> None:
            values = row(request, i, contract_id=1, reviewer_id=reviewer, status=status)
            connection.execute(request.insert().values(values | {"closed_at": at}))

        def give(i: int, author: str | None, at: datetime, request_id: int | None) -> None:
            values = row(feedback, i, contract_id=1, author_id=author, created_at=at)
            values |= {"anonymous": author is None, "request_id": request_id}
            connection.execute(feedback.insert().values(values))

        ask(10, "U0PEER001", "answered", closed)
        give(10, "U0PEER001", closed, None)  # its answer, link lost: restored
        give(11, "U0PEER001", closed + timedelta(days=1), None)  # a second answer: unknowable
        ask(12, "U0PEER002", "expired", closed)
        give(12, "U0PEER002", closed, None)  # an expired request was not answered by it
        give(13, None, closed, None)  # anonymous answers are never linked
        ask(14, "U0PEER003", "answered", closed)
        ask(15, "U0PEER003", "answered", closed)
        give(14, "U0PEER003", closed, None)  # two requests fit: left alone
        ask(16, "U0PEER001", "answered", closed + timedelta(hours=1))
        give(16, "U0PEER001", closed + timedelta(hours=1), 16)  # intact: untouched

    await on(empty_url, lose_links)
    await upgrade(empty_url, REPAIR)
    links = await on(empty_url, links_of)
    assert {i: links[i] for i in (10, 11, 12, 13, 14, 16)} == {
        10: 10,
        11: None,
        12: None,
        13: None,
        14: None,
        16: 16,
    }
    assert [links[i] for i in range(1, ROWS + 1)] == list(range(1, ROWS + 1))
    await downgrade(empty_url, below)  # nothing to undo: the links are right below too
    assert await on(empty_url, links_of) == links


def links_of(connection: Connection) -> dict[int, int | None]:
    rows = connection.execute(sa.text("SELECT id, request_id FROM feedback")).all()
    return {int(i): request for i, request in rows}


# --- run once: replicas starting together ----------------------------------------------------

RACER = """
import asyncio, sys
from storage.migrate import upgrade
print("ready", flush=True)
sys.stdin.readline()
asyncio.run(upgrade(sys.argv[1]))
print("done", flush=True)
"""


async def test_three_replicas_migrate_an_empty_database_together(
    empty_url: str, tmp_path: Path
) -> None:
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    racers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RACER,
            empty_url,
            cwd=tmp_path,
            env=environment,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    for racer in racers:  # every one imported and waiting: then all start at once
        assert racer.stdout is not None
        assert await racer.stdout.readline() == b"ready\n"
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.write(b"go\n")
        await racer.stdin.drain()
    results = await asyncio.gather(*(racer.communicate() for racer in racers))
    for racer, (out, err) in zip(racers, results, strict=True):
        assert racer.returncode == 0, err.decode()
        assert out == b"done\n"
    assert await on(empty_url, current) == (chain()[-1],)
    assert await pending_changes(empty_url) == []


# --- read-only commands never migrate -------------------------------------------------------


@pytest.fixture
def behind(tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI on a SQLite database one revision behind the head."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'behind.db'}"
    asyncio.run(upgrade(url, chain()[-2]))
    return {
        "DATABASE_URL": url,
        "FEEDBACK_HASH_KEY": "k" * 40,
        "LOG_LEVEL": "WARNING",
    }


async def test_read_only_commands_refuse_a_schema_behind(
    behind: dict[str, str], tmp_path: Path
) -> None:
    url, revisions = behind["DATABASE_URL"], chain()
    for command in (
        ("report", "--period", "2027Q2"),
        ("contract", "export"),
        ("privacy", "export", "U0PEER001", "--team", "T0TEAM"),
    ):
        run = await northstar(*command, cwd=tmp_path, env=behind)
        assert run.code == 2, (command, run.err)
        assert run.err.startswith("northstar: the database schema is behind"), run.err
        assert "run `northstar db upgrade`" in run.err and "Traceback" not in run.err
        assert run.out == ""
        assert await on(url, current) == (revisions[-2],), f"{command} migrated"

    run = await northstar("db", "upgrade", cwd=tmp_path, env=behind)
    assert run.code == 0, run.err
    run = await northstar("report", "--period", "2027Q2", cwd=tmp_path, env=behind)
    assert run.code == 0, run.err


async def test_the_schema_is_current_only_at_the_head(empty_url: str) -> None:
    with pytest.raises(SchemaNotCurrent, match=r"behind \(at empty; this North Star needs"):
        await require_current(empty_url)
    await upgrade(empty_url, chain()[-2])
    with pytest.raises(SchemaNotCurrent, match=f"behind \\(at {chain()[-2]};"):
        await require_current(empty_url)
    await upgrade(empty_url)
    await require_current(empty_url)
    await on(
        empty_url, lambda c: c.execute(sa.text("UPDATE alembic_version SET version_num = 'z9'"))
    )
    with pytest.raises(SchemaNotCurrent, match=r"\(z9\) is newer than this North Star knows"):
        await require_current(empty_url)


async def test_a_read_only_command_creates_no_database(tmp_path: Path) -> None:
    missing = tmp_path / "data" / "none.db"
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{missing}", "LOG_LEVEL": "WARNING"}
    run = await northstar("contract", "export", cwd=tmp_path, env=env)
    assert run.code == 2 and "the database schema is behind (at empty" in run.err, run.err
    assert not missing.exists()


async def test_a_writing_command_still_migrates(
    behind: dict[str, str], fake_slack: FakeSlack, tmp_path: Path
) -> None:
    env = behind | {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": fake_slack.api_url}
    run = await northstar("contract", "import", str(EXAMPLE_CONTRACT), cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    assert await on(behind["DATABASE_URL"], current) == (chain()[-1],)
