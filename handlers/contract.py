"""`/contract` and its subcommands.

Each subcommand is a plain async function registered with `@contract_subcommand`; feature
modules (check-ins, feedback, evidence, amendments) add theirs the same way, and the help
text is made from the registry so it never drifts from what exists.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.amendments.blocks import build_contract_summary
from bot.amendments.service import SummaryView, summary_view, version_argument
from bot.contracts.blocks import build_draft_editor, build_new_contract_modal
from bot.contracts.service import Refusal, activate_draft, contract_to_show, editable_draft
from bot.core.mentions import split_command, user_id_of
from bot.services import Services, services_of
from bot.ui.blocks import MESSAGE_BLOCKS, context, escape, split_messages, truncate
from storage.db import read_only

logger = logging.getLogger(__name__)

# Slack takes at most five posts to one response_url, within 30 minutes of the command.
RESPONSE_URL_USES = 5


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """One `/contract VERB ARGS` call, already acknowledged."""

    viewer: str
    args: list[str]
    command: dict[str, str]
    respond: AsyncRespond
    client: AsyncWebClient
    services: Services

    @property
    def trigger_id(self) -> str:
        return self.command["trigger_id"]

    async def reply(self, text: str) -> None:
        await reply(self.respond, text)


Subcommand = Callable[[CommandRequest], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Registered:
    run: Subcommand
    usage: str
    summary: str


SUBCOMMANDS: dict[str, Registered] = {}


def contract_subcommand(
    verb: str, *, usage: str, summary: str
) -> Callable[[Subcommand], Subcommand]:
    """Register `run` as `/contract VERB`; `usage` and `summary` make its help line."""

    def register(run: Subcommand) -> Subcommand:
        SUBCOMMANDS[verb] = Registered(run=run, usage=usage, summary=summary)
        return run

    return register


def help_text() -> str:
    ordered = sorted(SUBCOMMANDS.items(), key=lambda item: item[0] == "help")
    lines = [f"• `/contract {r.usage}`: {r.summary}" for _, r in ordered]
    return "\n".join(
        [
            "*North Star: `/contract`*",
            *lines,
            "Peers give feedback with `/feedback @leader`; leaders check in with `/checkin`.",
        ]
    )


async def reply(respond: AsyncRespond, text: str) -> None:
    await respond(text=text, response_type="ephemeral", replace_original=False)


async def reply_blocks(respond: AsyncRespond, blocks: list[Block], text: str) -> None:
    """Ephemeral reply, split into several messages where Slack's limits ask; at most
    `RESPONSE_URL_USES` of them, the last saying where the rest is."""
    parts = split_messages(blocks)
    if len(parts) > RESPONSE_URL_USES:
        last = parts[RESPONSE_URL_USES - 1][: MESSAGE_BLOCKS - 1]
        more = context("_There is more than fits here: App Home shows all of it._")
        parts = [*parts[: RESPONSE_URL_USES - 1], [*last, more]]
    for part in parts:
        await respond(
            text=text,
            blocks=[b.to_dict() for b in part],
            response_type="ephemeral",
            replace_original=False,
        )


def target_of(args: list[str], *, example: str = "/contract summary @dana") -> str | Refusal | None:
    """The person named first in the arguments: None if nobody, a Refusal if unreadable."""
    if not args:
        return None
    user_id = user_id_of(args[0])
    if user_id is None:
        return Refusal(
            f"I couldn't find a Slack user in “{escape(truncate(args[0], 80))}”. "
            f"Mention them, like `{example}`."
        )
    return user_id


async def handle_contract(
    ack: AsyncAck,
    command: dict[str, str],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    verb, args = split_command(command.get("text", ""))
    registered = SUBCOMMANDS.get(verb or "help")
    if registered is None:
        await reply(respond, f"I don't know `{escape(truncate(verb, 40))}`.\n\n{help_text()}")
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


@contract_subcommand(
    "summary",
    usage="summary [@leader] [v3]",
    summary="a contract's indicators, activities, milestones and governance "
    "(yours when nobody is named); `v3`: its version 3",
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


@contract_subcommand("new", usage="new", summary="draft a contract in a few modals")
async def new_command(request: CommandRequest) -> None:
    await request.client.views_open(
        trigger_id=request.trigger_id,
        view=build_new_contract_modal(viewer=request.viewer, today=request.services.today()),
    )


@contract_subcommand("edit", usage="edit [@leader]", summary="add to a draft")
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


@contract_subcommand(
    "activate",
    usage="activate [@leader]",
    summary="start a complete draft's check-ins and digests",
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


@contract_subcommand("help", usage="help", summary="this list")
async def help_command(request: CommandRequest) -> None:
    await request.reply(help_text())


def register(app: AsyncApp) -> None:
    app.command("/contract")(handle_contract)
