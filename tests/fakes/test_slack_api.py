"""The fake Web API, driven by the real slack_sdk clients the app uses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    HeaderBlock,
    InputBlock,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.slack_api import FakeSlack, validate_message_blocks, validate_view

JSON = dict[str, Any]


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest_asyncio.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(clock=clock) as fake:
        fake.add_user("U0ALICE01", name="alice", email="alice@example.com", tz="America/New_York")
        fake.add_user("U0GONE001", name="gone", deleted=True)
        yield fake


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)


def section(text: str, block_id: str | None = None) -> JSON:
    block: JSON = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def modal(title: str = "Check-in", **extra: Any) -> JSON:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title},
        "blocks": [section("hello")],
        **extra,
    }


async def slack_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# -- auth and dispatch


async def test_wrong_or_missing_token(fake: FakeSlack) -> None:
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=fake.api_url)
    assert (await slack_error(wrong.auth_test())).response["error"] == "invalid_auth"
    anonymous = AsyncWebClient(base_url=fake.api_url)
    assert (await slack_error(anonymous.auth_test())).response["error"] == "not_authed"


async def test_unknown_method(client: AsyncWebClient) -> None:
    error = await slack_error(client.api_call("chat.scheduleEverything"))
    assert error.response["error"] == "unknown_method"


async def test_auth_test_and_token_as_form_field(fake: FakeSlack, client: AsyncWebClient) -> None:
    assert (await client.auth_test())["user_id"] == fake.bot_user_id
    form = {
        "token": fake.bot_token,
        "channel": "C0GENERAL1",
        "blocks": '[{"type": "divider"}]',
        "text": "fallback",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.api_url + "chat.postMessage", data=form) as resp,
    ):
        body = await resp.json()
    assert body["ok"], body
    call = fake.calls_to("chat.postMessage")[0]
    assert call.token == fake.bot_token
    assert call.args["blocks"] == [{"type": "divider"}]


# -- messages


async def test_post_message_records_and_assigns_ids(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    first = await client.chat_postMessage(channel="C0GENERAL1", text="hi", blocks=[section("hi")])
    second = await client.chat_postMessage(channel="C0GENERAL1", text="again")
    assert float(first["ts"]) < float(second["ts"])
    stored = fake.messages["C0GENERAL1"]
    assert [m["text"] for m in stored] == ["hi", "again"]
    assert stored[0]["user"] == fake.bot_user_id
    assert stored[0]["blocks"][0]["block_id"]


async def test_post_to_user_goes_to_a_stable_dm(fake: FakeSlack, client: AsyncWebClient) -> None:
    opened = await client.conversations_open(users="U0ALICE01")
    posted = await client.chat_postMessage(channel="U0ALICE01", text="your check-in")
    assert posted["channel"] == opened["channel"]["id"] == fake.dm_id("U0ALICE01")
    assert fake.messages[posted["channel"]][0]["text"] == "your check-in"


@pytest.mark.parametrize(
    ("channel", "error"),
    [
        ("C0MISSING1", "channel_not_found"),
        ("U0NOBODY1", "user_not_found"),
    ],
)
async def test_post_message_channel_errors(
    client: AsyncWebClient, channel: str, error: str
) -> None:
    failure = await slack_error(client.chat_postMessage(channel=channel, text="x"))
    assert failure.response["error"] == error


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_post_message_needs_text_or_blocks(client: AsyncWebClient) -> None:
    failure = await slack_error(client.chat_postMessage(channel="C0GENERAL1"))
    assert failure.response["error"] == "no_text"


@pytest.mark.parametrize(
    ("blocks", "reason"),
    [
        ([{"type": "carousel_of_doom"}], "blocks[0]: unsupported block type"),
        ([{**section("x"), "colour": "red"}], "blocks[0].colour: unknown field"),
        ([section("x" * 3001)], "blocks[0]: text attribute cannot exceed 3000"),
        ([section(str(i)) for i in range(51)], "no more than 50 items"),
        ([section("a", "same"), section("b", "same")], "blocks[1].block_id: duplicate"),
        ([section("a", "b" * 256)], "block_id cannot exceed 255"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}], "must be a plain_text"),
        ([{"type": "section", "text": "bare string"}], "blocks[0].text: must be an object"),
    ],
)
async def test_invalid_blocks_are_refused(
    fake: FakeSlack, client: AsyncWebClient, blocks: list[JSON], reason: str
) -> None:
    posting = client.chat_postMessage(channel="C0GENERAL1", text="x", blocks=blocks)
    failure = await slack_error(posting)
    assert failure.response["error"] == "invalid_blocks"
    assert any(reason in error for error in failure.response["errors"]), failure.response
    assert "C0GENERAL1" not in fake.messages


def test_blocks_built_with_slack_sdk_models_are_valid() -> None:
    options = [Option(text="Weekly", value="weekly"), Option(text="Monthly", value="monthly")]
    blocks = [
        HeaderBlock(text="Contract"),
        SectionBlock(text="*Mission*", accessory=ButtonElement(text="Edit", action_id="edit")),
        ActionsBlock(elements=[StaticSelectElement(action_id="cadence", options=options)]),
    ]
    assert validate_message_blocks([b.to_dict() for b in blocks]) == []
    view = View(
        type="modal",
        title="Check-in",
        submit="Save",
        blocks=[InputBlock(label="Note", block_id="note", element=PlainTextInputElement())],
    )
    assert validate_view(view.to_dict(), kind="modal") == []


def test_a_view_checked_before_is_checked_again_once_changed() -> None:
    """The fake remembers what it found in a view's JSON, never what it found in an object
    that has changed since, nor across kinds."""
    view = modal()
    assert validate_view(view, kind="modal") == []
    assert validate_view(view, kind="modal") == []
    view["title"]["text"] = "A title longer than Slack allows"
    assert validate_view(view, kind="modal") == ["view.title: must be 1 to 24 characters, got 32"]
    view["title"]["text"] = "Check-in"
    assert validate_view(view, kind="modal") == []
    assert validate_view(view, kind="home") == [
        "view.type: must be 'home', not 'modal'",
    ]
    assert validate_view({**view, "blocks": {"not", "json"}}, kind="modal") == [
        "blocks: must be an array"
    ]


async def test_a_stored_view_is_a_copy(fake: FakeSlack, client: AsyncWebClient) -> None:
    sent = modal(blocks=[section("before", "one")])
    opened = await client.views_open(trigger_id=fake.issue_trigger_id(), view=sent)
    sent["blocks"][0]["text"]["text"] = "changed by the app after sending"
    answered = opened["view"]
    answered["blocks"][0]["text"]["text"] = "changed by the app in the answer"
    kept = fake.last_view()
    assert kept["blocks"][0]["text"]["text"] == "before"
    kept["blocks"][0]["text"]["text"] = "changed by a test"
    assert fake.last_view()["blocks"][0]["text"]["text"] == "before"


async def test_update_delete_and_permalink(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0GENERAL1", text="draft")
    await client.chat_update(channel="C0GENERAL1", ts=posted["ts"], text="final")
    assert fake.messages["C0GENERAL1"][0]["text"] == "final"
    link = await client.chat_getPermalink(channel="C0GENERAL1", message_ts=posted["ts"])
    assert link["permalink"].endswith(f"/archives/C0GENERAL1/p{posted['ts'].replace('.', '')}")
    await client.chat_delete(channel="C0GENERAL1", ts=posted["ts"])
    missing = await slack_error(client.chat_update(channel="C0GENERAL1", ts=posted["ts"], text="x"))
    assert missing.response["error"] == "message_not_found"


async def test_post_ephemeral(fake: FakeSlack, client: AsyncWebClient) -> None:
    await client.chat_postEphemeral(channel="C0GENERAL1", user="U0ALICE01", text="only you")
    assert fake.ephemerals[0]["user"] == "U0ALICE01"
    assert fake.ephemerals[0]["text"] == "only you"


# -- views


async def test_modal_title_too_long(fake: FakeSlack, client: AsyncWebClient) -> None:
    trigger = fake.issue_trigger_id(user="U0ALICE01")
    failure = await slack_error(client.views_open(trigger_id=trigger, view=modal("x" * 25)))
    assert failure.response["error"] == "invalid_arguments"
    messages = failure.response["response_metadata"]["messages"]
    assert any("view.title" in m for m in messages), messages


async def test_modal_with_inputs_needs_submit(fake: FakeSlack, client: AsyncWebClient) -> None:
    view = modal(
        blocks=[
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "Note"},
                "element": {"type": "plain_text_input"},
            }
        ]
    )
    failure = await slack_error(client.views_open(trigger_id=fake.issue_trigger_id(), view=view))
    assert "submit" in str(failure.response["response_metadata"]["messages"])


async def test_open_modal_and_read_it_back(fake: FakeSlack, client: AsyncWebClient) -> None:
    trigger = fake.issue_trigger_id(user="U0ALICE01")
    answer = await client.views_open(trigger_id=trigger, view=modal(callback_id="checkin"))
    opened = answer["view"]
    assert opened["id"].startswith("V")
    assert opened["root_view_id"] == opened["id"]
    assert opened["state"] == {"values": {}}
    assert opened["private_metadata"] == ""
    last = fake.last_view("U0ALICE01")
    assert last["id"] == opened["id"]
    assert last["callback_id"] == "checkin"


async def test_trigger_ids_work_once_and_expire(
    fake: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    unknown = await slack_error(client.views_open(trigger_id="1.2.3", view=modal()))
    assert unknown.response["error"] == "invalid_trigger_id"

    trigger = fake.issue_trigger_id()
    await client.views_open(trigger_id=trigger, view=modal())
    reused = await slack_error(client.views_open(trigger_id=trigger, view=modal()))
    assert reused.response["error"] == "expired_trigger_id"

    late = fake.issue_trigger_id()
    clock.now += fake.trigger_ttl + 0.1
    expired = await slack_error(client.views_open(trigger_id=late, view=modal()))
    assert expired.response["error"] == "expired_trigger_id"


async def test_push_limit(fake: FakeSlack, client: AsyncWebClient) -> None:
    root = (await client.views_open(trigger_id=fake.issue_trigger_id(), view=modal("One")))["view"]
    top = root
    for title in ("Two", "Three"):
        trigger = fake.issue_trigger_id(view_id=top["id"])
        top = (await client.views_push(trigger_id=trigger, view=modal(title)))["view"]
        assert top["root_view_id"] == root["id"]
    assert fake.stacks[root["id"]] == [root["id"], *fake.stacks[root["id"]][1:]]
    assert len(fake.stacks[root["id"]]) == 3
    trigger = fake.issue_trigger_id(view_id=top["id"])
    failure = await slack_error(client.views_push(trigger_id=trigger, view=modal("Four")))
    assert failure.response["error"] == "push_limit_reached"


async def test_update_checks_hash(fake: FakeSlack, client: AsyncWebClient) -> None:
    opened = (
        await client.views_open(trigger_id=fake.issue_trigger_id(), view=modal(external_id="e1"))
    )["view"]
    updated = (
        await client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Two"))
    )["view"]
    assert updated["id"] == opened["id"]
    assert updated["hash"] != opened["hash"]
    stale = await slack_error(
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Three"))
    )
    assert stale.response["error"] == "hash_conflict"
    by_external = await client.views_update(external_id="e1", view=modal("Four"))
    assert by_external["view"]["title"]["text"] == "Four"
    unknown = await slack_error(client.views_update(view_id="V0NOPE", view=modal()))
    assert unknown.response["error"] == "not_found"


async def test_publish_home(fake: FakeSlack, client: AsyncWebClient) -> None:
    home = {"type": "home", "blocks": [section("Your contract")]}
    published = await client.views_publish(user_id="U0ALICE01", view=home)
    assert fake.home_views["U0ALICE01"]["id"] == published["view"]["id"]
    wrong = await slack_error(client.views_publish(user_id="U0ALICE01", view=modal()))
    assert wrong.response["error"] == "invalid_arguments"
    too_many = {"type": "home", "blocks": [section(str(i)) for i in range(101)]}
    failure = await slack_error(client.views_publish(user_id="U0ALICE01", view=too_many))
    assert "no more than 100" in str(failure.response["response_metadata"])


# -- failures


class RecordingRateLimitHandler(AsyncRateLimitErrorRetryHandler):
    """Retries a 429 at once, remembering the Retry-After it was told."""

    def __init__(self) -> None:
        super().__init__(max_retry_count=1)
        self.retry_after: list[str] = []

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        assert response is not None
        self.retry_after.append(response.headers["Retry-After"][0])
        state.next_attempt_requested = True
        state.increment_current_attempt()


async def test_rate_limit_without_retries(fake: FakeSlack) -> None:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=[])
    fake.fail_next("chat.postMessage", status=429, retry_after=7)
    failure = await slack_error(client.chat_postMessage(channel="C0GENERAL1", text="x"))
    assert failure.response.status_code == 429
    assert failure.response.headers["Retry-After"] == "7"
    assert failure.response["error"] == "ratelimited"
    assert (await client.chat_postMessage(channel="C0GENERAL1", text="x"))["ok"]


async def test_rate_limit_retried_by_the_sdk(fake: FakeSlack) -> None:
    handler = RecordingRateLimitHandler()
    handlers: list[AsyncRetryHandler] = [handler]
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=handlers)
    fake.fail_next("chat.postMessage", status=429, retry_after=3)
    assert (await client.chat_postMessage(channel="C0GENERAL1", text="x"))["ok"]
    assert handler.retry_after == ["3"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]


async def test_server_error_and_injected_error(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next("users.info", status=500)
    fake.fail_next("users.info", status=200, error="team_access_not_granted")
    first = await slack_error(client.users_info(user="U0ALICE01"))
    assert first.response.status_code == 500
    second = await slack_error(client.users_info(user="U0ALICE01"))
    assert second.response["error"] == "team_access_not_granted"
    assert (await client.users_info(user="U0ALICE01"))["ok"]


# -- users and team


async def test_users_info_has_time_zone(client: AsyncWebClient) -> None:
    user = (await client.users_info(user="U0ALICE01"))["user"]
    now = datetime.now(ZoneInfo("America/New_York"))
    assert user["tz"] == "America/New_York"
    assert user["tz_offset"] in (-5 * 3600, -4 * 3600)
    assert user["tz_label"] == now.tzname()
    assert user["profile"]["email"] == "alice@example.com"
    missing = await slack_error(client.users_info(user="U0NOBODY1"))
    assert missing.response["error"] == "user_not_found"


async def test_lookup_by_email_and_list(client: AsyncWebClient) -> None:
    found = await client.users_lookupByEmail(email="Alice@Example.com")
    assert found["user"]["id"] == "U0ALICE01"
    missing = await slack_error(client.users_lookupByEmail(email="nobody@example.com"))
    assert missing.response["error"] == "users_not_found"
    first = await client.users_list(limit=2)
    rest = await client.users_list(cursor=first["response_metadata"]["next_cursor"])
    ids = [u["id"] for u in first["members"] + rest["members"]]
    assert "U0ALICE01" in ids
    assert len(ids) == len(set(ids)) == 3


async def test_team_info(fake: FakeSlack, client: AsyncWebClient) -> None:
    assert (await client.team_info())["team"]["id"] == fake.team_id


# -- response_url


async def test_response_url_posts(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0GENERAL1", text="pick one")
    url = fake.new_response_url(channel="C0GENERAL1", user="U0ALICE01", message_ts=posted["ts"])
    hook = AsyncWebhookClient(url)

    assert (await hook.send(text="just you")).body == "ok"
    assert fake.ephemerals[-1]["text"] == "just you"
    await hook.send(text="everyone", response_type="in_channel")
    assert fake.messages["C0GENERAL1"][-1]["text"] == "everyone"
    await hook.send(text="picked", replace_original=True)
    assert fake.messages["C0GENERAL1"][0]["text"] == "picked"

    bad = await hook.send(blocks=[{"type": "nope"}])
    assert (bad.status_code, bad.body) == (400, "invalid_blocks")
    gone = await AsyncWebhookClient(fake.base_url + "/response/nope").send(text="x")
    assert gone.status_code == 404
    assert [c.status for c in fake.calls_to("response_url")] == [200, 200, 200, 400, 404]


# -- waiting


async def test_wait_for_wakes_on_a_call(fake: FakeSlack, client: AsyncWebClient) -> None:
    async def later() -> None:
        await asyncio.sleep(0.01)
        await client.chat_postMessage(channel="C0GENERAL1", text="late")

    task = asyncio.create_task(later())
    calls = await fake.wait_for("chat.postMessage", timeout=2)
    await task
    assert calls[0].args["text"] == "late"


async def test_wait_for_times_out_with_a_listing(fake: FakeSlack, client: AsyncWebClient) -> None:
    await client.auth_test()
    with pytest.raises(AssertionError, match=r"views\.open(.|\n)*auth\.test"):
        await fake.wait_for("views.open", timeout=0.05)


async def test_reset_forgets_calls_not_users(fake: FakeSlack, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel="C0GENERAL1", text="x")
    fake.reset()
    assert fake.calls == []
    assert fake.messages == {}
    assert (await client.users_info(user="U0ALICE01"))["ok"]
