"""People as Slack knows them: who may hold a part in a contract, their zones, who is reachable.

Parts. A leader, sponsor, owner, approver, escalation contact or reviewer must be a person Slack
knows here (`users.info` answers), whose account is not deactivated (`deleted`), and who is
not a bot: not North Star itself (its id from `auth.test`, asked once per token), not another
app's bot user (`is_bot`), and not Slackbot (whose `is_bot` is false). When Slack cannot be
asked, the person is refused too: a part in a contract is never given on a guess.

Zones and reach. What `users.info` says of a person (`tz`, `tz_offset`, `deleted`, `is_bot`)
is cached in `slack_user` and refreshed after `TZ_MAX_AGE`; people Slack was not asked about
yet are looked up a few a run, never by paging `users.list`. A contract's zone is its own
`checkin_timezone`, else its leader's Slack zone, else `DEFAULT_TIMEZONE`. A deactivated
account or a bot is unreachable: Slack would accept the DM, so only `users.info` tells.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import delivery
from bot.core.calendar import zone_named, zone_of
from bot.people.model import (
    A_BOT,
    DEACTIVATED,
    DEACTIVATED_ACCOUNT,
    IS_BOT,
    ITSELF,
    UNCHECKED,
    UNKNOWN,
)
from bot.services import Services
from storage.db import SessionFactory, writing
from storage.models import Contract, SlackUser
from storage.queries.people import cached_people, store_people

logger = logging.getLogger(__name__)

SLACKBOT = "USLACKBOT"
NOT_FOUND = frozenset({"user_not_found", "users_not_found", "user_not_visible"})


TZ_MAX_AGE = timedelta(hours=24)
LOOKUPS_PER_RUN = 50
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
        return DEACTIVATED_ACCOUNT
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


# --- zones and reach -----------------------------------------------------------------------


def unreachable_reason(person: SlackUser | None) -> str | None:
    """Why no message can reach this person (`users.info` said so), or None."""
    if person is None:
        return None
    if person.deleted:
        return DEACTIVATED
    if person.is_bot:
        return IS_BOT
    return None


async def cached_zones(*, session: AsyncSession, user_ids: Iterable[str]) -> dict[str, SlackUser]:
    return await cached_people(session=session, user_ids=user_ids)


async def zone_for(*, session: AsyncSession, contract: Contract, default: str) -> ZoneInfo:
    """The contract's zone, else the leader's cached Slack zone, else the default (no calls)."""
    explicit = zone_named(contract.checkin_timezone)
    if explicit is not None:
        return explicit
    cached = (await cached_zones(session=session, user_ids=[contract.leader_id])).get(
        contract.leader_id
    )
    return zone_of(cached) or ZoneInfo(default)


async def refresh_zones(
    *,
    sessions: SessionFactory,
    client: AsyncWebClient,
    user_ids: Iterable[str],
    now: datetime,
    limit: int = LOOKUPS_PER_RUN,
) -> int:
    """Ask `users.info` about the people not cached yet, then about those cached longer than
    `TZ_MAX_AGE`, at most `limit` of them; how many answers were stored.

    One person at a time, a few per run, never `users.list`: that is Tier 2 (about 20 calls
    a minute) and pages through the whole workspace, so in a large one it would hold every
    prompt behind minutes of paging. Callers send what they already know first. A lookup
    that fails for a passing reason keeps what was cached and is tried on a later run.
    """
    wanted = set(user_ids)
    async with sessions() as session:
        cached = await cached_zones(session=session, user_ids=wanted)
    unknown = sorted(u for u in wanted if u not in cached)
    stale = sorted(
        (u for u in wanted if u in cached and cached[u].fetched_at < now - TZ_MAX_AGE),
        key=lambda u: cached[u].fetched_at,
    )
    found: dict[str, dict[str, Any]] = {}
    for user_id in [*unknown, *stale][:limit]:
        facts = await _lookup(client, user_id)
        if facts is None:
            break  # Slack is busy or away: the rest wait for a later run
        found[user_id] = facts
    if found:
        async with sessions() as session:
            await writing(session)
            await store_people(session=session, people=found, now=now)
            await session.commit()
    return len(found)


async def person(
    *, sessions: SessionFactory, client: AsyncWebClient | None, user_id: str, now: datetime
) -> SlackUser | None:
    """What Slack says about `user_id`: the cached answer while fresh, else `users.info` now
    (when a client is given); None if nothing is known."""
    async with sessions() as session:
        cached = await session.get(SlackUser, user_id)
    if client is None or (cached is not None and cached.fetched_at >= now - TZ_MAX_AGE):
        return cached
    facts = await _lookup(client, user_id)
    if facts is None:
        return cached
    async with sessions() as session:
        await writing(session)
        await store_people(session=session, people={user_id: facts}, now=now)
        await session.commit()
        return await session.get(SlackUser, user_id, populate_existing=True)


async def viewer_zone(
    *, services: Services, client: AsyncWebClient | None, user_id: str
) -> ZoneInfo:
    """The zone to show a person times in: their own (`users.info`), else the default."""
    found = await person(
        sessions=services.sessions, client=client, user_id=user_id, now=services.clock.now()
    )
    return zone_of(found) or ZoneInfo(services.settings.default_timezone)


async def ensure_reachable(
    *, services: Services, client: AsyncWebClient | None, user_id: str
) -> None:
    """Raise `delivery.Unreachable` if `user_id` is deactivated or a bot.

    Slack accepts a DM to a deactivated account (`account_inactive` is about the bot's own
    token), so only `users.info` tells: asked lazily, when their message is about to go.
    """
    found = await person(
        sessions=services.sessions, client=client, user_id=user_id, now=services.clock.now()
    )
    reason = unreachable_reason(found)
    if reason is not None:
        raise delivery.Unreachable(reason)


async def _lookup(client: AsyncWebClient, user_id: str) -> dict[str, Any] | None:
    """`users.info` about one person as the columns of `slack_user`; None if Slack did not
    answer this time (rate limit, server or network trouble)."""
    try:
        info = await client.users_info(user=user_id)
    except SlackApiError as error:
        status = error.response.status_code
        if status == 429 or status >= 500 or error.response.get("error") in delivery.TOKEN_ERRORS:
            logger.warning("users.info about %s failed: %s", user_id, error.response.get("error"))
            return None
        # Not found, or a refusal that asking again will not change: the default zone it is.
        return {"tz": None, "tz_offset": None, "deleted": False, "is_bot": False}
    except Exception:
        logger.warning("users.info about %s failed", user_id, exc_info=True)
        return None
    user = info.get("user") or {}
    offset = user.get("tz_offset")
    return {
        "tz": user.get("tz") or None,
        "tz_offset": int(offset) if isinstance(offset, int | float) else None,
        "deleted": bool(user.get("deleted")),
        "is_bot": bool(user.get("is_bot")),
    }


async def known_zones(
    *, services: Services, contracts: Sequence[Contract]
) -> dict[int, ZoneInfo | None]:
    """Each contract's zone from the database alone: its own, else its leader's cached Slack
    zone, else the default if Slack was asked and knew none; None if Slack was never asked."""
    implicit = [c.leader_id for c in contracts if zone_named(c.checkin_timezone) is None]
    async with services.sessions() as session:
        cached = await cached_zones(session=session, user_ids=implicit)
    default = ZoneInfo(services.settings.default_timezone)
    zones: dict[int, ZoneInfo | None] = {}
    for c in contracts:
        found = cached.get(c.leader_id)
        explicit = zone_named(c.checkin_timezone)
        zones[c.id or 0] = explicit or (None if found is None else zone_of(found) or default)
    return zones


async def zones_of(
    *,
    services: Services,
    client: AsyncWebClient | None,
    contracts: Sequence[Contract],
    now: datetime,
) -> dict[int, ZoneInfo]:
    """Each contract's zone; asks Slack about a few unknown or stale leaders first when a
    client is given; whoever is still unknown gets the default."""
    implicit = [c.leader_id for c in contracts if zone_named(c.checkin_timezone) is None]
    if client is not None and implicit:
        await refresh_zones(sessions=services.sessions, client=client, user_ids=implicit, now=now)
    default = ZoneInfo(services.settings.default_timezone)
    zones = await known_zones(services=services, contracts=contracts)
    return {cid: zone or default for cid, zone in zones.items()}
