"""Once per Slack request: the key each payload gives, and the middleware that enforces it.

A replayed request, Slack's retry of an event or a double click on Submit carries the key of
the first request. Its writes are refused by `storage.idempotency` (the key is claimed in
the transaction of the first write), and it gets the first request's answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.scheduler import JobRun
from bot.services import services_of
from storage.idempotency import AlreadyDone, RequestClaim, begin_request
from storage.queries.requests import (
    answer_of,
    claim_now,
    forget_before,
    record_answer,
    release,
    stored_answer,
)

logger = logging.getLogger(__name__)

KEY_LIMIT = 200
KEEP_CLAIMS = timedelta(days=2)


def request_key(body: dict[str, Any]) -> str | None:
    """The key Slack's payload gives a request, or None for one that never writes."""
    kind = body.get("type")
    parts: tuple[Any, ...]
    if kind == "event_callback":
        parts = ("event", body.get("event_id"))
    elif kind == "view_submission":
        view = body.get("view") or {}
        parts = ("view", view.get("id"), view.get("hash"))
    elif kind == "block_actions":
        actions = body.get("actions") or [{}]
        first = actions[0] if isinstance(actions[0], dict) else {}
        parts = ("action", body.get("trigger_id") or first.get("action_ts"))
    elif kind in ("shortcut", "message_action"):
        parts = ("shortcut", body.get("trigger_id"))
    elif body.get("command"):
        parts = ("command", body.get("trigger_id"))
    else:
        return None
    if not all(isinstance(part, str) and part for part in parts):
        return None  # nothing in the payload tells this request from another
    key = ":".join(str(part) for part in parts)
    if len(key) > KEY_LIMIT:
        prefix = key.split(":", 1)[0]
        key = f"{prefix}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return key


class RecordingAck(AsyncAck):
    """Slack's ack, which also keeps the answer of a request that wrote, for its repeats."""

    def __init__(self, inner: AsyncAck, claim: RequestClaim, context: AsyncBoltContext) -> None:
        super().__init__()
        self._inner = inner
        self._claim = claim
        self._context = context

    @property
    def response(self) -> BoltResponse | None:
        return self._inner.response

    @response.setter
    def response(self, value: BoltResponse | None) -> None:
        # AsyncAck.__init__ sets it; the inner ack already holds its own.
        if getattr(self, "_inner", None) is not None:
            self._inner.response = value

    async def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        answered = await self._inner(*args, **kwargs)
        if not self._claim.committed:
            return answered
        sessions = services_of(self._context).sessions
        try:
            if _field_errors(answered):
                # Nothing the person asked for was saved (a cache or a draft may have been):
                # the corrected form comes back with the same view id and hash, and must run.
                await release(sessions=sessions, key=self._claim.key)
                self._claim.committed = False
            else:
                await record_answer(
                    sessions=sessions, key=self._claim.key, answer=_answer(answered)
                )
        except Exception:
            logger.warning("Could not keep the answer to a Slack request", exc_info=True)
        return answered


def _field_errors(response: BoltResponse) -> bool:
    try:
        body = json.loads(response.body) if response.body else None
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("response_action") == "errors"


def _answer(response: BoltResponse) -> dict[str, Any]:
    return {"status": response.status, "body": response.body or ""}


def _response(answer: dict[str, Any] | None) -> BoltResponse:
    body = str((answer or {}).get("body") or "")
    headers: dict[str, str | Sequence[str]] = (
        {"content-type": "application/json;charset=utf-8"} if body else {}
    )
    return BoltResponse(status=int((answer or {}).get("status") or 200), body=body, headers=headers)


async def once_per_request(
    context: AsyncBoltContext, body: dict[str, Any], next: Callable[[], Awaitable[Any]]
) -> Any:
    """Global middleware: a repeat writes nothing and gets the first request's answer."""
    key = request_key(body)
    if key is None:
        begin_request(None)
        return await next()
    sessions = services_of(context).sessions
    if body.get("type") == "event_callback":
        try:
            await claim_now(sessions=sessions, key=key)
        except AlreadyDone:
            begin_request(None)
            logger.info("Slack repeated an event that was handled already; ignored")
            return BoltResponse(status=200, body="")
        begin_request(None)
        context["northstar_claimed_event"] = key
        return await next()
    found, answer = await stored_answer(sessions=sessions, key=key)
    if found:
        begin_request(None)
        logger.info("A repeated Slack request was answered as the first one was")
        return _response(answer)
    claim = begin_request(key)
    assert claim is not None
    context["ack"] = RecordingAck(context.ack, claim, context)
    return await next()


async def answer_repeat(
    error: Exception, context: AsyncBoltContext, response: BoltResponse | None
) -> bool:
    """For the error handler: True when `error` is a repeat stopped at its first write.

    A repeat not yet acknowledged is given the first request's answer.
    """
    if not isinstance(error, AlreadyDone):
        return False
    logger.info("A repeated Slack request wrote nothing; it was handled once already")
    if response is not None:
        first = _response(await answer_of(sessions=services_of(context).sessions, key=error.key))
        response.status, response.body, response.headers = first.status, first.body, first.headers
    return True


async def forget_failed_event(context: AsyncBoltContext) -> None:
    """An event whose handling failed is released, so that Slack's retry runs it again."""
    key = context.get("northstar_claimed_event")
    if key:
        try:
            await release(sessions=services_of(context).sessions, key=key)
        except Exception:
            logger.warning("Could not release a failed event for Slack's retry", exc_info=True)


async def forget_old_requests(run: JobRun) -> int:
    """Claims older than Slack's retries and the signature's five minutes guard nothing."""
    cutoff = run.services.clock.now() - KEEP_CLAIMS
    return await forget_before(sessions=run.services.sessions, cutoff=cutoff)
