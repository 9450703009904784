"""Files in the fake Slack: files_upload_v2 against it, what it refuses as Slack does, the
files it serves, and image blocks that must name an uploaded image."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack, validate_message_blocks

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
USER = "U0LEAD001"


@pytest_asyncio.fixture
async def client(fake_slack: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    async with aiohttp.ClientSession() as session:
        yield AsyncWebClient(
            token=fake_slack.bot_token, base_url=fake_slack.api_url, session=session
        )


async def upload(client: AsyncWebClient, **args: Any) -> str:
    response = await client.files_upload_v2(
        **{"filename": "chart.png", "content": PNG, "title": "A chart", **args}
    )
    return str(response["files"][0]["id"])


def image(ref: dict[str, str]) -> dict[str, Any]:
    return {"type": "image", "slack_file": ref, "alt_text": "a chart"}


async def test_files_upload_v2_uploads_a_private_file_that_is_served(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    file_id = await upload(client)
    assert [c.method for c in fake_slack.calls[-3:]] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    stored = fake_slack.files[file_id]
    assert stored["completed"] and stored["channels"] == [] and stored["title"] == "A chart"
    assert fake_slack.file_bytes(file_id) == PNG
    async with (
        aiohttp.ClientSession() as session,
        session.get(fake_slack.file_url(file_id)) as response,
    ):
        assert response.status == 200 and response.content_type == "image/png"
        assert await response.read() == PNG


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"length": 10}, "invalid_arguments"),  # no filename
        ({"filename": "", "length": 10}, "invalid_arguments"),
        ({"filename": "x" * 256 + ".png", "length": 10}, "invalid_arguments"),
        ({"filename": "chart.png"}, "invalid_arguments"),  # no length
        ({"filename": "chart.png", "length": "ten"}, "invalid_arguments"),
        ({"filename": "chart.png", "length": 0}, "missing_argument"),
        ({"filename": "chart.png", "length": 10, "alt_txt": "x" * 1001}, "alt_txt_too_large"),
    ],
)
async def test_get_upload_url_refuses_a_bad_file(
    client: AsyncWebClient, args: dict[str, Any], error: str
) -> None:
    with pytest.raises(SlackApiError) as refused:
        await client.api_call("files.getUploadURLExternal", params=args)
    assert refused.value.response["error"] == error


async def test_complete_refuses_unknown_unuploaded_or_badly_titled_files(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    with pytest.raises(SlackApiError) as unknown:
        await client.files_completeUploadExternal(files=[{"id": "F0NOTHERE"}])
    assert unknown.value.response["error"] == "file_not_found"

    started = await client.files_getUploadURLExternal(filename="chart.png", length=len(PNG))
    with pytest.raises(SlackApiError) as empty:
        await client.files_completeUploadExternal(files=[{"id": started["file_id"]}])
    assert empty.value.response["error"] == "file_upload_failed"

    with pytest.raises(SlackApiError) as no_files:
        await client.api_call("files.completeUploadExternal", params={"files": "[]"})
    assert no_files.value.response["error"] == "invalid_arguments"

    with pytest.raises(SlackApiError) as titled:
        await upload(client, title="t" * 256)
    assert titled.value.response["error"] == "invalid_arguments"

    file_id = await upload(client)
    with pytest.raises(SlackApiError) as twice:
        await client.files_completeUploadExternal(files=[{"id": file_id}])
    assert twice.value.response["error"] == "file_not_found"


async def test_image_blocks_must_name_an_uploaded_image(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    file_id = await upload(client)
    home = {"type": "home", "blocks": [image({"id": file_id})]}
    assert (await client.views_publish(user_id=USER, view=home))["ok"]
    by_url = {"type": "home", "blocks": [image({"url": fake_slack.file_url(file_id)})]}
    assert (await client.views_publish(user_id=USER, view=by_url))["ok"]

    unknown = {"type": "home", "blocks": [image({"id": "F0NOTHERE"})]}
    with pytest.raises(SlackApiError) as refused:
        await client.views_publish(user_id=USER, view=unknown)
    assert refused.value.response["error"] == "invalid_blocks"

    text = await upload(client, filename="notes.txt", content=b"hello")
    with pytest.raises(SlackApiError) as not_image:
        await client.chat_postMessage(channel=USER, text="x", blocks=[image({"id": text})])
    assert not_image.value.response["error"] == "invalid_blocks"

    started = await client.files_getUploadURLExternal(filename="chart.png", length=len(PNG))
    with pytest.raises(SlackApiError) as incomplete:
        await client.chat_postMessage(
            channel=USER, text="x", blocks=[image({"id": started["file_id"]})]
        )
    assert incomplete.value.response["error"] == "invalid_blocks"


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image", "alt_text": "no source"},
        {
            "type": "image",
            "image_url": "https://x.test/a.png",
            "slack_file": {"id": "F1"},
            "alt_text": "both",
        },
        {
            "type": "image",
            "slack_file": {"id": "F1", "url": "https://x.test/a.png"},
            "alt_text": "x",
        },
        {"type": "image", "slack_file": {"id": "F1"}},
        {"type": "image", "slack_file": {"id": "F1"}, "alt_text": "x" * 2001},
    ],
)
def test_malformed_image_blocks_are_refused(block: dict[str, Any]) -> None:
    assert validate_message_blocks([block])
