"""The async engine and session factory, one code path for SQLite and PostgreSQL.

A session reads only, unless it was declared writing: `await writing(session)` before its
first query. Read-only is enforced, so an undeclared write fails loudly instead of taking
a lock by surprise: on SQLite its transaction begins deferred (readers never queue behind
writers, in WAL mode) with `PRAGMA query_only` on; on PostgreSQL it begins `READ ONLY`.
A writing session's transactions (all of them, after a commit too) begin `BEGIN IMMEDIATE`
on SQLite: the writer waits for the lock up front instead of failing with "database is
locked" when it upgrades a read snapshot that a concurrent writer made stale, which the busy
timeout cannot resolve. `await read_only(session)` declares the default explicitly.
Connections outside sessions (`engine.begin()`: migrations, bulk loads) are writers.

SQLite runs in WAL mode with foreign keys on and a busy timeout.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import idempotency

SQLITE_BUSY_TIMEOUT_MS = 30_000

SessionFactory = async_sessionmaker[AsyncSession]
BEGIN_OPTION = "northstar_sqlite_begin"
READING = "DEFERRED"  # a read-only unit of work (the sessions' default)
WRITING = "IMMEDIATE"  # a unit of work that writes (and any connection outside a session)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database.

    With `?uri=true` the database is a `file:` URI (`file:/srv/northstar.db`, with
    parameters such as `mode=ro` among the URL's own): its path is the file.
    """
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:":
        return None
    if str(parsed.query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:"):
        if str(parsed.query.get("mode", "")) == "memory":
            return None
        location = unquote(urlsplit(database).path)
        return Path(location) if location and location != ":memory:" else None
    return Path(database)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA secure_delete=ON")  # deleted text is zeroed, not left in free pages
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(BEGIN_OPTION, WRITING)
        reading = mode == READING
        # query_only stays with the (pooled) connection: set it whenever it must change.
        pooled = connection.connection
        if pooled.info.get("query_only", False) != reading:
            cursor = pooled.dbapi_connection.cursor()
            cursor.execute(f"PRAGMA query_only={'ON' if reading else 'OFF'}")
            cursor.close()
            pooled.info["query_only"] = reading
        connection.exec_driver_sql(f"BEGIN {mode}")


def _configure_postgresql(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # asyncpg starts the transaction at the first statement, `BEGIN READ ONLY` when so.
        mode = connection.get_execution_options().get(BEGIN_OPTION, WRITING)
        connection.connection.dbapi_connection.readonly = mode == READING


def create_private_file(path: Path) -> None:
    """Create `path` (and its missing folder) readable by this user only, unless it exists.

    SQLite gives its -wal and -shm files the mode of the database file.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class DatabaseNotWritable(Exception):
    """The SQLite database's folder or files cannot be written by this process."""


def ensure_writable(url: str) -> None:
    """Raise DatabaseNotWritable unless this process can write a SQLite database's folder,
    its file and its -wal and -shm files (those that exist); nothing for PostgreSQL.

    SQLite maps the -shm file into memory: one it cannot write kills the process with
    SIGBUS at its first read, with no word in the log. So the files are opened for writing
    here, at start-up, as the bot's own user, and a folder is proven writable by creating a
    file in it: permission bits, ACLs, owners and read-only mounts all count, as they will.
    """
    path = sqlite_path(url) if is_sqlite(url) else None
    if path is None:
        return
    try:
        create_private_file(path)
    except OSError as error:
        raise DatabaseNotWritable(
            f"cannot create the SQLite database {path}: {error.strerror or error}"
        ) from None
    problems = []
    try:
        with tempfile.TemporaryFile(dir=path.parent, prefix=".northstar-write-check-"):
            pass
    except OSError as error:
        problems.append(f"its folder {path.parent} ({error.strerror or error})")
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if not file.exists():
            continue
        try:
            os.close(os.open(file, os.O_RDWR))
        except OSError as error:
            problems.append(f"{file} ({error.strerror or error})")
    if problems:
        raise DatabaseNotWritable(
            f"the SQLite database {path} cannot be written: {'; '.join(problems)}. Give the "
            f"user running North Star (uid {os.getuid()}) write access to them, or point "
            "DATABASE_URL elsewhere."
        )


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An AsyncEngine for a sqlite+aiosqlite or postgresql+asyncpg URL.

    Statement parameters stay out of its errors (and so out of logs): they carry what people
    wrote, anonymous feedback included.
    """
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        path = sqlite_path(url)
        if path is not None:
            create_private_file(path)
        kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_async_engine(url, **kwargs)
        _configure_postgresql(engine)
    idempotency.install(engine)
    return engine


async def read_only(session: AsyncSession) -> None:
    """Declare a fresh session read-only (the default): it takes no write lock, and a write
    in it fails. Call it before the session's first query."""
    await _declare(session, READING)


async def writing(session: AsyncSession) -> None:
    """Declare a fresh session a unit of work that writes: every transaction it begins may
    write, and on SQLite takes the write lock up front (`BEGIN IMMEDIATE`).

    Call it before the session's first query.
    """
    await _declare(session, WRITING)


async def _declare(session: AsyncSession, mode: str) -> None:
    if session.sync_session.in_transaction():
        raise RuntimeError("declare a session reading or writing before its first query")
    bind = session.bind
    if not isinstance(bind, AsyncEngine):
        raise RuntimeError("a session of session_factory() is needed here")
    if bind.get_execution_options().get(BEGIN_OPTION) != mode:
        session.bind = _variant(bind, mode)
    await session.connection()


_VARIANTS: weakref.WeakKeyDictionary[AsyncEngine, dict[str, AsyncEngine]] = (
    weakref.WeakKeyDictionary()
)


def _variant(engine: AsyncEngine, mode: str) -> AsyncEngine:
    """`engine` with transactions that begin as `mode`, made once per engine and mode."""
    made = _VARIANTS.setdefault(engine, {})
    if mode not in made:
        made[mode] = engine.execution_options(**{BEGIN_OPTION: mode})
    return made[mode]


def session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions on `engine`, read-only unless declared `writing`."""
    return async_sessionmaker(
        engine.execution_options(**{BEGIN_OPTION: READING}),
        class_=AsyncSession,
        expire_on_commit=False,
    )


@asynccontextmanager
async def database(url: str) -> AsyncIterator[tuple[AsyncEngine, SessionFactory]]:
    """An engine and its session factory for the length of a block."""
    engine = create_engine(url)
    try:
        yield engine, session_factory(engine)
    finally:
        await engine.dispose()
