"""`/contract amend` and `/contract history`; the approvers' Approve and Reject, their modals.

The approvers' DMs and the proposer's outcome are sent by `bot.amendments.jobs`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.amendments.blocks import (
    AMEND_CHOOSE,
    AMEND_ITEM,
    AMEND_REJECT,
    APPROVE,
    NEW,
    RATIONALE,
    REASON,
    REJECT,
    build_amend_chooser,
    build_amend_form,
    build_amend_sent,
    build_governance_form,
    build_history,
    build_reject_modal,
    status_line,
)
from bot.amendments.forms import field_errors, past_due_errors, read_fields, read_governance
from bot.amendments.jobs import sync_requests, tell_proposer
from bot.amendments.model import (
    GOVERNANCE,
    GOVERNANCE_KEY,
    KINDS,
    PEOPLE_FIELDS,
    AmendmentState,
    Decision,
    GovernanceTerms,
    Outcome,
    approvers_of,
    find_item,
    fingerprint,
    governance_of,
    proposed_item,
    refusal_to_amend,
)
from bot.amendments.service import (
    check_governance,
    check_proposal,
    contract_to_amend,
    decide,
    history,
    load_state,
    new_key,
    pending_on_item,
    propose,
    propose_governance,
)
from bot.contracts.document import snapshot
from bot.contracts.service import contract_to_show
from bot.core.permissions import Refusal, may_propose, may_read
from bot.core.text import escape
from bot.feedback.jobs import refresh_for_amendment, refresh_posted
from bot.feedback.service import entry_to_make_activity, link_activity
from bot.people.service import check_people_quickly, field_error, viewer_zone
from bot.report.jobs import CHANNEL_PROBLEMS, report_channel_problem
from bot.services import Services, services_of
from bot.ui.blocks import mention
from bot.ui.forms import Form
from bot.ui.metadata import AmendmentForm, AmendmentRef, ContractRef, record_id
from bot.ui.views import OUT_OF_DATE, open_loading, refuse_submission
from handlers.common import (
    CommandRequest,
    Subcommand,
    fill_with_contract,
    reply,
    reply_blocks,
    target_of,
)
from storage.db import read_only, writing
from storage.queries.contracts import ContractBundle, load_bundle

logger = logging.getLogger(__name__)

AMEND_TITLE = "Propose an amendment"
KEY_MAX = 16  # an item's key, as its column holds it


# --- commands -------------------------------------------------------------------------------


async def amend_command(request: CommandRequest) -> None:
    target = target_of(request.args, example="/contract amend @dana")
    if isinstance(target, Refusal):
        await request.reply(target.text)
        return
    async with request.services.sessions() as session:
        await read_only(session)
        found = await contract_to_amend(session=session, viewer=request.viewer, leader=target)
    if isinstance(found, Refusal):
        await request.reply(found.text)
        return
    opened = await open_loading(request.client, trigger_id=request.trigger_id, title=AMEND_TITLE)
    if opened is None:
        return
    await fill_with_contract(
        request.client,
        request.services,
        opened,
        title=AMEND_TITLE,
        contract_id=found.contract.id or 0,
        build=lambda bundle: build_amend_chooser(
            bundle, approvers=approvers_of(bundle, request.viewer)
        ),
    )


async def history_command(request: CommandRequest) -> None:
    target = target_of(request.args, example="/contract history @dana")
    if isinstance(target, Refusal):
        await request.reply(target.text)
        return
    async with request.services.sessions() as session:
        await read_only(session)
        found = await contract_to_show(session=session, viewer=request.viewer, leader=target)
        if isinstance(found, Refusal):
            await request.reply(found.text)
            return
        past = await history(session=session, contract_id=found.contract.id or 0)
    zone = await viewer_zone(
        services=request.services, client=request.client, user_id=request.viewer
    )
    await reply_blocks(
        request.respond,
        build_history(found.contract, past, zone),
        text=f"History of {escape(found.contract.title)}",
    )


# --- proposing ------------------------------------------------------------------------------


def _amendable(bundle: ContractBundle | None, user: str) -> ContractBundle | Refusal:
    """The contract a submitted form is about, if `user` may still propose a change to it."""
    if bundle is None:
        return Refusal("This contract no longer exists.")
    if not may_propose(bundle, user):
        return Refusal("Only the leader, sponsor or owner of a contract can propose an amendment.")
    return refusal_to_amend(bundle, proposer=user) or bundle


async def handle_choose_submission(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
) -> None:
    """Step one submitted: open step two, the item's own form, in its place."""
    services = services_of(context)
    user = body["user"]["id"]
    form = Form(view)
    kind_name, _, handle = (form.option("item") or "").partition(":")
    kind = KINDS.get(kind_name)
    remove = form.option("action") == "remove"
    if kind_name == GOVERNANCE.name:
        await _open_governance(ack, view, services, user, remove=remove)
        return
    if kind is None or not handle:
        await ack(response_action="errors", errors={"item": "Choose an item."})
        return
    chosen = None if handle == NEW else handle
    async with services.sessions() as session:
        await read_only(session)
        ref = ContractRef.of_view(view)
        found = await load_bundle(session=session, contract_id=ref.contract_id if ref else 0)
        bundle = _amendable(found, user)
        if isinstance(bundle, Refusal):
            await ack(response_action="errors", errors={"item": bundle.text})
            return
        item = find_item(snapshot(bundle), kind, chosen) if chosen else None
        if chosen is not None and item is None:
            await ack(
                response_action="errors",
                errors={"item": f"{chosen} is no longer in the contract: choose again."},
            )
            return
        if remove and chosen is None:
            await ack(
                response_action="errors",
                errors={"action": "A new item cannot be removed: choose “Change it”."},
            )
            return
        waiting = await pending_on_item(
            session=session, contract=bundle.contract, kind=kind.name, key=chosen
        )
    await ack(
        response_action="update",
        view=build_amend_form(
            bundle,
            kind=kind,
            handle=chosen,
            item=item,
            remove=remove,
            fingerprint=fingerprint(item),
            approvers=approvers_of(bundle, user),
            pending=waiting,
        ),
    )


async def _open_governance(
    ack: AsyncAck, view: dict[str, Any], services: Services, user: str, *, remove: bool
) -> None:
    """Step two for the governance: its form, pre-filled with the terms as they are."""
    if remove:
        await ack(
            response_action="errors",
            errors={"action": "The governance cannot be removed: choose “Change it”."},
        )
        return
    async with services.sessions() as session:
        await read_only(session)
        ref = ContractRef.of_view(view)
        found = await load_bundle(session=session, contract_id=ref.contract_id if ref else 0)
        bundle = _amendable(found, user)
        if isinstance(bundle, Refusal):
            await ack(response_action="errors", errors={"item": bundle.text})
            return
        waiting = await pending_on_item(
            session=session, contract=bundle.contract, kind=GOVERNANCE.name, key=GOVERNANCE_KEY
        )
    terms = governance_of(bundle)
    await ack(
        response_action="update",
        view=build_governance_form(
            bundle,
            terms=terms,
            fingerprint=fingerprint(terms),
            approvers=approvers_of(bundle, user),
            pending=waiting,
        ),
    )


PEOPLE_CHECK_SECONDS = 2.0  # of the 3 s a view submission has


async def handle_governance_submission(
    ack: AsyncAck,
    view: dict[str, Any],
    client: AsyncWebClient,
    services: Services,
    user: str,
    contract_id: int,
    seen: str | None,
) -> None:
    """The governance form submitted: check the terms and the people, store the proposal."""
    terms, errors = read_governance(view)
    rationale = Form(view).text(RATIONALE)
    if not rationale:
        errors[RATIONALE] = "Tell the approvers why."
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    async with services.sessions() as session:
        await read_only(session)
        found = await load_bundle(session=session, contract_id=contract_id)
        bundle = _amendable(found, user)
        if isinstance(bundle, Refusal):
            await ack(response_action="errors", errors={RATIONALE: bundle.text})
            return
        if fingerprint(governance_of(bundle)) != seen:
            await ack(
                response_action="errors",
                errors={
                    RATIONALE: "The governance changed while the form was open (an amendment "
                    "or an import). Close the form and start again to see it as it is now."
                },
            )
            return
    problems = check_governance(bundle, terms)
    if problems:
        await ack(response_action="errors", errors=field_errors(problems, view))
        return
    refused = await _refused_in_slack(client, terms, current=bundle.contract.report_channel)
    if refused:
        await ack(response_action="errors", errors=refused)
        return
    async with services.sessions() as session:
        await writing(session)
        found = await load_bundle(session=session, contract_id=contract_id)
        bundle = _amendable(found, user)
        if isinstance(bundle, Refusal) or fingerprint(governance_of(bundle)) != seen:
            await ack(response_action="errors", errors={RATIONALE: OUT_OF_DATE})
            return
        amendment = await propose_governance(
            session=session,
            bundle=bundle,
            proposer=user,
            after=terms,
            rationale=rationale,
            now=services.clock.now(),
        )
        state = await load_state(session=session, amendment_id=amendment.id or 0)
    assert state is not None
    await ack(response_action="update", view=build_amend_sent(state))
    await sync_requests(services, client, state.id)


async def _refused_in_slack(
    client: AsyncWebClient, terms: GovernanceTerms, *, current: str | None
) -> dict[str, str]:
    """Field errors for the people Slack says cannot take a part (a bot, a deactivated or
    unknown account) and for a new report channel the bot cannot report to; both asked at
    once, within the time a view submission has."""
    values = terms.model_dump()
    chosen = {name: [values[name]] if name == "owner" else values[name] for name in PEOPLE_FIELDS}
    channel = terms.report_channel if terms.report_channel != current else None
    checking = check_people_quickly(
        client, [u for users in chosen.values() for u in users if u], seconds=PEOPLE_CHECK_SECONDS
    )
    if channel is None:
        checked, channel_problem = await checking, None
    else:
        checked, channel_problem = await asyncio.gather(
            checking, _within(report_channel_problem(client, channel), PEOPLE_CHECK_SECONDS)
        )
    refused = {
        block: field_error(problem)
        for block, users in chosen.items()
        for u in users
        if (problem := checked.get(u)) is not None
    }
    if channel_problem is not None:
        refused["report_channel"] = channel_problem
    return refused


async def _within(checking: Awaitable[str | None], seconds: float) -> str | None:
    try:
        async with asyncio.timeout(seconds):
            return await checking
    except TimeoutError:
        return CHANNEL_PROBLEMS["unchecked"]


async def handle_item_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Step two submitted: check the change with the import rules, store it, tell approvers."""
    services = services_of(context)
    user = body["user"]["id"]
    meta = AmendmentForm.of_view(view) or AmendmentForm()
    kind = KINDS.get(meta.kind or "")
    handle = meta.handle
    remove = meta.remove
    contract_id = meta.contract_id
    if meta.kind == GOVERNANCE.name and contract_id is not None and not remove:
        await handle_governance_submission(
            ack, view, client, services, user, contract_id, meta.fingerprint
        )
        return
    if (
        kind is None
        or contract_id is None
        or not (handle is None or (isinstance(handle, str) and 0 < len(handle) <= KEY_MAX))
        or (remove and not handle)
    ):
        await refuse_submission(ack, view, "This form is out of date.")
        return
    fields, errors = ({}, {}) if remove else read_fields(kind, view)
    rationale = Form(view).text(RATIONALE)
    if not rationale:
        errors[RATIONALE] = "Tell the approvers why."
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    async with services.sessions() as session:
        await writing(session)
        found = await load_bundle(session=session, contract_id=contract_id)
        bundle = _amendable(found, user)
        if isinstance(bundle, Refusal):
            await ack(response_action="errors", errors={RATIONALE: bundle.text})
            return
        source = meta.feedback_id
        if source is not None:  # *Make it an activity*: the entry is checked again, here
            made = await entry_to_make_activity(
                session=session, feedback_id=source, user=user, contract_id=contract_id
            )
            if kind.name != "activity" or handle is not None or remove:
                made = Refusal(OUT_OF_DATE)
            if isinstance(made, Refusal):
                await ack(response_action="errors", errors={RATIONALE: made.text})
                return
        current = find_item(snapshot(bundle), kind, handle) if handle else None
        if fingerprint(current) != meta.fingerprint:
            await ack(
                response_action="errors",
                errors={
                    RATIONALE: "This item changed while the form was open (an amendment or "
                    "an import). Close the form and start again to see it as it is now."
                },
            )
            return
        if not remove and (
            past := past_due_errors(kind, fields, current, view, today=services.today())
        ):
            await ack(response_action="errors", errors=past)
            return
        after = None
        if not remove:
            key = handle if handle else await new_key(session, bundle, kind)
            after = proposed_item(kind, fields, key=key if kind.keyed else None)
        problems = await check_proposal(session, bundle, kind, handle, after)
        if problems:
            await ack(response_action="errors", errors=field_errors(problems, view))
            return
        amendment = await propose(
            session=session,
            bundle=bundle,
            proposer=user,
            kind=kind,
            handle=handle,
            after=after,
            rationale=rationale,
            now=services.clock.now(),
            commit=source is None,
        )
        if source is not None:
            await link_activity(
                session=session,
                feedback_id=source,
                amendment_id=amendment.id or 0,
                now=services.clock.now(),
            )
            await session.commit()
        state = await load_state(session=session, amendment_id=amendment.id or 0)
    assert state is not None
    await ack(response_action="update", view=build_amend_sent(state))
    await sync_requests(services, client, state.id)
    if source is not None:
        await _show_on_feedback(refresh_posted(services, client, [source]))


async def _show_on_feedback(refreshing: Awaitable[object]) -> None:
    """The feedback DM an amendment was made from says what became of it (best effort)."""
    try:
        await refreshing
    except Exception:
        logger.exception("Could not show an amendment on the feedback it was made from")


# --- deciding -------------------------------------------------------------------------------


async def handle_approve(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    services = services_of(context)
    amendment_id = record_id(body["actions"][0].get("value"))
    if amendment_id is None:
        await reply(respond, OUT_OF_DATE)
        return
    decision = await decide(
        sessions=services.sessions,
        amendment_id=amendment_id,
        user=body["user"]["id"],
        approve=True,
        now=services.clock.now(),
    )
    await announce(
        decision, services=services, client=client, respond=respond, user=body["user"]["id"]
    )


async def handle_reject(
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Reject needs a reason: open a modal for it, unless the clicker may not reject."""
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    amendment_id = record_id(body["actions"][0].get("value"))
    if amendment_id is None:
        await reply(respond, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        await read_only(session)
        state = await load_state(session=session, amendment_id=amendment_id)
        reader = state is not None and await _reads(session, state.contract.id or 0, user)
    refusal = _not_yours(state, user, reader=reader)
    if refusal is not None:
        await reply(respond, refusal)
        return
    assert state is not None
    await client.views_open(trigger_id=body["trigger_id"], view=build_reject_modal(state))


def not_an_approver(amendment_id: int, approvers: Sequence[str] | None = None) -> str:
    """The refusal to someone who may not decide. Only a reader of the contract hears who
    may: to anyone else (a forwarded message) it names nobody and nothing of the contract."""
    if approvers:
        return (
            f"Only this contract's approvers ({', '.join(mention(a) for a in approvers)}) "
            f"can approve or reject amendment #{amendment_id}."
        )
    return f"Only the approvers of amendment #{amendment_id} can approve or reject it."


async def _reads(session: AsyncSession, contract_id: int, user: str) -> bool:
    """Whether `user` may read the contract (and so hear who its approvers are)."""
    bundle = await load_bundle(session=session, contract_id=contract_id)
    return bundle is not None and may_read(bundle, user)


def _not_yours(state: AmendmentState | None, user: str, *, reader: bool) -> str | None:
    """Why `user` cannot decide on the amendment now, or None."""
    if state is None:
        return "That amendment no longer exists."
    if user not in state.approvers:
        return not_an_approver(state.id, state.approvers if reader else None)
    if not state.pending or state.decision_of(user) is not None:
        return f"Amendment #{state.id} is decided for you already. {status_line(state)}"
    return None


async def handle_reject_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    services = services_of(context)
    ref = AmendmentRef.of_view(view)
    amendment_id = ref.amendment_id if ref is not None else None
    reason = Form(view).text(REASON)
    if amendment_id is None:
        await refuse_submission(ack, view, "This form is out of date.")
        return
    if not reason:
        await ack(response_action="errors", errors={REASON: "Tell the proposer why."})
        return
    decision = await decide(
        sessions=services.sessions,
        amendment_id=amendment_id,
        user=body["user"]["id"],
        approve=False,
        reason=reason,
        now=services.clock.now(),
    )
    if decision.outcome != Outcome.rejected:
        user = body["user"]["id"]
        async with services.sessions() as session:
            await read_only(session)
            state = await load_state(session=session, amendment_id=amendment_id)
            reader = state is not None and await _reads(session, state.contract.id or 0, user)
        why = _not_yours(state, user, reader=reader) or decision.why or "Nothing was recorded."
        await ack(response_action="errors", errors={REASON: why})
        return
    await ack()
    await announce(decision, services=services, client=client, respond=None)


async def announce(
    decision: Decision,
    *,
    services: Services,
    client: AsyncWebClient,
    respond: AsyncRespond | None,
    user: str | None = None,
) -> None:
    """Tell everyone concerned what a decision came to; refusals only to the clicker `user`."""
    outcome = decision.outcome
    async with services.sessions() as session:
        state = await load_state(session=session, amendment_id=decision.amendment_id)
        reader = (
            outcome == Outcome.not_approver
            and state is not None
            and user is not None
            and await _reads(session, state.contract.id or 0, user)
        )
    if outcome in (Outcome.waiting, Outcome.applied, Outcome.rejected, Outcome.stale):
        await sync_requests(services, client, decision.amendment_id)
    if outcome in (Outcome.applied, Outcome.rejected, Outcome.stale) and state is not None:
        await tell_proposer(services, client, state)
        await _show_on_feedback(refresh_for_amendment(services, client, decision.amendment_id))
    if respond is None:
        return
    if outcome == Outcome.not_approver:
        approvers = decision.approvers if reader else None
        await reply(respond, not_an_approver(decision.amendment_id, approvers))
    elif outcome == Outcome.missing or state is None:
        await reply(respond, "That amendment no longer exists.")
    elif outcome in (Outcome.already, Outcome.closed):
        await reply(
            respond,
            f"Amendment #{state.id} is decided for you already. "
            f"{status_line(state, recipient=None)}",
        )
    elif outcome == Outcome.conflict:
        await reply(respond, decision.why)
    elif outcome == Outcome.stale:
        await reply(respond, status_line(state))


SUBCOMMANDS = (
    Subcommand(
        "amend",
        amend_command,
        usage="amend [@leader]",
        summary="propose a change to an active contract; its approvers decide on it",
    ),
    Subcommand(
        "history",
        history_command,
        usage="history [@leader]",
        summary="a contract's versions and its audit log, newest first",
    ),
)


def register(app: AsyncApp) -> None:
    app.view(AMEND_CHOOSE)(handle_choose_submission)
    app.view(AMEND_ITEM)(handle_item_submission)
    app.view(AMEND_REJECT)(handle_reject_submission)
    app.action(APPROVE)(handle_approve)
    app.action(REJECT)(handle_reject)
