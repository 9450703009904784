"""What a reader sees of a contract: `/contract summary`, Open summary, App Home."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.amendments.blocks import build_contract_summary
from bot.amendments.model import SummaryView, version_argument
from bot.amendments.service import summary_view
from bot.charts.model import ShownChart
from bot.charts.service import (
    charts_at,
    charts_to_show,
    draw_charts,
    forget_charts,
)
from bot.contracts.service import contract_to_show
from bot.core.permissions import Refusal, may_read
from bot.core.text import escape
from bot.lessons.blocks import home_lessons_blocks
from bot.lessons.service import activity_types, lessons_for_home
from bot.renewal.blocks import draft_agreement_line, renewal_line
from bot.renewal.service import Standing, agreement_standing
from bot.services import services_of
from bot.summary.blocks import chart_section
from bot.summary.home import HOME_CHARTS, OPEN_SUMMARY, build_home, build_summary_modal
from bot.summary.service import load_home, load_summary
from bot.ui.blocks import context, fit_view
from bot.ui.metadata import ContractRef
from bot.ui.views import OUT_OF_DATE, fill, message_view, open_loading, update_view
from handlers.common import CommandRequest, Subcommand, notify, reply_blocks, target_of
from storage.db import read_only
from storage.queries.contracts import load_bundle, load_governance

logger = logging.getLogger(__name__)

SUMMARY_TITLE = "Contract summary"
# A contract's summary asked for by someone who may not read it, or by id of one that never
# was: the same words, so that a click tells nothing of which.
CANNOT_READ = "You can't read that contract."


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
        # The contract as it stands is read for what its summary shows; an old version
        # (`v3`) is rebuilt from the whole contract.
        found = await contract_to_show(
            session=session,
            viewer=request.viewer,
            leader=target,
            load=load_summary if version is None else load_bundle,
        )
        shown: SummaryView | Refusal = (
            found
            if isinstance(found, Refusal)
            else await summary_view(
                session=session, bundle=found, version=version, viewer=request.viewer
            )
        )
        standing, at = None, None  # an old version: no renewal line, no charts
        if not isinstance(shown, Refusal) and shown.version is None:
            standing = await agreement_standing(
                session=session, bundles=[shown.bundle], viewer=request.viewer
            )
            at = await charts_at(session=session, contract_ids=[shown.bundle.contract.id or 0])
    if isinstance(shown, Refusal):
        await request.reply(shown.text)
        return
    blocks = build_contract_summary(shown, today=request.services.today(), viewer=request.viewer)
    _with_renewal(blocks, shown, standing)
    title = escape(shown.bundle.contract.title)
    # One answer, charts included: the command was acknowledged at once and its response URL
    # stays valid for 30 minutes, so the reply may wait for a chart to be drawn and uploaded
    # (an unchanged chart never is); a chart Slack refuses is left out, the text stays whole.
    kept: list[ShownChart] = []
    if at is not None:
        known = await charts_to_show(services=request.services, at=at)
        kept = known.kept
        if known.rest:
            kept = await draw_charts(services=request.services, client=request.client, known=known)
    await reply_blocks(request.respond, [*blocks, *chart_section(kept)], text=f"Summary of {title}")


def _with_renewal(blocks: list[Block], shown: SummaryView, standing: Standing | None) -> None:
    """The summary of an active contract whose renewal awaits agreement says so at its top."""
    state = standing.renewals.get(shown.bundle.contract.id or 0) if standing else None
    if state is not None:
        blocks.insert(2, context(renewal_line(state)))


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
    # The modal opens before anything is read: while loading it shows nothing of any
    # contract, and a click by someone who may not read this one is told so in it (an App
    # Home or digest click has no ephemeral reply).
    opened = await open_loading(client, trigger_id=body["trigger_id"], title=SUMMARY_TITLE)
    if opened is None:
        return
    async with services.fill_slots:
        async with services.sessions() as session:
            await read_only(session)
            governance = await load_governance(session=session, contract_id=contract_id)
            if governance is None or not may_read(governance, user):
                shown: SummaryView | Refusal = Refusal(CANNOT_READ)
            else:
                bundle = await load_summary(session=session, contract_id=contract_id)
                shown = (
                    await summary_view(session=session, bundle=bundle, version=None)
                    if bundle is not None
                    else Refusal("That contract is gone.")
                )
                standing = await agreement_standing(
                    session=session, bundles=[bundle] if bundle is not None else [], viewer=user
                )
                at = await charts_at(session=session, contract_ids=[contract_id])
        if isinstance(shown, Refusal):
            await fill(client, opened, message_view(SUMMARY_TITLE, shown.text))
            return
        blocks = build_contract_summary(shown, today=services.today(), viewer=user)
        _with_renewal(blocks, shown, standing)
        # The modal is filled with the charts already uploaded, then again once the rest are.
        known = await charts_to_show(services=services, at=at)
        filled = await fill(
            client,
            opened,
            build_summary_modal(blocks + chart_section(known.kept), title=SUMMARY_TITLE),
        )
        if not known.rest or not filled:
            return
        drawn = await draw_charts(services=services, client=client, known=known)
        if len(drawn) > len(known.kept):
            await update_view(
                client,
                view_id=opened.view_id,
                view=build_summary_modal(blocks + chart_section(drawn), title=SUMMARY_TITLE),
            )


async def handle_app_home_opened(
    event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    if event.get("tab", "home") != "home":
        return
    services = services_of(context)
    user = event["user"]
    async with services.sessions() as session:
        await read_only(session)
        home = await load_home(session=session, viewer=user)
        bundles = home.bundles
        lessons = await lessons_for_home(session=session, activity_types=activity_types(bundles))
        standing = await agreement_standing(session=session, bundles=bundles, viewer=user)
    notes = {cid: draft_agreement_line(state) for cid, state in standing.drafts.items()}
    notes.update({cid: renewal_line(state) for cid, state in standing.renewals.items()})
    today = services.today()

    def home_view(shown: Sequence[ShownChart] = ()) -> View:
        view = build_home(
            viewer=user, bundles=bundles, today=today, notes=notes, charts=by_contract(list(shown))
        )
        view.blocks = fit_view([*view.blocks, *home_lessons_blocks(lessons)])
        return view

    # Published at once with the charts already uploaded; again once new ones are.
    known = await charts_to_show(services=services, at=home.charts, limit=HOME_CHARTS)
    try:
        published = await client.views_publish(user_id=user, view=home_view(known.kept))
    except SlackApiError as error:
        if not known.kept or error.response.get("error") != "invalid_blocks":
            raise
        # A kept chart's file is gone from Slack: shown without charts, drawn anew below.
        logger.warning("App Home refused its kept charts; drawing them again")
        await forget_charts(services=services, shown=known.kept)
        known = await charts_to_show(services=services, at=home.charts, limit=HOME_CHARTS)
        published = await client.views_publish(user_id=user, view=home_view())
    if not known.rest:
        return
    drawn = await draw_charts(services=services, client=client, known=known, limit=HOME_CHARTS)
    if len(drawn) > len(known.kept):
        current = (published.get("view") or {}).get("hash")
        try:
            await client.views_publish(user_id=user, view=home_view(drawn), hash=current)
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
