"""Signed requests into the app's /slack/events, shaped the way Slack sends them.

The tests drive the bot with it, and the sandbox's page does too: every click and command
reaches the bot the way Slack's would, signed with the app's signing secret.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from bot.sandbox.fake_slack import FakeSlack, FakeSlackError, validate_view

JSON = dict[str, Any]
VERIFICATION_TOKEN = "fake-verification-token"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"

_TEXT_INPUTS = frozenset({"plain_text_input", "url_text_input", "email_text_input", "number_input"})
_SINGLE_OPTION = frozenset({"static_select", "radio_buttons", "overflow"})
_MULTI_OPTION = frozenset({"multi_static_select", "checkboxes"})
_SINGLE_VALUE = {
    "datepicker": ("selected_date", "initial_date"),
    "timepicker": ("selected_time", "initial_time"),
    "users_select": ("selected_user", "initial_user"),
    "conversations_select": ("selected_conversation", "initial_conversation"),
    "channels_select": ("selected_channel", "initial_channel"),
}
_MULTI_VALUE = {
    "multi_users_select": ("selected_users", "initial_users"),
    "multi_conversations_select": ("selected_conversations", "initial_conversations"),
    "multi_channels_select": ("selected_channels", "initial_channels"),
}


class NotPossibleInSlack(AssertionError):
    """Slack's client would not let anyone send this (a missing field, a closed view...)."""


@dataclass(frozen=True)
class DriverResponse:
    """What the app answered: status, body text, parsed JSON (or None) and headers."""

    status: int
    text: str
    json: Any
    headers: Mapping[str, str]


class SlackDriver:
    """Plays Slack's part toward the app: slash commands, interactivity and events."""

    def __init__(
        self,
        *,
        app_url: str,
        signing_secret: str,
        fake: FakeSlack,
        team_id: str = "T0TEST001",
        api_app_id: str = "A0NORTH01",
    ) -> None:
        self.app_url = app_url
        self.fake = fake
        self.team_id = team_id
        self.api_app_id = api_app_id
        self._verifier = SignatureVerifier(signing_secret)
        self._session: aiohttp.ClientSession | None = None
        self._serial = itertools.count(1)
        # The body and headers of the newest request, byte for byte, for replaying it.
        self.last_sent: tuple[bytes, dict[str, str]] = (b"", {})

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- signing and transport

    def sign(self, body: str, timestamp: int | None = None) -> dict[str, str]:
        """The X-Slack-Request-Timestamp and X-Slack-Signature headers for `body`."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._verifier.generate_signature(timestamp=stamp, body=body)
        assert signature is not None
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}

    async def post_raw(self, body: bytes | str, headers: dict[str, str]) -> DriverResponse:
        """POST exactly this body and these headers; nothing is signed for you."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        data = body.encode() if isinstance(body, str) else body
        self.last_sent = (data, dict(headers))
        async with self._session.post(self.app_url, data=data, headers=headers) as resp:
            text = await resp.text()
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = None
            return DriverResponse(resp.status, text, parsed, dict(resp.headers))

    async def _send(
        self, body: str, content_type: str, extra: dict[str, str] | None = None
    ) -> DriverResponse:
        headers = {"Content-Type": content_type, "User-Agent": USER_AGENT, **self.sign(body)}
        return await self.post_raw(body, {**headers, **(extra or {})})

    async def _interact(self, payload: JSON) -> DriverResponse:
        body = urlencode({"payload": json.dumps(payload)})
        return await self._send(body, "application/x-www-form-urlencoded")

    # -- slash commands

    async def command(
        self, command: str, text: str = "", *, user: str, channel: str = "C0GENERAL1"
    ) -> DriverResponse:
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": self.fake.team_domain,
            "channel_id": channel,
            "channel_name": self._channel_name(channel),
            "user_id": user,
            "user_name": self._user(user)["username"],
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self.fake.new_response_url(channel=channel, user=user),
            "trigger_id": self.fake.issue_trigger_id(user=user),
        }
        return await self._send(urlencode(fields), "application/x-www-form-urlencoded")

    # -- interactivity

    async def block_action(
        self,
        *,
        user: str,
        action_id: str,
        value: str | None = None,
        block_id: str = "b",
        message: JSON | None = None,
        view: JSON | None = None,
        channel: str | None = None,
        selected_option: JSON | None = None,
        selected_user: str | None = None,
        selected: list[str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> DriverResponse:
        """A click or selection on an element of a message or a view (or an ephemeral).

        `value` is what a single-valued element picked (an option's value, a date, a time, a
        user), `selected` what a multi-valued one did; `values` is what the view's inputs hold
        at that moment (block_id -> value, as for `submit_view`), sent as its state.
        """
        current = self._current(view) if view is not None else None
        if current is not None and values is not None:
            current["state"] = {"values": _state_values(current, values, strict=False)}
        container_blocks = (current or message or {}).get("blocks") or []
        block_id, element = _find_element(container_blocks, block_id, action_id)
        if (view or message) and element is None:
            raise NotPossibleInSlack(
                f"no element with action_id {action_id!r} in the "
                f"{'view' if view else 'message'}; Slack could not send this action"
            )
        element = element or {}
        kind = element.get("type") or (
            "static_select" if selected_option else "users_select" if selected_user else "button"
        )
        action: JSON = {
            "type": kind,
            "action_id": action_id,
            "block_id": block_id,
            "action_ts": self._action_ts(),
        }
        if kind == "button":
            action["text"] = element.get("text") or {"type": "plain_text", "text": action_id}
            picked = value if value is not None else element.get("value")
            if picked is not None:
                action["value"] = picked
        elif selected_user is not None:
            action["selected_user"] = selected_user
        elif kind in _SINGLE_VALUE:
            action[_SINGLE_VALUE[kind][0]] = value
        elif kind in _MULTI_VALUE:
            action[_MULTI_VALUE[kind][0]] = list(selected or [])
        elif kind in _MULTI_OPTION:
            action["selected_options"] = [_option(element, v) for v in selected or []]
        elif selected_option is not None or value is not None:
            option = selected_option or _option(element, value)
            action["selected_option"] = option
        payload: JSON = {
            "type": "block_actions",
            **self._common(user),
            "actions": [action],
        }
        if current is not None:
            payload.update(
                container={"type": "view", "view_id": current["id"]},
                view=current,
                trigger_id=self.fake.issue_trigger_id(user=user, view_id=current["id"]),
            )
            return await self._interact(payload)
        target = channel or self._channel_of(message) or "C0GENERAL1"
        ts = (message or {}).get("ts")
        posted = ts is not None and any(m["ts"] == ts for m in self.fake.messages.get(target, []))
        payload.update(
            container={
                "type": "message",
                "message_ts": ts or self._action_ts(),
                "channel_id": target,
                "is_ephemeral": not posted,
            },
            channel={"id": target, "name": self._channel_name(target)},
            state={"values": {}},
            trigger_id=self.fake.issue_trigger_id(user=user),
            response_url=self.fake.new_response_url(
                channel=target,
                user=user,
                message_ts=ts if posted else None,
                ephemeral_ts=None if posted else ts,
            ),
        )
        if posted:
            payload["message"] = copy.deepcopy(message)
        return await self._interact(payload)

    async def submit_view(self, view: JSON, values: dict[str, Any], *, user: str) -> DriverResponse:
        """Submit a modal with `values` (block_id -> value) as a user filling it in would."""
        current = self._current(view)
        if not current.get("submit"):
            raise NotPossibleInSlack("the view has no submit button; Slack could not submit it")
        current["state"] = {"values": _state_values(current, values)}
        payload: JSON = {
            "type": "view_submission",
            **self._common(user),
            "trigger_id": self.fake.issue_trigger_id(user=user, view_id=current["id"]),
            "view": current,
            "response_urls": [],
        }
        response = await self._interact(payload)
        self._apply_response_action(current, response)
        return response

    async def close_view(self, view: JSON, *, user: str) -> DriverResponse:
        """The user closes the modal; Slack sends view_closed only with notify_on_close."""
        current = self._current(view)
        cleared = bool(current.get("clear_on_close"))
        if self.fake.is_open(current["id"]):
            self.fake.close_view(current["id"], clear=cleared)
        if not current.get("notify_on_close"):
            raise NotPossibleInSlack("notify_on_close is not set; Slack would send no view_closed")
        payload: JSON = {
            "type": "view_closed",
            **self._common(user),
            "view": current,
            "is_cleared": cleared,
        }
        return await self._interact(payload)

    async def message_shortcut(
        self, *, user: str, callback_id: str, message: JSON, channel: str
    ) -> DriverResponse:
        payload: JSON = {
            "type": "message_action",
            **self._common(user),
            "callback_id": callback_id,
            "action_ts": self._action_ts(),
            "trigger_id": self.fake.issue_trigger_id(user=user),
            "channel": {"id": channel, "name": self._channel_name(channel)},
            "message_ts": message["ts"],
            "message": copy.deepcopy(message),
            "response_url": self.fake.new_response_url(
                channel=channel, user=user, message_ts=message["ts"]
            ),
        }
        return await self._interact(payload)

    async def global_shortcut(self, *, user: str, callback_id: str) -> DriverResponse:
        payload: JSON = {
            "type": "shortcut",
            **self._common(user),
            "callback_id": callback_id,
            "action_ts": self._action_ts(),
            "trigger_id": self.fake.issue_trigger_id(user=user),
        }
        return await self._interact(payload)

    # -- Events API

    async def event(
        self, event: JSON, *, retry_num: int | None = None, event_id: str | None = None
    ) -> DriverResponse:
        """Deliver `event` in an event_callback envelope; a retry carries X-Slack-Retry-*."""
        now = time.time()
        envelope: JSON = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": {"event_ts": f"{now:.6f}", **event},
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._serial):010d}",
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.fake.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        retry = (
            {}
            if retry_num is None
            else {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        )
        return await self._send(json.dumps(envelope), "application/json", retry)

    async def app_home_opened(self, user: str) -> DriverResponse:
        event: JSON = {"type": "app_home_opened", "user": user, "channel": self.fake.dm_id(user)}
        event["tab"] = "home"
        if user in self.fake.home_views:
            event["view"] = copy.deepcopy(self.fake.home_views[user])
        return await self.event(event)

    # -- helpers

    def _user(self, user: str) -> JSON:
        known = self.fake.users.get(user)
        name = known["name"] if known else user.lower()
        return {"id": user, "username": name, "name": name, "team_id": self.team_id}

    def _common(self, user: str) -> JSON:
        return {
            "token": VERIFICATION_TOKEN,
            "api_app_id": self.api_app_id,
            "team": {"id": self.team_id, "domain": self.fake.team_domain},
            "user": self._user(user),
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _channel_name(self, channel: str) -> str:
        if channel.startswith("D"):
            return "directmessage"
        known = self.fake.channels.get(channel)
        return known["name"] if known else "privategroup"

    def _channel_of(self, message: JSON | None) -> str | None:
        ts = (message or {}).get("ts")
        for channel, messages in self.fake.messages.items():
            if any(m["ts"] == ts for m in messages):
                return channel
        return None

    def _action_ts(self) -> str:
        return f"{time.time():.6f}"

    def _current(self, view: JSON) -> JSON:
        """What Slack holds for this view (its current hash and blocks), without fake-only keys."""
        stored = self.fake.views.get(view.get("id", ""))
        if stored is not None and not self.fake.is_open(stored["id"]):
            raise NotPossibleInSlack(f"view {stored['id']} is closed; Slack could not send this")
        source = stored if stored is not None else view
        return {key: value for key, value in copy.deepcopy(source).items() if key != "user"}

    def _apply_response_action(self, view: JSON, response: DriverResponse) -> None:
        """Change the fake's modal stack the way Slack does on the app's answer."""
        if response.status != 200:
            return
        body = response.json if isinstance(response.json, dict) else {}
        action = body.get("response_action")
        if not self.fake.is_open(view["id"]):
            return
        try:
            if action is None:
                self.fake.close_view(view["id"])
            elif action == "clear":
                self.fake.close_view(view["id"], clear=True)
            elif action == "errors":
                _check_errors(view, body.get("errors"))
            elif action in ("update", "push"):
                problems = validate_view(body.get("view"), kind="modal")
                if problems:
                    raise NotPossibleInSlack(
                        f"response_action {action} view is invalid: {problems}"
                    )
                if action == "update":
                    self.fake.replace_view(view["id"], body["view"])
                else:
                    self.fake.push_view(view["id"], body["view"])
            else:
                raise NotPossibleInSlack(f"unknown response_action {action!r}")
        except FakeSlackError as exc:
            raise NotPossibleInSlack(
                f"Slack would refuse response_action {action}: {exc.error}"
            ) from None


def _find_element(blocks: list[JSON], block_id: str, action_id: str) -> tuple[str, JSON | None]:
    """The element with `action_id`, preferring the block named `block_id`."""
    found: list[tuple[str, JSON]] = []
    for block in blocks:
        candidates = [block.get("accessory"), block.get("element"), *(block.get("elements") or [])]
        found.extend(
            (block.get("block_id", ""), c)
            for c in candidates
            if isinstance(c, dict) and c.get("action_id") == action_id
        )
    exact = [item for item in found if item[0] == block_id]
    if exact or found:
        return (exact or found)[0]
    return block_id, None


def _option(element: JSON, value: Any) -> JSON:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    for option in options:
        if option.get("value") == value:
            return dict(option)
    raise NotPossibleInSlack(
        f"{element.get('type')} {element.get('action_id')!r} has no option {value!r}; "
        f"options are {[o.get('value') for o in options]}"
    )


def _state_values(view: JSON, values: dict[str, Any], *, strict: bool = True) -> JSON:
    """state.values as Slack sends it: every input block, filled or at its initial value.

    `strict`: refuse an empty required input, as Slack does on submit (not on a click).
    """
    inputs = {b["block_id"]: b for b in view.get("blocks") or [] if b.get("type") == "input"}
    unknown = set(values) - set(inputs)
    if unknown:
        raise NotPossibleInSlack(
            f"no input blocks {sorted(unknown)}; the view has {sorted(inputs)}"
        )
    state: JSON = {}
    for block_id, block in inputs.items():
        element = block["element"]
        given = values.get(block_id)
        entry = _state_entry(element, given)
        if strict and given is None and not block.get("optional") and _is_empty(entry):
            raise NotPossibleInSlack(
                f"input {block_id!r} is required; Slack would not let the user submit without it"
            )
        state[block_id] = {element.get("action_id", ""): entry}
    return state


def _state_entry(element: JSON, given: Any) -> JSON:
    kind = element["type"]
    entry: JSON = {"type": kind}
    if kind in _TEXT_INPUTS:
        initial = element.get("initial_value")
        entry["value"] = str(given) if given is not None else initial
    elif kind in _SINGLE_VALUE:
        key, initial_key = _SINGLE_VALUE[kind]
        entry[key] = given if given is not None else element.get(initial_key)
    elif kind in _MULTI_VALUE:
        key, initial_key = _MULTI_VALUE[kind]
        entry[key] = list(given) if given is not None else element.get(initial_key, [])
    elif kind in _SINGLE_OPTION:
        picked = _option(element, given) if given is not None else element.get("initial_option")
        entry["selected_option"] = picked
    elif kind in _MULTI_OPTION:
        if given is not None:
            picked_many = [_option(element, v) for v in given]
        else:
            picked_many = list(element.get("initial_options") or [])
        entry["selected_options"] = picked_many
    elif kind == "rich_text_input":
        if given is not None:
            entry["rich_text_value"] = _rich_text(str(given))
        else:
            entry["rich_text_value"] = element.get("initial_value") or _rich_text("")
    else:
        raise NotPossibleInSlack(f"submit_view does not know how to fill a {kind!r} element")
    return entry


def _rich_text(text: str) -> JSON:
    """Typed text as the rich_text value Slack sends for a rich_text_input."""
    section = [{"type": "text", "text": text}] if text else []
    return {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": section}]}


def _is_empty(entry: JSON) -> bool:
    rich = entry.get("rich_text_value")
    if rich is not None:
        return not any(section.get("elements") for section in rich.get("elements") or [])
    return all(value in (None, "", []) for key, value in entry.items() if key != "type")


def _check_errors(view: JSON, errors: Any) -> None:
    """Slack rejects response_action errors that name anything but the view's input blocks."""
    inputs = {b.get("block_id") for b in view.get("blocks") or [] if b.get("type") == "input"}
    if not isinstance(errors, dict) or not errors:
        raise NotPossibleInSlack(f"response_action errors needs a non-empty object, got {errors!r}")
    stray = set(errors) - inputs
    if stray:
        raise NotPossibleInSlack(f"errors name blocks that are not inputs: {sorted(stray)}")
