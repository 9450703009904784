"""The driver against a tiny Bolt app served over HTTP and wired to the fake Slack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp, AsyncRespond, AsyncSay
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.driver import SlackDriver
from tests.fakes.slack_api import FakeSlack

JSON = dict[str, Any]
SECRET = "driver-test-secret"
ALICE = "U0ALICE01"


def plain(text: str) -> JSON:
    return {"type": "plain_text", "text": text}


def checkin_view() -> JSON:
    options = [{"text": plain(str(n)), "value": str(n)} for n in range(1, 6)]
    return {
        "type": "modal",
        "callback_id": "checkin",
        "title": plain("Weekly check-in"),
        "submit": plain("Save"),
        "notify_on_close": True,
        "private_metadata": "contract-7",
        "blocks": [
            {
                "type": "input",
                "block_id": "note",
                "label": plain("What moved?"),
                "element": {"type": "plain_text_input", "action_id": "note"},
            },
            {
                "type": "input",
                "block_id": "confidence",
                "label": plain("Confidence"),
                "element": {"type": "static_select", "action_id": "pick", "options": options},
            },
            {
                "type": "input",
                "block_id": "due",
                "label": plain("Next check-in"),
                "element": {
                    "type": "datepicker",
                    "action_id": "date",
                    "initial_date": "2027-03-17",
                },
            },
            {
                "type": "input",
                "block_id": "tags",
                "optional": True,
                "label": plain("Tags"),
                "element": {"type": "checkboxes", "action_id": "tags", "options": options[:2]},
            },
            {
                "type": "actions",
                "block_id": "more",
                "elements": [
                    {"type": "button", "action_id": "add_evidence", "text": plain("Evidence")}
                ],
            },
        ],
    }


def evidence_view() -> JSON:
    return {
        "type": "modal",
        "callback_id": "evidence",
        "title": plain("Evidence"),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Paste a link"}}],
    }


@dataclass
class Seen:
    """What the app's listeners received."""

    submissions: list[JSON] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    retries: list[str | None] = field(default_factory=list)


def build_app(fake: FakeSlack, seen: Seen) -> AsyncApp:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    app = AsyncApp(signing_secret=SECRET, client=client)

    @app.command("/checkin")
    async def open_checkin(ack: AsyncAck, body: JSON, client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=checkin_view())

    @app.command("/post")
    async def post_card(ack: AsyncAck, say: AsyncSay) -> None:
        await ack()
        button = {"type": "button", "action_id": "approve", "text": plain("Approve"), "value": "7"}
        await say(text="Amendment", blocks=[{"type": "actions", "elements": [button]}])

    @app.action("approve")
    async def approve(ack: AsyncAck, body: JSON, respond: AsyncRespond) -> None:
        await ack()
        value = body["actions"][0]["value"]
        await respond(text=f"approved {value} by {body['user']['id']}", replace_original=True)

    @app.action("add_evidence")
    async def push_evidence(ack: AsyncAck, body: JSON, client: AsyncWebClient) -> None:
        await ack()
        await client.views_push(trigger_id=body["trigger_id"], view=evidence_view())

    @app.view("checkin")
    async def submit_checkin(ack: AsyncAck, view: JSON) -> None:
        values = view["state"]["values"]
        note = values["note"]["note"]["value"]
        if values["confidence"]["pick"]["selected_option"]["value"] == "1":
            await ack(response_action="errors", errors={"confidence": "Say more about that"})
        elif note == "update":
            await ack(response_action="update", view={**checkin_view(), "title": plain("Thanks")})
        elif note == "broken":
            await ack(response_action="update", view={**checkin_view(), "title": plain("x" * 30)})
        else:
            seen.submissions.append(view)
            await ack()

    @app.view_closed("checkin")
    async def closed(ack: AsyncAck, view: JSON) -> None:
        await ack()
        seen.closed.append(view["id"])

    @app.shortcut("new_contract")
    async def new_contract(ack: AsyncAck, body: JSON, client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=evidence_view())

    @app.shortcut("save_evidence")
    async def save_evidence(ack: AsyncAck, body: JSON, client: AsyncWebClient) -> None:
        await ack()
        text = body["message"]["text"]
        await client.chat_postMessage(channel=body["user"]["id"], text=f"saved: {text}")

    @app.event("app_mention")
    async def mentioned(event: JSON, say: AsyncSay, request: AsyncBoltRequest) -> None:
        seen.retries.append(request.headers.get("x-slack-retry-num", [None])[0])
        await say(text=f"hello <@{event['user']}>")

    @app.event("app_home_opened")
    async def home(event: JSON, client: AsyncWebClient) -> None:
        section = {"type": "section", "text": {"type": "mrkdwn", "text": "Your contract"}}
        await client.views_publish(
            user_id=event["user"], view={"type": "home", "blocks": [section]}
        )

    return app


@dataclass
class Harness:
    fake: FakeSlack
    driver: SlackDriver
    seen: Seen


@pytest_asyncio.fixture
async def harness() -> AsyncIterator[Harness]:
    seen = Seen()
    async with FakeSlack() as fake:
        fake.add_user(ALICE, name="alice")
        app = build_app(fake, seen)

        async def events(request: web.Request) -> web.Response:
            return await to_aiohttp_response(
                await app.async_dispatch(await to_bolt_request(request))
            )

        web_app = web.Application()
        web_app.router.add_post("/slack/events", events)
        runner = web.AppRunner(web_app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/slack/events"
        try:
            async with SlackDriver(app_url=url, signing_secret=SECRET, fake=fake) as driver:
                yield Harness(fake, driver, seen)
        finally:
            await runner.cleanup()


async def open_checkin(h: Harness) -> JSON:
    response = await h.driver.command("/checkin", user=ALICE)
    assert response.status == 200
    await h.fake.wait_for("views.open")
    return h.fake.last_view(ALICE)


async def test_command_opens_a_modal(harness: Harness) -> None:
    view = await open_checkin(harness)
    assert view["callback_id"] == "checkin"
    command = harness.fake.calls_to("views.open")[0]
    assert command.response["ok"], command.response


async def test_submission_with_errors_keeps_the_modal(harness: Harness) -> None:
    view = await open_checkin(harness)
    answer = await harness.driver.submit_view(
        view, {"note": "slow week", "confidence": "1"}, user=ALICE
    )
    assert answer.json == {
        "response_action": "errors",
        "errors": {"confidence": "Say more about that"},
    }
    assert harness.fake.last_view(ALICE)["id"] == view["id"]


async def test_submission_sends_state_as_slack_does(harness: Harness) -> None:
    view = await open_checkin(harness)
    answer = await harness.driver.submit_view(
        view, {"note": "shipped", "confidence": "4", "tags": ["2"]}, user=ALICE
    )
    assert answer.status == 200
    values = harness.seen.submissions[0]["state"]["values"]
    assert values["note"]["note"] == {"type": "plain_text_input", "value": "shipped"}
    assert values["confidence"]["pick"]["selected_option"]["value"] == "4"
    assert values["due"]["date"] == {"type": "datepicker", "selected_date": "2027-03-17"}
    assert [o["value"] for o in values["tags"]["tags"]["selected_options"]] == ["2"]
    assert harness.seen.submissions[0]["private_metadata"] == "contract-7"
    assert not harness.fake.is_open(view["id"])


async def test_submission_refuses_what_slack_would(harness: Harness) -> None:
    view = await open_checkin(harness)
    with pytest.raises(AssertionError, match="required"):
        await harness.driver.submit_view(view, {"confidence": "3"}, user=ALICE)
    with pytest.raises(AssertionError, match="no option"):
        await harness.driver.submit_view(view, {"note": "x", "confidence": "9"}, user=ALICE)
    with pytest.raises(AssertionError, match="title"):
        await harness.driver.submit_view(view, {"note": "broken", "confidence": "3"}, user=ALICE)


async def test_response_action_update_replaces_the_modal(harness: Harness) -> None:
    view = await open_checkin(harness)
    await harness.driver.submit_view(view, {"note": "update", "confidence": "3"}, user=ALICE)
    updated = harness.fake.last_view(ALICE)
    assert updated["id"] == view["id"]
    assert updated["title"]["text"] == "Thanks"
    assert updated["hash"] != view["hash"]


async def test_action_in_a_modal_pushes_a_view(harness: Harness) -> None:
    view = await open_checkin(harness)
    await harness.driver.block_action(user=ALICE, action_id="add_evidence", view=view)
    pushed = (await harness.fake.wait_for("views.push"))[0]
    assert pushed.response["ok"], pushed.response
    top = harness.fake.last_view(ALICE)
    assert top["previous_view_id"] == view["id"]
    assert harness.fake.stacks[view["id"]] == [view["id"], top["id"]]


async def test_message_action_responds_through_response_url(harness: Harness) -> None:
    await harness.driver.command("/post", user=ALICE)
    await harness.fake.wait_for("chat.postMessage")
    message = harness.fake.messages["C0GENERAL1"][0]
    await harness.driver.block_action(user=ALICE, action_id="approve", message=message)
    await harness.fake.wait_for("response_url")
    assert harness.fake.messages["C0GENERAL1"][0]["text"] == f"approved 7 by {ALICE}"


async def test_close_view_sends_view_closed(harness: Harness) -> None:
    view = await open_checkin(harness)
    response = await harness.driver.close_view(view, user=ALICE)
    assert response.status == 200
    assert harness.seen.closed == [view["id"]]
    assert not harness.fake.is_open(view["id"])


async def test_shortcuts(harness: Harness) -> None:
    await harness.driver.global_shortcut(user=ALICE, callback_id="new_contract")
    await harness.fake.wait_for("views.open")
    message = {"type": "message", "ts": "1700000000.000100", "text": "great demo", "user": ALICE}
    await harness.driver.message_shortcut(
        user=ALICE, callback_id="save_evidence", message=message, channel="C0GENERAL1"
    )
    await harness.fake.wait_for("chat.postMessage")
    assert harness.fake.messages[harness.fake.dm_id(ALICE)][0]["text"] == "saved: great demo"


async def test_events_and_retries(harness: Harness) -> None:
    mention = {
        "type": "app_mention",
        "user": ALICE,
        "text": "<@U0BOT0001> hi",
        "channel": "C0GENERAL1",
    }
    first = await harness.driver.event(mention, event_id="Ev0000000001")
    again = await harness.driver.event(mention, event_id="Ev0000000001", retry_num=1)
    assert (first.status, again.status) == (200, 200)
    await harness.fake.wait_for("chat.postMessage", count=2)
    assert harness.seen.retries == [None, "1"]


async def test_app_home_opened(harness: Harness) -> None:
    await harness.driver.app_home_opened(ALICE)
    await harness.fake.wait_for("views.publish")
    assert harness.fake.home_views[ALICE]["type"] == "home"


async def test_tampered_or_stale_signature_is_refused(harness: Harness) -> None:
    body = '{"type": "event_callback"}'
    headers = {**harness.driver.sign(body), "Content-Type": "application/json"}
    tampered = await harness.driver.post_raw(body.replace("event", "evil"), headers)
    assert tampered.status == 401
    stale = harness.driver.sign(body, timestamp=1_600_000_000)
    old = await harness.driver.post_raw(body, {**stale, "Content-Type": "application/json"})
    assert old.status == 401
