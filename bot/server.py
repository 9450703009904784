"""The HTTP face of the bot: Slack's signed requests on /slack/events and a health check.

Every request to /slack/events must prove it comes from Slack, its headers checked before
its body is read: one timestamp of ASCII digits within five minutes of now, one `v0=`
signature of 64 hex digits, and that signature matching the HMAC of the exact bytes
received. Anything else is a 401 and one log line, and Bolt never sees it; Bolt's own check
then runs on the body already verified. In Socket Mode Slack never posts here, so the
server answers /healthz only.
"""

from __future__ import annotations

import logging
import re
import time

from aiohttp import web
from multidict import CIMultiDictProxy
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text

from storage.db import SessionFactory

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# Slack's rule: a request signed more than five minutes from now is refused (a replay).
MAX_SIGNATURE_AGE_S = 60 * 5
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
# ASCII digits only: int() also takes "+1", " 1", "1_000" and other scripts' digits.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


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


def create_web_app(
    app: AsyncApp, sessions: SessionFactory, *, signing_secret: str | None
) -> web.Application:
    """/healthz, and /slack/events checked with `signing_secret`.

    With no secret (Socket Mode, where Slack never posts to us) it serves /healthz only.
    """
    signature = None if signing_secret is None else SlackSignature(signing_secret)

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
        try:
            async with sessions() as session:
                await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        except Exception as error:  # the check reports any failure, whatever its kind
            return web.json_response(
                {"status": "unavailable", "database": type(error).__name__}, status=503
            )
        return web.json_response({"status": "ok", "database": "ok"})

    routes = [web.get("/healthz", healthz)]
    if signature is not None:
        routes.append(web.post(EVENTS_PATH, slack_events))
    web_app = web.Application()
    web_app.add_routes(routes)
    return web_app
