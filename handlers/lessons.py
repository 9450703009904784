"""*Share as a lesson*, its modal, and `/learnings [words]`."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.permissions import Refusal
from bot.lessons.blocks import (
    SHARE,
    SHARE_MODAL,
    build_results,
    build_share_modal,
    unsearchable_answer,
)
from bot.lessons.forms import parse_share
from bot.lessons.model import SourceKind, search_terms
from bot.lessons.service import (
    SHARED_ALREADY,
    already_shared,
    search,
    share_lesson,
    share_source,
)
from bot.privacy.keys import feedback_key
from bot.services import services_of
from bot.ui.blocks import context, section
from bot.ui.forms import modal_title
from bot.ui.metadata import LessonSourceRef
from bot.ui.views import OUT_OF_DATE
from handlers.common import reply, reply_blocks
from storage.db import read_only, writing

logger = logging.getLogger(__name__)


def _kind(ref: LessonSourceRef) -> SourceKind:
    return ref.kind  # type: ignore[return-value]  # checked by LessonSourceRef


async def handle_share(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """*Share as a lesson*: the modal, pre-filled, for the leader of the source's contract."""
    await ack()
    ref = LessonSourceRef.read(body["actions"][0].get("value"))
    if ref is None:
        await reply(respond, OUT_OF_DATE)
        return
    services = services_of(context)
    async with services.sessions() as session:
        await read_only(session)
        source = await share_source(
            session=session, kind=_kind(ref), source_id=ref.source_id, user=body["user"]["id"]
        )
        shared = not isinstance(source, Refusal) and await already_shared(
            session=session,
            kind=_kind(ref),
            source_id=ref.source_id,
            key=feedback_key(services.settings),
        )
    if isinstance(source, Refusal):
        await reply(respond, source.text)
        return
    if shared:
        await reply(respond, SHARED_ALREADY + " Find it with `/learnings`.")
        return
    await client.views_open(trigger_id=body["trigger_id"], view=build_share_modal(source))


def _thanks(named: bool) -> View:
    who = (
        "with your name: others who search can ask you about it"
        if named
        else "without your name: nothing shown says who shared it"
    )
    return View(
        type="modal",
        title=modal_title("Lesson shared"),
        close="Done",
        blocks=[
            section(f"Thank you. Your lesson is shared {who}."),
            context("Anyone in the workspace finds it with `/learnings`."),
        ],
    )


async def handle_share_submission(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
) -> None:
    """Keep the lesson once, after checking again that the person leads the source's contract."""
    services = services_of(context)
    ref = LessonSourceRef.of_view(view)
    if ref is None:
        await ack(response_action="errors", errors={"title": "This form is broken."})
        return
    user = body["user"]["id"]
    async with services.sessions() as session:
        await writing(session)
        source = await share_source(
            session=session, kind=_kind(ref), source_id=ref.source_id, user=user
        )
        if isinstance(source, Refusal):
            await ack(response_action="errors", errors={"title": source.text})
            return
        draft, errors = parse_share(view, source)
        if draft is None:
            await ack(response_action="errors", errors=errors)
            return
        shared = await share_lesson(
            session=session,
            kind=_kind(ref),
            source_id=ref.source_id,
            draft=draft,
            user=user,
            key=feedback_key(services.settings),
            now=services.clock.now(),
        )
    if isinstance(shared, Refusal):
        await ack(response_action="errors", errors={"title": shared.text})
        return
    await ack(response_action="update", view=_thanks(shared.named))


async def handle_learnings(
    ack: AsyncAck, command: dict[str, str], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """`/learnings [words]`: the organisation's lessons matching the words, or the latest."""
    await ack()
    words = command.get("text") or ""
    if words.strip() and not search_terms(words):
        await reply(respond, unsearchable_answer(words))
        return
    services = services_of(context)
    async with services.sessions() as session:
        await read_only(session)
        terms, found = await search(session=session, words=words)
    blocks = build_results(terms, found.lessons, more=found.more)
    await reply_blocks(respond, blocks, "Lessons" if found.lessons else "No lessons found")


def register(app: AsyncApp) -> None:
    app.action(SHARE)(handle_share)
    app.view(SHARE_MODAL)(handle_share_submission)
    app.command("/learnings")(handle_learnings)
