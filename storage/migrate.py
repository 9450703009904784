"""Schema migrations with Alembic, callable from the CLI, the bot's start-up and tests.

Migrations never destroy data and run once, however many processes start together:
- one transaction per run, under a lock: PostgreSQL's advisory lock `MIGRATION_LOCK`, SQLite's
  write lock (`BEGIN IMMEDIATE`, see `storage.db`); whoever comes second finds the work done;
- on SQLite, foreign keys are off while migrating, because a batch migration rebuilds a table
  with `DROP TABLE`, which would fire the `ON DELETE` actions of every row pointing at it
  (`SET NULL` the links, `CASCADE` whole contracts away); `PRAGMA foreign_key_check` then
  refuses to commit a migration that left a row pointing at nothing;
- commands that only read call `require_current` instead of migrating a production database.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables)
from storage.db import BEGIN_OPTION, create_engine, ensure_writable, is_sqlite, sqlite_path

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# The key of the PostgreSQL advisory lock that migrations hold ("NSMI"): one at a time.
MIGRATION_LOCK = 0x4E534D49

UPGRADE_COMMAND = "northstar db upgrade"


class MigrationError(RuntimeError):
    """A migration would have committed broken data; nothing was changed."""


class SchemaNotCurrent(RuntimeError):
    """The database is not at the schema this code was written for."""


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision`."""
    await _migrate(url, command.upgrade, revision)


async def downgrade(url: str, revision: str) -> None:
    """Take the database at `url` down to `revision` (tests and operators)."""
    await _migrate(url, command.downgrade, revision)


async def _migrate(url: str, step: Callable[[Config, str], None], revision: str) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        step(config, revision)

    ensure_writable(url)  # before SQLite maps an -shm file it could not write
    engine = migration_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_guarded, run)
    finally:
        await engine.dispose()


def migration_engine(url: str) -> AsyncEngine:
    """An engine for migrating: on SQLite its connections start with foreign keys off.

    The pragma is a no-op inside a transaction, so it is set on connect, before BEGIN; this
    listener runs after `storage.db`'s, which turns them on for every other engine. The
    legacy `ALTER TABLE ... RENAME` is on as well: a batch migration renames its rebuilt table
    into place after dropping the old one, and the modern rename checks every trigger of the
    schema first, failing on one that reads the table dropped (a measurement's trigger reads
    `success_indicator`: `0027_chart_history`). The triggers *on* a rebuilt table go with it:
    `tests/storage/test_migrations.py` checks that every trigger is there at the head.
    """
    engine = create_engine(url)
    if is_sqlite(url):

        @event.listens_for(engine.sync_engine, "connect")
        def _foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.execute("PRAGMA legacy_alter_table=ON")
            cursor.close()

    return engine


def run_guarded(connection: Connection, migrate: Callable[[Connection], None]) -> None:
    """Run `migrate` under the migration lock, then check what it left (one transaction)."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # The write lock is already held: storage.db begins with BEGIN IMMEDIATE.
        if connection.exec_driver_sql("PRAGMA foreign_keys").scalar() != 0:
            raise MigrationError("SQLite foreign keys are on: a table rebuild would lose rows")
    else:
        # Held until the transaction ends: a second process waits here, then finds the work done.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    migrate(connection)
    if sqlite:
        _check_foreign_keys(connection)


def _check_foreign_keys(connection: Connection) -> None:
    """Refuse (and so roll back) a migration that left rows pointing at missing rows."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        shown = ", ".join(f"{table} row {row} -> {parent}" for table, row, parent, _ in broken[:5])
        more = f" and {len(broken) - 5} more" if len(broken) > 5 else ""
        raise MigrationError(
            f"the migration would leave {len(broken)} row(s) pointing at missing rows "
            f"({shown}{more}); nothing was changed"
        )


async def require_current(url: str) -> None:
    """Raise `SchemaNotCurrent` with the sentence to show unless the schema is at the head.

    For commands that only read: they must not migrate (a report is no time to change a
    production schema), nor read a schema they were not written for. Creates no database.
    """
    script = ScriptDirectory.from_config(alembic_config())
    heads = set(script.get_heads())
    path = sqlite_path(url) if is_sqlite(url) else None
    current: set[str] = set()
    if path is None or path.exists():
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.execution_options(**{BEGIN_OPTION: "DEFERRED"})
                current = await connection.run_sync(_current_heads)
        finally:
            await engine.dispose()
    if current == heads:
        return
    for revision in current:
        try:
            script.get_revision(revision)
        except CommandError:
            raise SchemaNotCurrent(
                f"the database schema ({revision}) is newer than this North Star knows: "
                "run the newer version"
            ) from None
    at = ", ".join(sorted(current)) or "empty"
    raise SchemaNotCurrent(
        f"the database schema is behind (at {at}; this North Star needs "
        f"{', '.join(sorted(heads))}): run `{UPGRADE_COMMAND}`"
    )


def _current_heads(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def pending_changes(url: str) -> list[object]:
    """Differences between the migrated schema and the models (empty when in step)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_compare)
    finally:
        await engine.dispose()


# The lessons' full-text search index (an FTS5 table and its triggers on SQLite, a GIN index on
# PostgreSQL) is made by its migration for one database or the other, not by the models.
SEARCH_INDEX = "lesson_search"


def is_search_index(name: str | None) -> bool:
    """Whether a table or index is the lessons' search index, or one of FTS5's own tables."""
    return bool(name) and str(name).startswith(SEARCH_INDEX)


def _include_name(name: str | None, _kind: str, _parents: object) -> bool:
    return not is_search_index(name)


def _compare(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": _include_name}
    )
    return list(compare_metadata(context, SQLModel.metadata))


def revision(url: str, message: str) -> None:
    """Autogenerate a new migration from the models (for developers)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
