"""Schema migrations with Alembic, callable from the CLI, the bot's start-up and tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables)
from storage.db import create_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision`."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_on, revision)
    finally:
        await engine.dispose()


def _upgrade_on(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def pending_changes(url: str) -> list[object]:
    """Differences between the migrated schema and the models (empty when in step)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_compare)
    finally:
        await engine.dispose()


def _compare(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


def revision(url: str, message: str) -> None:
    """Autogenerate a new migration from the models (for developers)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
