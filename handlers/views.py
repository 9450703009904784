"""View submissions: the new-contract modal and the item modals of a draft."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.contracts.blocks import (
    ADD_ITEM,
    ITEM_KINDS,
    ITEM_LABEL,
    NEW_CONTRACT,
    build_draft_editor,
)
from bot.contracts.forms import parse_item, parse_new_contract
from bot.contracts.service import add_item, create_draft, title_taken
from bot.core.permissions import may_edit
from bot.people.service import check_people_quickly, field_errors
from bot.services import services_of
from bot.ui.metadata import ContractRef
from bot.ui.views import OUT_OF_DATE, refuse_submission, update_view
from storage.queries.contracts import load_bundle

logger = logging.getLogger(__name__)

# Slack wants a view submission answered within 3 s; the people check gets most of it.
PEOPLE_CHECK_SECONDS = 2.0


async def handle_new_contract(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    services = services_of(context)
    user = body["user"]["id"]
    fields, errors = parse_new_contract(view)
    if fields is None:
        await ack(response_action="errors", errors=errors)
        return
    chosen = {"leader": fields.leader_id, "sponsor": fields.sponsor_id}
    problems = await check_people_quickly(client, chosen.values(), seconds=PEOPLE_CHECK_SECONDS)
    errors = field_errors(chosen, problems)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    async with services.sessions() as session:
        if await title_taken(session=session, leader_id=fields.leader_id, title=fields.title):
            await ack(
                response_action="errors",
                errors={"title": "This leader already has a contract with this title."},
            )
            return
        contract = await create_draft(
            session=session, fields=fields, creator=user, now=services.clock.now()
        )
        bundle = await load_bundle(session=session, contract_id=contract.id or 0)
    assert bundle is not None
    await ack(
        response_action="update",
        view=build_draft_editor(
            bundle, today=services.today(), notice="Draft created. Add its items below."
        ),
    )


async def handle_add_item_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    services = services_of(context)
    user = body["user"]["id"]
    kind = view["callback_id"].split(":", 1)[1]
    ref = ContractRef.of_view(view)
    contract_id = ref.contract_id if ref is not None else None
    if kind not in ITEM_KINDS or contract_id is None:
        await refuse_submission(ack, view, OUT_OF_DATE)
        return
    async with services.sessions() as session:
        bundle = await load_bundle(session=session, contract_id=contract_id)
        if bundle is None or not may_edit(bundle, user) or bundle.contract.status != "draft":
            await refuse_submission(ack, view, "This contract is no longer a draft you can edit.")
            return
        parsed = parse_item(kind, view, bundle)
        if parsed.errors:
            await ack(response_action="errors", errors=parsed.errors)
            return
        await add_item(
            session=session,
            bundle=bundle,
            kind=kind,
            values=parsed.values,
            actor=user,
            now=services.clock.now(),
        )
        bundle = await load_bundle(session=session, contract_id=contract_id)
    await ack()
    previous = view.get("previous_view_id")
    if previous and bundle is not None:
        await update_view(
            client,
            view_id=previous,
            view=build_draft_editor(
                bundle, today=services.today(), notice=f"Added the {ITEM_LABEL[kind]}."
            ),
        )


def register(app: AsyncApp) -> None:
    app.view(NEW_CONTRACT)(handle_new_contract)
    app.view(re.compile(f"^{re.escape(ADD_ITEM)}:"))(handle_add_item_submission)
