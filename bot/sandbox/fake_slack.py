"""A local Slack Web API served over real HTTP, strict where Slack is strict.

The tests use it as the fake at the Slack boundary; the sandbox (`northstar sandbox`) serves
it to the bot as its Slack, and its page shows what the bot said through it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import functools
import itertools
import json
import random
import string
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

from aiohttp import web
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, Option
from slack_sdk.models.views import View

JSON = dict[str, Any]

MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
VIEW_STACK_LIMIT = 3
MESSAGE_TEXT_LIMIT = 40_000
SECTION_FIELD_LIMIT = 2000
PERMALINK_HOST = "https://fake.slack.test"
# Limits Slack enforces but documents loosely or not at all (see "where Slack refuses").
MESSAGE_BLOCKS_TEXT_LIMIT = 11_000  # msg_blocks_too_long: refused from ~11.3k in the wild
VIEW_SIZE_LIMIT = 250_000  # view_too_large: "greater than 250kb"
RESPONSE_URL_USES = 5  # "up to 5 times within 30 minutes"
RESPONSE_URL_TTL = 30 * 60.0
TIER_2_PER_MINUTE = 20  # users.list
USERS_LIST_PAGE_MAX = 1000
USERS_LIST_UNPAGED = 500  # more members than this, and users.list wants a `limit`
# Files (files.getUploadURLExternal, the upload URL, files.completeUploadExternal).
FILENAME_LIMIT = 255
FILE_TITLE_LIMIT = 255
ALT_TXT_LIMIT = 1000  # alt_txt_too_large: "longer than the limit of 1000 character"
FILE_SIZE_LIMIT = 1 << 30  # 1 GB
IMAGE_ALT_TEXT_LIMIT = 2000
IMAGE_URL_LIMIT = 3000
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif"}

_MALFORMED = (TypeError, KeyError, ValueError, AttributeError)
_PLAIN_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "header": ("text",),
    "input": ("label", "hint"),
    "image": ("title",),
    "button": ("text",),
}
_PLAIN_TEXT_OPTIONS = frozenset({"static_select", "multi_static_select", "overflow"})
_OPTION_KEYS = frozenset({"options", "initial_options", "initial_option", "option_groups"})
_VIEW_TEXT_LIMITS = (("title", 24), ("submit", 24), ("close", 24))


def _json_copy(value: Any) -> Any:
    """A copy of JSON data (dicts, lists and scalars, no cycles): what `copy.deepcopy` gives
    for it, without its bookkeeping of every object seen (several times quicker on a view)."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    return value


# ---------------------------------------------------------------- validation


def validate_message_blocks(blocks: Any) -> list[str]:
    """Problems Slack would report for a message's blocks; empty when they are valid."""
    return _validate_blocks(blocks, limit=MESSAGE_BLOCK_LIMIT)


def validate_view(view: Any, *, kind: str) -> list[str]:
    """Problems Slack would report for a `modal` or `home` view; empty when it is valid.

    The answer depends on the view's JSON alone, so the same JSON is checked once and its
    answer remembered (`_VIEWS_CHECKED`): an app that sends the same modal again and again
    does not make the fake spend milliseconds on it each time, time a benchmark would count
    against the requests the fake received meanwhile."""
    try:
        canonical = json.dumps(view, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return _view_problems(view, kind=kind)
    return list(_checked_view(canonical, kind))


# How many distinct views `validate_view` remembers its answer for.
_VIEWS_CHECKED = 256


@functools.lru_cache(maxsize=_VIEWS_CHECKED)
def _checked_view(canonical: str, kind: str) -> tuple[str, ...]:
    return tuple(_view_problems(json.loads(canonical), kind=kind))


def _view_problems(view: Any, *, kind: str) -> list[str]:
    if not isinstance(view, dict):
        return ["view: must be an object"]
    errors: list[str] = []
    if view.get("type") != kind:
        errors.append(f"view.type: must be {kind!r}, not {view.get('type')!r}")
    if kind == "modal" and not view.get("title"):
        errors.append("view.title: required for a modal")
    if kind == "home":
        errors.extend(
            f"view.{name}: not allowed in a home view"
            for name in ("submit", "close")
            if view.get(name)
        )
    for name, limit in _VIEW_TEXT_LIMITS:
        text = _text_of(view.get(name))
        if text is not None and not 1 <= len(text) <= limit:
            errors.append(f"view.{name}: must be 1 to {limit} characters, got {len(text)}")
        errors.extend(_must_be_plain_text(view.get(name), f"view.{name}"))
    for name, limit in (("private_metadata", 3000), ("callback_id", 255), ("external_id", 255)):
        value = view.get(name)
        if value is not None and not isinstance(value, str):
            errors.append(f"view.{name}: must be a string")
        elif value is not None and len(value) > limit:
            errors.append(f"view.{name}: must be at most {limit} characters, got {len(value)}")
    blocks = view.get("blocks")
    if blocks is None:
        errors.append("view.blocks: required")
    else:
        errors.extend(_validate_blocks(blocks, limit=VIEW_BLOCK_LIMIT))
    has_input = isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "input" for b in blocks
    )
    if kind == "modal" and has_input and not view.get("submit"):
        errors.append("view.submit: required when the view contains input blocks")
    rest = {key: value for key, value in view.items() if key not in ("blocks", "state")}
    try:
        # The view-level validators are the checks above; this catches shape and field errors.
        kept = View(**rest).get_non_null_attributes()
    except (SlackObjectFormationError, *_MALFORMED) as exc:
        return [*errors, f"view: malformed ({exc})"]
    return errors + _lost_fields(rest, kept, "view")


def _validate_blocks(blocks: Any, *, limit: int) -> list[str]:
    if not isinstance(blocks, list):
        return ["blocks: must be an array"]
    errors: list[str] = []
    if len(blocks) > limit:
        errors.append(f"blocks: no more than {limit} items allowed, got {len(blocks)}")
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        errors.extend(_validate_block(block, where))
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str):
            if block_id in seen:
                errors.append(f"{where}.block_id: duplicate block_id {block_id!r}")
            seen.add(block_id)
    return errors


def _validate_block(block: Any, where: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"{where}: must be an object"]
    try:
        parsed = Block.parse(copy.deepcopy(block))
        if parsed is None:
            return [f"{where}: unsupported block type {block.get('type')!r}"]
        kept = parsed.to_dict()
    except SlackObjectFormationError as exc:
        return [f"{where}: {exc}"]
    except _MALFORMED as exc:
        return [f"{where}: malformed {block.get('type')!r} block ({exc})"]
    return (
        _lost_fields(block, kept, where)
        + _rule_errors(block, where)
        + _duplicate_action_ids(block, where)
    )


def _lost_fields(given: Any, kept: Any, where: str) -> list[str]:
    """Whatever slack_sdk dropped or changed when re-serialising is something Slack rejects."""
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [f"{where}: unsupported {given.get('type', 'object')!r}"]
        errors: list[str] = []
        for key, value in given.items():
            path = f"{where}.{key}"
            if key in kept:
                errors.extend(_lost_fields(value, kept[key], path))
            elif value is None:
                continue
            elif value in ("", [], {}):
                errors.append(f"{path}: must not be empty")
            elif isinstance(value, dict) and "type" in value:
                errors.append(f"{path}: unsupported type {value['type']!r}")
            else:
                errors.append(f"{path}: unknown field")
        return errors
    if isinstance(given, list):
        if not isinstance(kept, list) or len(kept) != len(given):
            return [f"{where}: contains unsupported items"]
        return [
            error
            for index, (item, kept_item) in enumerate(zip(given, kept, strict=True))
            for error in _lost_fields(item, kept_item, f"{where}[{index}]")
        ]
    if isinstance(kept, dict):
        return [f"{where}: must be an object"]
    if isinstance(kept, list):
        return [f"{where}: must be an array"]
    if given != kept:
        return [f"{where}: invalid value {given!r}"]
    return []


def _rule_errors(node: Any, where: str) -> list[str]:
    """Rules slack_sdk does not check: plain_text-only fields, option objects, field lengths."""
    if isinstance(node, list):
        return [e for i, item in enumerate(node) for e in _rule_errors(item, f"{where}[{i}]")]
    if not isinstance(node, dict):
        return []
    kind = node.get("type")
    errors: list[str] = []
    for name in (*_PLAIN_TEXT_FIELDS.get(str(kind), ()), "placeholder"):
        errors.extend(_must_be_plain_text(node.get(name), f"{where}.{name}"))
    confirm = node.get("confirm")
    if isinstance(confirm, dict) and "title" in confirm:
        for name in ("title", "confirm", "deny"):
            errors.extend(_must_be_plain_text(confirm.get(name), f"{where}.confirm.{name}"))
    for index, text in enumerate(node.get("fields") or [] if kind == "section" else []):
        if len(_text_of(text) or "") > SECTION_FIELD_LIMIT:
            errors.append(
                f"{where}.fields[{index}]: must be at most {SECTION_FIELD_LIMIT} characters"
            )
    for path, option in _options(node, where):
        errors.extend(_option_errors(option, path, plain=kind in _PLAIN_TEXT_OPTIONS))
    if kind == "image":
        errors.extend(_image_errors(node, where))
    if kind in _CONVERSATION_SELECTS and "filter" in node:
        errors.extend(_filter_errors(node["filter"], f"{where}.filter"))
    for key, value in node.items():
        if isinstance(value, (dict, list)) and key not in _OPTION_KEYS and key != "confirm":
            errors.extend(_rule_errors(value, f"{where}.{key}"))
    return errors


_CONVERSATION_SELECTS = frozenset({"conversations_select", "multi_conversations_select"})
_FILTER_INCLUDE = frozenset({"im", "mpim", "private", "public"})
_FILTER_FLAGS = ("exclude_bot_users", "exclude_external_shared_channels")


def _filter_errors(found: Any, where: str) -> list[str]:
    """A conversation filter object: at least one of its fields; `include` a non-empty array
    of im, mpim, private and public; the two exclusions booleans."""
    if not isinstance(found, dict):
        return [f"{where}: must be an object"]
    errors = [
        f"{where}.{key}: unknown field" for key in found if key not in ("include", *_FILTER_FLAGS)
    ]
    if not any(key in found for key in ("include", *_FILTER_FLAGS)):
        errors.append(f"{where}: must provide at least one of include, {', '.join(_FILTER_FLAGS)}")
    include = found.get("include", ["public"])
    if not isinstance(include, list) or not include:
        errors.append(f"{where}.include: must be a non-empty array")
    else:
        errors.extend(
            f"{where}.include[{i}]: must be one of im, mpim, private, public"
            for i, kind in enumerate(include)
            if kind not in _FILTER_INCLUDE
        )
    errors.extend(
        f"{where}.{flag}: must be a boolean"
        for flag in _FILTER_FLAGS
        if flag in found and not isinstance(found[flag], bool)
    )
    return errors


def _image_errors(image: JSON, where: str) -> list[str]:
    """An image block or element: alt_text, and exactly one of image_url and slack_file,
    which itself names exactly one of a file's id and url."""
    errors: list[str] = []
    alt = image.get("alt_text")
    if not isinstance(alt, str) or not alt:
        errors.append(f"{where}.alt_text: required")
    elif len(alt) > IMAGE_ALT_TEXT_LIMIT:
        errors.append(f"{where}.alt_text: must be at most {IMAGE_ALT_TEXT_LIMIT} characters")
    url, file = image.get("image_url"), image.get("slack_file")
    if (url is None) == (file is None):
        errors.append(f"{where}: must provide either image_url or slack_file")
    if isinstance(url, str) and len(url) > IMAGE_URL_LIMIT:
        errors.append(f"{where}.image_url: must be at most {IMAGE_URL_LIMIT} characters")
    if file is not None and (
        not isinstance(file, dict) or ("id" in file) == ("url" in file) or len(file) != 1
    ):
        errors.append(f"{where}.slack_file: must have either id or url, not both")
    return errors


def slack_file_refs(node: Any) -> list[JSON]:
    """Every `slack_file` object in blocks, however deep (image blocks and elements)."""
    if isinstance(node, list):
        return [ref for item in node for ref in slack_file_refs(item)]
    if not isinstance(node, dict):
        return []
    found = [node["slack_file"]] if isinstance(node.get("slack_file"), dict) else []
    return found + [
        ref
        for key, value in node.items()
        if key != "slack_file" and isinstance(value, (dict, list))
        for ref in slack_file_refs(value)
    ]


def _options(element: JSON, where: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for key in ("options", "initial_options"):
        items = element.get(key)
        found.extend((f"{where}.{key}[{i}]", o) for i, o in enumerate(items or []))
    if element.get("initial_option") is not None:
        found.append((f"{where}.initial_option", element["initial_option"]))
    for g, group in enumerate(element.get("option_groups") or []):
        items = group.get("options") if isinstance(group, dict) else None
        found.extend(
            (f"{where}.option_groups[{g}].options[{i}]", o) for i, o in enumerate(items or [])
        )
    return found


def _option_errors(option: Any, where: str, *, plain: bool) -> list[str]:
    if not isinstance(option, dict):
        return [f"{where}: must be an object"]
    if "text" not in option or "value" not in option:
        return [f"{where}: text and value are required"]
    try:
        kept = Option(**copy.deepcopy(option)).to_dict()
    except SlackObjectFormationError as exc:
        return [f"{where}: {exc}"]
    except _MALFORMED as exc:
        return [f"{where}: malformed option ({exc})"]
    errors = _lost_fields(option, kept, where)
    if plain:
        errors.extend(_must_be_plain_text(option.get("text"), f"{where}.text"))
    return errors


def _must_be_plain_text(value: Any, where: str) -> list[str]:
    if isinstance(value, dict) and value.get("type") != "plain_text":
        return [f"{where}: must be a plain_text object, not {value.get('type')!r}"]
    return []


def _duplicate_action_ids(block: JSON, where: str) -> list[str]:
    seen: set[str] = set()
    errors: list[str] = []
    for element in block.get("elements") or []:
        action_id = element.get("action_id") if isinstance(element, dict) else None
        if isinstance(action_id, str):
            if action_id in seen:
                errors.append(f"{where}.elements: duplicate action_id {action_id!r}")
            seen.add(action_id)
    return errors


def _decode_json_fields(args: JSON) -> None:
    """Form bodies carry blocks and views as JSON strings; decode them where they parse."""
    for key in ("blocks", "view", "attachments", "metadata"):
        if isinstance(args.get(key), str):
            with contextlib.suppress(ValueError):
                args[key] = json.loads(args[key])


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _interactive_elements(block: JSON) -> list[JSON]:
    kind = block.get("type")
    if kind == "actions":
        candidates = list(block.get("elements") or [])
    elif kind == "input":
        candidates = [block.get("element")]
    elif kind == "section":
        candidates = [block.get("accessory")]
    else:
        candidates = []
    return [e for e in candidates if isinstance(e, dict) and e.get("type") != "image"]


def block_text_length(blocks: Any) -> int:
    """Characters of text in blocks: every `text` string, nested anywhere (what Slack sums
    against its undocumented cap, `msg_blocks_too_long`)."""
    found, stack = 0, [blocks]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            text = node.get("text")
            found += len(text) if isinstance(text, str) else 0
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _text_of(value: Any) -> str | None:
    if isinstance(value, dict):
        text = value.get("text")
        return text if isinstance(text, str) else None
    return value if isinstance(value, str) else None


# ---------------------------------------------------------------- the fake


class FakeSlackError(Exception):
    """A Slack API error (`error`) raised inside the fake; becomes `{"ok": false, ...}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def _peer(request: web.Request) -> str:
    """The caller's end of the connection a request came over, as "host:port"."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else ""


@dataclass
class Call:
    """One recorded Web API call or response_url post."""

    method: str
    args: JSON
    token: str | None
    at: float
    status: int
    response: JSON
    # The caller's end of the TCP connection the call came over ("host:port"): calls over
    # one kept-alive connection share it.
    peer: str = ""


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    error: str | None


@dataclass
class _Outage:
    start: float
    end: float
    status: int
    methods: frozenset[str] | None


@dataclass
class _Trigger:
    issued_at: float
    user: str | None
    view_id: str | None
    used: bool = False


@dataclass
class _ResponseUrl:
    channel: str | None
    user: str | None
    message_ts: str | None
    ephemeral_ts: str | None = None
    issued_at: float = 0.0
    uses: int = 0


@dataclass
class _Reply:
    status: int
    body: JSON
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack:
    """The Slack Web API, response_urls included, on a local port in the caller's loop."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        team_id: str = "T0TEST001",
        bot_user_id: str = "U0BOT0001",
        clock: Callable[[], float] = time.monotonic,
        trigger_ttl: float = 3.0,
        wall_clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`clock` times trigger ids and outages; `wall_clock` (epoch seconds), when given,
        dates messages; `sleep` is how the fake waits when it is told to be slow."""
        self.bot_token = bot_token
        self.team_id = team_id
        self.team_name = "North Star Test"
        self.team_domain = "northstar-test"
        self.bot_user_id = bot_user_id
        self.bot_id = "B" + bot_user_id[1:]
        self.app_id = "A0NORTH01"
        self.clock = clock
        self.trigger_ttl = trigger_ttl
        self.wall_clock = wall_clock
        self.sleep = sleep
        self.version = 0
        self._last_ts = 0
        self.base_url = ""
        self.api_url = ""
        self.users: dict[str, JSON] = {}
        self.channels: dict[str, JSON] = {}
        self.calls: list[Call] = []
        self.messages: dict[str, list[JSON]] = {}
        self.views: dict[str, JSON] = {}
        self.stacks: dict[str, list[str]] = {}
        self.home_views: dict[str, JSON] = {}
        self.ephemerals: list[JSON] = []
        # Uploaded files by id: name, title, length, bytes (base64 once uploaded), completed.
        self.files: dict[str, JSON] = {}
        self._dms: dict[str, str] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._outages: list[_Outage] = []
        self._latency: Callable[[str], float] | None = None
        self._stalls: dict[str, deque[float]] = {}
        self.in_flight: dict[str, int] = {}  # calls being answered, per method
        self.most_in_flight: dict[str, int] = {}
        self.most_in_flight_per_channel = 0
        self._channels_in_flight: dict[str, int] = {}
        self._tier_calls: dict[str, deque[float]] = {}
        # Set to `account_inactive`, `token_revoked`...: every call with the bot's token
        # fails so, as when its user or workspace is deleted or the app uninstalled.
        self.token_error: str | None = None
        self._touched: list[str] = []
        self._changed = asyncio.Condition()
        self._watchers: list[asyncio.Future[None]] = []
        self._random = random.Random(7)
        self._serial = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._handlers: dict[str, Callable[[JSON], JSON]] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "users.list": self._users_list,
            "bots.info": self._bots_info,
            "team.info": self._team_info,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "files.info": self._files_info,
        }
        self.add_user(bot_user_id, name="northstar", real_name="North Star", is_bot=True)
        self.add_channel("C0GENERAL1", name="general")

    # -- lifecycle

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 at `port` (a free one by default)."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{response_id:.+}", self._handle_response_url)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        app.router.add_get("/files/{file_id}/{name}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        self.api_url = self.base_url + "/api/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- directory and fixtures

    def add_user(
        self,
        user_id: str,
        *,
        name: str,
        real_name: str | None = None,
        email: str | None = None,
        tz: str | None = "Europe/Berlin",
        deleted: bool = False,
        is_bot: bool = False,
        tz_offset: int = 0,
    ) -> JSON:
        """Add a workspace member; returns the user object users.info will answer with.

        `tz=None` makes one Slack knows no zone for (`tz` null), only `tz_offset` seconds.
        """
        now = datetime.now(ZoneInfo(tz)) if tz is not None else None
        offset = now.utcoffset() if now is not None else None
        full_name = real_name or name
        profile: JSON = {
            "real_name": full_name,
            "real_name_normalized": full_name,
            "display_name": name,
            "display_name_normalized": name,
            "team": self.team_id,
        }
        if email is not None:
            profile["email"] = email
        user: JSON = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": deleted,
            "real_name": full_name,
            "tz": tz,
            "tz_label": now.tzname() if now is not None else f"UTC{tz_offset / 3600:+g}",
            "tz_offset": int(offset.total_seconds()) if offset is not None else tz_offset,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }
        self.users[user_id] = user
        return user

    def add_channel(
        self, channel_id: str, *, name: str, is_private: bool = False, is_member: bool = True
    ) -> JSON:
        """Add a public (C…) or private channel; the bot is a member of it unless told not.

        As in Slack, the bot posts messages in a public channel it is not in (the app has
        `chat:write.public`) but shares no file there (`not_in_channel`); a private channel
        it is not in does not exist for it (`channel_not_found`)."""
        channel: JSON = {
            "id": channel_id,
            "name": name,
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": False,
            "is_private": is_private,
            "is_member": is_member,
            "is_archived": False,
            "created": 1_700_000_000,
        }
        self.channels[channel_id] = channel
        return channel

    def dm_id(self, user: str) -> str:
        """The bot's stable DM channel id with `user`."""
        channel = "D" + user[1:]
        self._dms[channel] = user
        return channel

    def issue_trigger_id(self, *, user: str | None = None, view_id: str | None = None) -> str:
        """A trigger_id usable once within `trigger_ttl`; `view_id` is the modal it came from."""
        trigger_id = f"{next(self._serial)}.{self._random.randrange(10**9)}.{self._hex(16)}"
        self._triggers[trigger_id] = _Trigger(self.clock(), user, view_id)
        return trigger_id

    def new_response_url(
        self,
        *,
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
        ephemeral_ts: str | None = None,
    ) -> str:
        """A response_url bound to a channel, a user and, for message actions, a message.

        `ephemeral_ts` binds it to one of the user's ephemeral messages, which
        `replace_original` and `delete_original` then change, as Slack's client does.
        """
        response_id = f"{self.team_id}/{next(self._serial)}/{self._hex(24)}"
        self._response_urls[response_id] = _ResponseUrl(
            channel, user, message_ts, ephemeral_ts, issued_at=self.clock()
        )
        return f"{self.base_url}/response/{response_id}"

    def fail_next(
        self,
        method: str,
        *,
        status: int = 500,
        retry_after: int | None = None,
        error: str | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls to `method` fail (429, 5xx, or 200 with `error`)."""
        if status == 200 and error is None:
            raise ValueError("a 200 failure needs an error code")
        queue = self._failures.setdefault(method, deque())
        queue.extend(_Failure(status, retry_after, error) for _ in range(times))

    def outage(
        self,
        *,
        seconds: float,
        start: float | None = None,
        status: int = 503,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Answer every call (or every call to `methods`) with HTTP `status` for `seconds`
        from `start` (now, by default) on the fake's `clock`: a Slack outage or 5xx burst."""
        begin = self.clock() if start is None else start
        chosen = frozenset(methods) if methods is not None else None
        self._outages.append(_Outage(begin, begin + seconds, status, chosen))

    def set_latency(self, latency: float | tuple[float, float] | None) -> None:
        """Answer each call after `latency` seconds (a number, or a uniform range (low, high)),
        waited with `sleep`; None: at once."""
        if latency is None:
            self._latency = None
        elif isinstance(latency, tuple):
            low, high = latency
            self._latency = lambda _method: self._random.uniform(low, high)
        else:
            self._latency = lambda _method, wait=float(latency): wait

    def stall_after_accepting(
        self, method: str = "chat.postMessage", *, seconds: float, times: int = 1, every: int = 1
    ) -> None:
        """`times` successful calls to `method` (each `every`-th one from now) do what they
        ask (a message is posted), then answer only after `seconds`: longer than a client's
        timeout, the client never learns that its call worked."""
        stalls = self._stalls.setdefault(method, deque())
        for _ in range(times):
            stalls.extend([0.0] * (every - 1) + [seconds])

    def reset(self) -> None:
        """Forget calls, messages, views, triggers and pending failures; keep users, channels
        and uploaded files (the workspace's, as a real Slack keeps them)."""
        self.calls.clear()
        self.messages.clear()
        self.views.clear()
        self.stacks.clear()
        self.home_views.clear()
        self.ephemerals.clear()
        self._triggers.clear()
        self._response_urls.clear()
        self._failures.clear()
        self._outages.clear()
        self._stalls.clear()
        self._touched.clear()
        self._tier_calls.clear()

    # -- the workspace as its people see it (the sandbox's page reads these)

    def touch(self) -> None:
        """Note that something visible changed and wake whoever waits for a change."""
        self.version += 1
        for watcher in self._watchers:
            if not watcher.done():
                watcher.set_result(None)
        self._watchers.clear()

    async def wait_for_change(self, since: int, timeout: float) -> int:  # noqa: ASYNC109
        """Wait until `version` differs from `since` (at most `timeout` s); the new version."""
        if self.version == since:
            watcher = asyncio.get_running_loop().create_future()
            self._watchers.append(watcher)
            # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow a cancel that
            # arrives as the wait completes (CPython gh-86296), and the waiter never stops.
            try:
                await asyncio.wait({watcher}, timeout=timeout)
            finally:
                watcher.cancel()
        return self.version

    def post_user_message(self, channel: str, *, user: str, text: str) -> JSON:
        """A person writes in a channel or DM, as from Slack's own client (no Web API call)."""
        author = self._user(user)
        message: JSON = {
            "type": "message",
            "ts": self._new_ts(),
            "user": author["id"],
            "team": self.team_id,
            "text": text,
            "blocks": [],
        }
        self.messages.setdefault(self._channel(channel), []).append(message)
        self.touch()
        return message

    def command_response(self, channel: str, *, user: str, body: Any) -> None:
        """Show what an app put in its answer to a slash command, as Slack's client does.

        A JSON message is shown to `user` alone, or posted when `response_type` is
        `in_channel`; any other non-empty body is shown to `user` as text.
        """
        if isinstance(body, dict):
            text, blocks = self._content(body, required=False)
            if not text and not blocks:
                return
            if body.get("response_type") == "in_channel":
                self._post(self._channel(channel), {"text": text, "blocks": blocks})
                self.touch()
                return
        elif body:
            text, blocks = str(body), None
        else:
            return
        self.ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "ts": self._new_ts(),
                "text": text,
                "blocks": self._with_ids(blocks or []),
                "via": "command_response",
            }
        )
        self.touch()

    def open_modal(self, user: str) -> tuple[JSON, int] | None:
        """The user's top open modal and the depth of its stack, or None."""
        for view_id in reversed(self._touched):
            view = self.views[view_id]
            if view["user"] == user and self.is_open(view_id):
                return self._public(view), len(self.stacks[view["root_view_id"]])
        return None

    def find_message(self, channel: str, ts: str) -> JSON | None:
        return self._find_message(channel, ts)

    def find_ephemeral(self, user: str, ts: str) -> JSON | None:
        return self._find_ephemeral(user, ts)

    def dump_state(self) -> JSON:
        """What a restart should keep: people, channels, messages and Home tabs."""
        return copy.deepcopy(
            {
                "users": self.users,
                "channels": self.channels,
                "messages": self.messages,
                "ephemerals": self.ephemerals,
                "home_views": self.home_views,
                "files": self.files,
                "dms": self._dms,
                "last_ts": self._last_ts,
            }
        )

    def load_state(self, state: JSON) -> None:
        """Restore what `dump_state` returned."""
        state = copy.deepcopy(state)
        self.users.update(state.get("users") or {})
        self.channels.update(state.get("channels") or {})
        self.messages = state.get("messages") or {}
        self.ephemerals = state.get("ephemerals") or []
        self.home_views = state.get("home_views") or {}
        self.files = state.get("files") or {}
        self._dms.update(state.get("dms") or {})
        self._last_ts = int(state.get("last_ts") or 0)
        self.touch()

    # -- reading what happened

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(
        self,
        method: str,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - the deadline is part of the assertion
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Wait until `count` matching calls were recorded; return all matching calls."""

        def matching() -> list[Call]:
            return [c for c in self.calls_to(method) if where is None or where(c)]

        async with self._changed:
            try:
                async with asyncio.timeout(timeout):
                    await self._changed.wait_for(lambda: len(matching()) >= count)
            except TimeoutError:
                listing = "\n".join(
                    f"  {c.method} {c.status} ok={c.response.get('ok')} {c.args}"
                    for c in self.calls
                )
                raise AssertionError(
                    f"expected {count} call(s) to {method} within {timeout}s, "
                    f"got {len(matching())}; recorded:\n{listing or '  (none)'}"
                ) from None
        return matching()

    async def wait_for_view(
        self,
        user: str | None = None,
        *,
        where: Callable[[JSON], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - the deadline is part of the assertion
    ) -> JSON:
        """Wait until the newest open modal (of `user`) satisfies `where`, e.g. a modal opened
        while loading has been filled by `views.update`; return it."""

        def newest() -> JSON | None:
            try:
                return self.last_view(user)
            except AssertionError:
                return None

        def ready() -> bool:
            view = newest()
            return view is not None and where(view)

        async with self._changed:
            try:
                async with asyncio.timeout(timeout):
                    await self._changed.wait_for(ready)
            except TimeoutError:
                raise AssertionError(
                    f"the newest modal of {user!r} did not become as expected within "
                    f"{timeout}s: {newest()}"
                ) from None
        return self.last_view(user)

    def last_view(self, user: str | None = None) -> JSON:
        """The newest modal opened, pushed or updated that is still open."""
        for view_id in reversed(self._touched):
            view = self.views[view_id]
            if self.is_open(view_id) and user in (None, view["user"]):
                return _json_copy(view)
        raise AssertionError(f"no open modal for user {user!r}")

    def top_view(self, user: str) -> JSON:
        """The modal `user` sees: the top of their newest open stack (a view updated below it
        stays hidden under it)."""
        for view_id in reversed(self._touched):
            view = self.views[view_id]
            if self.is_open(view_id) and view["user"] == user:
                return _json_copy(self.views[self.stacks[view["root_view_id"]][-1]])
        raise AssertionError(f"no open modal for user {user!r}")

    def is_open(self, view_id: str) -> bool:
        view = self.views.get(view_id)
        return view is not None and view_id in self.stacks.get(view["root_view_id"], [])

    # -- modal stack, as the Slack client changes it

    def push_view(self, parent_view_id: str, view: JSON) -> JSON:
        """Push `view` above the open modal `parent_view_id`."""
        parent = self._open_view(parent_view_id)
        stack = self.stacks[parent["root_view_id"]]
        if len(stack) >= VIEW_STACK_LIMIT:
            raise FakeSlackError("push_limit_reached")
        stored = self._store_view(
            view, user=parent["user"], root=parent["root_view_id"], previous=stack[-1]
        )
        stack.append(stored["id"])
        self.touch()
        return stored

    def replace_view(self, view_id: str, view: JSON) -> JSON:
        """Replace the content of `view_id`, keeping its id and place; the hash changes."""
        current = self.views.get(view_id)
        if current is None:
            raise FakeSlackError("not_found")
        kept = {"external_id": current["external_id"], **view}
        stored = self._store_view(
            kept,
            user=current["user"],
            root=current["root_view_id"],
            previous=current["previous_view_id"],
            view_id=view_id,
        )
        self.touch()
        return stored

    def close_view(self, view_id: str, *, clear: bool = False) -> None:
        """Close `view_id` and whatever is above it; `clear` closes its whole stack."""
        view = self._open_view(view_id)
        stack = self.stacks[view["root_view_id"]]
        del stack[0 if clear else stack.index(view_id) :]
        if not stack:
            del self.stacks[view["root_view_id"]]
        self.touch()

    def _open_view(self, view_id: str) -> JSON:
        if not self.is_open(view_id):
            raise FakeSlackError("not_found")
        return self.views[view_id]

    def _store_view(
        self,
        view: JSON,
        *,
        user: str | None,
        root: str | None,
        previous: str | None,
        view_id: str | None = None,
    ) -> JSON:
        new_id = view_id or self._new_id("V")
        stored: JSON = {
            "id": new_id,
            "team_id": self.team_id,
            "type": view.get("type", "modal"),
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "title": None,
            "submit": None,
            "close": None,
            "clear_on_close": False,
            "notify_on_close": False,
            **_json_copy(view),
            "blocks": self._with_ids(view.get("blocks") or []),
            "state": {"values": {}},
            "hash": f"{1_700_000_000 + next(self._serial)}.{self._hex(8)}",
            "root_view_id": root or new_id,
            "previous_view_id": previous,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
            "user": user,
        }
        self.views[new_id] = stored
        self._touched.append(new_id)
        return stored

    # -- HTTP

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            args, token = await self._read_args(request)
        except ValueError:
            args, token = {}, None
            reply = _Reply(200, {"ok": False, "error": "invalid_json"})
        else:
            reply = self._dispatch(method, args, token)
        await self._record(
            Call(method, args, token, self.clock(), reply.status, reply.body, _peer(request))
        )
        delay = self._latency(method) if self._latency is not None else 0.0
        stalls = self._stalls.get(method)
        if stalls and reply.body.get("ok"):
            delay += stalls.popleft()
        if delay > 0:
            channel = str(args.get("channel") or "")
            self._enter(method, channel)
            try:
                await self.sleep(delay)
            finally:
                self._leave(method, channel)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)

    def _enter(self, method: str, channel: str) -> None:
        self.in_flight[method] = self.in_flight.get(method, 0) + 1
        self.most_in_flight[method] = max(
            self.most_in_flight.get(method, 0), self.in_flight[method]
        )
        if channel:
            self._channels_in_flight[channel] = self._channels_in_flight.get(channel, 0) + 1
            self.most_in_flight_per_channel = max(
                self.most_in_flight_per_channel, self._channels_in_flight[channel]
            )

    def _leave(self, method: str, channel: str) -> None:
        self.in_flight[method] -= 1
        if channel:
            self._channels_in_flight[channel] -= 1

    async def _read_args(self, request: web.Request) -> tuple[JSON, str | None]:
        args: JSON = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("JSON body must be an object")
                args.update(body)
            else:
                form = await request.post()
                args.update({key: value for key, value in form.items() if isinstance(value, str)})
        _decode_json_fields(args)
        token = args.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ").strip()
        return args, token

    def _dispatch(self, method: str, args: JSON, token: str | None) -> _Reply:
        down = self._outage_now(method)
        if down is not None:
            return down
        failure = self._take_failure(method)
        if failure is not None:
            return failure
        handler = self._handlers.get(method)
        if handler is None:
            return _Reply(200, {"ok": False, "error": "unknown_method", "req_method": method})
        limited = self._rate_limit(method)
        if limited is not None:
            return limited
        try:
            if method != "api.test":
                self._authenticate(token)
            return _Reply(200, {"ok": True, **handler(args)})
        except FakeSlackError as exc:
            return _Reply(200, {"ok": False, "error": exc.error, **exc.extra})

    def _outage_now(self, method: str) -> _Reply | None:
        now = self.clock()
        for outage in self._outages:
            if outage.start <= now < outage.end and (
                outage.methods is None or method in outage.methods
            ):
                return _Reply(outage.status, {"ok": False, "error": "fatal_error"})
        return None

    def _take_failure(self, method: str) -> _Reply | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue.popleft()
        if failure.status == 429:
            retry_after = str(1 if failure.retry_after is None else failure.retry_after)
            return _Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": retry_after})
        default = "fatal_error" if failure.status >= 500 else "request_failed"
        return _Reply(failure.status, {"ok": False, "error": failure.error or default})

    def _authenticate(self, token: str | None) -> None:
        if not token:
            raise FakeSlackError("not_authed")
        if token != self.bot_token:
            raise FakeSlackError("invalid_auth")
        if self.token_error is not None:
            raise FakeSlackError(self.token_error)

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        self.touch()

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        response_id = request.match_info["response_id"]
        raw = await request.text()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        args: JSON = body if isinstance(body, dict) else {"raw": raw}
        _decode_json_fields(args)
        status, text = self._respond(response_id, body)
        response: JSON = {"ok": True} if status == 200 else {"ok": False, "error": text}
        await self._record(Call("response_url", args, None, self.clock(), status, response))
        return web.Response(status=status, text=text)

    def _respond(self, response_id: str, body: Any) -> tuple[int, str]:
        failure = self._take_failure("response_url")
        if failure is not None:
            return failure.status, str(failure.body["error"])
        target = self._response_urls.get(response_id)
        if target is None:
            return 404, "expired_url"
        refused = self._response_url_refusal(target)
        if refused is not None:
            return refused
        if not isinstance(body, dict):
            return 400, "invalid_payload"
        ephemeral = self._find_ephemeral(target.user, target.ephemeral_ts)
        if body.get("delete_original"):
            if ephemeral is not None:
                self.ephemerals.remove(ephemeral)
            else:
                self._delete_message(target.channel, target.message_ts)
            return 200, "ok"
        blocks = body.get("blocks")
        if blocks is not None and validate_message_blocks(blocks):
            return 400, "invalid_blocks"
        if blocks is not None and self._unknown_files(blocks):
            return 400, "invalid_blocks"
        if not body.get("text") and not blocks:
            return 400, "no_text"
        text, blocks = body.get("text", ""), self._with_ids(blocks or [])
        original = self._find_message(target.channel, target.message_ts)
        if body.get("replace_original") and original is not None:
            original.update(text=text, blocks=blocks)
        elif body.get("replace_original") and ephemeral is not None:
            ephemeral.update(text=text, blocks=blocks)
        elif body.get("response_type") == "in_channel" and target.channel is not None:
            self._post(target.channel, {"text": text, "blocks": blocks})
        else:
            self.ephemerals.append(
                {
                    "channel": target.channel,
                    "user": target.user,
                    "ts": self._new_ts(),
                    "text": text,
                    "blocks": blocks,
                    "replace_original": bool(body.get("replace_original")),
                    "via": "response_url",
                }
            )
        return 200, "ok"

    # -- helpers

    def _hex(self, size: int) -> str:
        return "".join(self._random.choices("0123456789abcdef", k=size))

    def _new_id(self, prefix: str) -> str:
        return prefix + "".join(self._random.choices(string.ascii_uppercase + string.digits, k=10))

    def _new_ts(self) -> str:
        """A unique, increasing message ts: from `wall_clock` when given, else made up."""
        if self.wall_clock is None:
            micros = 1_700_000_000_000_000 + 100 * next(self._serial)
        else:
            micros = max(int(self.wall_clock() * 1_000_000), self._last_ts + 100)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _with_ids(self, blocks: list[JSON]) -> list[JSON]:
        """Copy blocks, filling in the block_id and action_id values Slack would generate."""
        blocks = _json_copy(blocks)
        for block in blocks:
            block.setdefault("block_id", "".join(self._random.choices(string.ascii_letters, k=5)))
            for element in _interactive_elements(block):
                element.setdefault("action_id", self._hex(5))
        return blocks

    def _user(self, user_id: Any) -> JSON:
        user = self.users.get(user_id) if isinstance(user_id, str) else None
        if user is None:
            raise FakeSlackError("user_not_found")
        return user

    def _channel(self, channel: Any) -> str:
        """Resolve a channel argument the way chat.* does: user ids mean the DM."""
        if not isinstance(channel, str) or not channel:
            raise FakeSlackError("channel_not_found")
        if channel[0] in "UW":
            self._check_dm(self._user(channel))
            return self.dm_id(channel)
        if channel.startswith("D"):
            return channel
        if channel.startswith("#"):
            named = [cid for cid, c in self.channels.items() if c["name"] == channel[1:]]
            if named:
                return named[0]
        if channel in self.channels:
            return channel
        raise FakeSlackError("channel_not_found")

    def _content(self, args: JSON, *, required: bool = True) -> tuple[str, list[JSON] | None]:
        text, blocks = args.get("text"), args.get("blocks")
        if blocks is not None:
            errors = validate_message_blocks(blocks)
            if errors:
                raise FakeSlackError(
                    "invalid_blocks",
                    errors=errors,
                    response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
                )
            self._check_blocks_text(blocks)
            self._check_file_refs(blocks)
        if required and not text and not blocks and not args.get("attachments"):
            raise FakeSlackError("no_text")
        if isinstance(text, str) and len(text) > MESSAGE_TEXT_LIMIT:
            raise FakeSlackError("msg_too_long")
        return (text if isinstance(text, str) else ""), blocks

    def _post(self, channel: str, args: JSON) -> JSON:
        text, blocks = args.get("text") or "", args.get("blocks")
        message: JSON = {
            "type": "message",
            "ts": self._new_ts(),
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": text,
            "blocks": self._with_ids(blocks or []),
        }
        for key in ("thread_ts", "metadata", "attachments"):
            if args.get(key):
                message[key] = args[key]
        self.messages.setdefault(channel, []).append(message)
        return message

    def _find_message(self, channel: str | None, ts: Any) -> JSON | None:
        for message in self.messages.get(channel or "", []):
            if message["ts"] == ts:
                return message
        return None

    def _find_ephemeral(self, user: str | None, ts: str | None) -> JSON | None:
        if ts is None:
            return None
        return next(
            (e for e in self.ephemerals if e.get("ts") == ts and e.get("user") == user), None
        )

    def _delete_message(self, channel: str | None, ts: Any) -> bool:
        message = self._find_message(channel, ts)
        if message is not None:
            self.messages[channel or ""].remove(message)
        return message is not None

    def _check_trigger(self, trigger_id: Any) -> _Trigger:
        trigger = self._triggers.get(trigger_id) if isinstance(trigger_id, str) else None
        if trigger is None:
            raise FakeSlackError("invalid_trigger_id")
        if trigger.used or self.clock() - trigger.issued_at > self.trigger_ttl:
            raise FakeSlackError("expired_trigger_id")
        return trigger

    def _view_arg(self, args: JSON, *, kind: str) -> JSON:
        view = args.get("view")
        self._check_view_size(view)
        errors = validate_view(view, kind=kind) if view is not None else ["view: required"]
        if errors:
            raise FakeSlackError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
        assert isinstance(view, dict)
        self._check_file_refs(view.get("blocks"))
        return view

    def _check_hash(self, args: JSON, current: JSON | None) -> None:
        expected = args.get("hash")
        if expected and current is not None and expected != current["hash"]:
            raise FakeSlackError("hash_conflict")

    def _public(self, view: JSON) -> JSON:
        return {key: value for key, value in _json_copy(view).items() if key != "user"}

    # -- files

    def file_url(self, file_id: str) -> str:
        """Where the fake serves an uploaded file (its `url_private`)."""
        stored = self.files[file_id]
        return f"{self.base_url}/files/{file_id}/{stored['name']}"

    def file_bytes(self, file_id: str) -> bytes:
        return base64.b64decode(self.files[file_id].get("data") or "")

    def _unknown_files(self, blocks: Any) -> list[str]:
        """slack_file references to no completed image file of this workspace."""
        unknown = []
        for ref in slack_file_refs(blocks):
            file_id = ref.get("id")
            if file_id is None and isinstance(ref.get("url"), str):
                file_id = next(
                    (f for f in self.files if ref["url"] == self.file_url(f)), ref["url"]
                )
            stored = self.files.get(str(file_id))
            if stored is None or not stored.get("completed") or not stored.get("is_image"):
                unknown.append(str(file_id))
        return unknown

    def _check_file_refs(self, blocks: Any) -> None:
        unknown = self._unknown_files(blocks)
        if unknown:
            errors = [f"invalid slack_file: no image file {f!r}" for f in unknown]
            raise FakeSlackError(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )

    def _files_get_upload_url_external(self, args: JSON) -> JSON:
        filename, length = args.get("filename"), args.get("length")
        if not isinstance(filename, str) or not filename.strip():
            raise FakeSlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: filename"]},
            )
        if len(filename) > FILENAME_LIMIT:
            raise FakeSlackError(
                "invalid_arguments",
                response_metadata={
                    "messages": [f"[ERROR] filename: must be at most {FILENAME_LIMIT} characters"]
                },
            )
        try:
            size = int(str(length))
        except ValueError:
            raise FakeSlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] length: must be an integer"]},
            ) from None
        if size <= 0:
            raise FakeSlackError("missing_argument")
        if size > FILE_SIZE_LIMIT:
            raise FakeSlackError("file_upload_size_restricted")
        alt = args.get("alt_txt")
        if isinstance(alt, str) and len(alt) > ALT_TXT_LIMIT:
            raise FakeSlackError("alt_txt_too_large")
        file_id = self._new_id("F")
        extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        self.files[file_id] = {
            "id": file_id,
            "name": filename,
            "title": filename,
            "length": size,
            "alt_txt": alt if isinstance(alt, str) else "",
            "mimetype": IMAGE_TYPES.get(extension, "application/octet-stream"),
            "is_image": extension in IMAGE_TYPES,
            "data": None,
            "completed": False,
            "channels": [],
        }
        return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The upload URL: takes the file's bytes, raw or as a multipart form."""
        file_id = request.match_info["file_id"]
        stored = self.files.get(file_id)
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next(iter(form.values()), b"")
            data = part.file.read() if isinstance(part, web.FileField) else str(part).encode()
        else:
            data = await request.read()
        if stored is None or stored["completed"]:
            status, text = 404, "not_found"
        elif not data:
            status, text = 400, "empty_file"
        else:
            stored["data"] = base64.b64encode(data).decode()
            status, text = 200, f"OK - {len(data)}"
        args = {"file_id": file_id, "length": len(data)}
        body = {"ok": status == 200} | ({} if status == 200 else {"error": text})
        await self._record(Call("upload", args, None, self.clock(), status, body))
        return web.Response(status=status, text=text)

    async def _handle_file(self, request: web.Request) -> web.Response:
        """An uploaded file, as its url_private serves it (the sandbox's page shows them)."""
        stored = self.files.get(request.match_info["file_id"])
        if stored is None or not stored["completed"]:
            return web.Response(status=404, text="file_not_found")
        return web.Response(
            body=base64.b64decode(stored["data"] or ""),
            content_type=stored["mimetype"],
            headers={"Cache-Control": "private, max-age=3600"},
        )

    def _files_complete_upload_external(self, args: JSON) -> JSON:
        """Completes uploads; without a channel the files stay private to the uploader."""
        files = args.get("files")
        if isinstance(files, str):
            try:
                files = json.loads(files)
            except ValueError:
                raise FakeSlackError("invalid_arguments") from None
        if not isinstance(files, list) or not files:
            raise FakeSlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] files: must be a non-empty array"]},
            )
        for entry in files:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise FakeSlackError(
                    "invalid_arguments",
                    response_metadata={"messages": ["[ERROR] files: each item needs an id"]},
                )
            stored = self.files.get(entry["id"])
            if stored is None or stored["completed"]:
                raise FakeSlackError("file_not_found")
            if stored["data"] is None:
                raise FakeSlackError("file_upload_failed")
            title = entry.get("title")
            if title is not None and (not isinstance(title, str) or len(title) > FILE_TITLE_LIMIT):
                raise FakeSlackError(
                    "invalid_arguments",
                    response_metadata={
                        "messages": [
                            f"[ERROR] title: must be at most {FILE_TITLE_LIMIT} characters"
                        ]
                    },
                )
        channel = args.get("channel_id")
        if channel:
            channel = self._channel(channel)
            self._check_can_see(channel)
            found = self.channels.get(channel)
            if found is not None and not found["is_member"]:
                raise FakeSlackError("not_in_channel")
            if found is not None and found["is_archived"]:
                raise FakeSlackError("is_archived")
        thread_ts = args.get("thread_ts")
        if channel and thread_ts and self._find_message(channel, thread_ts) is None:
            raise FakeSlackError("invalid_thread_ts")
        done = []
        for entry in files:
            stored = self.files[entry["id"]]
            stored["completed"] = True
            stored["title"] = entry.get("title") or stored["name"]
            stored["channels"] = [channel] if channel else []
            done.append(self._file_object(stored))
        if channel:
            # Sharing in a conversation posts a message holding the files (in the thread).
            comment = args.get("initial_comment")
            message = self._post(
                channel,
                {"text": comment if isinstance(comment, str) else "", "thread_ts": thread_ts},
            )
            message["files"] = [copy.deepcopy(f) for f in done]
        return {"files": done}

    def _check_can_see(self, channel: str) -> None:
        """A private channel the bot is not in is, to the bot, no channel at all."""
        found = self.channels.get(channel)
        if found is not None and found["is_private"] and not found["is_member"]:
            raise FakeSlackError("channel_not_found")

    def _files_info(self, args: JSON) -> JSON:
        stored = self.files.get(str(args.get("file")))
        if stored is None or not stored["completed"]:
            raise FakeSlackError("file_not_found")
        return {"file": self._file_object(stored)}

    def _file_object(self, stored: JSON) -> JSON:
        return {
            "id": stored["id"],
            "name": stored["name"],
            "title": stored["title"],
            "mimetype": stored["mimetype"],
            "filetype": stored["name"].rsplit(".", 1)[-1].lower(),
            "size": stored["length"],
            "is_public": bool(stored["channels"]),
            "channels": list(stored["channels"]),
            "alt_txt": stored["alt_txt"],
            "url_private": self.file_url(stored["id"]),
            "user": self.bot_user_id,
        }

    # -- where Slack refuses (and accepts) what a naive fake would not

    def _check_dm(self, user: JSON) -> None:
        """A DM to a deactivated person is accepted (nobody reads it; `account_inactive` is
        about the caller's own token); a DM to another bot is refused."""
        if user["is_bot"] and user["id"] != self.bot_user_id:
            raise FakeSlackError("cannot_dm_bot")

    def _check_metadata(self, metadata: Any) -> None:
        """Message metadata is an object with an `event_type` and an `event_payload` object."""
        if metadata is None:
            return
        if not isinstance(metadata, dict) or not {"event_type", "event_payload"} <= set(metadata):
            raise FakeSlackError("invalid_metadata_format")
        event_type, payload = metadata["event_type"], metadata["event_payload"]
        if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
            raise FakeSlackError("invalid_metadata_schema")

    def _check_conversation_id(self, channel: Any) -> None:
        """chat.update takes the conversation id a post returned, never a user id."""
        if isinstance(channel, str) and channel[:1] in ("U", "W"):
            raise FakeSlackError("channel_not_found")

    def _check_blocks_text(self, blocks: list[JSON]) -> None:
        """Blocks carrying more than `MESSAGE_BLOCKS_TEXT_LIMIT` characters of text in all."""
        if block_text_length(blocks) > MESSAGE_BLOCKS_TEXT_LIMIT:
            raise FakeSlackError("msg_blocks_too_long")

    def _check_view_size(self, view: Any) -> None:
        if view is not None and len(json.dumps(view)) > VIEW_SIZE_LIMIT:
            raise FakeSlackError("view_too_large")

    def _check_push_trigger(self, trigger: _Trigger) -> None:
        """views.push needs a trigger from an interaction inside a modal."""
        if trigger.view_id is None or trigger.view_id not in self.views:
            raise FakeSlackError("invalid_trigger_id")

    def _response_url_refusal(self, target: _ResponseUrl) -> tuple[int, str] | None:
        """A response_url takes `RESPONSE_URL_USES` posts within `RESPONSE_URL_TTL` seconds."""
        if self.clock() - target.issued_at > RESPONSE_URL_TTL:
            return 404, "expired_url"
        if target.uses >= RESPONSE_URL_USES:
            return 404, "used_url"
        target.uses += 1
        return None

    def _rate_limit(self, method: str) -> _Reply | None:
        """Tier 2 methods answer 429 past `TIER_2_PER_MINUTE` calls in a minute."""
        if method != "users.list":
            return None
        now = self.clock()
        calls = self._tier_calls.setdefault(method, deque())
        while calls and now - calls[0] >= 60.0:
            calls.popleft()
        if len(calls) >= TIER_2_PER_MINUTE:
            wait = max(1, int(60.0 - (now - calls[0])) + 1)
            headers = {"Retry-After": str(wait)}
            return _Reply(429, {"ok": False, "error": "ratelimited"}, headers)
        calls.append(now)
        return None

    def _users_list_limit(self, args: JSON, total: int) -> int:
        """A page is at most 1000 members; a large workspace must ask for a `limit`."""
        raw = args.get("limit")
        if not raw:
            if total > USERS_LIST_UNPAGED:
                raise FakeSlackError("limit_required")
            return total
        try:
            return min(int(raw), USERS_LIST_PAGE_MAX)
        except ValueError:
            raise FakeSlackError("invalid_limit") from None

    def _bots_info(self, args: JSON) -> JSON:
        if args.get("bot") != self.bot_id:
            raise FakeSlackError("bot_not_found")
        return {
            "bot": {
                "id": self.bot_id,
                "deleted": False,
                "name": self.users[self.bot_user_id]["name"],
                "updated": 1_700_000_000,
                "app_id": self.app_id,
                "user_id": self.bot_user_id,
                "icons": {},
            }
        }

    # -- Web API methods

    def _api_test(self, args: JSON) -> JSON:
        return {"args": args}

    def _auth_test(self, args: JSON) -> JSON:
        return {
            "url": f"https://{self.team_domain}.slack.test/",
            "team": self.team_name,
            "user": self.users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: JSON) -> JSON:
        channel = self._channel(args.get("channel"))
        self._check_can_see(channel)
        self._content(args)
        self._check_metadata(args.get("metadata"))
        message = self._post(channel, args)
        return {"channel": channel, "ts": message["ts"], "message": copy.deepcopy(message)}

    def _chat_post_ephemeral(self, args: JSON) -> JSON:
        channel = self._channel(args.get("channel"))
        user = self._user(args.get("user"))
        text, blocks = self._content(args)
        ts = self._new_ts()
        self.ephemerals.append(
            {
                "channel": channel,
                "user": user["id"],
                "ts": ts,
                "text": text,
                "blocks": self._with_ids(blocks or []),
                "via": "chat.postEphemeral",
            }
        )
        return {"message_ts": ts}

    def _chat_update(self, args: JSON) -> JSON:
        self._check_conversation_id(args.get("channel"))
        channel = self._channel(args.get("channel"))
        message = self._find_message(channel, args.get("ts"))
        if message is None:
            raise FakeSlackError("message_not_found")
        text, blocks = self._content(args)
        if "text" in args:
            message["text"] = text
        if blocks is not None:
            message["blocks"] = self._with_ids(blocks)
        message["edited"] = {"user": self.bot_user_id, "ts": self._new_ts()}
        return {
            "channel": channel,
            "ts": message["ts"],
            "text": message["text"],
            "message": copy.deepcopy(message),
        }

    def _chat_delete(self, args: JSON) -> JSON:
        channel = self._channel(args.get("channel"))
        if not self._delete_message(channel, args.get("ts")):
            raise FakeSlackError("message_not_found")
        return {"channel": channel, "ts": args["ts"]}

    def _chat_get_permalink(self, args: JSON) -> JSON:
        channel = self._channel(args.get("channel"))
        ts = args.get("message_ts")
        if self._find_message(channel, ts) is None:
            raise FakeSlackError("message_not_found")
        return {
            "channel": channel,
            "permalink": f"{PERMALINK_HOST}/archives/{channel}/p{str(ts).replace('.', '')}",
        }

    def _conversations_open(self, args: JSON) -> JSON:
        if args.get("channel"):
            return {"channel": {"id": self._channel(args["channel"])}}
        users = args.get("users")
        ids = users if isinstance(users, list) else str(users or "").split(",")
        ids = [u.strip() for u in ids if u.strip()]
        if not ids:
            raise FakeSlackError("users_list_not_supplied")
        if len(ids) > 1:
            raise FakeSlackError("not_implemented", detail="group DMs are not faked")
        user = self._user(ids[0])
        if user["deleted"]:
            raise FakeSlackError("user_disabled")
        self._check_dm(user)
        channel = self.dm_id(ids[0])
        return {"channel": {"id": channel}, "no_op": False, "already_open": False}

    def _conversations_info(self, args: JSON) -> JSON:
        channel = args.get("channel")
        if isinstance(channel, str) and channel.startswith("D"):
            return {
                "channel": {
                    "id": channel,
                    "is_im": True,
                    "is_open": True,
                    "user": self._dms.get(channel),
                    "created": 1_700_000_000,
                }
            }
        found = self.channels.get(channel) if isinstance(channel, str) else None
        if found is None or (found["is_private"] and not found["is_member"]):
            # A private channel the bot is not in does not exist for it.
            raise FakeSlackError("channel_not_found")
        return {"channel": copy.deepcopy(found)}

    def _conversations_history(self, args: JSON) -> JSON:
        """A conversation's messages, newest first, between `oldest` and `latest`; a message's
        metadata only with `include_all_metadata`. Paged with `limit` (at most 999)."""
        channel = args.get("channel")
        if not isinstance(channel, str) or not (channel in self._dms or channel in self.channels):
            raise FakeSlackError("channel_not_found")
        try:
            oldest = float(args.get("oldest") or 0)
            latest = float(args.get("latest") or "inf")
            limit = max(1, min(int(args.get("limit") or 100), 999))
        except ValueError:
            raise FakeSlackError("invalid_arguments") from None
        inclusive = _truthy(args.get("inclusive"))
        with_metadata = _truthy(args.get("include_all_metadata"))
        cursor = str(args.get("cursor") or "")
        try:
            start = int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0
        except (ValueError, IndexError):
            raise FakeSlackError("invalid_cursor") from None

        def within(message: JSON) -> bool:
            ts = float(message["ts"])
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        found = [m for m in reversed(self.messages.get(channel, [])) if within(m)]
        page = [copy.deepcopy(m) for m in found[start : start + limit]]
        if not with_metadata:
            for message in page:
                message.pop("metadata", None)
        following = start + limit
        more = following < len(found)
        return {
            "messages": page,
            "has_more": more,
            "pin_count": 0,
            "response_metadata": {
                "next_cursor": base64.b64encode(f"offset:{following}".encode()).decode()
                if more
                else ""
            },
        }

    def _views_open(self, args: JSON) -> JSON:
        trigger = self._check_trigger(args.get("trigger_id"))
        view = self._view_arg(args, kind="modal")
        external_id = view.get("external_id")
        if external_id and any(v["external_id"] == external_id for v in self.views.values()):
            raise FakeSlackError("duplicate_external_id")
        trigger.used = True
        stored = self._store_view(view, user=trigger.user, root=None, previous=None)
        self.stacks[stored["id"]] = [stored["id"]]
        return {"view": self._public(stored)}

    def _views_push(self, args: JSON) -> JSON:
        trigger = self._check_trigger(args.get("trigger_id"))
        view = self._view_arg(args, kind="modal")
        self._check_push_trigger(trigger)
        parent_id = trigger.view_id
        if parent_id is None or not self.is_open(parent_id):
            open_views = [v for v in reversed(self._touched) if self.is_open(v)]
            mine = [v for v in open_views if trigger.user in (None, self.views[v]["user"])]
            if not mine:
                raise FakeSlackError("not_found")
            parent_id = mine[0]
        trigger.used = True
        return {"view": self._public(self.push_view(parent_id, view))}

    def _views_update(self, args: JSON) -> JSON:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            raise FakeSlackError("invalid_arguments", detail="view_id or external_id required")
        if not view_id:
            matches = [v["id"] for v in self.views.values() if v["external_id"] == external_id]
            view_id = matches[0] if matches else None
        current = self.views.get(view_id) if isinstance(view_id, str) else None
        if current is None:
            raise FakeSlackError("not_found")
        self._check_hash(args, current)
        view = self._view_arg(args, kind="modal")
        return {"view": self._public(self.replace_view(current["id"], view))}

    def _views_publish(self, args: JSON) -> JSON:
        user = self._user(args.get("user_id"))
        current = self.home_views.get(user["id"])
        self._check_hash(args, current)
        view = self._view_arg(args, kind="home")
        stored: JSON = {
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            **_json_copy(view),
            "id": current["id"] if current else self._new_id("V"),
            "team_id": self.team_id,
            "blocks": self._with_ids(view["blocks"]),
            "state": {"values": {}},
            "hash": f"{1_700_000_000 + next(self._serial)}.{self._hex(8)}",
            "app_id": self.app_id,
            "bot_id": self.bot_id,
        }
        self.home_views[user["id"]] = stored
        return {"view": _json_copy(stored)}

    def _users_info(self, args: JSON) -> JSON:
        return {"user": copy.deepcopy(self._user(args.get("user")))}

    def _users_lookup_by_email(self, args: JSON) -> JSON:
        email = str(args.get("email", "")).lower()
        for user in self.users.values():
            if str(user["profile"].get("email", "")).lower() == email and email:
                return {"user": copy.deepcopy(user)}
        raise FakeSlackError("users_not_found")

    def _users_list(self, args: JSON) -> JSON:
        members = list(self.users.values())
        cursor = str(args.get("cursor") or "")
        try:
            start = int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0
        except (ValueError, IndexError):
            raise FakeSlackError("invalid_cursor") from None
        limit = self._users_list_limit(args, len(members))
        page = members[start : start + limit]
        following = start + limit
        next_cursor = (
            base64.b64encode(f"offset:{following}".encode()).decode()
            if following < len(members)
            else ""
        )
        return {
            "members": copy.deepcopy(page),
            "cache_ts": 1_700_000_000,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _team_info(self, args: JSON) -> JSON:
        return {
            "team": {
                "id": self.team_id,
                "name": self.team_name,
                "domain": self.team_domain,
                "email_domain": "",
                "icon": {"image_default": True},
            }
        }
