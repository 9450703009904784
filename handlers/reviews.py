"""The alignment review: *Start the review* in the DM, the review modal's submission, and
the confirmation's *Amend* buttons, which open the amendment form pre-filled."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.amendments.blocks import build_amend_form
from bot.amendments.jobs import sync_requests
from bot.amendments.model import KINDS, approvers_of, find_item, fingerprint, refusal_to_amend
from bot.amendments.service import pending_on_item
from bot.contracts.document import snapshot
from bot.core.permissions import Refusal, may_propose
from bot.reviews.blocks import (
    REVIEW_AMEND,
    REVIEW_START,
    REVIEW_SUBMIT,
    REVIEW_TITLE,
    build_notice,
    build_review_done,
    build_review_modal,
)
from bot.reviews.forms import read_review
from bot.reviews.service import may_review, record_review, review_form
from bot.services import services_of
from bot.ui.metadata import ReviewItemRef, ReviewRef
from bot.ui.views import OUT_OF_DATE, fill, message_view, open_loading, refuse_submission
from handlers.common import reply
from storage.db import read_only, writing
from storage.queries.contracts import load_bundle

logger = logging.getLogger(__name__)


async def handle_start(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Open the review modal for the period the DM names, if the clicker reviews it."""
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    ref = ReviewRef.read(body["actions"][0].get("value"))
    if ref is None:
        await reply(respond, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await read_only(session)
        refusal = await may_review(
            session=session, contract_id=ref.contract_id, period_key=ref.period, user=user
        )
    if refusal is not None:
        await reply(respond, refusal.text)
        return
    opened = await open_loading(client, trigger_id=body["trigger_id"], title=REVIEW_TITLE)
    if opened is None:
        return
    async with services.fill_slots:
        async with services.sessions() as session:
            await read_only(session)
            form = await review_form(
                session=session, contract_id=ref.contract_id, period_key=ref.period, user=user
            )
        if isinstance(form, Refusal):  # changed since the check above
            await fill(client, opened, message_view(REVIEW_TITLE, form.text))
            return
        # Reviewed already: the outcome (with its Amend buttons) instead of a second review.
        view = build_review_modal(form) if form.mine is None else build_review_done(form, form.mine)
        await fill(client, opened, view)


async def handle_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Record the review, propose each retirement to the approvers, show the outcome."""
    services = services_of(context)
    user = body["user"]["id"]
    ref = ReviewRef.of_view(view)
    if ref is None:
        await refuse_submission(ack, view, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await writing(session)
        form = await review_form(
            session=session, contract_id=ref.contract_id, period_key=ref.period, user=user
        )
        if isinstance(form, Refusal):
            await refuse_submission(ack, view, form.text)
            return
        if form.mine is not None:
            await ack(response_action="update", view=build_review_done(form, form.mine))
            return
        choices, errors = read_review(view, form.items)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        review, errors = await record_review(
            session=session, form=form, choices=choices, now=services.clock.now()
        )
    if review is None:
        if errors:
            await ack(response_action="errors", errors=errors)
        else:
            await refuse_submission(ack, view, "You have reviewed this period already.")
        return
    await ack(response_action="update", view=build_review_done(form, review))
    for entry in review.choices or []:
        if entry.get("amendment"):
            await sync_requests(services, client, int(entry["amendment"]))


async def handle_amend(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """Open the amendment form for an item the review marked *amend*, pre-filled."""
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    ref = ReviewItemRef.read(body["actions"][0].get("value"))
    trigger = body["trigger_id"]
    if ref is None:
        await client.views_push(trigger_id=trigger, view=build_notice(OUT_OF_DATE))
        return
    kind = KINDS[ref.kind]
    async with services.sessions() as session:
        await read_only(session)
        bundle = await load_bundle(session=session, contract_id=ref.contract_id)
        refusal = None
        if bundle is None:
            refusal = Refusal("This contract no longer exists.")
        elif not may_propose(bundle, user):
            refusal = Refusal("Only the leader, sponsor or owner can propose an amendment.")
        else:
            refusal = refusal_to_amend(bundle, proposer=user)
        item = find_item(snapshot(bundle), kind, ref.key) if bundle is not None else None
        if refusal is None and item is None:
            refusal = Refusal(f"{ref.key} is no longer in the contract.")
        waiting = (
            await pending_on_item(
                session=session, contract=bundle.contract, kind=kind.name, key=ref.key
            )
            if refusal is None and bundle is not None
            else []
        )
    if refusal is not None or bundle is None:
        text = refusal.text if refusal is not None else OUT_OF_DATE
        await client.views_push(trigger_id=trigger, view=build_notice(text))
        return
    await client.views_push(
        trigger_id=trigger,
        view=build_amend_form(
            bundle,
            kind=kind,
            handle=ref.key,
            item=item,
            remove=False,
            fingerprint=fingerprint(item),
            approvers=approvers_of(bundle, user),
            pending=waiting,
        ),
    )


def register(app: AsyncApp) -> None:
    app.action(REVIEW_START)(handle_start)
    app.view(REVIEW_SUBMIT)(handle_submission)
    app.action(re.compile(rf"^{REVIEW_AMEND}_\d+$"))(handle_amend)
