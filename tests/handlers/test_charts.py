"""Charts in the summary, App Home and the digest, through signed requests and the fake Slack:
every image block names an uploaded file, and an unchanged chart is uploaded once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from bot.charts import service as chart_service
from bot.sandbox.fake_slack import slack_file_refs
from storage.models import Measurement
from tests.bot.checkins.test_support import run_job, virtual_time
from tests.fakes import Call
from tests.handlers.test_numbers import record
from tests.harness import Bot

LEADER, SPONSOR = "U0LEAD001", "U0SPON001"
TIMEOUT = 30.0  # drawing is slow on a loaded machine; no timing is asserted


def has_images(call: Call) -> bool:
    return bool(slack_file_refs(call.args.get("blocks") or call.args.get("view") or []))


async def summary_blocks(bot: Bot, *, user: str = LEADER) -> list[dict[str, Any]]:
    """Every block the summary came in: its text, and its charts (with it, or after it)."""
    before = len(bot.fake.calls_to("response_url"))
    with_images = len([c for c in bot.fake.calls_to("response_url") if has_images(c)])
    text = "summary" if user == LEADER else f"summary <@{LEADER}>"
    response = await bot.driver.command("/contract", text, user=user)
    assert response.status == 200
    await bot.fake.wait_for(
        "response_url", count=with_images + 1, where=has_images, timeout=TIMEOUT
    )
    calls = bot.fake.calls_to("response_url")[before:]
    assert all(c.status == 200 for c in calls), [c.response for c in calls]
    return [b for c in calls for b in c.args.get("blocks") or []]


async def home_with_charts(bot: Bot, user: str) -> dict[str, Any]:
    """App Home once it shows its charts (published at once, again with new charts)."""

    def shown(call: Call) -> bool:
        return has_images(call) and bool(call.response.get("ok"))

    before = len([c for c in bot.fake.calls_to("views.publish") if shown(c)])
    await bot.driver.app_home_opened(user)
    (*_, call) = await bot.fake.wait_for(
        "views.publish", count=before + 1, where=shown, timeout=TIMEOUT
    )
    assert call.response["ok"], call.response
    return bot.fake.home_views[user]


@contextmanager
def values_loaded() -> Iterator[list[int]]:
    """How many measured values the app loads meanwhile."""
    loaded = [0]

    def note(_target: object, _context: object) -> None:
        loaded[0] += 1

    event.listen(Measurement, "load", note)
    try:
        yield loaded
    finally:
        event.remove(Measurement, "load", note)


def images(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in blocks if b.get("type") == "image"]


def uploads(bot: Bot) -> int:
    return len([c for c in bot.fake.calls_to("upload") if c.status == 200])


def assert_files_exist(bot: Bot, blocks: list[dict[str, Any]]) -> list[str]:
    ids = [ref["id"] for ref in slack_file_refs(blocks)]
    assert ids
    for file_id in ids:
        stored = bot.fake.files[file_id]
        assert stored["completed"] and stored["is_image"] and stored["channels"] == []
        assert bot.fake.file_bytes(file_id).startswith(b"\x89PNG")
    return ids


async def test_the_summary_shows_each_indicator_chart_uploaded_once(
    bot: Bot, example_contract: int
) -> None:
    await record(bot, example_contract, {"I1": [("2027-02-01", 64), ("2027-03-01", 66)]})
    blocks = await summary_blocks(bot)
    shown = images(blocks)
    assert len(shown) >= 2 and all(b["alt_text"] and b["title"]["text"] for b in shown)
    assert any("I1 · Team engagement score" in b["title"]["text"] for b in shown)
    first = assert_files_exist(bot, blocks)
    uploaded = uploads(bot)
    assert uploaded == len(first)

    before = len(bot.fake.calls_to("response_url"))
    again = await summary_blocks(bot, user=SPONSOR)
    assert [ref["id"] for ref in slack_file_refs(again)] == first
    assert uploads(bot) == uploaded  # unchanged charts: neither drawn nor uploaded again
    # ...and they come with the text, in the same messages.
    assert images(bot.fake.calls_to("response_url")[before].args["blocks"])

    await record(bot, example_contract, {"I1": [("2027-03-08", 68)]})
    changed = await summary_blocks(bot)
    assert uploads(bot) == uploaded + 1  # only I1's chart changed
    ids = [ref["id"] for ref in slack_file_refs(changed)]
    assert len(set(ids) - set(first)) == 1


async def test_a_summary_of_charts_unchanged_reads_no_series(
    bot: Bot, example_contract: int
) -> None:
    weeks: list[tuple[str, float]] = [
        (f"2027-{month:02d}-{day:02d}", 60 + day % 7) for month in (2, 3) for day in (1, 8, 15, 22)
    ]
    await record(bot, example_contract, {"I1": weeks})
    with values_loaded() as loaded:
        first = await summary_blocks(bot)  # drawn: the whole series read
    assert loaded[0] >= len(weeks)
    with values_loaded() as loaded:
        again = await summary_blocks(bot, user=SPONSOR)
    assert slack_file_refs(again) == slack_file_refs(first)
    # Known at the history's number: of the values, only the two newest of each indicator
    # its text shows.
    assert 0 < loaded[0] <= 2 * len(images(again)), loaded


async def test_app_home_shows_the_charts(bot: Bot, example_contract: int) -> None:
    leader = await home_with_charts(bot, LEADER)
    assert images(leader["blocks"])
    ids = assert_files_exist(bot, leader["blocks"])

    # The sponsor's Home shows the charts the leader's Home uploaded, at once: one publish.
    before = len(bot.fake.calls_to("views.publish"))
    sponsor = await home_with_charts(bot, SPONSOR)
    assert [r["id"] for r in slack_file_refs(sponsor["blocks"])] == ids
    assert len(bot.fake.calls_to("views.publish")) == before + 1
    assert uploads(bot) == len(bot.fake.files)


async def test_the_digest_shows_the_charts(bot: Bot, example_contract: int) -> None:
    virtual_time(bot.services)
    await record(bot, example_contract, {"I2": [("2027-02-15", 41)]})
    report = await run_job(bot, "digests")
    assert "sent" in str(report)
    digest = next(
        m
        for m in bot.fake.messages.get(bot.fake.dm_id(SPONSOR), [])
        if "North Star digest" in m["text"]
    )
    assert images(digest["blocks"])
    assert_files_exist(bot, digest["blocks"])


async def test_charts_are_drawn_off_the_event_loop(
    bot: Bot, example_contract: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []
    real = chart_service.draw_png

    def watched(chart: Any) -> bytes:
        threads.append(threading.get_ident())
        return real(chart)

    monkeypatch.setattr(chart_service, "draw_png", watched)
    await summary_blocks(bot)
    assert threads and loop_thread not in threads


async def test_concurrent_requests_upload_a_chart_once(bot: Bot, example_contract: int) -> None:
    await asyncio.gather(*(bot.driver.app_home_opened(LEADER) for _ in range(3)))
    await bot.fake.wait_for("views.publish", count=1, where=has_images, timeout=TIMEOUT)
    await bot.fake.wait_for("files.completeUploadExternal", count=3, timeout=TIMEOUT)
    await asyncio.sleep(0.5)  # let the other two requests finish too
    assert uploads(bot) == len(bot.fake.files) == 3  # three indicators, each uploaded once
    published = [c for c in bot.fake.calls_to("views.publish") if has_images(c)]
    ids = {tuple(r["id"] for r in slack_file_refs(c.args["view"])) for c in published}
    assert len(ids) == 1


async def test_open_summary_opens_at_once_and_adds_the_charts(
    bot: Bot, example_contract: int
) -> None:
    home = await home_with_charts(bot, SPONSOR)  # the charts are uploaded now
    await bot.driver.block_action(
        user=SPONSOR, action_id="home_open_summary", view=home, block_id="governed_0"
    )
    (opened,) = await bot.fake.wait_for("views.open")
    assert opened.response["ok"], opened.response  # the loading modal, at once
    # Filled once, with the charts already uploaded: nothing left to draw.
    (filled,) = await bot.fake.wait_for("views.update", timeout=TIMEOUT)
    assert filled.response["ok"], filled.response
    assert images(filled.args["view"]["blocks"])
    await asyncio.sleep(0.2)
    assert len(bot.fake.calls_to("views.update")) == 1


async def test_a_chart_slack_refuses_leaves_the_summary_whole(
    bot: Bot, example_contract: int
) -> None:
    bot.fake.fail_next(
        "files.getUploadURLExternal", status=200, error="file_uploads_disabled", times=10
    )
    before = len(bot.fake.calls_to("response_url"))
    response = await bot.driver.command("/contract", "summary", user=LEADER)
    assert response.status == 200
    await bot.fake.wait_for("response_url", count=before + 1)
    await bot.fake.wait_for("files.getUploadURLExternal", count=3, timeout=TIMEOUT)
    await asyncio.sleep(0.2)
    blocks = [b for c in bot.fake.calls_to("response_url")[before:] for b in c.args["blocks"]]
    assert "Success indicators" in str(blocks)
    assert images(blocks) == []
    assert not any(f["completed"] for f in bot.fake.files.values())


async def test_open_summary_is_updated_with_charts_drawn_after_it_opened(
    bot: Bot, example_contract: int
) -> None:
    bot.fake.fail_next(
        "files.getUploadURLExternal", status=200, error="file_uploads_disabled", times=3
    )
    before = len(bot.fake.calls_to("views.publish"))
    await bot.driver.app_home_opened(SPONSOR)
    await bot.fake.wait_for("views.publish", count=before + 1)
    await bot.fake.wait_for("files.getUploadURLExternal", count=3, timeout=TIMEOUT)
    home = bot.fake.home_views[SPONSOR]
    assert not images(home["blocks"])

    await bot.driver.block_action(
        user=SPONSOR, action_id="home_open_summary", view=home, block_id="governed_0"
    )
    (opened,) = await bot.fake.wait_for("views.open")
    assert opened.response["ok"], opened.response
    assert not images(opened.args["view"]["blocks"])  # opened at once, before any drawing
    filled, updated = await bot.fake.wait_for("views.update", count=2, timeout=TIMEOUT)
    assert filled.response["ok"] and not images(filled.args["view"]["blocks"])  # text first
    assert updated.response["ok"], updated.response
    assert_files_exist(bot, updated.args["view"]["blocks"])


async def test_a_chart_deleted_in_slack_is_drawn_again(bot: Bot, example_contract: int) -> None:
    first = await home_with_charts(bot, LEADER)
    gone = slack_file_refs(first["blocks"])[0]["id"]
    del bot.fake.files[gone]  # someone deleted the file in the workspace
    again = await home_with_charts(bot, LEADER)
    refused = [c for c in bot.fake.calls_to("views.publish") if not c.response["ok"]]
    assert [c.response["error"] for c in refused] == ["invalid_blocks"]
    ids = assert_files_exist(bot, again["blocks"])
    assert gone not in ids and len(ids) == len(slack_file_refs(first["blocks"]))
