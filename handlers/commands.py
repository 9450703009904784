"""Slash commands: `/contract` and its subcommands."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import escape, split_messages, truncate
from bot.contract_io import snapshot
from bot.contracts import (
    Refusal,
    activate,
    contract_to_show,
    editable_draft,
    missing_for_activation,
)
from bot.mentions import split_command, user_id_of
from bot.modals import build_draft_editor, build_new_contract_modal
from bot.services import services_of
from bot.summary import build_summary

logger = logging.getLogger(__name__)

CONTRACT_HELP = "\n".join(
    [
        "*North Star: `/contract`*",
        "• `/contract summary [@leader]`: a contract's indicators, activities, milestones "
        "and governance (yours when nobody is named)",
        "• `/contract new`: draft a contract in a few modals",
        "• `/contract edit [@leader]`: add to a draft",
        "• `/contract activate [@leader]`: start a complete draft's check-ins and digests",
        "• `/contract help`: this list",
        "Peers give feedback with `/feedback @leader`; leaders check in with `/checkin`.",
    ]
)


async def reply(respond: AsyncRespond, text: str) -> None:
    await respond(text=text, response_type="ephemeral", replace_original=False)


async def reply_blocks(respond: AsyncRespond, blocks: list[Block], text: str) -> None:
    """Ephemeral reply, split into several messages where Slack's block limit asks."""
    for part in split_messages(blocks):
        await respond(
            text=text,
            blocks=[b.to_dict() for b in part],
            response_type="ephemeral",
            replace_original=False,
        )


def target_of(args: list[str]) -> str | Refusal | None:
    """The leader named in the arguments: None if nobody, a Refusal if unreadable."""
    if not args:
        return None
    user_id = user_id_of(args[0])
    if user_id is None:
        return Refusal(
            f"I couldn't find a Slack user in “{escape(truncate(args[0], 80))}”. "
            "Mention them, like `/contract summary @dana`."
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
    services = services_of(context)
    viewer = command["user_id"]
    verb, args = split_command(command.get("text", ""))

    if verb == "new":
        await client.views_open(
            trigger_id=command["trigger_id"],
            view=build_new_contract_modal(viewer=viewer, today=services.today()),
        )
        return
    if verb in {"", "help"}:
        await reply(respond, CONTRACT_HELP)
        return
    if verb not in {"summary", "edit", "activate"}:
        await reply(respond, f"I don't know `{escape(truncate(verb, 40))}`.\n\n{CONTRACT_HELP}")
        return

    target = target_of(args)
    if isinstance(target, Refusal):
        await reply(respond, target.text)
        return

    async with services.sessions() as session:
        if verb == "summary":
            found = await contract_to_show(session=session, viewer=viewer, leader=target)
            if isinstance(found, Refusal):
                await reply(respond, found.text)
                return
            blocks = build_summary(found, today=services.today())
            await reply_blocks(respond, blocks, text=f"Summary of {found.contract.title}")
            return

        draft = await editable_draft(session=session, viewer=viewer, leader=target)
        if isinstance(draft, Refusal):
            await reply(respond, draft.text)
            return
        if verb == "edit":
            await client.views_open(
                trigger_id=command["trigger_id"],
                view=build_draft_editor(draft, today=services.today()),
            )
            return
        missing = missing_for_activation(draft)
        if missing:
            await reply(
                respond,
                f"“{escape(draft.contract.title)}” still needs {', '.join(missing)}. "
                "Add them with `/contract edit`.",
            )
            return
        await activate(
            session=session,
            bundle=draft,
            actor=viewer,
            now=services.clock.now(),
            snapshot=snapshot(draft),
        )
    await reply(
        respond,
        f"“{escape(draft.contract.title)}” is active: check-ins, feedback and digests "
        "now run on its cadence.",
    )


def register(app: AsyncApp) -> None:
    app.command("/contract")(handle_contract)
