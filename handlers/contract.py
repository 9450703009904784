"""`/contract` and its subcommands.

Each subcommand is a plain async function listed as a `Subcommand` by the handler module of
its feature; `handlers.register_all` hands them all to `register`, and the help text is made
from that list, so it never drifts from what exists.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.amendments.blocks import build_contract_summary
from bot.amendments.model import SummaryView, version_argument
from bot.amendments.service import summary_view
from bot.contracts.blocks import build_draft_editor, build_new_contract_modal
from bot.contracts.service import activate_draft, contract_to_show, editable_draft
from bot.core.mentions import split_command
from bot.core.permissions import Refusal
from bot.core.text import escape, truncate
from bot.services import services_of
from handlers.common import CommandRequest, Subcommand, reply, reply_blocks, target_of
from storage.db import read_only

logger = logging.getLogger(__name__)


def help_text(subcommands: Sequence[Subcommand]) -> str:
    ordered = sorted(subcommands, key=lambda s: s.verb == "help")
    lines = [f"• `/contract {s.usage}`: {s.summary}" for s in ordered]
    return "\n".join(
        [
            "*North Star: `/contract`*",
            *lines,
            "Peers give feedback with `/feedback @leader`; leaders check in with `/checkin`.",
        ]
    )


async def handle_contract(
    ack: AsyncAck,
    command: dict[str, str],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
    subcommands: Sequence[Subcommand],
) -> None:
    await ack()
    verb, args = split_command(command.get("text", ""))
    registered = next((s for s in subcommands if s.verb == (verb or "help")), None)
    if registered is None:
        listed = help_text(subcommands)
        await reply(respond, f"I don't know `{escape(truncate(verb, 40))}`.\n\n{listed}")
        return
    await registered.run(
        CommandRequest(
            viewer=command["user_id"],
            args=args,
            command=command,
            respond=respond,
            client=client,
            services=services_of(context),
        )
    )


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
    await reply_blocks(request.respond, blocks, text=f"Summary of {title}")


async def new_command(request: CommandRequest) -> None:
    await request.client.views_open(
        trigger_id=request.trigger_id,
        view=build_new_contract_modal(viewer=request.viewer, today=request.services.today()),
    )


async def edit_command(request: CommandRequest) -> None:
    target = target_of(request.args, example="/contract edit @dana")
    if isinstance(target, Refusal):
        await request.reply(target.text)
        return
    async with request.services.sessions() as session:
        draft = await editable_draft(session=session, viewer=request.viewer, leader=target)
    if isinstance(draft, Refusal):
        await request.reply(draft.text)
        return
    await request.client.views_open(
        trigger_id=request.trigger_id,
        view=build_draft_editor(draft, today=request.services.today()),
    )


async def activate_command(request: CommandRequest) -> None:
    target = target_of(request.args, example="/contract activate @dana")
    if isinstance(target, Refusal):
        await request.reply(target.text)
        return
    services = request.services
    async with services.sessions() as session:
        draft = await editable_draft(session=session, viewer=request.viewer, leader=target)
        if isinstance(draft, Refusal):
            await request.reply(draft.text)
            return
        activated = await activate_draft(
            session=session,
            contract_id=draft.contract.id or 0,
            actor=request.viewer,
            now=services.clock.now(),
        )
    if isinstance(activated, Refusal):
        await request.reply(activated.text)
        return
    await request.reply(
        f"“{escape(activated.contract.title)}” is active: check-ins, feedback and digests "
        "now run on its cadence."
    )


SUBCOMMANDS = (
    Subcommand(
        "summary",
        summary_command,
        usage="summary [@leader] [v3]",
        summary="a contract's indicators, activities, milestones and governance "
        "(yours when nobody is named); `v3`: its version 3",
    ),
    Subcommand("new", new_command, usage="new", summary="draft a contract in a few modals"),
    Subcommand("edit", edit_command, usage="edit [@leader]", summary="add to a draft"),
    Subcommand(
        "activate",
        activate_command,
        usage="activate [@leader]",
        summary="start a complete draft's check-ins and digests",
    ),
)


def register(app: AsyncApp, subcommands: Sequence[Subcommand]) -> None:
    """`/contract` with `subcommands` (every feature's, listed in `handlers.register_all`)."""
    verbs = list(subcommands)

    async def help_command(request: CommandRequest) -> None:
        await request.reply(help_text(verbs))

    verbs.append(Subcommand("help", help_command, usage="help", summary="this list"))

    async def handle(
        ack: AsyncAck,
        command: dict[str, str],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await handle_contract(ack, command, respond, client, context, verbs)

    app.command("/contract")(handle)
