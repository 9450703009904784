"""What a reader sees of a contract: `/contract summary`, Open summary, App Home."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.amendments.blocks import build_contract_summary
from bot.amendments.model import SummaryView, version_argument
from bot.amendments.service import summary_view
from bot.charts.model import Chart, ShownChart, charts_of
from bot.charts.service import forget_charts, kept_charts, show_charts
from bot.contracts.service import bundles_for, contract_to_show
from bot.core.permissions import Refusal, may_read
from bot.core.text import escape
from bot.services import services_of
from bot.summary.blocks import chart_section
from bot.summary.home import OPEN_SUMMARY, build_home, build_summary_modal, home_charts
from bot.ui.metadata import ContractRef
from bot.ui.views import OUT_OF_DATE
from handlers.common import CommandRequest, Subcommand, notify, reply_blocks, target_of
from storage.db import read_only
from storage.queries.contracts import load_bundle

logger = logging.getLogger(__name__)


def summary_charts(shown: SummaryView) -> list[Chart]:
    """The charts of a summary of the contract as it stands (none for an old version)."""
    return [] if shown.version is not None else charts_of(shown.bundle)


def by_contract(shown: list[ShownChart]) -> dict[int, list[ShownChart]]:
    charts: dict[int, list[ShownChart]] = {}
    for chart in shown:
        charts.setdefault(chart.contract_id, []).append(chart)
    return charts


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
            else await summary_view(session=session, bundle=found, version=version)
        )
    if isinstance(shown, Refusal):
        await request.reply(shown.text)
        return
    blocks = build_contract_summary(shown, today=request.services.today())
    title = escape(shown.bundle.contract.title)
    # Charts already uploaded come with the text; new ones follow once drawn and uploaded,
    # so the text never waits for a drawing.
    charts = summary_charts(shown)
    kept, complete = await kept_charts(services=request.services, charts=charts)
    if complete:
        blocks += chart_section(kept)
    await reply_blocks(request.respond, blocks, text=f"Summary of {title}")
    if not complete:
        drawn = await show_charts(services=request.services, client=request.client, charts=charts)
        if drawn:
            await reply_blocks(request.respond, chart_section(drawn), text=f"Charts of {title}")


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
        bundle = await load_bundle(session=session, contract_id=contract_id)
        if bundle is None or not may_read(bundle, user):
            await notify(client, user, "You can't read that contract.")
            return
        shown = await summary_view(session=session, bundle=bundle, version=None)
    if isinstance(shown, Refusal):
        await notify(client, user, shown.text)
        return
    blocks = build_contract_summary(shown, today=services.today())
    # The trigger id expires in 3 seconds: the modal opens with the charts already
    # uploaded, and is updated with the rest once they are.
    charts = summary_charts(shown)
    kept, complete = await kept_charts(services=services, charts=charts)
    opened = await client.views_open(
        trigger_id=body["trigger_id"],
        view=build_summary_modal(blocks + chart_section(kept), title="Contract summary"),
    )
    if complete:
        return
    drawn = await show_charts(services=services, client=client, charts=charts)
    view = opened.get("view") or {}
    if len(drawn) > len(kept) and view.get("id"):
        try:
            await client.views_update(
                view_id=view["id"],
                hash=view.get("hash"),
                view=build_summary_modal(blocks + chart_section(drawn), title="Contract summary"),
            )
        except SlackApiError as error:  # closed, or changed meanwhile: nothing to update
            logger.info("Summary modal not updated with its charts: %s", error.response["error"])


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
    today = services.today()
    # Published at once with the charts already uploaded; again once new ones are.
    charts = home_charts(viewer=user, bundles=bundles)
    kept, complete = await kept_charts(services=services, charts=charts)
    home = build_home(viewer=user, bundles=bundles, today=today, charts=by_contract(kept))
    try:
        published = await client.views_publish(user_id=user, view=home)
    except SlackApiError as error:
        if not kept or error.response.get("error") != "invalid_blocks":
            raise
        # A kept chart's file is gone from Slack: shown without charts, drawn anew below.
        logger.warning("App Home refused its kept charts; drawing them again")
        await forget_charts(services=services, shown=kept)
        kept, complete = [], False
        home = build_home(viewer=user, bundles=bundles, today=today)
        published = await client.views_publish(user_id=user, view=home)
    if complete:
        return
    drawn = await show_charts(services=services, client=client, charts=charts)
    if len(drawn) > len(kept):
        view = build_home(viewer=user, bundles=bundles, today=today, charts=by_contract(drawn))
        current = (published.get("view") or {}).get("hash")
        try:
            await client.views_publish(user_id=user, view=view, hash=current)
        except SlackApiError as error:  # published anew meanwhile: that one has them
            logger.info("App Home not updated with its charts: %s", error.response["error"])


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
