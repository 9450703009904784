"""The sandbox's JSON API: what the page reads and does, each through Slack's interface."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlmodel import select

from bot.jobs import JOBS
from bot.sandbox.demo import DEMO_NOW, GENERAL
from bot.sandbox.driver import VERIFICATION_TOKEN
from bot.sandbox.runtime import Sandbox
from storage.models import Contract
from tests.harness import filled
from tests.sandbox.conftest import Page, StartSandbox, texts

LEADER, SPONSOR, PEER = "U0LEAD001", "U0SPON001", "U0PEER001"


async def eventually(
    read: Callable[[], Awaitable[dict[str, Any]]],
    check: Callable[[dict[str, Any]], bool],
    within: float = 5.0,
) -> dict[str, Any]:
    """Read until `check` holds: the bot works on after its ack, as with Slack."""
    deadline = time.monotonic() + within
    while True:
        found = await read()
        if check(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened; last read:\n{json.dumps(found)[:3000]}")
        await asyncio.sleep(0.05)


def ephemerals(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in state["messages"] if m["ephemeral"]]


async def test_the_demo_workspace_is_seeded(page: Page) -> None:
    state = await page.state(LEADER, GENERAL)
    people = {p["id"]: p for p in state["people"]}
    assert people[LEADER]["real_name"] == "Dana Leader"
    assert people[LEADER]["title"] == "Leader"
    assert people["U0PEER002"]["tz"] == "Asia/Kolkata"
    assert {"U0SPON001", "U0HRBP001", "U0VP00001", "U0PEER003"} <= set(people)
    assert [(c["kind"], c["name"]) for c in state["conversations"]] == [
        ("app", "North Star"),
        ("channel", "general"),
        ("channel", "wins"),
    ]
    assert state["conversations"][0]["id"] == "D0LEAD001"
    assert len(state["messages"]) == 3
    assert "<https://dash.example.com/delivery/2027-02>" in state["messages"][1]["text"]
    assert datetime.fromisoformat(state["clock"]["now"]) == DEMO_NOW
    assert {c["command"] for c in state["commands"]} >= {"/contract", "/checkin", "/feedback"}
    assert [s["callback_id"] for s in state["shortcuts"]] == ["add_evidence"]

    async with page.sandbox.services.sessions() as session:
        contract = (await session.exec(select(Contract))).one()
    assert (contract.leader_id, contract.status) == (LEADER, "active")


async def test_healthz_checks_the_database(page: Page) -> None:
    async with page.session.get(f"{page.url}/healthz") as response:
        assert response.status == 200
        health = await response.json()
    assert health["status"] == "ok" and health["database"] == "ok"
    assert health["bot"].startswith("http://127.0.0.1:")


async def test_the_page_and_its_assets_are_served(page: Page) -> None:
    for path, kind in (("/", "text/html"), ("/static/app.js", "javascript")):
        async with page.session.get(page.url + path) as response:
            assert response.status == 200
            assert kind in response.headers["Content-Type"]
            assert response.headers["Cache-Control"] == "no-store"


async def test_a_command_reaches_the_bot_escaped_and_answers_only_its_user(page: Page) -> None:
    answer = await page.do("command", user=SPONSOR, channel=GENERAL, text="/contract summary @dana")
    assert answer["text"] == "summary <@U0LEAD001|dana>"
    sponsor = await eventually(lambda: page.state(SPONSOR, GENERAL), lambda s: bool(ephemerals(s)))
    (summary,) = ephemerals(sponsor)
    assert "Success indicators" in texts(summary["blocks"])
    assert "7 of 9 weekly check-ins answered" in texts(summary["blocks"])
    leader = await page.state(LEADER, GENERAL)
    assert ephemerals(leader) == []


async def test_what_slack_would_refuse_is_refused(page: Page) -> None:
    status, answer = await page.post("command", user=LEADER, channel=GENERAL, text="/nope x")
    assert status == 400 and "/nope is not a valid command" in answer["error"]
    status, answer = await page.post("command", user="U0NOBODY0", channel=GENERAL, text="/x")
    assert status == 400 and "no such person" in answer["error"]
    status, answer = await page.post("command", user=LEADER, channel="D0SPON001", text="/x")
    assert status == 400 and "no such conversation" in answer["error"]
    async with page.session.post(f"{page.url}/sandbox/message", data="user=U0LEAD001") as r:
        assert r.status == 415
    peeking = await page.state(PEER, "D0LEAD001")
    assert peeking["channel"] == "D0PEER001"
    headers = {"Host": "attacker.example:8080"}
    async with page.session.get(f"{page.url}/sandbox/state", headers=headers) as r:
        assert r.status == 403


async def test_modal_errors_updates_and_pushed_views(page: Page) -> None:
    await page.do("command", user=LEADER, channel="D0LEAD001", text="/contract new")
    state = await eventually(lambda: page.state(LEADER), lambda s: s["modal"] is not None)
    modal = state["modal"]["view"]
    assert modal["title"]["text"] == "New contract" and state["modal"]["depth"] == 1

    status, answer = await page.post("submit", user=LEADER, view_id=modal["id"], values={})
    assert status == 400 and "required" in answer["error"]

    values = {
        "title": "Head of Sales: FY2027",
        "leader": LEADER,
        "sponsor": SPONSOR,
        "period_start": "2027-06-07",
        "period_end": "2027-05-03",
        "checkin_weekday": "4",
        "checkin_time": "15:00",
    }
    answer = await page.do("submit", user=LEADER, view_id=modal["id"], values=values)
    assert set(answer["errors"]) == {"period_end"}
    assert (await page.state(LEADER))["modal"]["view"]["id"] == modal["id"]

    values["period_end"] = "2027-12-17"
    await page.do("submit", user=LEADER, view_id=modal["id"], values=values)
    state = await page.state(LEADER)
    editor = state["modal"]["view"]
    assert (editor["id"], editor["title"]["text"]) == (modal["id"], "Draft contract")

    await page.do(
        "action",
        user=LEADER,
        source="view",
        view_id=editor["id"],
        action_id="contract_add_item:expectation",
        block_id="add_items",
    )
    state = await eventually(lambda: page.state(LEADER), lambda s: s["modal"]["depth"] == 2)
    pushed = state["modal"]["view"]
    await page.do("close", user=LEADER, view_id=pushed["id"])
    state = await page.state(LEADER)
    assert state["modal"]["depth"] == 1 and state["modal"]["view"]["id"] == editor["id"]
    await page.do("close", user=LEADER, view_id=editor["id"])
    assert (await page.state(LEADER))["modal"] is None


async def test_app_home_is_published_and_its_buttons_work(page: Page) -> None:
    await page.do("home", user=SPONSOR)
    state = await eventually(lambda: page.state(SPONSOR), lambda s: s["home"] is not None)
    assert "Contracts you sponsor or govern" in texts(state["home"]["blocks"])
    await page.do(
        "action",
        user=SPONSOR,
        source="home",
        action_id="home_open_summary",
        block_id="governed_0",
    )
    state = await eventually(
        lambda: page.state(SPONSOR),
        lambda s: s["modal"] is not None and filled(s["modal"]["view"]),
    )
    assert "Success indicators" in texts(state["modal"]["view"]["blocks"])
    assert (await page.state(LEADER))["modal"] is None


async def test_a_person_writes_in_a_channel(page: Page) -> None:
    await page.do(
        "message", user=PEER, channel=GENERAL, text="Great review @dana: https://x.example"
    )
    state = await page.state(LEADER, GENERAL)
    last = state["messages"][-1]
    assert (last["author"], last["is_bot"]) == ("Pia Peer", False)
    assert last["text"] == "Great review <@U0LEAD001|dana>: <https://x.example>"


async def test_add_as_evidence_from_a_message_menu(page: Page) -> None:
    message = (await page.state(LEADER, GENERAL))["messages"][1]
    await page.do(
        "shortcut", user=LEADER, channel=GENERAL, ts=message["ts"], callback_id="add_evidence"
    )
    state = await eventually(lambda: page.state(LEADER), lambda s: s["modal"] is not None)
    assert state["modal"]["view"]["blocks"]


async def test_an_unknown_shortcut_is_refused(page: Page) -> None:
    message = (await page.state(LEADER, GENERAL))["messages"][0]
    status, answer = await page.post(
        "shortcut", user=LEADER, channel=GENERAL, ts=message["ts"], callback_id="nope"
    )
    assert status == 400 and "no message shortcut" in answer["error"]


async def test_the_clock_moves_to_the_next_checkin_and_runs_the_jobs(page: Page) -> None:
    answer = await page.do("clock", user=LEADER, step="checkin")
    # Friday 12 March 2027, 15:00 in Berlin, and a minute for the jobs to find it due.
    assert datetime.fromisoformat(answer["now"]) == datetime(2027, 3, 12, 14, 1, tzinfo=UTC)
    assert {j["name"] for j in answer["jobs"]} == set(JOBS)
    assert all(j["errors"] == 0 for j in answer["jobs"]), answer["jobs"]
    if "checkins" not in JOBS:
        pytest.skip("no checkins job is registered yet: the clock moved, no prompt to look for")
    state = await page.state(LEADER, "D0LEAD001")
    assert "Weekly check-in" in texts(state["messages"])
    assert answer["sent"] >= 1


async def test_after_a_daylight_saving_change_the_prompt_comes_at_its_local_time(
    page: Page, sandbox: Sandbox
) -> None:
    """Berlin moves its clocks on 28 March 2027: Dana's 15:00 prompt stays at 15:00 local."""
    if "checkins" not in JOBS:
        pytest.skip("no checkins job is registered yet")
    for _ in range(3):  # 12, 19 and 26 March: Friday 15:00 CET, 14:00 UTC
        await page.do("clock", user=LEADER, step="checkin")
    await page.do("clock", user=LEADER, step="digest")  # past the change, into the next week
    while sandbox.clock.now() < datetime(2027, 4, 3, tzinfo=UTC):
        await page.do("clock", user=LEADER, step="day")  # over Friday 2 April by whole days

    prompts = [
        call
        for call in sandbox.fake.calls_to("chat.postMessage")
        if call.args.get("channel") in {LEADER, "D0LEAD001"}
        and "Weekly check-in" in json.dumps(call.args.get("blocks"))
    ]
    sent = [datetime.fromtimestamp(float(call.response["ts"]), UTC) for call in prompts[-4:]]
    assert sent == [
        datetime(2027, 3, 12, 14, 1, tzinfo=UTC),
        datetime(2027, 3, 19, 14, 1, tzinfo=UTC),
        datetime(2027, 3, 26, 14, 1, tzinfo=UTC),
        datetime(2027, 4, 2, 13, 1, tzinfo=UTC),  # 15:01 CEST, not 16:01
    ]


async def test_without_jobs_the_clock_still_moves_and_says_so(
    page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.sandbox.timeline.JOBS", {})
    answer = await page.do("clock", user=LEADER, step="day")
    assert datetime.fromisoformat(answer["now"]) == datetime(2027, 3, 11, 9, 0, tzinfo=UTC)
    assert answer["jobs"] == [] and "No jobs are registered" in answer["note"]
    status, refused = await page.post("clock", user=LEADER, step="year")
    assert status == 400 and "step must be one of" in refused["error"]


async def test_the_page_hears_of_every_change(page: Page) -> None:
    async with page.session.get(f"{page.url}/sandbox/events") as events:
        assert events.headers["Content-Type"] == "text/event-stream"
        first = await asyncio.wait_for(events.content.readline(), 5)
        assert first.startswith(b"data: ")
        await events.content.readline()
        await page.do("message", user=PEER, channel=GENERAL, text="hello")
        second = await asyncio.wait_for(events.content.readline(), 5)
        assert json.loads(second[6:])["version"] > json.loads(first[6:])["version"]


async def test_the_bot_refuses_requests_the_sandbox_did_not_sign(sandbox: Sandbox) -> None:
    body = urlencode(
        {
            "token": VERIFICATION_TOKEN,
            "command": "/contract",
            "text": "help",
            "user_id": LEADER,
            "channel_id": GENERAL,
            "trigger_id": "1.2.3",
            "response_url": sandbox.fake.new_response_url(channel=GENERAL, user=LEADER),
        }
    )
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    stamp = str(int(time.time()))
    forged = {**form, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + "0" * 64}
    stale = {**form, **sandbox.driver.sign(body, timestamp=int(time.time()) - 3600)}
    async with aiohttp.ClientSession() as session:
        for headers in (form, forged, stale):
            async with session.post(sandbox.events_url, data=body, headers=headers) as response:
                assert response.status == 401
    signed = await sandbox.driver.post_raw(body, {**form, **sandbox.driver.sign(body)})
    assert signed.status == 200


async def test_everything_listens_on_loopback_only(sandbox: Sandbox) -> None:
    for url in (sandbox.page_url, sandbox.bot_url, sandbox.fake.api_url):
        assert url.startswith("http://127.0.0.1:")
    settings = sandbox.services.settings
    assert settings.slack_api_url == sandbox.fake.api_url
    assert settings.slack_app_token is None and not settings.socket_mode
    assert settings.database_url.endswith("/sandbox/northstar.db")


async def test_a_restart_keeps_the_workspace_and_the_clock(
    start_sandbox: StartSandbox, tmp_path: Any
) -> None:
    first = await start_sandbox(data=tmp_path / "kept")
    assert first.seeded
    first.fake.post_user_message(GENERAL, user=PEER, text="still here?")
    await first.advance("day")
    moved = first.clock.now()
    await first.stop()

    second = await start_sandbox(data=tmp_path / "kept")
    assert not second.seeded
    assert second.clock.now() == moved
    assert second.fake.messages[GENERAL][-1]["text"] == "still here?"
    async with second.services.sessions() as session:
        assert len((await session.exec(select(Contract))).all()) == 1
    await second.stop()

    third = await start_sandbox(data=tmp_path / "kept", reset=True)
    assert third.seeded and third.clock.now() == DEMO_NOW


async def test_empty_starts_with_the_people_and_nothing_else(start_sandbox: StartSandbox) -> None:
    sandbox = await start_sandbox(empty=True)
    assert not sandbox.seeded
    assert str(sandbox.options.home).endswith("sandbox-empty")
    assert "U0LEAD001" in sandbox.fake.users and sandbox.fake.messages == {}
    async with sandbox.services.sessions() as session:
        assert (await session.exec(select(Contract))).all() == []
