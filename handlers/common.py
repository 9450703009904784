"""What every handler module shares: a `/contract` subcommand's request, ephemeral replies,
and filling a modal opened loading with a contract."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.mentions import user_id_of
from bot.core.permissions import Refusal
from bot.core.text import escape, truncate
from bot.delivery import Clicked
from bot.services import Services
from bot.ui.blocks import MESSAGE_BLOCKS, context, split_messages, text_length
from bot.ui.views import Opened, fill, message_view
from storage.db import read_only
from storage.queries.contracts import ContractBundle, load_bundle

# Slack takes at most five posts to one response_url, within 30 minutes of the command.
RESPONSE_URL_USES = 5
GONE_CONTRACT = "That contract is gone."


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


@dataclass(frozen=True, slots=True)
class Subcommand:
    """`/contract VERB`: what runs it, and its line in the help (`usage`: `summary`)."""

    verb: str
    run: Callable[[CommandRequest], Awaitable[None]]
    usage: str
    summary: str


def clicked_message(body: dict[str, Any]) -> Clicked | None:
    """The posted message a click came from, as Slack's signed payload names it
    (`container`); None for a view, an ephemeral message or no message."""
    container = body.get("container") or {}
    channel, ts = container.get("channel_id"), container.get("message_ts")
    if container.get("type") != "message" or container.get("is_ephemeral") or not channel or not ts:
        return None
    return Clicked(channel=str(channel), ts=str(ts))


async def reply(respond: AsyncRespond, text: str) -> None:
    await respond(text=text, response_type="ephemeral", replace_original=False)


async def reply_blocks(respond: AsyncRespond, blocks: list[Block], text: str) -> None:
    """Ephemeral reply, split into several messages where Slack's limits ask; at most
    `RESPONSE_URL_USES` of them, the last saying where the rest is."""
    as_dict = {id(block): block.to_dict() for block in blocks}  # each made once, not twice
    parts = split_messages(blocks, size_of=lambda block: text_length(as_dict[id(block)]))
    if len(parts) > RESPONSE_URL_USES:
        last = parts[RESPONSE_URL_USES - 1][: MESSAGE_BLOCKS - 1]
        more = context("_There is more than fits here: App Home shows all of it._")
        as_dict[id(more)] = more.to_dict()
        parts = [*parts[: RESPONSE_URL_USES - 1], [*last, more]]
    for part in parts:
        await respond(
            text=text,
            blocks=[as_dict[id(b)] for b in part],
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


async def notify(client: AsyncWebClient, user: str, text: str) -> None:
    """A refusal for a click: a DM is the only channel a modal or App Home click has."""
    opened = await client.conversations_open(users=user)
    await client.chat_postMessage(channel=opened["channel"]["id"], text=text)


async def fill_with_contract(
    client: AsyncWebClient,
    services: Services,
    opened: Opened,
    *,
    title: str,
    contract_id: int,
    build: Callable[[ContractBundle], View | str],
) -> None:
    """Fill a modal opened loading (`open_loading`) with what `build` makes of the contract
    as it is now, read taking a fill turn (`Services.fill_slots`): a view, or the text of a
    note saying why there is none. A contract deleted meanwhile gets a note that it is gone."""
    async with services.fill_slots:
        async with services.sessions() as session:
            await read_only(session)
            bundle = await load_bundle(session=session, contract_id=contract_id)
        made = build(bundle) if bundle is not None else GONE_CONTRACT
        await fill(client, opened, message_view(title, made) if isinstance(made, str) else made)
