"""The sandbox's page and its JSON API: Slack's client, played in a browser.

Reading is one call, `GET /sandbox/state`, with what one person sees: people, channels,
messages (ephemerals only for them), their App Home and open modal; `GET /sandbox/events`
streams a Server-Sent Event whenever any of it changes. Every POST is something a person
does in Slack, and each reaches the bot as Slack's signed request through the driver.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from bot.core.clock import ManualClock
from bot.jobs import JOBS
from bot.sandbox.driver import DriverResponse, NotPossibleInSlack, SlackDriver
from bot.sandbox.fake_slack import JSON, PERMALINK_HOST, FakeSlack, FakeSlackError
from bot.sandbox.manifest import AppManifest, escape_command_text, message_text
from bot.sandbox.timeline import STEPS, Advance
from bot.services import Services
from storage.queries.health import database_answers

logger = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
HEARTBEAT_SECONDS = 15.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
TROUBLE = "We had some trouble connecting to the app: it answered {status}."
_COMMAND = re.compile(r"^(/[\w\-]+)(?:\s+(.*))?$", re.DOTALL)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refused(Exception):
    """Something the Slack client would not do; shown to the person, answered with 400."""


class Sandbox(Protocol):
    """What the page needs of a running sandbox (bot.sandbox.runtime.Sandbox is one)."""

    @property
    def fake(self) -> FakeSlack: ...

    @property
    def manifest(self) -> AppManifest: ...

    @property
    def clock(self) -> ManualClock: ...

    @property
    def services(self) -> Services: ...

    @property
    def driver(self) -> SlackDriver: ...

    @property
    def events_url(self) -> str: ...

    async def advance(self, step: str) -> Advance: ...


def create_page_app(sandbox: Sandbox) -> web.Application:
    page = Page(sandbox)
    app = web.Application(middlewares=[_local_only, _json_errors])
    app.on_shutdown.append(page.on_shutdown)
    app.add_routes(
        [
            web.get("/", page.index),
            web.get("/healthz", page.healthz),
            web.get("/sandbox/state", page.state),
            web.get("/sandbox/events", page.events),
            web.post("/sandbox/command", page.command),
            web.post("/sandbox/message", page.message),
            web.post("/sandbox/action", page.action),
            web.post("/sandbox/submit", page.submit),
            web.post("/sandbox/close", page.close),
            web.post("/sandbox/shortcut", page.shortcut),
            web.post("/sandbox/home", page.home),
            web.post("/sandbox/clock", page.clock),
            web.get("/sandbox/files/{file_id}", page.file),
            web.static("/static", STATIC),
        ]
    )
    return app


@web.middleware
async def _local_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer only pages of this machine: a loopback Host, and JSON bodies for changes.

    A page elsewhere cannot send a JSON POST here without a CORS preflight, which the
    sandbox never grants, and a rebound DNS name fails the Host check.
    """
    if _hostname(request.host or "") not in LOCAL_HOSTS:
        return web.json_response({"ok": False, "error": "not a local address"}, status=403)
    if request.method == "POST" and request.content_type != "application/json":
        return web.json_response({"ok": False, "error": "send JSON"}, status=415)
    response = await handler(request)
    if request.path == "/" or request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


def _hostname(host: str) -> str:
    """The name in a Host header, without its port ("[::1]:8080" -> "[::1]")."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0]


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as refusal:
        return web.json_response({"ok": False, "error": str(refusal)}, status=400)
    except NotPossibleInSlack as refusal:
        return web.json_response({"ok": False, "error": str(refusal)}, status=400)
    except FakeSlackError as error:
        return web.json_response({"ok": False, "error": error.error}, status=400)


class Page:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.fake = sandbox.fake
        self.closing = False

    async def on_shutdown(self, _app: web.Application) -> None:
        self.closing = True
        self.fake.touch()

    # -- reading

    async def index(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def healthz(self, _request: web.Request) -> web.Response:
        try:
            async with self.sandbox.services.sessions() as session:
                await database_answers(session=session)
        except Exception as error:  # the check reports any failure, whatever its kind
            return web.json_response(
                {"status": "unavailable", "database": type(error).__name__}, status=503
            )
        return web.json_response(
            {
                "status": "ok",
                "database": "ok",
                "bot": self.sandbox.events_url,
                "slack_api": self.fake.api_url,
                "clock": self.sandbox.clock.now().isoformat(),
            }
        )

    async def state(self, request: web.Request) -> web.Response:
        fake = self.fake
        people = self._people()
        me = request.query.get("user") or (people[0]["id"] if people else "")
        if me not in fake.users:
            raise Refused(f"no such person {me!r}")
        app_dm = fake.dm_id(me)
        conversations = [
            {"id": app_dm, "kind": "app", "name": self.sandbox.manifest.name},
            *(
                {"id": cid, "kind": "channel", "name": channel["name"]}
                for cid, channel in fake.channels.items()
            ),
        ]
        for conversation in conversations:
            shown = self._messages(str(conversation["id"]), me)
            conversation["latest"] = shown[-1]["ts"] if shown else ""
        channel = request.query.get("channel") or app_dm
        if channel not in fake.channels:
            channel = app_dm  # someone else's DM is not yours to read
        modal = fake.open_modal(me)
        return web.json_response(
            {
                "version": fake.version,
                "team": {"id": fake.team_id, "name": fake.team_name},
                "app": {
                    "name": self.sandbox.manifest.name,
                    "bot_user": fake.bot_user_id,
                    "home_tab": self.sandbox.manifest.home_tab,
                },
                "me": me,
                "people": people,
                "bots": [
                    {"id": uid, "name": u["real_name"]}
                    for uid, u in fake.users.items()
                    if u.get("is_bot")
                ],
                "conversations": conversations,
                "commands": [
                    {
                        "command": c.command,
                        "description": c.description,
                        "usage_hint": c.usage_hint,
                    }
                    for c in self.sandbox.manifest.commands
                ],
                "shortcuts": [
                    {"name": s.name, "callback_id": s.callback_id, "description": s.description}
                    for s in self.sandbox.manifest.shortcuts
                    if s.type == "message"
                ],
                "clock": {
                    "now": self.sandbox.clock.now().isoformat(),
                    "steps": STEPS,
                    "jobs": sorted(JOBS),
                },
                "permalink_host": PERMALINK_HOST,
                "channel": channel,
                "messages": self._messages(channel, me),
                "home": fake.home_views.get(me),
                "modal": None if modal is None else {"view": modal[0], "depth": modal[1]},
            },
            dumps=_dumps,
        )

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        sent: int | None = None
        try:
            while not self.closing:
                if sent == self.fake.version:
                    await self.fake.wait_for_change(sent, HEARTBEAT_SECONDS)
                if self.closing:
                    break
                if sent != self.fake.version:
                    sent = self.fake.version
                    await response.write(f"data: {json.dumps({'version': sent})}\n\n".encode())
                else:
                    await response.write(b": still here\n\n")
        except (ConnectionResetError, RuntimeError):
            pass  # the page went away
        return response

    def _people(self) -> list[JSON]:
        return [
            {
                "id": uid,
                "name": u["name"],
                "real_name": u["real_name"],
                "title": (u.get("profile") or {}).get("title", ""),
                "tz": u.get("tz") or "UTC",
            }
            for uid, u in self.fake.users.items()
            if not u.get("is_bot") and not u.get("deleted")
        ]

    def _messages(self, channel: str, viewer: str) -> list[JSON]:
        fake = self.fake
        shown: list[JSON] = []
        for message in fake.messages.get(channel, []):
            author = fake.users.get(message.get("user", ""), {})
            shown.append(
                {
                    "ts": message["ts"],
                    "user": message.get("user"),
                    "author": author.get("real_name") or message.get("user") or "someone",
                    "is_bot": bool(message.get("bot_id")),
                    "text": message.get("text", ""),
                    "blocks": message.get("blocks") or [],
                    "files": [
                        {
                            "id": f["id"],
                            "name": f["name"],
                            "title": f.get("title") or f["name"],
                            "url": f"/sandbox/files/{f['id']}",
                        }
                        for f in message.get("files") or []
                    ],
                    "edited": "edited" in message,
                    "ephemeral": False,
                }
            )
        for ephemeral in fake.ephemerals:
            if ephemeral.get("channel") == channel and ephemeral.get("user") == viewer:
                shown.append(
                    {
                        "ts": ephemeral.get("ts") or "0",
                        "user": fake.bot_user_id,
                        "author": self.sandbox.manifest.name,
                        "is_bot": True,
                        "text": ephemeral.get("text", ""),
                        "blocks": ephemeral.get("blocks") or [],
                        "edited": False,
                        "ephemeral": True,
                    }
                )
        shown.sort(key=lambda m: float(m["ts"]))
        return shown

    # -- doing

    async def _body(self, request: web.Request) -> JSON:
        try:
            body = await request.json()
        except ValueError:
            raise Refused("the body is not JSON") from None
        if not isinstance(body, dict):
            raise Refused("the body must be a JSON object")
        user = body.get("user")
        person = self.fake.users.get(user) if isinstance(user, str) else None
        if person is None or person.get("is_bot") or person.get("deleted"):
            raise Refused(f"no such person {user!r}")
        return body

    def _channel(self, body: JSON) -> str:
        channel = body.get("channel")
        if not isinstance(channel, str) or not (
            channel in self.fake.channels or channel == self.fake.dm_id(body["user"])
        ):
            raise Refused(f"no such conversation {channel!r}")
        return channel

    def _answer(self, response: DriverResponse, **extra: Any) -> web.Response:
        if response.status != 200:
            raise Refused(TROUBLE.format(status=response.status))
        return web.json_response({"ok": True, **extra})

    async def command(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        channel = self._channel(body)
        match = _COMMAND.match(str(body.get("text") or "").strip())
        if match is None:
            raise Refused("A slash command starts with / and its name, like /contract help.")
        name, rest = match.group(1), (match.group(2) or "").strip()
        known = self.sandbox.manifest.command(name)
        if known is None:
            raise Refused(
                f"{name} is not a valid command. In Slack, all messages that start with the "
                '"/" character are interpreted as commands.'
            )
        text_sent = escape_command_text(
            rest,
            users=self.fake.users.values(),
            channels=self.fake.channels.values(),
            should_escape=known.should_escape,
        )
        response = await self.sandbox.driver.command(
            name, text_sent, user=body["user"], channel=channel
        )
        if response.status == 200:
            self.fake.command_response(
                channel, user=body["user"], body=response.json or response.text
            )
        return self._answer(response, text=text_sent)

    async def message(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        channel = self._channel(body)
        words = str(body.get("text") or "").strip()
        if not words:
            raise Refused("Type a message first.")
        written = message_text(
            words, users=self.fake.users.values(), channels=self.fake.channels.values()
        )
        message = self.fake.post_user_message(channel, user=body["user"], text=written)
        kind = "im" if channel.startswith("D") else "channel"
        if f"message.{'im' if kind == 'im' else 'channels'}" in self.sandbox.manifest.bot_events:
            await self.sandbox.driver.event(
                {
                    "type": "message",
                    "channel": channel,
                    "channel_type": kind,
                    "user": body["user"],
                    "text": written,
                    "ts": message["ts"],
                }
            )
        return web.json_response({"ok": True, "ts": message["ts"]})

    async def action(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = body["user"]
        source = body.get("source")
        common: dict[str, Any] = {
            "user": user,
            "action_id": str(body.get("action_id") or ""),
            "block_id": str(body.get("block_id") or ""),
            "value": body.get("value"),
            "selected": body.get("selected"),
        }
        driver = self.sandbox.driver
        if source == "message":
            channel = self._channel(body)
            message = self.fake.find_message(channel, str(body.get("ts")))
            if message is None:
                raise Refused("That message is gone.")
            response = await driver.block_action(message=message, channel=channel, **common)
        elif source == "ephemeral":
            channel = self._channel(body)
            ephemeral = self.fake.find_ephemeral(user, str(body.get("ts")))
            if ephemeral is None:
                raise Refused("That message is gone.")
            response = await driver.block_action(message=ephemeral, channel=channel, **common)
        elif source == "view":
            view = self._open_view(body)
            values = body.get("values")
            response = await driver.block_action(
                view=view, values=values if isinstance(values, dict) else None, **common
            )
        elif source == "home":
            home = self.fake.home_views.get(user)
            if home is None:
                raise Refused("The Home tab is empty.")
            response = await driver.block_action(view=home, **common)
        else:
            raise Refused("source must be message, ephemeral, view or home")
        return self._answer(response)

    def _open_view(self, body: JSON) -> JSON:
        view_id = body.get("view_id")
        view = self.fake.views.get(view_id) if isinstance(view_id, str) else None
        if view is None or view["user"] != body["user"] or not self.fake.is_open(view["id"]):
            raise Refused("That modal is closed.")
        return view

    async def submit(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        view = self._open_view(body)
        values = body.get("values")
        response = await self.sandbox.driver.submit_view(
            view, values if isinstance(values, dict) else {}, user=body["user"]
        )
        answer = response.json if isinstance(response.json, dict) else {}
        if answer.get("response_action") == "errors":
            return self._answer(response, errors=answer.get("errors") or {})
        return self._answer(response)

    async def close(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        view = self._open_view(body)
        if view.get("notify_on_close"):
            return self._answer(await self.sandbox.driver.close_view(view, user=body["user"]))
        self.fake.close_view(view["id"], clear=bool(view.get("clear_on_close")))
        return web.json_response({"ok": True})

    async def shortcut(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        channel = self._channel(body)
        callback_id = str(body.get("callback_id") or "")
        manifest = self.sandbox.manifest
        if manifest.found and not any(
            s.callback_id == callback_id and s.type == "message" for s in manifest.shortcuts
        ):
            raise Refused(f"The app has no message shortcut {callback_id!r}.")
        message = self.fake.find_message(channel, str(body.get("ts")))
        if message is None:
            raise Refused("That message is gone.")
        response = await self.sandbox.driver.message_shortcut(
            user=body["user"], callback_id=callback_id, message=message, channel=channel
        )
        return self._answer(response)

    async def home(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        return self._answer(await self.sandbox.driver.app_home_opened(body["user"]))

    async def file(self, request: web.Request) -> web.Response:
        """A file uploaded to the local Slack: an image as image blocks show it; another file
        (a report's PDF or CSV, shared in a conversation) as a download."""
        stored = self.sandbox.fake.files.get(request.match_info["file_id"])
        if stored is None or not stored.get("completed"):
            return web.Response(status=404, text="file_not_found")
        if not stored.get("is_image") and not stored.get("channels"):
            return web.Response(status=404, text="file_not_found")  # private to the bot
        headers = {}
        if not stored.get("is_image"):
            name = re.sub(r"[^A-Za-z0-9._-]", "_", str(stored["name"]))
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return web.Response(
            body=self.sandbox.fake.file_bytes(stored["id"]),
            content_type=stored["mimetype"],
            headers=headers,
        )

    async def clock(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        step = body.get("step")
        if step not in STEPS:
            raise Refused(f"step must be one of {', '.join(STEPS)}")
        result = await self.sandbox.advance(str(step))
        return web.json_response(
            {
                "ok": True,
                "step": result.step,
                "before": result.before.isoformat(),
                "now": result.after.isoformat(),
                "stops": result.stops,
                "sent": result.sent,
                "jobs": [
                    {"name": j.name, "runs": j.runs, "errors": j.errors, "last": j.last}
                    for j in result.jobs
                ],
                "note": result.note,
            }
        )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
