"""The HTTP face of the bot: Slack's signed requests on /slack/events and a health check.

Every request to /slack/events must prove it comes from Slack, its headers checked before
its body is read: one timestamp of ASCII digits within five minutes of now, one `v0=`
signature of 64 hex digits, and that signature matching the HMAC of the exact bytes
received. Anything else is a 401 and one log line, and Bolt never sees it; Bolt's own check
then runs on the body already verified. In Socket Mode Slack never posts here, so the
server answers /healthz only.

/healthz answers 200 only when the database took a write within `HEALTH_TIMEOUT` seconds
(`storage.queries.health`), else 503 with a short reason; a locked database never hangs the
probe.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web
from multidict import CIMultiDictProxy
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from storage.db import SessionFactory
from storage.queries.health import write_failure, write_heartbeat

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# Slack's rule: a request signed more than five minutes from now is refused (a replay).
MAX_SIGNATURE_AGE_S = 60 * 5
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
# ASCII digits only: int() also takes "+1", " 1", "1_000" and other scripts' digits.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
# A health check answers within this many seconds, whatever the database does.
HEALTH_TIMEOUT = 3.0


class SlackSignature:
    """Checks Slack's request signing on a raw aiohttp request; says why it refuses."""

    def __init__(self, signing_secret: str) -> None:
        self._verifier = SignatureVerifier(signing_secret)

    def header_problem(self, headers: CIMultiDictProxy[str]) -> str | None:
        """Why the signing headers cannot be right, before the body is read; None if they may."""
        stamps = headers.getall(TIMESTAMP_HEADER, [])
        signatures = headers.getall(SIGNATURE_HEADER, [])
        if len(stamps) != 1:
            return "no timestamp" if not stamps else "several timestamps"
        if not _TIMESTAMP.fullmatch(stamps[0]):
            return "a malformed timestamp"
        if abs(time.time() - int(stamps[0])) > MAX_SIGNATURE_AGE_S:
            return "a timestamp more than five minutes away"
        if len(signatures) != 1:
            return "no signature" if not signatures else "several signatures"
        if not _SIGNATURE.fullmatch(signatures[0]):
            return "a malformed signature"
        return None

    def body_problem(self, headers: CIMultiDictProxy[str], body: bytes) -> str | None:
        """Why the signature does not cover this body; None when it does (headers checked)."""
        try:
            decoded = body.decode("utf-8")
        except UnicodeDecodeError:
            return "a body that is not UTF-8"
        if not self._verifier.is_valid(
            decoded, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
        ):
            return "a signature that does not match"
        return None


class DatabaseProbe:
    """Checks that the database takes a write, in bounded time, one write at a time.

    A write that outlives the timeout (a lock held elsewhere, a server that does not answer)
    is not abandoned: the probes that come meanwhile wait for it instead of piling up more.
    A change between healthy and not is logged once, with the database's own words.
    """

    def __init__(self, sessions: SessionFactory, *, timeout: float = HEALTH_TIMEOUT) -> None:
        self.sessions = sessions
        self.timeout = timeout
        self._write: asyncio.Task[None] | None = None
        self._failing: str | None = None

    async def problem(self) -> str | None:
        """None when the database took a write; else a short reason for a 503."""
        if self._write is None or self._write.done():
            self._write = asyncio.create_task(
                write_heartbeat(sessions=self.sessions, now=datetime.now(UTC))
            )
            self._write.add_done_callback(_retrieved)
        write = self._write
        done, _ = await asyncio.wait({write}, timeout=self.timeout)
        if write.cancelled():
            return "stopping"
        error: BaseException | None = TimeoutError() if not done else write.exception()
        if error is None:
            if self._failing is not None:
                logger.warning("The database takes writes again")
            self._failing = None
            return None
        reason = write_failure(error)
        if self._failing != reason:
            logger.warning(
                "The database cannot be written (%s): /healthz answers 503 until it can; %s",
                reason,
                f"no write within {self.timeout:g} s" if not done else _said(error),
            )
        self._failing = reason
        return reason


def _retrieved(task: asyncio.Task[None]) -> None:
    """Mark a write's outcome as seen, so asyncio never reports it as unhandled."""
    if not task.cancelled():
        task.exception()


def _said(error: BaseException) -> str:
    """What the database said, without the statement (SQLAlchemy adds it to its message)."""
    original = getattr(error, "orig", None) or error
    return f"{type(original).__name__}: {str(original).splitlines()[0] if str(original) else ''}"


def create_web_app(
    app: AsyncApp,
    sessions: SessionFactory,
    *,
    signing_secret: str | None,
    health_timeout: float = HEALTH_TIMEOUT,
    role: Callable[[], str] | None = None,
) -> web.Application:
    """/healthz, and /slack/events checked with `signing_secret`. `role`: this replica's
    (leader or follower), shown by /healthz.

    With no secret (Socket Mode, where Slack never posts to us) it serves /healthz only.
    """
    signature = None if signing_secret is None else SlackSignature(signing_secret)
    probe = DatabaseProbe(sessions, timeout=health_timeout)

    async def slack_events(request: web.Request) -> web.Response:
        assert signature is not None
        problem = signature.header_problem(request.headers)
        body = b""
        if problem is None:
            body = await request.read()
            problem = signature.body_problem(request.headers, body)
        if problem is not None:
            logger.warning(
                "Refused a request to %s from %s with %s", EVENTS_PATH, request.remote, problem
            )
            return web.json_response({"error": "invalid request"}, status=401)
        bolt_request = AsyncBoltRequest(
            body=body.decode("utf-8"),
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
        return await to_aiohttp_response(await app.async_dispatch(bolt_request))

    async def healthz(_request: web.Request) -> web.Response:
        problem = await probe.problem()
        extra = {} if role is None else {"role": str(role())}
        if problem is not None:
            return web.json_response(
                {"status": "unavailable", "database": problem, **extra}, status=503
            )
        return web.json_response({"status": "ok", "database": "ok", **extra})

    routes = [web.get("/healthz", healthz)]
    if signature is not None:
        routes.append(web.post(EVENTS_PATH, slack_events))
    web_app = web.Application()
    web_app.add_routes(routes)
    return web_app
