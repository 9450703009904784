"""The fake refuses what Slack refuses and accepts what Slack accepts, where a naive fake
would not: each case here is a way the app once passed its tests and would fail in Slack.

Sources (Slack's method reference and public reports), per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.sandbox.fake_slack import (
    MESSAGE_BLOCKS_TEXT_LIMIT,
    RESPONSE_URL_TTL,
    RESPONSE_URL_USES,
    TIER_2_PER_MINUTE,
    USERS_LIST_UNPAGED,
    VIEW_SIZE_LIMIT,
    block_text_length,
)
from tests.fakes.slack_api import FakeSlack

JSON = dict[str, Any]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(clock=clock) as fake:
        fake.add_user("U0ALICE01", name="alice", tz="America/New_York")
        fake.add_user("U0GONE001", name="gone", deleted=True)
        fake.add_user("U0OTHERBT", name="otherbot", is_bot=True)
        fake.add_user("U0NOZONE1", name="nozone", tz=None, tz_offset=19800)
        yield fake


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=[])


def section(text: str) -> JSON:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def modal(*blocks: JSON) -> JSON:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Check-in"},
        "blocks": list(blocks) or [section("hello")],
    }


async def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as caught:
        await call
    return str(caught.value.response["error"])


# -- people ----------------------------------------------------------------------------
# python-slack-sdk#1156: chat_postMessage to a deleted user succeeds (their DM history
# still exists; users.info/users.list say `deleted: true`). The chat.postMessage reference:
# `account_inactive` is "Authentication token is for a deleted user or workspace when using
# a bot token", about the caller, not the recipient.


async def test_a_dm_to_a_deactivated_person_is_accepted(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="U0GONE001", text="your check-in")
    assert posted["ok"] and posted["channel"] == fake.dm_id("U0GONE001")
    again = await client.chat_postMessage(channel=posted["channel"], text="a reminder")
    assert again["ok"]
    assert (await client.users_info(user="U0GONE001"))["user"]["deleted"] is True


async def test_a_dead_token_fails_every_call_with_account_inactive(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.token_error = "account_inactive"
    assert await error_of(client.chat_postMessage(channel="U0ALICE01", text="x")) == (
        "account_inactive"
    )
    assert await error_of(client.users_info(user="U0ALICE01")) == "account_inactive"
    fake.token_error = None
    assert (await client.chat_postMessage(channel="U0ALICE01", text="x"))["ok"]


async def test_a_dm_to_another_bot_is_refused(client: AsyncWebClient) -> None:
    assert await error_of(client.chat_postMessage(channel="U0OTHERBT", text="x")) == (
        "cannot_dm_bot"
    )
    assert await error_of(client.conversations_open(users="U0OTHERBT")) == "cannot_dm_bot"


async def test_a_person_without_a_zone_has_only_an_offset(client: AsyncWebClient) -> None:
    user = (await client.users_info(user="U0NOZONE1"))["user"]
    assert user["tz"] is None
    assert user["tz_offset"] == 19800


# -- message size ----------------------------------------------------------------------
# bolt-js#2509: msg_blocks_too_long from about 13,200 characters of block text (13,297 with
# markdown blocks only, 13,172 with a divider); bolt-js#2867: refused at 11,341 characters
# of `.text`, Slack's staff speaking of 12,000 "with a buffer for block containers". Neither
# limit is in the reference, which lists only 50 blocks and 3,000 characters a section.


def sections_of(total: int, size: int = 2900) -> list[JSON]:
    blocks, left = [], total
    while left > 0:
        blocks.append(section("x" * min(size, left)))
        left -= size
    return blocks


async def test_too_much_block_text_is_refused_though_every_block_is_valid(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fits = sections_of(MESSAGE_BLOCKS_TEXT_LIMIT)
    too_long = sections_of(MESSAGE_BLOCKS_TEXT_LIMIT + 1)
    assert block_text_length(too_long) == MESSAGE_BLOCKS_TEXT_LIMIT + 1
    assert len(too_long) < 50
    posted = await client.chat_postMessage(channel="C0GENERAL1", text="x", blocks=fits)
    assert posted["ok"]
    failure = client.chat_postMessage(channel="C0GENERAL1", text="x", blocks=too_long)
    assert await error_of(failure) == "msg_blocks_too_long"
    update = client.chat_update(channel="C0GENERAL1", ts=posted["ts"], text="x", blocks=too_long)
    assert await error_of(update) == "msg_blocks_too_long"
    assert len(fake.messages["C0GENERAL1"]) == 1


async def test_button_labels_and_context_count_as_block_text(client: AsyncWebClient) -> None:
    button = {
        "type": "actions",
        "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "y" * 70}, "value": "1"}
        ],
    }
    note = {"type": "context", "elements": [{"type": "mrkdwn", "text": "z" * 2000}]}
    blocks = [*sections_of(MESSAGE_BLOCKS_TEXT_LIMIT - 2000), note, button]
    assert block_text_length(blocks) == MESSAGE_BLOCKS_TEXT_LIMIT + 70
    failure = client.chat_postMessage(channel="C0GENERAL1", text="x", blocks=blocks)
    assert await error_of(failure) == "msg_blocks_too_long"


# -- chat.update -----------------------------------------------------------------------
# python-slack-sdk#528 and #696: chat.update answers channel_not_found for a user id or a
# channel name where chat.postMessage took it; it needs the conversation id.


async def test_chat_update_needs_the_conversation_id(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="U0ALICE01", text="prompt")
    by_user = client.chat_update(channel="U0ALICE01", ts=posted["ts"], text="edited")
    assert await error_of(by_user) == "channel_not_found"
    updated = await client.chat_update(channel=posted["channel"], ts=posted["ts"], text="edited")
    assert updated["ok"]
    assert fake.messages[fake.dm_id("U0ALICE01")][0]["text"] == "edited"


# -- response_url ----------------------------------------------------------------------
# Slack's slash-command guide, as quoted by spatie's laravel-slack-slash-command docs and the
# zenn.dev response_url article: "you may respond up to 5 times within 30 minutes".


async def test_a_response_url_takes_five_posts(fake: FakeSlack) -> None:
    hook = AsyncWebhookClient(fake.new_response_url(channel="C0GENERAL1", user="U0ALICE01"))
    for n in range(RESPONSE_URL_USES):
        assert (await hook.send(text=f"part {n}")).status_code == 200
    sixth = await hook.send(text="one too many")
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    assert [e["text"] for e in fake.ephemerals] == [f"part {n}" for n in range(5)]


async def test_a_response_url_expires_after_thirty_minutes(fake: FakeSlack, clock: Clock) -> None:
    url = fake.new_response_url(channel="C0GENERAL1", user="U0ALICE01")
    clock.now += RESPONSE_URL_TTL - 1
    assert (await AsyncWebhookClient(url).send(text="in time")).status_code == 200
    clock.now += 2
    late = await AsyncWebhookClient(url).send(text="late")
    assert (late.status_code, late.body) == (404, "expired_url")


# -- views -----------------------------------------------------------------------------
# views.open, views.push, views.update, views.publish: `view_too_large`, "Error returned if
# the provided view is greater than 250kb" (their reference pages, as mirrored by slack_kit).


async def test_a_view_over_250_kb_is_refused(fake: FakeSlack, client: AsyncWebClient) -> None:
    big = [section("w" * 2900) for _ in range(90)]
    home = {"type": "home", "blocks": big}
    assert len(str(home)) > VIEW_SIZE_LIMIT
    assert await error_of(client.views_publish(user_id="U0ALICE01", view=home)) == (
        "view_too_large"
    )
    opened = client.views_open(trigger_id=fake.issue_trigger_id(), view=modal(*big))
    assert await error_of(opened) == "view_too_large"
    small = {"type": "home", "blocks": big[:20]}
    assert (await client.views_publish(user_id="U0ALICE01", view=small))["ok"]


# views.push reference: "a valid trigger_id generated from an interaction within the existing
# modal"; python-slack-sdk#804: a push with a shortcut's trigger_id is refused as invalid.


async def test_views_push_needs_a_trigger_from_inside_a_modal(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    root = (await client.views_open(trigger_id=fake.issue_trigger_id(), view=modal()))["view"]
    from_a_command = fake.issue_trigger_id(user="U0ALICE01")
    assert await error_of(client.views_push(trigger_id=from_a_command, view=modal())) == (
        "invalid_trigger_id"
    )
    published = await client.views_publish(
        user_id="U0ALICE01", view={"type": "home", "blocks": [section("home")]}
    )
    from_home = fake.issue_trigger_id(user="U0ALICE01", view_id=published["view"]["id"])
    assert await error_of(client.views_push(trigger_id=from_home, view=modal())) == (
        "invalid_trigger_id"
    )
    from_the_modal = fake.issue_trigger_id(view_id=root["id"])
    pushed = await client.views_push(trigger_id=from_the_modal, view=modal())
    assert pushed["view"]["root_view_id"] == root["id"]


# -- users.list ------------------------------------------------------------------------
# users.list reference: cursor pagination (`response_metadata.next_cursor`), `limit`
# ("Providing no limit value will result in Slack attempting to deliver you the entire
# result set. If the collection is too large you may experience limit_required"), Tier 2
# (20+ a minute), 429 with Retry-After past it (rate limits guide).


async def test_users_list_pages_with_a_cursor(fake: FakeSlack, client: AsyncWebClient) -> None:
    for n in range(7):
        fake.add_user(f"U0PAGE{n:03d}", name=f"p{n}")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await client.users_list(limit=3, cursor=cursor)
        pages += 1
        assert len(page["members"]) <= 3
        seen += [m["id"] for m in page["members"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(fake.users) and pages == 4
    assert await error_of(client.users_list(limit=3, cursor="garbage")) == "invalid_cursor"


async def test_users_list_of_a_large_workspace_needs_a_limit(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    for n in range(USERS_LIST_UNPAGED):
        fake.add_user(f"U0BULK{n:04d}", name=f"b{n}")
    assert await error_of(client.users_list()) == "limit_required"
    assert len((await client.users_list(limit=200))["members"]) == 200


async def test_users_list_is_tier_2(fake: FakeSlack, client: AsyncWebClient, clock: Clock) -> None:
    for _ in range(TIER_2_PER_MINUTE):
        assert (await client.users_list(limit=10))["ok"]
    with pytest.raises(SlackApiError) as caught:
        await client.users_list(limit=10)
    assert caught.value.response.status_code == 429
    assert 0 < int(caught.value.response.headers["Retry-After"]) <= 61
    assert (await client.users_info(user="U0ALICE01"))["ok"]  # other tiers are not held
    clock.now += 60
    assert (await client.users_list(limit=10))["ok"]


# -- the app's own identity ------------------------------------------------------------


async def test_bots_info_names_the_app(fake: FakeSlack, client: AsyncWebClient) -> None:
    me = await client.auth_test()
    bot = (await client.bots_info(bot=me["bot_id"]))["bot"]
    assert (bot["app_id"], bot["user_id"]) == (fake.app_id, fake.bot_user_id)
    assert await error_of(client.bots_info(bot="B0NOBODY")) == "bot_not_found"


# -- conversations ---------------------------------------------------------------------
# The conversation filter object (Block Kit reference, composition objects): at least one of
# `include`, `exclude_external_shared_channels`, `exclude_bot_users`; `include` an array of
# im, mpim, private and public that "cannot be empty". A conversations_select sends the
# chosen id as `selected_conversation`.


def channel_input(element_filter: Any) -> JSON:
    element: JSON = {"type": "conversations_select", "action_id": "channel"}
    if element_filter is not None:
        element["filter"] = element_filter
    return {
        "type": "input",
        "block_id": "channel",
        "label": {"type": "plain_text", "text": "Channel"},
        "element": element,
    }


@pytest.mark.parametrize(
    "element_filter",
    [
        {},
        {"include": []},
        {"include": ["channels"]},
        {"include": ["public"], "exclude_bots": True},
        {"exclude_bot_users": "yes"},
        ["public"],
    ],
)
async def test_a_bad_conversation_filter_is_refused(
    fake: FakeSlack, client: AsyncWebClient, element_filter: Any
) -> None:
    view = {**modal(channel_input(element_filter)), "submit": {"type": "plain_text", "text": "Go"}}
    opened = client.views_open(trigger_id=fake.issue_trigger_id(), view=view)
    assert await error_of(opened) == "invalid_arguments"


async def test_a_conversation_filter_for_channels_is_accepted(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    good = {"include": ["public", "private"], "exclude_bot_users": True}
    view = {**modal(channel_input(good)), "submit": {"type": "plain_text", "text": "Go"}}
    assert (await client.views_open(trigger_id=fake.issue_trigger_id(), view=view))["ok"]


# conversations.info: a private channel the bot is not in is `channel_not_found` for it, as an
# unknown id is; a public one it is not in answers with `is_member: false`.


async def test_conversations_info_sees_what_the_bot_may_see(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.add_channel("C0PUBLIC1", name="public", is_member=False)
    fake.add_channel("G0SECRET1", name="secret", is_private=True, is_member=False)
    fake.add_channel("G0MINE001", name="mine", is_private=True)
    answer = await client.conversations_info(channel="C0PUBLIC1")
    assert answer["channel"]["is_member"] is False
    assert (await client.conversations_info(channel="G0MINE001"))["channel"]["is_private"]
    for channel in ("G0SECRET1", "C0NOWHERE"):
        assert await error_of(client.conversations_info(channel=channel)) == "channel_not_found"
