"""The sandbox's pure parts: Slack's text rules, the clock's moments, the demo's data."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import yaml

from bot.sandbox.demo import DEMO_CONTRACT
from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.manifest import (
    MANIFEST_PATH,
    escape_command_text,
    load_manifest,
    message_text,
    parse_manifest,
)
from bot.sandbox.timeline import Schedule, next_digest, stops_between, weekly
from tests.conftest import EXAMPLE_CONTRACT

USERS: list[dict[str, Any]] = [
    {"id": "U0LEAD001", "name": "dana", "profile": {"display_name": "dana"}},
    {"id": "U0GONE001", "name": "gone", "deleted": True, "profile": {}},
]
CHANNELS = [{"id": "C0GENERAL1", "name": "general"}]
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("typed", "escape", "sent"),
    [
        ("summary @dana", True, "summary <@U0LEAD001|dana>"),
        ("summary @Dana.", True, "summary <@U0LEAD001|Dana>."),
        ("summary @dana", False, "summary @dana"),
        ("@gone and @nobody", True, "@gone and @nobody"),
        ("a <b> & c", False, "a &lt;b&gt; &amp; c"),
        ("in #general, @here", True, "in <#C0GENERAL1|general>, <!here>"),
        ("mail dana@example.com", True, "mail dana@example.com"),
    ],
)
def test_command_text_is_escaped_as_slack_does(typed: str, escape: bool, sent: str) -> None:
    assert escape_command_text(typed, users=USERS, channels=CHANNELS, should_escape=escape) == sent


def test_typed_messages_mark_up_links() -> None:
    assert (
        message_text("see https://a.example/x?y=1&z=2. <3", users=USERS, channels=CHANNELS)
        == "see <https://a.example/x?y=1&amp;z=2>. &lt;3"
    )


def test_the_manifest_gives_commands_and_shortcuts() -> None:
    manifest = load_manifest()
    assert manifest.found and MANIFEST_PATH.name == "manifest.yml"
    contract = manifest.command("/contract")
    assert contract is not None and contract.should_escape
    assert manifest.command("/nope") is None
    assert any(s.callback_id == "add_evidence" for s in manifest.shortcuts)


def test_without_a_manifest_any_command_goes(tmp_path: Path) -> None:
    manifest = load_manifest(tmp_path / "missing.yml")
    assert not manifest.found
    assert manifest.command("/anything") is not None
    assert parse_manifest({}).commands == ()


def test_the_demo_contract_is_the_shared_example() -> None:
    if not EXAMPLE_CONTRACT.is_file():
        pytest.skip(f"{EXAMPLE_CONTRACT} is not there to compare with")
    assert yaml.safe_load(DEMO_CONTRACT.read_text()) == yaml.safe_load(EXAMPLE_CONTRACT.read_text())


def test_weekly_moments_keep_local_time_across_daylight_saving() -> None:
    # Berlin moves its clocks on 28 March 2027: 15:00 stays 15:00 local.
    before = weekly(datetime(2027, 3, 20, 12, tzinfo=UTC), 4, "15:00", BERLIN)
    after = weekly(before, 4, "15:00", BERLIN)
    assert before == datetime(2027, 3, 26, 14, 0, tzinfo=UTC)
    assert after == datetime(2027, 4, 2, 13, 0, tzinfo=UTC)
    assert weekly(after, 4, "15:00", BERLIN) > after


def schedule(cadence: str) -> Schedule:
    return Schedule(
        checkin_weekday=4,
        checkin_time="15:00",
        checkin_tz=BERLIN,
        reminder_hours=24,
        digest_cadence=cadence,
        digest_weekday=0,
        digest_time="09:00",
        digest_tz=BERLIN,
        period_start=datetime(2027, 1, 4, tzinfo=UTC),
    )


def test_digest_moments_follow_the_cadence() -> None:
    now = datetime(2027, 3, 10, 9, tzinfo=UTC)
    assert next_digest(schedule("weekly"), now) == datetime(2027, 3, 15, 8, tzinfo=UTC)
    assert next_digest(schedule("biweekly"), now) == datetime(2027, 3, 15, 8, tzinfo=UTC)
    assert next_digest(schedule("monthly"), now) == datetime(2027, 4, 5, 7, tzinfo=UTC)


def test_the_clock_stops_at_each_checkin_reminder_digest_and_morning() -> None:
    start = datetime(2027, 3, 10, 9, 30, tzinfo=UTC)
    end = datetime(2027, 3, 16, 9, 0, tzinfo=UTC)
    stops = stops_between([schedule("weekly")], start, end, BERLIN)
    assert stops == sorted(stops) and stops[-1] == end
    assert datetime(2027, 3, 12, 14, 1, tzinfo=UTC) in stops  # the check-in
    assert datetime(2027, 3, 13, 14, 1, tzinfo=UTC) in stops  # its reminder a day later
    assert datetime(2027, 3, 15, 8, 1, tzinfo=UTC) in stops  # the digest
    assert datetime(2027, 3, 11, 8, 0, tzinfo=UTC) in stops  # a morning
    assert all(start < stop <= end for stop in stops)


def test_the_clock_stops_at_local_times_across_daylight_saving() -> None:
    # Berlin: summer time from 28 March 2027, winter time from 31 October 2027.
    spring = stops_between(
        [schedule("weekly")],
        datetime(2027, 3, 26, 15, tzinfo=UTC),
        datetime(2027, 4, 3, 7, tzinfo=UTC),
        BERLIN,
    )
    assert datetime(2027, 4, 2, 13, 1, tzinfo=UTC) in spring  # Friday 15:01 CEST
    assert datetime(2027, 4, 2, 14, 1, tzinfo=UTC) not in spring
    assert datetime(2027, 3, 29, 7, 1, tzinfo=UTC) in spring  # Monday's digest, 09:01 CEST
    assert datetime(2027, 3, 29, 7, 0, tzinfo=UTC) in spring  # and that morning, 09:00
    assert datetime(2027, 3, 27, 8, 0, tzinfo=UTC) in spring  # Saturday morning, still CET
    autumn = stops_between(
        [schedule("weekly")],
        datetime(2027, 10, 29, 15, tzinfo=UTC),
        datetime(2027, 11, 6, 8, tzinfo=UTC),
        BERLIN,
    )
    assert datetime(2027, 11, 5, 14, 1, tzinfo=UTC) in autumn  # Friday 15:01 CET
    assert datetime(2027, 11, 5, 13, 1, tzinfo=UTC) not in autumn
    # A reminder is a fixed number of hours after its prompt: 24 h on, whatever the zone.
    assert datetime(2027, 10, 30, 13, 1, tzinfo=UTC) in autumn


async def test_an_ephemeral_is_replaced_or_deleted_through_its_response_url() -> None:
    async with FakeSlack() as fake:
        fake.add_user("U0LEAD001", name="dana")
        fake.command_response("C0GENERAL1", user="U0LEAD001", body={"text": "pick one"})
        (shown,) = fake.ephemerals
        url = fake.new_response_url(
            channel="C0GENERAL1", user="U0LEAD001", ephemeral_ts=shown["ts"]
        )
        async with aiohttp.ClientSession() as session:
            await session.post(url, json={"text": "picked", "replace_original": True})
            assert [e["text"] for e in fake.ephemerals] == ["picked"]
            await session.post(url, json={"delete_original": True})
            assert fake.ephemerals == []


async def test_messages_carry_the_wall_clock_when_given() -> None:
    now = [datetime(2027, 3, 10, 9, tzinfo=UTC).timestamp()]
    fake = FakeSlack(wall_clock=lambda: now[0])
    fake.add_user("U0LEAD001", name="dana")
    first = fake.post_user_message("C0GENERAL1", user="U0LEAD001", text="one")
    second = fake.post_user_message("C0GENERAL1", user="U0LEAD001", text="two")
    assert first["ts"] == "1804669200.000000"
    assert float(second["ts"]) > float(first["ts"])
    restored = FakeSlack()
    restored.load_state(fake.dump_state())
    third = restored.post_user_message("C0GENERAL1", user="U0LEAD001", text="three")
    assert [m["text"] for m in restored.messages["C0GENERAL1"]] == ["one", "two", "three"]
    assert third["ts"] != second["ts"]


async def test_a_cancel_that_meets_a_change_still_cancels_the_waiter() -> None:
    """The sandbox's saver is cancelled on stop; a change landing at that instant must not
    swallow the cancel (asyncio.wait_for does on Python 3.11, CPython gh-86296)."""
    fake = FakeSlack()
    for _ in range(20):
        waiter = asyncio.create_task(fake.wait_for_change(fake.version, 60))
        await asyncio.sleep(0)  # the waiter is now parked on its future
        fake.touch()  # the change completes the wait...
        waiter.cancel()  # ...and the cancel arrives before the waiter runs again
        with pytest.raises(asyncio.CancelledError):
            await waiter
