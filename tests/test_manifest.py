"""manifest.yml: valid against Slack's app manifest schema, and true to North Star's contract.

The schema lives outside the repository, in ../shared/slack (or $SLACK_MANIFEST_SCHEMA_DIR); the
schema tests skip when that directory is absent. The contract tests always run: the commands,
shortcut, event and scopes are written out here, so changing any of them is a two-file edit.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import validators  # type: ignore[import-untyped]

Manifest = dict[str, Any]

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST_PATH = REPO_ROOT / "manifest.yml"
SCHEMA_DIR_ENV = "SLACK_MANIFEST_SCHEMA_DIR"
DEFAULT_SCHEMA_DIR = REPO_ROOT.parent / "shared" / "slack"
SCHEMA_FILE_RE = re.compile(r"^manifest\.schema\.(\d+)\.(\d+)\.(\d+)\.json$")

# Every bot scope, and why. A new Web API call that needs a scope must be added here too.
EXPECTED_BOT_SCOPES = frozenset(
    {
        "commands",  # /contract, /checkin, /feedback, /learnings and the "Add as evidence" shortcut
        "chat:write",  # chat.postMessage, chat.postEphemeral, chat.update
        "chat:write.public",  # posting to a recognition channel the bot has not joined
        "im:write",  # conversations.open for 1:1 DMs
        "im:history",  # conversations.history: reading a DM back before posting again
        "users:read",  # users.info (time zone)
        "users:read.email",  # users.lookupByEmail (Slack requires users:read with it)
        "files:write",  # files_upload_v2: the charts shown in image blocks
    }
)
EXPECTED_BOT_EVENTS = frozenset({"app_home_opened"})
EXPECTED_COMMANDS = frozenset({"/contract", "/checkin", "/feedback", "/learnings"})
BOLT_REQUEST_PATH = "/slack/events"


def load_manifest() -> Manifest:
    with MANIFEST_PATH.open(encoding="utf-8") as fh:
        loaded = yaml.safe_load(fh)
    assert isinstance(loaded, dict), f"{MANIFEST_PATH} must hold a YAML mapping"
    return loaded


def schema_dir() -> Path:
    override = os.environ.get(SCHEMA_DIR_ENV)
    return Path(override) if override else DEFAULT_SCHEMA_DIR


def schema_path_for(major_version: int, directory: Path) -> Path:
    """The newest manifest.schema.<major>.<minor>.<patch>.json in directory."""
    candidates: list[tuple[tuple[int, int, int], Path]] = []
    available: list[str] = []
    for path in directory.iterdir():
        match = SCHEMA_FILE_RE.match(path.name)
        if not match:
            continue
        available.append(path.name)
        version = (int(match[1]), int(match[2]), int(match[3]))
        if version[0] == major_version:
            candidates.append((version, path))
    if not candidates:
        pytest.fail(
            f"manifest.yml targets _metadata.major_version {major_version}, but {directory} has "
            f"no manifest.schema.{major_version}.*.json (found: {sorted(available) or 'none'})"
        )
    return max(candidates)[1]


def schema_errors(manifest: Manifest, schema: dict[str, Any]) -> list[str]:
    """Every validation error, as '<json path>: <message>', using the schema's own draft."""
    assert "$schema" in schema, "the Slack schema should declare its JSON Schema draft"
    validator_cls = validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(manifest), key=lambda error: error.json_path)
    return [f"{error.json_path}: {error.message}" for error in errors]


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest()


@pytest.fixture(scope="module")
def schema(manifest: Manifest) -> dict[str, Any]:
    directory = schema_dir()
    if not directory.is_dir():
        pytest.skip(
            f"Slack manifest schemas not found at {directory}; "
            f"set {SCHEMA_DIR_ENV} to the directory holding manifest.schema.<version>.json"
        )
    major_version = manifest.get("_metadata", {}).get("major_version")
    assert isinstance(major_version, int), "_metadata.major_version must be an integer"
    path = schema_path_for(major_version, directory)
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def command(manifest: Manifest, name: str) -> dict[str, Any]:
    matches = [c for c in manifest["features"]["slash_commands"] if c["command"] == name]
    assert len(matches) == 1, f"{name} should be declared exactly once"
    found: dict[str, Any] = matches[0]
    return found


# --- Slack's schema ---------------------------------------------------------------------------


def test_manifest_is_valid_against_slack_schema(manifest: Manifest, schema: dict[str, Any]) -> None:
    errors = schema_errors(manifest, schema)
    assert not errors, "manifest.yml does not match Slack's schema:\n" + "\n".join(errors)


def _drop_command_description(m: Manifest) -> None:
    del m["features"]["slash_commands"][0]["description"]


def _long_display_name(m: Manifest) -> None:
    m["display_information"]["name"] = "N" * 36  # Slack's limit is 35


def _unknown_shortcut_type(m: Manifest) -> None:
    m["features"]["shortcuts"][0]["type"] = "channel"


def _short_long_description(m: Manifest) -> None:
    m["display_information"]["long_description"] = "Too short."


def _unknown_top_level_key(m: Manifest) -> None:
    m["oauth"] = {"scopes": {"bot": ["chat:write"]}}


@pytest.mark.parametrize(
    ("break_manifest", "expected_path"),
    [
        pytest.param(_drop_command_description, "$.features.slash_commands[0]", id="no-desc"),
        pytest.param(_long_display_name, "$.display_information.name", id="long-name"),
        pytest.param(_unknown_shortcut_type, "$.features.shortcuts[0].type", id="bad-shortcut"),
        pytest.param(
            _short_long_description, "$.display_information.long_description", id="short-long"
        ),
        pytest.param(_unknown_top_level_key, "$", id="unknown-key"),
    ],
)
def test_schema_rejects_a_broken_manifest(
    manifest: Manifest,
    schema: dict[str, Any],
    break_manifest: Callable[[Manifest], None],
    expected_path: str,
) -> None:
    """The schema check is not vacuous: each breakage is caught, at the field that was broken."""
    assert not schema_errors(manifest, schema)
    broken = copy.deepcopy(manifest)
    break_manifest(broken)
    errors = schema_errors(broken, schema)
    assert any(error.startswith(f"{expected_path}: ") for error in errors), errors


def test_background_color_is_hex(manifest: Manifest) -> None:
    # Slack's schema writes this pattern as "regex", which JSON Schema ignores, so check it here.
    color = manifest["display_information"]["background_color"]
    assert re.fullmatch(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?", color), color


# --- North Star's contract ----------------------------------------------------------------------


def test_identity(manifest: Manifest) -> None:
    assert manifest["display_information"]["name"] == "North Star"
    assert manifest["features"]["bot_user"] == {"display_name": "North Star", "always_online": True}


def test_slash_commands(manifest: Manifest) -> None:
    declared = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert declared == EXPECTED_COMMANDS
    for name in sorted(EXPECTED_COMMANDS):
        declared_command = command(manifest, name)
        # Escaping makes "@dana" arrive as "<@U…|dana>", which the handlers parse for a user id.
        assert declared_command.get("should_escape") is True, name
        assert declared_command.get("description", "").strip(), name
        assert declared_command.get("usage_hint", "").strip(), name
    assert command(manifest, "/contract")["usage_hint"].startswith("summary [@leader]")
    checkin_hint_words = set(re.findall(r"[\w-]+", command(manifest, "/checkin")["usage_hint"]))
    assert {"skip", "history"} <= checkin_hint_words
    assert command(manifest, "/feedback")["usage_hint"].startswith("@leader")


def test_contract_names_every_subcommand_within_slacks_limits(manifest: Manifest) -> None:
    from handlers import amendments, contracts, evidence, feedback, renewal, summary

    declared = command(manifest, "/contract")
    words = set(re.findall(r"[\w-]+", declared["description"]))
    verbs = {
        s.verb
        for module in (summary, contracts, amendments, evidence, feedback, renewal)
        for s in module.SUBCOMMANDS
    } | {"help"}
    assert verbs <= words, sorted(verbs - words)
    hint = set(re.findall(r"[\w-]+", declared["usage_hint"]))
    assert {"summary", "new", "send", "discard", "close", "history", "help"} <= hint
    # What Slack shows in its command menu: kept short of the schema's limits.
    assert len(declared["description"]) <= 200 and len(declared["usage_hint"]) <= 100


def test_add_evidence_is_a_message_shortcut(manifest: Manifest) -> None:
    shortcuts = manifest["features"]["shortcuts"]
    matches = [s for s in shortcuts if s["callback_id"] == "add_evidence"]
    assert len(matches) == 1
    assert matches[0]["type"] == "message"
    assert matches[0]["name"] == "Add as evidence"


def test_app_home(manifest: Manifest) -> None:
    app_home = manifest["features"]["app_home"]
    assert app_home["home_tab_enabled"] is True
    assert app_home["messages_tab_enabled"] is True
    # Not read-only, so slash commands can be run from the bot's DM, under a check-in prompt.
    assert app_home["messages_tab_read_only_enabled"] is False


def test_events_and_interactivity(manifest: Manifest) -> None:
    settings = manifest["settings"]
    events = settings["event_subscriptions"]
    assert set(events["bot_events"]) == EXPECTED_BOT_EVENTS
    assert not events.get("user_events")
    assert settings["interactivity"]["is_enabled"] is True


def test_bot_scopes_are_exactly_the_ones_used(manifest: Manifest) -> None:
    scopes = manifest["oauth_config"]["scopes"]
    bot = scopes["bot"]
    assert len(bot) == len(set(bot)), f"duplicate bot scopes: {bot}"
    assert set(bot) == EXPECTED_BOT_SCOPES
    assert not scopes.get("bot_optional")


def test_no_user_scopes(manifest: Manifest) -> None:
    scopes = manifest["oauth_config"]["scopes"]
    assert not scopes.get("user")
    assert not scopes.get("user_optional")


def test_settings(manifest: Manifest) -> None:
    settings = manifest["settings"]
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    assert isinstance(settings["socket_mode_enabled"], bool)


def test_request_urls_match_the_connection_mode(manifest: Manifest) -> None:
    """Socket Mode needs no URLs; HTTP mode needs Bolt's path on every command, events, actions."""
    settings = manifest["settings"]
    urls = {
        "event_subscriptions.request_url": settings["event_subscriptions"].get("request_url"),
        "interactivity.request_url": settings["interactivity"].get("request_url"),
    }
    for declared_command in manifest["features"]["slash_commands"]:
        urls[f"{declared_command['command']}.url"] = declared_command.get("url")
    if settings["socket_mode_enabled"]:
        return
    for where, url in urls.items():
        assert url, f"HTTP mode: {where} must be set to https://YOUR-HOST{BOLT_REQUEST_PATH}"
        assert url.startswith("https://"), f"{where}: {url}"
        assert url.endswith(BOLT_REQUEST_PATH), f"{where}: {url}"
