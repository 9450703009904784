"""What a sandbox keeps between runs: `workspace.json` beside its database, with its clock and
its Slack (people, channels, messages).

Commands pointed at a sandbox's database (`DATABASE_URL=sqlite:///data/sandbox/northstar.db
northstar report …`) read the sandbox's time and people from here: the sandbox's clock is
not the wall clock, and its people exist in no Slack a token could ask.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.db import is_sqlite, sqlite_path

STATE_FILE = "workspace.json"


@dataclass(frozen=True, slots=True)
class SavedSandbox:
    """A sandbox's saved clock and the names of its people."""

    path: Path
    clock: datetime
    names: dict[str, str] = field(default_factory=dict)


def read_state(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when there is none (or it cannot be read)."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def write_state(path: Path, *, clock: datetime, slack: dict[str, Any]) -> None:
    """Replace the saved state at once (a crash leaves the old one, never half a file)."""
    state = {"clock": clock.isoformat(), "slack": slack}
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, path)


def saved_beside(database_url: str) -> SavedSandbox | None:
    """The sandbox whose database is at `database_url`, or None when it is not a sandbox's."""
    database = sqlite_path(database_url) if is_sqlite(database_url) else None
    if database is None:
        return None
    path = database.parent / STATE_FILE
    state = read_state(path)
    if state is None:
        return None
    try:
        clock = datetime.fromisoformat(str(state.get("clock")))
    except ValueError:
        return None
    users = (state.get("slack") or {}).get("users") or {}
    names = {
        str(uid): str(user["real_name"])
        for uid, user in users.items()
        if isinstance(user, dict) and user.get("real_name")
    }
    return SavedSandbox(path=path, clock=clock.astimezone(UTC), names=names)
