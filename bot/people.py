"""Who may hold a part in a contract: real, active, human members of the workspace.

A leader, sponsor, owner, approver, escalation contact or reviewer must be a person Slack
knows here (`users.info` answers), whose account is not deactivated (`deleted`), and who is
not a bot: not North Star itself (its id from `auth.test`, asked once per token), not another
app's bot user (`is_bot`), and not Slackbot (whose `is_bot` is false). When Slack cannot be
asked, the person is refused too: a part in a contract is never given on a guess.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

logger = logging.getLogger(__name__)

SLACKBOT = "USLACKBOT"
NOT_FOUND = frozenset({"user_not_found", "users_not_found", "user_not_visible"})

# Why someone cannot take a part; each reads after a person's name or a mention.
ITSELF = "is North Star itself, not a person"
A_BOT = "is a bot, not a person"
DEACTIVATED = "is a deactivated account"
UNKNOWN = "is not a member of this workspace"
UNCHECKED = "could not be checked with Slack just now"

_own_ids: dict[tuple[str, str], str] = {}


async def own_user_id(client: AsyncWebClient) -> str | None:
    """The bot's own user id, from `auth.test`, asked once per API URL and token."""
    key = (client.base_url, client.token or "")
    if key not in _own_ids:
        try:
            answer = await client.auth_test()
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError):
            logger.warning("auth.test failed: the bot's own user id is unknown", exc_info=True)
            return None
        user_id = answer.get("user_id")
        if not isinstance(user_id, str) or not user_id:
            return None
        _own_ids[key] = user_id
    return _own_ids[key]


def problem_with(user: dict[str, object], *, own_id: str | None) -> str | None:
    """Why the `users.info` user object cannot take a part in a contract, or None."""
    user_id = user.get("id")
    if own_id is not None and user_id == own_id:
        return ITSELF
    if user.get("is_bot") or user_id == SLACKBOT:
        return A_BOT
    if user.get("deleted"):
        return DEACTIVATED
    return None


async def check_person(client: AsyncWebClient, user_id: str, *, own_id: str | None) -> str | None:
    """Why `user_id` cannot take a part in a contract, or None when they can."""
    if own_id is not None and user_id == own_id:
        return ITSELF
    if user_id == SLACKBOT:
        return A_BOT
    try:
        answer = await client.users_info(user=user_id)
    except SlackApiError as error:
        code = error.response.get("error")
        if code in NOT_FOUND:
            return UNKNOWN
        logger.warning("users.info for %s failed: %s", user_id, code)
        return UNCHECKED
    except (SlackClientError, aiohttp.ClientError, TimeoutError):
        logger.warning("users.info for %s failed", user_id, exc_info=True)
        return UNCHECKED
    user = answer.get("user")
    if not isinstance(user, dict):
        return UNKNOWN
    return problem_with(user, own_id=own_id)


async def check_people(client: AsyncWebClient, user_ids: Iterable[str]) -> dict[str, str | None]:
    """Each distinct user id with why it cannot take a part in a contract (None: it can)."""
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return {}
    own_id = await own_user_id(client)
    found = await asyncio.gather(*(check_person(client, u, own_id=own_id) for u in wanted))
    return dict(zip(wanted, found, strict=True))


async def check_people_quickly(
    client: AsyncWebClient, user_ids: Iterable[str], *, seconds: float
) -> dict[str, str | None]:
    """`check_people` within `seconds` (a view submission must be answered within 3 s);
    whoever is not checked by then is UNCHECKED."""
    wanted = list(dict.fromkeys(user_ids))
    try:
        async with asyncio.timeout(seconds):
            return await check_people(client, wanted)
    except TimeoutError:
        logger.warning("Checking %d people with Slack took longer than %ss", len(wanted), seconds)
        return dict.fromkeys(wanted, UNCHECKED)


def field_error(problem: str) -> str:
    """A modal field error for a user select holding someone who cannot take the part."""
    if problem == UNCHECKED:
        return f"This user {problem}: please submit again."
    return f"This user {problem}: choose a person."


def field_errors(chosen: dict[str, str], problems: dict[str, str | None]) -> dict[str, str]:
    """{block id: error} for each user select (block id -> user id) whose user is refused."""
    return {
        block: field_error(problem)
        for block, user in chosen.items()
        if (problem := problems.get(user)) is not None
    }


NAME_LOOKUPS_AT_ONCE = 8


async def real_names(client: AsyncWebClient, user_ids: Iterable[str]) -> dict[str, str]:
    """Each user id's name in Slack (`users.info`), each distinct id asked once, a few at a
    time; whoever Slack cannot name (unknown, not answered) is left out."""
    wanted = list(dict.fromkeys(user_ids))
    gate = asyncio.Semaphore(NAME_LOOKUPS_AT_ONCE)

    async def ask(user_id: str) -> str | None:
        async with gate:
            try:
                answer = await client.users_info(user=user_id)
            except SlackApiError as error:
                logger.warning("users.info for %s: %s", user_id, error.response.get("error"))
                return None
            except (SlackClientError, aiohttp.ClientError, TimeoutError) as error:
                logger.warning("users.info for %s failed: %s", user_id, type(error).__name__)
                return None
        user = answer.get("user")
        if not isinstance(user, dict):
            return None
        profile = user.get("profile")
        name = user.get("real_name") or (
            profile.get("real_name") if isinstance(profile, dict) else None
        )
        return str(name or user.get("name") or "") or None

    found = await asyncio.gather(*(ask(u) for u in wanted))
    return {user_id: name for user_id, name in zip(wanted, found, strict=True) if name}
