"""What the Slack client knows from the app's manifest: its slash commands and shortcuts.

The sandbox's page offers exactly these, and escapes a command's text the way Slack does
for it (`should_escape`), so the bot gets from the sandbox what it would get from Slack.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "manifest.yml"
_USER_MENTION = re.compile(r"(?<![\w@<|])@([A-Za-z0-9][\w.\-]*)")
_CHANNEL_MENTION = re.compile(r"(?<![\w#<|])#([a-z0-9][a-z0-9_\-]*)")
_SPECIAL = {"here": "<!here>", "channel": "<!channel>", "everyone": "<!everyone>"}
_BARE_URL = re.compile(r"(?<![\w@#])(https?://[^\s<>|\"]*[^\s<>|\".,;:!?)\]])")


@dataclass(frozen=True, slots=True)
class SlashCommand:
    command: str
    description: str = ""
    usage_hint: str = ""
    should_escape: bool = False


@dataclass(frozen=True, slots=True)
class Shortcut:
    name: str
    type: str
    callback_id: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class AppManifest:
    """The parts of manifest.yml the Slack client acts on. `found`: read from a file."""

    name: str = "North Star"
    commands: tuple[SlashCommand, ...] = ()
    shortcuts: tuple[Shortcut, ...] = ()
    bot_events: frozenset[str] = field(default_factory=frozenset)
    home_tab: bool = True
    found: bool = False

    def command(self, name: str) -> SlashCommand | None:
        """The manifest's command `name`; without a manifest, any command (escaped)."""
        if not self.found:
            return SlashCommand(command=name, should_escape=True)
        return next((c for c in self.commands if c.command == name), None)


def load_manifest(path: Path = MANIFEST_PATH) -> AppManifest:
    """Read `path`; a missing or unreadable manifest gives an AppManifest that allows anything."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        logger.warning(
            "No readable manifest at %s (%s): any slash command is accepted", path, error
        )
        return AppManifest()
    return parse_manifest(data if isinstance(data, dict) else {})


def parse_manifest(data: Mapping[str, Any]) -> AppManifest:
    features = data.get("features") or {}
    settings = data.get("settings") or {}
    commands = tuple(
        SlashCommand(
            command=str(c["command"]),
            description=str(c.get("description") or "").strip(),
            usage_hint=str(c.get("usage_hint") or ""),
            should_escape=bool(c.get("should_escape")),
        )
        for c in features.get("slash_commands") or []
        if isinstance(c, dict) and c.get("command")
    )
    shortcuts = tuple(
        Shortcut(
            name=str(s.get("name") or s["callback_id"]),
            type=str(s.get("type") or "message"),
            callback_id=str(s["callback_id"]),
            description=str(s.get("description") or ""),
        )
        for s in features.get("shortcuts") or []
        if isinstance(s, dict) and s.get("callback_id")
    )
    events = (settings.get("event_subscriptions") or {}).get("bot_events") or []
    return AppManifest(
        name=str((features.get("bot_user") or {}).get("display_name") or "North Star"),
        commands=commands,
        shortcuts=shortcuts,
        bot_events=frozenset(str(e) for e in events),
        home_tab=bool((features.get("app_home") or {}).get("home_tab_enabled", True)),
        found=True,
    )


def escape_command_text(
    text: str,
    *,
    users: Iterable[Mapping[str, Any]],
    channels: Iterable[Mapping[str, Any]],
    should_escape: bool,
) -> str:
    """The `text` of a slash command as Slack sends it.

    Slack always escapes &, < and >; with `should_escape` it also turns `@name` into
    `<@U…|name>` and `#channel` into `<#C…|channel>` for people and channels it knows.
    """
    escaped = html.escape(text, quote=False)
    if not should_escape:
        return escaped
    by_name: dict[str, str] = {}
    for user in users:
        if user.get("deleted"):
            continue
        profile = user.get("profile") or {}
        for name in (user.get("name"), profile.get("display_name")):
            if name:
                by_name.setdefault(str(name).lower(), str(user["id"]))
    channel_ids = {str(c["name"]).lower(): str(c["id"]) for c in channels}

    def user_mention(match: re.Match[str]) -> str:
        name = match.group(1)
        trimmed = name.rstrip(".-")
        tail = name[len(trimmed) :]
        if trimmed.lower() in _SPECIAL:
            return _SPECIAL[trimmed.lower()] + tail
        user_id = by_name.get(trimmed.lower())
        return f"<@{user_id}|{trimmed}>{tail}" if user_id else match.group(0)

    def channel_mention(match: re.Match[str]) -> str:
        channel_id = channel_ids.get(match.group(1).lower())
        return f"<#{channel_id}|{match.group(1)}>" if channel_id else match.group(0)

    return _CHANNEL_MENTION.sub(channel_mention, _USER_MENTION.sub(user_mention, escaped))


def message_text(
    text: str, *, users: Iterable[Mapping[str, Any]], channels: Iterable[Mapping[str, Any]]
) -> str:
    """What Slack's client sends for a typed message: escaped, mentions and links marked up."""
    users, channels = list(users), list(channels)
    parts = _BARE_URL.split(text)  # odd items are the URLs
    return "".join(
        f"<{html.escape(part, quote=False)}>"
        if index % 2
        else escape_command_text(part, users=users, channels=channels, should_escape=True)
        for index, part in enumerate(parts)
    )
