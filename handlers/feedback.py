"""`/feedback`, `/contract request-feedback`, the request DM's button and the feedback modal.

Nothing here logs who gave anonymous feedback: the slash command and the view submission
carry the user id, and it goes no further than the keyed hash in `bot.feedback`.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.amendments.blocks import build_amend_form
from bot.amendments.model import KINDS, approvers_of, fingerprint, refusal_to_amend
from bot.core.mentions import user_id_of
from bot.core.permissions import Refusal
from bot.core.text import escape, truncate
from bot.feedback.blocks import (
    ACKNOWLEDGE,
    DELETE_MINE,
    GIVE_FEEDBACK,
    MAKE_ACTIVITY,
    REQUEST_GIVE,
    STATUS_NOTE,
    activity_rationale,
    build_feedback_modal,
    build_mine_modal,
    build_received,
    build_thanks,
    status_lines,
)
from bot.feedback.forms import parse_feedback, parse_request_args
from bot.feedback.jobs import (
    notify_leader,
    refresh_posted,
    retract_posted,
    send_requests,
    tell_giver,
)
from bot.feedback.model import activity_draft, shown_on
from bot.feedback.service import (
    acknowledge,
    ask_for_feedback,
    entry_to_make_activity,
    feedback_for,
    give_feedback,
    hash_key,
    my_feedback,
    request_status,
    request_to_answer,
    skipped_text,
    target_for,
    target_of,
    withdraw,
)
from bot.privacy.service import installation_team
from bot.services import services_of
from bot.ui.blocks import day
from bot.ui.metadata import FeedbackEntryRef, FeedbackModal, FeedbackRequestRef, record_id
from bot.ui.views import OUT_OF_DATE, fill, open_loading, update_view
from handlers.common import (
    CommandRequest,
    Subcommand,
    clicked_message,
    fill_with_contract,
    reply,
    reply_blocks,
)
from storage.db import read_only, writing
from storage.queries.contracts import ContractBundle, load_governance

logger = logging.getLogger(__name__)

USAGE = (
    "*North Star: `/feedback`*\n"
    "• `/feedback @leader [first words]`: give a leader feedback (situation, behaviour, "
    "impact), with your name or anonymously; your own name: your self view\n"
    "• `/feedback mine`: what you wrote; delete an entry there\n"
    "• `/feedback received [@leader]`: feedback about you, or about a leader you sponsor or own"
)


def _not_a_person(word: str) -> str:
    shown = escape(truncate(word, 80))
    if word.startswith("@"):
        return (
            f"I can't find a person in “{shown}”: pick the name from the list Slack offers as "
            "you type, so it becomes a mention, e.g. `/feedback @dana`."
        )
    return (
        f"I can't find a person in “{shown}”. Start with a mention: "
        "`/feedback @leader [first words]`, or see `/feedback help`."
    )


async def handle_feedback(
    ack: AsyncAck,
    command: dict[str, str],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    text = (command.get("text") or "").strip()
    words = text.split()
    verb = words[0].lower() if words else ""
    if verb in ("", "help"):
        await reply(respond, USAGE)
    elif verb == "mine":
        await _open_mine(command, client, context)
    elif verb == "received":
        await _received(command, words[1:], respond, context)
    else:
        await _open_give(command, text, respond, client, context)


async def _open_give(
    command: dict[str, str],
    text: str,
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Cheap checks, one fast query, then the modal while the trigger id is fresh."""
    first, *more = text.split(None, 1)
    rest = more[0] if more else ""
    leader = user_id_of(first)
    if leader is None:
        await reply(respond, _not_a_person(first))
        return
    services = services_of(context)
    async with services.sessions() as session:  # your own name: your self view
        target = await target_for(
            session=session, leader=leader, giver=command["user_id"], key=hash_key(services)
        )
    if isinstance(target, Refusal):
        await reply(respond, target.text)
        return
    await client.views_open(
        trigger_id=command["trigger_id"],
        view=build_feedback_modal(target, first_words=rest.strip()),
    )


async def _open_mine(
    command: dict[str, str], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """Anyone may list what they wrote: the modal opens first, then fills."""
    services = services_of(context)
    opened = await open_loading(client, trigger_id=command["trigger_id"], title="Your feedback")
    if opened is None:
        return
    async with services.fill_slots:
        team = await installation_team(client)
        async with services.sessions() as session:
            await writing(session)
            rows = await my_feedback(
                session=session, user=command["user_id"], key=hash_key(services), team=team
            )
        await fill(client, opened, build_mine_modal(rows))


async def _received(
    command: dict[str, str], args: list[str], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    leader = None
    if args:
        leader = user_id_of(args[0])
        if leader is None:
            await reply(respond, _not_a_person(args[0]))
            return
    services = services_of(context)
    async with services.sessions() as session:
        found = await feedback_for(session=session, viewer=command["user_id"], leader=leader)
    if isinstance(found, Refusal):
        await reply(respond, found.text)
        return
    blocks = build_received(
        leader=found.leader_id,
        attributed=found.attributed,
        released=found.released,
        expectations=found.expectations,
        threshold=found.threshold,
        rng=random.SystemRandom(),
    )
    await reply_blocks(respond, blocks, text="Feedback received")


async def handle_feedback_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    services = services_of(context)
    meta = FeedbackModal.of_view(view) or FeedbackModal()
    contract_id, request_id = meta.contract_id, meta.request_id
    async with services.sessions() as session:
        await writing(session)
        target = await target_of(
            session=session,
            contract_id=contract_id or 0,
            giver=body["user"]["id"],
            key=hash_key(services),
        )
        if target is None:
            await ack(
                response_action="errors",
                errors={"behaviour": "This contract is no longer active; nothing was sent."},
            )
            return
        entry, errors = parse_feedback(view, target)
        if entry is None:
            await ack(response_action="errors", errors=errors)
            return
        given = await give_feedback(
            session=session,
            target=target,
            entry=entry,
            giver=body["user"]["id"],
            key=hash_key(services),
            request_id=request_id,
            now=services.clock.now(),
        )
    if isinstance(given, Refusal):
        await ack(response_action="errors", errors={given.field or "behaviour": given.text})
        return
    await ack(response_action="update", view=build_thanks(target, anonymous=entry.anonymous))
    if given.giver is not None:
        try:
            await notify_leader(services, client, given)
        except Exception:
            logger.exception("Could not deliver feedback %s to its leader", given.feedback_id)


async def handle_request_give(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """The "Give feedback" button of a request DM: the modal for that leader and expectation."""
    await ack()
    ref = FeedbackRequestRef.read(body["actions"][0].get("value"))
    if ref is None:
        await reply(respond, OUT_OF_DATE)
        return
    request_id = ref.request_id
    services = services_of(context)
    async with services.sessions() as session:
        found = await request_to_answer(
            session=session, request_id=request_id, user=body["user"]["id"], key=hash_key(services)
        )
    if isinstance(found, Refusal):
        await reply(respond, found.text)
        return
    target, request = found
    await client.views_open(
        trigger_id=body["trigger_id"],
        view=build_feedback_modal(
            target, expectation_key=request.expectation_key, request_id=request.id
        ),
    )


async def handle_delete_mine(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    view = body.get("view") or {}
    feedback_id = record_id(body["actions"][0].get("value"))
    key = hash_key(services)
    gone = None
    async with services.sessions() as session:
        await writing(session)
        if feedback_id is not None:
            gone = await withdraw(
                session=session,
                user=user,
                key=key,
                feedback_id=feedback_id,
                now=services.clock.now(),
            )
        rows = await my_feedback(session=session, user=user, key=key)
    notice = "Deleted." if gone else "That entry is not yours, or it is already gone."
    await update_view(
        client,
        view_id=view["id"],
        hash=view.get("hash"),
        view=build_mine_modal(rows, notice=notice),
    )
    if gone is not None:
        try:
            await retract_posted(services, client, [gone])
        except Exception:
            logger.exception("Could not take withdrawn feedback out of the bot's messages")


async def request_feedback_command(request: CommandRequest) -> None:
    services = request.services
    now = services.clock.now()
    if not request.args:
        async with services.sessions() as session:
            statuses = await request_status(session=session, viewer=request.viewer, now=now)
        if not statuses:
            await request.reply(
                "You have asked for no feedback in the last 60 days. Ask with "
                "`/contract request-feedback @ana @raj E2`."
            )
            return
        await request.reply(
            "*Your feedback requests*\n" + "\n".join([*status_lines(statuses), f"_{STATUS_NOTE}_"])
        )
        return
    parsed = parse_request_args(request.args)
    if isinstance(parsed, Refusal):
        await request.reply(parsed.text)
        return
    asked = await ask_for_feedback(
        services=services, client=request.client, requester=request.viewer, parsed=parsed, now=now
    )
    if isinstance(asked, Refusal):
        await request.reply(asked.text)
        return
    about = f" on {escape(parsed.expectation_key)}" if parsed.expectation_key else ""
    names = ", ".join(f"<@{r.reviewer_id}>" for r in asked.requests)
    not_asked = f"\nNot asked: {skipped_text(asked.skipped)}" if asked.skipped else ""
    await request.reply(
        f"Asked {names} for feedback on <@{asked.bundle.contract.leader_id}>'s contract{about}. "
        "`/contract request-feedback` shows who answered by name; anonymous answers reach the "
        "leader only together with other people's." + not_asked
    )
    await send_requests(services, request.client, asked.requests)


# --- the leader's answer to an entry: Acknowledge, Make it an activity ----------------------

ACTIVITY_TITLE = "Propose an amendment"


async def handle_acknowledge(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Record the leader's acknowledgement once; the DM shows it, a named giver hears of it."""
    await ack()
    services = services_of(context)
    ref = FeedbackEntryRef.read(body["actions"][0].get("value"))
    if ref is None:
        await reply(respond, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await writing(session)
        acked = await acknowledge(
            session=session,
            feedback_id=ref.feedback_id,
            user=body["user"]["id"],
            now=services.clock.now(),
        )
    if isinstance(acked, Refusal):
        await reply(respond, acked.text)
        return
    if not acked.first:
        await reply(respond, f"You acknowledged this feedback on {day(acked.at.date())}.")
        return
    try:
        await refresh_posted(services, client, [acked.feedback_id], clicked=clicked_message(body))
        await tell_giver(services, client, acked)
    except Exception:
        logger.exception("Could not show or tell an acknowledgement of feedback")


async def handle_make_activity(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """The amendment form for a new development activity, pre-filled from the entry: the
    permission first (small queries), the loading modal, then the contract to fill it."""
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    ref = FeedbackEntryRef.read(body["actions"][0].get("value"))
    if ref is None:
        await reply(respond, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await read_only(session)
        found = await entry_to_make_activity(
            session=session, feedback_id=ref.feedback_id, user=user
        )
        if not isinstance(found, Refusal):
            entry, contract = found
            people = await load_governance(session=session, contract_id=contract.id or 0)
            refused = refusal_to_amend(people, proposer=user) if people is not None else None
            found = refused or found
    if isinstance(found, Refusal):
        await reply(respond, found.text)
        return
    opened = await open_loading(client, trigger_id=body["trigger_id"], title=ACTIVITY_TITLE)
    if opened is None:
        return

    def form(bundle: ContractBundle) -> View:
        return build_amend_form(
            bundle,
            kind=KINDS["activity"],
            handle=None,
            item=activity_draft(entry, contract, {e.key for e in bundle.expectations}),
            remove=False,
            fingerprint=fingerprint(None),
            approvers=approvers_of(bundle, user),
            rationale=activity_rationale(shown_on(entry), anonymous=entry.anonymous),
            feedback_id=entry.id,
        )

    await fill_with_contract(
        client, services, opened, title=ACTIVITY_TITLE, contract_id=contract.id or 0, build=form
    )


SUBCOMMANDS = (
    Subcommand(
        "request-feedback",
        request_feedback_command,
        usage="request-feedback [@person …] [E2] [for @leader]",
        summary="ask people for feedback on a contract you lead or sponsor; alone, who answered",
    ),
)


def register(app: AsyncApp) -> None:
    app.command("/feedback")(handle_feedback)
    app.view(GIVE_FEEDBACK)(handle_feedback_submission)
    app.action(REQUEST_GIVE)(handle_request_give)
    app.action(DELETE_MINE)(handle_delete_mine)
    app.action(ACKNOWLEDGE)(handle_acknowledge)
    app.action(MAKE_ACTIVITY)(handle_make_activity)
