"""`/contract`: the router to its subcommands, and their help.

Each subcommand is a plain async function listed as a `Subcommand` by the handler module of
its feature; `handlers.register_all` hands them all to `register`, and the help text is made
from that list, so it never drifts from what exists.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.mentions import split_command
from bot.core.text import escape, truncate
from bot.services import services_of
from handlers.common import CommandRequest, Subcommand, reply


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
