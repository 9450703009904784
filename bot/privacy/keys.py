"""The key behind anonymous authors: where it lives, how it is loaded, and the hashes it keys.

An anonymous feedback entry keeps no author id. It keeps a keyed hash (HMAC-SHA256) of the
person and the contract instead: enough for the weekly cap, the anonymity threshold and
`/feedback mine`, useless without the key. The hash is keyed on the person's user id, never
on the workspace a request came from: with Enterprise Grid or Slack Connect one person's
requests carry several team ids, and a hash per team would count them as several authors.
Hashing per contract keeps one author's entries to different leaders unlinkable.

Slack user ids are few and guessable, so the key must not travel with the data: an HMAC over
the workspace's member list would name every anonymous author. It is `FEEDBACK_HASH_KEY`
(a secret store, the same on every replica; required with PostgreSQL) or, when unset, a
generated file in the operator's configuration folder, `$XDG_CONFIG_HOME/northstar/` (else
`~/.config/northstar/`): outside the data folder, so neither a copy of `data/` nor
`northstar db backup` nor `pg_dump` carries it. Versions before this one kept it beside the
SQLite file; the bot moves it out at start-up, once, and says so.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from bot.settings import Settings
from storage.db import is_sqlite, sqlite_path

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "feedback_hash.key"
CONFIG_FOLDER = "northstar"
HASH_VERSION = "v1"
AUTHOR_HASH_VERSION = "v2"  # v1 also hashed the team id of the request


class KeyUnavailable(Exception):
    """No usable key: anonymous authors cannot be matched (or the key cannot be kept)."""


@dataclass(frozen=True, slots=True)
class LoadedKey:
    key: bytes
    path: Path | None  # None: FEEDBACK_HASH_KEY


_keys: dict[tuple[str, str, bool], LoadedKey] = {}


def config_folder() -> Path:
    """The operator's configuration folder for North Star, never the data folder."""
    base = os.environ.get("XDG_CONFIG_HOME", "").strip()
    if base and Path(base).is_absolute():
        return Path(base) / CONFIG_FOLDER
    try:
        home = Path.home()
    except RuntimeError:
        home = Path("~")
    if not home.is_absolute():
        raise KeyUnavailable(
            "FEEDBACK_HASH_KEY is not set and there is no home folder to keep a generated key "
            "in: set FEEDBACK_HASH_KEY (or XDG_CONFIG_HOME)."
        )
    return home / ".config" / CONFIG_FOLDER


def key_file() -> Path:
    """Where a generated key lives: `$XDG_CONFIG_HOME/northstar/feedback_hash.key`."""
    return config_folder() / KEY_FILE_NAME


def legacy_key_file(settings: Settings) -> Path | None:
    """Where earlier versions generated the key: beside the SQLite database."""
    database = sqlite_path(settings.database_url) if is_sqlite(settings.database_url) else None
    return None if database is None else database.parent / KEY_FILE_NAME


def feedback_key(settings: Settings, *, create: bool = True) -> bytes:
    """The secret keying author hashes; generated and kept in a file when not configured.

    `create=False` (the CLI) never makes a new key, nor moves an old one: a fresh key would
    match no entry, and the CLI may run as another user than the bot.
    """
    return load_key(settings, create=create).key


def load_key(settings: Settings, *, create: bool = True) -> LoadedKey:
    """The key and where it came from (see `feedback_key`), once per process."""
    if settings.feedback_hash_key:
        return LoadedKey(settings.feedback_hash_key.encode(), None)
    if not is_sqlite(settings.database_url):
        raise KeyUnavailable(
            "FEEDBACK_HASH_KEY is not set: with PostgreSQL every replica needs the same key, "
            "so it must be configured."
        )
    path = key_file()
    legacy = legacy_key_file(settings)
    cache_key = (str(path), str(legacy.resolve()) if legacy is not None else "", create)
    if cache_key not in _keys:
        found = None
        if legacy is not None and legacy.exists():
            found = _legacy_key(legacy, path, move=create)
        _keys[cache_key] = found or LoadedKey(_key_from_file(path, create=create), path)
    return _keys[cache_key]


def announce_key(settings: Settings) -> None:
    """At start-up: load (or make) the key and say where it is kept, never what it is."""
    loaded = load_key(settings)
    if loaded.path is None:
        logger.info("Anonymous feedback authors are hashed with the key in FEEDBACK_HASH_KEY.")
    else:
        logger.info(
            "Anonymous feedback authors are hashed with the key in %s; back it up apart from "
            "the database (db backup does not copy it).",
            loaded.path,
        )


def _read_key(path: Path) -> bytes:
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except ValueError:
        raise KeyUnavailable(f"The key file {path} is not hexadecimal; restore it.") from None


def _legacy_key(legacy: Path, path: Path, *, move: bool) -> LoadedKey:
    """The key an earlier version left beside the database: moved out, once, when it can be."""
    old = _read_key(legacy)
    current = _read_key(path) if path.exists() else None
    if current is None and move:
        try:
            _write_key(path, old.hex())
        except FileExistsError:  # another process moved it meanwhile
            current = _read_key(path)
        else:
            legacy.unlink()
            logger.warning(
                "Moved the key for anonymous feedback hashes out of the data folder, from %s "
                "to %s. Back it up apart from the database.",
                legacy,
                path,
            )
            return LoadedKey(old, path)
    if current is None:
        logger.warning(
            "Reading the key for anonymous feedback hashes from %s, in the data folder; the "
            "bot moves it to %s when it next starts.",
            legacy,
            path,
        )
        return LoadedKey(old, legacy)
    if current == old:
        if move:
            legacy.unlink()
            logger.warning("Removed %s from the data folder: the same key is in %s.", legacy, path)
        return LoadedKey(old, path)
    logger.warning(
        "%s, in the data folder, holds this database's key for anonymous feedback hashes and "
        "differs from the key in %s, so it is still used. To move it out, give this bot a "
        "configuration folder of its own (XDG_CONFIG_HOME) and restart it.",
        legacy,
        path,
    )
    return LoadedKey(old, legacy)


def _write_key(path: Path, hex_key: str) -> None:
    """Create the key file, readable by its owner only, in a folder only they can enter."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(hex_key + "\n")


def _key_from_file(path: Path, *, create: bool) -> bytes:
    if path.exists():
        return _read_key(path)
    if not create:
        raise KeyUnavailable(
            f"FEEDBACK_HASH_KEY is not set and there is no key file at {path}: "
            "anonymous feedback authors cannot be matched. Run this as the user the bot runs "
            "as, or set FEEDBACK_HASH_KEY to the bot's key."
        )
    generated = secrets.token_hex(32)
    try:
        _write_key(path, generated)
    except FileExistsError:  # another process won the race: use its key
        return _read_key(path)
    except OSError as error:
        raise KeyUnavailable(
            f"FEEDBACK_HASH_KEY is not set and the key file {path} cannot be written "
            f"({error.strerror}): set FEEDBACK_HASH_KEY, or XDG_CONFIG_HOME to a writable folder."
        ) from None
    logger.warning(
        "FEEDBACK_HASH_KEY is not set: generated the key for anonymous feedback hashes in %s. "
        "Back it up apart from the database; losing or changing it unlinks authors from their "
        "anonymous entries.",
        path,
    )
    return bytes.fromhex(generated)


def keyed(key: bytes, purpose: str, *parts: object, version: str = HASH_VERSION) -> str:
    """HMAC-SHA256 of `parts` for one `purpose`, so hashes of different uses never match."""
    message = "\x1f".join([purpose, *(str(p) for p in parts)]).encode()
    return f"{version}:{hmac.new(key, message, hashlib.sha256).hexdigest()}"


def author_hash(key: bytes, *, user: str, contract_id: int) -> str:
    """What an anonymous entry keeps instead of its author: the person, whatever team they
    wrote from."""
    return keyed(key, "author", user, contract_id, version=AUTHOR_HASH_VERSION)


def legacy_author_hash(key: bytes, *, team: str, user: str, contract_id: int) -> str:
    """The v1 hash, which also keyed on a team id; only to find and rehash old entries."""
    return keyed(key, "author", team, user, contract_id)


def erasure_mark(key: bytes, *, team: str, user: str) -> str:
    """Lets an operator confirm that one given person was erased, without listing anyone."""
    return keyed(key, "erased", team, user)


def lesson_source_key(key: bytes, *, kind: str, source_id: int) -> str:
    """What a lesson keeps of its source: one lesson per source, no id to trace it by."""
    return keyed(key, "lesson-source", kind, source_id)


def lesson_author_hash(key: bytes, *, user: str, source_key: str) -> str:
    """What a lesson shared without a name keeps instead of its author; one per lesson, so
    two of one author's lessons are not linked."""
    return keyed(key, "lesson-author", user, source_key)
