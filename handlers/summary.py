"""What a reader sees of a contract: `/contract summary`, Open summary, App Home."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.amendments.blocks import build_contract_summary
from bot.amendments.model import SummaryView, version_argument
from bot.amendments.service import summary_view
from bot.contracts.service import bundles_for, contract_to_show
from bot.core.permissions import Refusal, may_read
from bot.core.text import escape
from bot.lessons.blocks import home_lessons_blocks
from bot.lessons.service import activity_types, lessons_for_home
from bot.services import services_of
from bot.summary.home import OPEN_SUMMARY, build_home, build_summary_modal
from bot.ui.blocks import fit_view
from bot.ui.metadata import ContractRef
from bot.ui.views import OUT_OF_DATE, fill, message_view, open_loading
from handlers.common import CommandRequest, Subcommand, notify, reply_blocks, target_of
from storage.db import read_only
from storage.queries.contracts import load_bundle, load_governance

logger = logging.getLogger(__name__)

SUMMARY_TITLE = "Contract summary"


async def summary_command(request: CommandRequest) -> None:
    version, args = version_argument(request.args)
    target = target_of(args)
    if isinstance(target, Refusal):
        await request.reply(target.text)
        return
    async with request.services.sessions() as session:
        await read_only(session)
        found = await contract_to_show(session=session, viewer=request.viewer, leader=target)
        shown: SummaryView | Refusal = (
            found
            if isinstance(found, Refusal)
            else await summary_view(
                session=session, bundle=found, version=version, viewer=request.viewer
            )
        )
    if isinstance(shown, Refusal):
        await request.reply(shown.text)
        return
    blocks = build_contract_summary(shown, today=request.services.today())
    title = escape(shown.bundle.contract.title)
    await reply_blocks(request.respond, blocks, text=f"Summary of {title}")


async def handle_open_summary(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    services = services_of(context)
    user = body["user"]["id"]
    ref = ContractRef.read(body["actions"][0].get("value"))
    if ref is None:
        await notify(client, user, OUT_OF_DATE)
        return
    contract_id = ref.contract_id
    async with services.sessions() as session:
        await read_only(session)
        governance = await load_governance(session=session, contract_id=contract_id)
    if governance is None or not may_read(governance, user):
        await notify(client, user, "You can't read that contract.")
        return
    opened = await open_loading(client, trigger_id=body["trigger_id"], title=SUMMARY_TITLE)
    if opened is None:
        return
    async with services.fill_slots:
        async with services.sessions() as session:
            await read_only(session)
            bundle = await load_bundle(session=session, contract_id=contract_id)
            shown = (
                await summary_view(session=session, bundle=bundle, version=None)
                if bundle is not None
                else Refusal("That contract is gone.")
            )
        if isinstance(shown, Refusal):
            await fill(client, opened, message_view(SUMMARY_TITLE, shown.text))
            return
        blocks = build_contract_summary(shown, today=services.today())
        await fill(client, opened, build_summary_modal(blocks, title=SUMMARY_TITLE))


async def handle_app_home_opened(
    event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    if event.get("tab", "home") != "home":
        return
    services = services_of(context)
    user = event["user"]
    async with services.sessions() as session:
        await read_only(session)
        bundles = await bundles_for(session=session, viewer=user)
        lessons = await lessons_for_home(session=session, activity_types=activity_types(bundles))
    view = build_home(viewer=user, bundles=bundles, today=services.today())
    view.blocks = fit_view([*view.blocks, *home_lessons_blocks(lessons)])
    await client.views_publish(user_id=user, view=view)


SUBCOMMANDS = (
    Subcommand(
        "summary",
        summary_command,
        usage="summary [@leader] [v3]",
        summary="a contract's indicators, activities, milestones and governance "
        "(yours when nobody is named); `v3`: its version 3",
    ),
)


def register(app: AsyncApp) -> None:
    app.action(OPEN_SUMMARY)(handle_open_summary)
    app.event("app_home_opened")(handle_app_home_opened)
