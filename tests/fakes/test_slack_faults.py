"""The fake Web API's message metadata, conversations.history and injected faults, driven by
the real slack_sdk client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack

METADATA = {"event_type": "northstar_delivery", "event_payload": {"delivery_id": 7}}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    clock = Clock()
    async with FakeSlack(clock=clock, wall_clock=lambda: 1_800_000_000 + clock.now) as fake:
        fake.add_user("U0ALICE01", name="alice")
        yield fake


@pytest_asyncio.fixture
async def client(fake: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    async with aiohttp.ClientSession() as session:
        yield AsyncWebClient(
            token=fake.bot_token, base_url=fake.api_url, session=session, retry_handlers=[]
        )


async def test_metadata_is_kept_and_read_back_only_when_asked_for(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="U0ALICE01", text="hi", metadata=METADATA)
    await client.chat_postMessage(channel="U0ALICE01", text="no metadata")
    channel = str(posted["channel"])
    plain = await client.conversations_history(channel=channel)
    assert [m["text"] for m in plain["messages"]] == ["no metadata", "hi"]  # newest first
    assert all("metadata" not in m for m in plain["messages"])
    full = await client.conversations_history(channel=channel, include_all_metadata=True)
    assert full["messages"][1]["metadata"] == METADATA
    assert "metadata" not in full["messages"][0]


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"event_payload": {}}, "invalid_metadata_format"),
        ("not json", "invalid_metadata_format"),
        ({"event_type": "", "event_payload": {}}, "invalid_metadata_schema"),
        ({"event_type": "x", "event_payload": "text"}, "invalid_metadata_schema"),
    ],
)
async def test_malformed_metadata_is_refused(
    client: AsyncWebClient, metadata: object, error: str
) -> None:
    with pytest.raises(SlackApiError) as refused:
        await client.api_call(
            "chat.postMessage", json={"channel": "U0ALICE01", "text": "x", "metadata": metadata}
        )
    assert refused.value.response["error"] == error


async def test_history_is_paged_and_bounded_by_oldest(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    clock = fake.clock
    assert isinstance(clock, Clock)
    stamps = []
    for n in range(5):
        clock.now += 10
        stamps.append((await client.chat_postMessage(channel="U0ALICE01", text=f"m{n}"))["ts"])
    channel = fake.dm_id("U0ALICE01")
    page = await client.conversations_history(channel=channel, oldest=stamps[1], limit=2)
    assert [m["text"] for m in page["messages"]] == ["m4", "m3"] and page["has_more"]
    cursor = page["response_metadata"]["next_cursor"]
    rest = await client.conversations_history(
        channel=channel, oldest=stamps[1], limit=2, cursor=cursor
    )
    assert [m["text"] for m in rest["messages"]] == ["m2"] and not rest["has_more"]
    with_it = await client.conversations_history(channel=channel, oldest=stamps[1], inclusive=True)
    assert [m["text"] for m in with_it["messages"]][-1] == "m1"
    with pytest.raises(SlackApiError) as unknown:
        await client.conversations_history(channel="D0NOBODY1")
    assert unknown.value.response["error"] == "channel_not_found"


async def test_an_outage_answers_5xx_for_its_window_on_the_fakes_clock(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    clock = fake.clock
    assert isinstance(clock, Clock)
    fake.outage(start=clock.now + 5, seconds=10, status=503)
    fake.outage(start=clock.now + 30, seconds=5, methods=["users.info"])
    await client.chat_postMessage(channel="U0ALICE01", text="before")
    clock.now += 5
    with pytest.raises(SlackApiError) as down:
        await client.chat_postMessage(channel="U0ALICE01", text="during")
    assert down.value.response.status_code == 503
    clock.now += 10
    await client.chat_postMessage(channel="U0ALICE01", text="after")
    clock.now += 15
    await client.chat_postMessage(channel="U0ALICE01", text="only users.info is down")
    with pytest.raises(SlackApiError):
        await client.users_info(user="U0ALICE01")
    texts = [m["text"] for m in fake.messages[fake.dm_id("U0ALICE01")]]
    assert texts == ["before", "after", "only users.info is down"]


async def test_latency_and_a_post_accepted_then_answered_too_late(fake: FakeSlack) -> None:
    fake.set_latency((0.01, 0.02))
    fake.stall_after_accepting(seconds=0.5, times=1, every=2)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.2)) as session:
        client = AsyncWebClient(
            token=fake.bot_token, base_url=fake.api_url, session=session, retry_handlers=[]
        )
        await client.chat_postMessage(channel="U0ALICE01", text="first")
        with pytest.raises(TimeoutError):
            await client.chat_postMessage(channel="U0ALICE01", text="second")
    await asyncio.sleep(0.4)  # the fake answers the abandoned call after all
    # The client never heard, but the message is there.
    assert [m["text"] for m in fake.messages[fake.dm_id("U0ALICE01")]] == ["first", "second"]
    assert fake.most_in_flight["chat.postMessage"] == 1
