"""`/checkin`, the check-in prompt's buttons and the check-in modal's pages."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.answers.blocks import history_reply_blocks
from bot.answers.service import history_replies
from bot.checkins import service as checkins
from bot.checkins.blocks import (
    CHECKIN_MODAL,
    EDIT,
    SKIP,
    SNOOZE,
    START,
    build_checkin_modal,
    build_history,
    snoozed_notice,
)
from bot.checkins.forms import first_input, modal_target, parse_page, target_of
from bot.checkins.jobs import ask_sponsor_for_help, show_state
from bot.checkins.model import SKIP_REASONS, NotYours, Opening, Plan
from bot.core.calendar import period_label
from bot.core.mentions import split_command
from bot.core.text import escape, truncate
from bot.delivery import Clicked
from bot.risks.jobs import after_checkin as record_computed_values
from bot.services import Services, services_of
from bot.ui.views import OUT_OF_DATE, fill, message_view, open_loading
from handlers.common import clicked_message, reply

logger = logging.getLogger(__name__)

# The loading modal's title, and that of a modal saying why there is no check-in to fill in.
CHECKIN_TITLE = "Check-in"
HELP = (
    "`/checkin` opens this week's check-in, `/checkin skip [leave|sick|other]` skips it, "
    "`/checkin history` shows your last 8 weeks."
)


async def handle_checkin_command(
    ack: AsyncAck,
    command: dict[str, str],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    services = services_of(context)
    user = command["user_id"]
    verb, args = split_command(command.get("text", ""))
    if verb == "":
        await open_checkin(
            services,
            client,
            command["trigger_id"],
            lambda: checkins.opening_for_leader(services=services, leader_id=user),
        )
    elif verb == "skip":
        await skip_command(services, client, respond, user, args)
    elif verb == "history":
        periods = await checkins.history(services=services, leader_id=user)
        if isinstance(periods, NotYours):
            await reply(respond, periods.text)
            return
        async with services.sessions() as session:
            contract = await checkins.active_contract_of(session=session, leader_id=user)
        blocks = build_history(periods, contract.title if contract else "")
        if contract is not None:
            blocks += history_reply_blocks(
                await history_replies(
                    services=services,
                    contract_id=contract.id or 0,
                    periods=[p.period for p in periods],
                )
            )
        await respond(
            text="Your last check-ins",
            blocks=[b.to_dict() for b in blocks],
            response_type="ephemeral",
            replace_original=False,
        )
    elif verb == "help":
        await reply(respond, HELP)
    else:
        await reply(respond, f"I don't know `{escape(truncate(verb, 40))}`. {HELP}")


async def skip_command(
    services: Services, client: AsyncWebClient, respond: AsyncRespond, user: str, args: list[str]
) -> None:
    reason = args[0].lower() if args else "other"
    if reason not in SKIP_REASONS:
        await reply(
            respond,
            f"“{escape(truncate(args[0], 40))}” is not a reason I know: "
            "use `/checkin skip leave`, `/checkin skip sick` or `/checkin skip other`.",
        )
        return
    found = await checkins.plan_for_leader(services=services, leader_id=user)
    if isinstance(found, NotYours):
        await reply(respond, found.text)
        return
    await _skip(services, client, respond, found, user, reason)


async def _skip(
    services: Services,
    client: AsyncWebClient,
    respond: AsyncRespond,
    plan: Plan,
    user: str,
    reason: str,
    clicked: Clicked | None = None,
) -> None:
    skipped = await checkins.skip(
        sessions=services.sessions, plan=plan, user_id=user, reason=reason, now=services.clock.now()
    )
    if isinstance(skipped, NotYours):
        await reply(respond, skipped.text)
        return
    await reply(respond, f"Skipped {period_label(plan.period)} ({reason}). See you next week.")
    await show_state(services=services, client=client, plan=plan, clicked=clicked)


async def open_checkin(
    services: Services,
    client: AsyncWebClient,
    trigger_id: str,
    find: Callable[[], Awaitable[Opening | NotYours]],
) -> None:
    """Open the modal before reading anything, while the trigger id is fresh; then `find`
    the check-in, load its plan and fill it in, or say in the modal why there is none.

    The loading modal shows nothing of any contract, so opening it for anyone gives nothing
    away; the check of who may fill in what is `find`'s, before anything is shown."""
    opened = await open_loading(client, trigger_id=trigger_id, title=CHECKIN_TITLE)
    if opened is None:
        return
    async with services.fill_slots:
        found = await find()
        if isinstance(found, NotYours):
            await fill(client, opened, message_view(CHECKIN_TITLE, found.text))
            return
        plan = await checkins.plan_of(services=services, opening=found)
        await fill(client, opened, build_checkin_modal(plan))


# --- the prompt's buttons -----------------------------------------------------------------


async def _plan_of_action(
    body: dict[str, Any], services: Services, respond: AsyncRespond
) -> Plan | None:
    target = target_of(body["actions"][0])
    if target is None:
        await reply(respond, OUT_OF_DATE)
        return None
    found = await checkins.plan_for_contract(
        services=services, contract_id=target[0], user_id=body["user"]["id"], period=target[1]
    )
    if isinstance(found, NotYours):
        await reply(respond, found.text)
        return None
    return found


async def handle_start(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Start check-in, Edit check-in and Check in anyway: open the modal at once."""
    await ack()
    services = services_of(context)
    target = target_of(body["actions"][0])
    if target is None:
        await reply(respond, OUT_OF_DATE)
        return
    contract_id, period = target
    await open_checkin(
        services,
        client,
        body["trigger_id"],
        lambda: checkins.opening_for_contract(
            services=services, contract_id=contract_id, user_id=body["user"]["id"], period=period
        ),
    )


async def handle_snooze(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    services = services_of(context)
    plan = await _plan_of_action(body, services, respond)
    if plan is None:
        return
    until = await checkins.snooze(
        sessions=services.sessions, plan=plan, user_id=body["user"]["id"], now=services.clock.now()
    )
    if isinstance(until, NotYours):
        await reply(respond, until.text)
        return
    await show_state(
        services=services,
        client=client,
        plan=plan,
        notice=snoozed_notice(until, plan),
        clicked=clicked_message(body),
    )


async def handle_skip(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    services = services_of(context)
    plan = await _plan_of_action(body, services, respond)
    if plan is None:
        return
    reason = (body["actions"][0].get("selected_option") or {}).get("value") or "other"
    await _skip(services, client, respond, plan, body["user"]["id"], reason, clicked_message(body))


# --- the modal ----------------------------------------------------------------------------


async def handle_checkin_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    services = services_of(context)
    user = body["user"]["id"]
    target = modal_target(view)
    if target is None:
        await ack(response_action="errors", errors={first_input(view): "This form is broken."})
        return
    found = await checkins.plan_for_contract(
        services=services, contract_id=target.contract_id, user_id=user, period=target.period
    )
    if isinstance(found, NotYours):
        await ack(response_action="errors", errors={first_input(view): found.text})
        return
    plan = found
    answers, errors = parse_page(plan, view)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    now = services.clock.now()
    if not answers.closing:
        await checkins.keep_page(
            sessions=services.sessions,
            plan=plan,
            user_id=user,
            page=target.page,
            answers=answers,
            now=now,
        )
        await ack(response_action="push", view=build_checkin_modal(plan, page=target.page + 1))
        return
    earlier = await checkins.kept_pages(
        sessions=services.sessions, plan=plan, user_id=user, before=target.page
    )
    if earlier is None:
        await ack(
            response_action="errors",
            errors={
                first_input(view): "Your answers on the earlier page were lost: go back, "
                "press Next there again, then Save."
            },
        )
        return
    try:
        saved = await checkins.save_checkin(
            sessions=services.sessions,
            plan=plan,
            answers=earlier.merge(answers),
            user_id=user,
            now=now,
        )
    except Exception:
        logger.exception("Saving the check-in of contract %s failed", plan.contract_id)
        await ack(
            response_action="errors",
            errors={
                first_input(view): "Sorry, saving failed on our side; nothing was saved. "
                "Please try again."
            },
        )
        return
    await ack(response_action="clear")
    await show_state(services=services, client=client, plan=plan)
    await record_computed_values(services=services, contract=plan.contract)
    if saved.help_risks:
        await ask_sponsor_for_help(
            services=services, client=client, plan=plan, risks=saved.help_risks
        )


def register(app: AsyncApp) -> None:
    app.command("/checkin")(handle_checkin_command)
    app.action(START)(handle_start)
    app.action(EDIT)(handle_start)
    app.action(SNOOZE)(handle_snooze)
    app.action(SKIP)(handle_skip)
    app.view(CHECKIN_MODAL)(handle_checkin_submission)
