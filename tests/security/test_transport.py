"""Only requests Slack signed reach the app: malformed headers, Socket Mode's HTTP, HOST.

Every refused request is a 401 with nothing dispatched, nothing sent to any response_url,
and at most one log line that carries nothing of its body; in Socket Mode the HTTP server
serves /healthz only. Checked in process through the signed-request driver and the real
app, and against `northstar run` as a real process.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from sqlmodel import select

from bot.app import create_app
from bot.client import create_client
from bot.core.clock import ManualClock
from bot.feedback.blocks import GIVE_FEEDBACK
from bot.server import EVENTS_PATH, SlackSignature, create_web_app
from bot.services import Services
from bot.settings import load_settings
from storage.db import create_engine, session_factory
from storage.models import Feedback
from tests.fakes import FakeSlack
from tests.harness import BOT_TOKEN, SIGNING_SECRET, START, Bot, make_settings, running_bot

ROOT = Path(__file__).resolve().parents[2]
SPONSOR, LEADER, PEER = "U0SPON001", "U0LEAD001", "U0PEER001"
TS, SIG = "X-Slack-Request-Timestamp", "X-Slack-Signature"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Words of the forged requests that must never show up in a log or a reply.
SECRET_WORDS = ("Bramblewick", "quietly-undermined-the-roadmap")


def command_body(fake: FakeSlack) -> str:
    """`/contract summary @dana` "as" the sponsor, with a response_url of the sender's choosing."""
    return urlencode(
        {
            "token": "forged",
            "team_id": "T0TEST001",
            "channel_id": "C0GENERAL1",
            "user_id": SPONSOR,
            "user_name": "sam",
            "command": "/contract",
            "text": f"summary <@{LEADER}|dana> {SECRET_WORDS[0]}",
            "response_url": fake.new_response_url(channel="C0GENERAL1", user=SPONSOR),
            "trigger_id": fake.issue_trigger_id(user=SPONSOR),
        }
    )


def feedback_body(fake: FakeSlack) -> str:
    """An anonymous feedback submission "from" a peer, shaped as Slack sends view_submission."""

    def text(value: str) -> dict[str, Any]:
        return {"type": "plain_text_input", "value": value}

    payload = {
        "type": "view_submission",
        "team": {"id": "T0TEST001", "domain": "northstar"},
        "user": {"id": PEER, "username": "pia", "name": "pia", "team_id": "T0TEST001"},
        "api_app_id": "A0NORTH01",
        "token": "forged",
        "trigger_id": fake.issue_trigger_id(user=PEER),
        "view": {
            "id": "V0FORGED01",
            "type": "modal",
            "callback_id": GIVE_FEEDBACK,
            "private_metadata": json.dumps({"contract_id": 1}),
            "state": {
                "values": {
                    "situation": {"situation": text(f"At the {SECRET_WORDS[0]} offsite")},
                    "behaviour": {"behaviour": text(SECRET_WORDS[1])},
                    "impact": {"impact": text("People stopped speaking up")},
                    "polarity": {
                        "polarity": {
                            "type": "radio_buttons",
                            "selected_option": {"value": "development"},
                        }
                    },
                    "anonymity": {
                        "anonymity": {
                            "type": "radio_buttons",
                            "selected_option": {"value": "anonymous"},
                        }
                    },
                }
            },
        },
        "response_urls": [],
    }
    return urlencode({"payload": json.dumps(payload)})


def _other_digits(text: str) -> str:
    return text.translate({ord("0") + d: 0x0660 + d for d in range(10)})  # Arabic-Indic


Headers = Callable[[Callable[..., dict[str, str]], str], dict[str, str]]


def _signed(**changes: str) -> Headers:
    def make(sign: Callable[..., dict[str, str]], body: str) -> dict[str, str]:
        good = sign(body)
        return {**good, **changes}

    return make


def _drop(name: str) -> Headers:
    def make(sign: Callable[..., dict[str, str]], body: str) -> dict[str, str]:
        return {k: v for k, v in sign(body).items() if k != name}

    return make


def _edit(name: str, edit: Callable[[str], str]) -> Headers:
    def make(sign: Callable[..., dict[str, str]], body: str) -> dict[str, str]:
        good = sign(body)
        return {**good, name: edit(good[name])}

    return make


def _at(offset_s: int) -> Headers:
    def make(sign: Callable[..., dict[str, str]], body: str) -> dict[str, str]:
        return sign(body, timestamp=int(time.time()) + offset_s)

    return make


def _wrong_secret(_sign: Callable[..., dict[str, str]], body: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    signature = SignatureVerifier("not-the-signing-secret").generate_signature(
        timestamp=stamp, body=body
    )
    assert signature is not None
    return {TS: stamp, SIG: signature}


def _other_body(sign: Callable[..., dict[str, str]], body: str) -> dict[str, str]:
    return sign(body.replace("summary", "history").replace("development", "strength"))


# Every way the signing headers can be missing, malformed, stale or simply wrong.
VARIANTS: dict[str, Headers] = {
    "no headers": lambda _sign, _body: {},
    "no timestamp": _drop(TS),
    "no signature": _drop(SIG),
    "empty timestamp": _signed(**{TS: ""}),
    "non-numeric timestamp": _signed(**{TS: "yesterday"}),
    "decimal timestamp": _edit(TS, lambda t: t + ".5"),
    "signed timestamp": _edit(TS, lambda t: "+" + t),
    "timestamp with an underscore": _edit(TS, lambda t: t[:4] + "_" + t[4:]),
    "timestamp in other digits": _edit(TS, _other_digits),
    "huge timestamp": _signed(**{TS: "9" * 400}),
    "stale timestamp": _at(-310),
    "timestamp from the future": _at(+310),
    "replayed old request": _at(-24 * 3600),
    "empty signature": _signed(**{SIG: ""}),
    "garbled signature": _signed(**{SIG: "v0=not-a-signature"}),
    "signature of another scheme": _edit(SIG, lambda s: "v1=" + s[3:]),
    "truncated signature": _edit(SIG, lambda s: s[:-1]),
    "upper-case signature": _edit(SIG, lambda s: "v0=" + s[3:].upper()),
    "non-ASCII signature": _edit(SIG, lambda s: s[:-1] + "é"),
    "wrong secret": _wrong_secret,
    "signature of another body": _other_body,
}


@pytest_asyncio.fixture
async def watched(
    fake_slack: FakeSlack, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[tuple[Bot, list[dict[str, Any]]]]:
    """The real app, logging at INFO as `northstar run` does, with a record of what Bolt saw."""
    caplog.set_level(logging.INFO)  # before the app is built: Bolt copies the root's level
    async with running_bot(fake_slack, sqlite_url) as bot:
        dispatched: list[dict[str, Any]] = []

        async def observe(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> None:
            dispatched.append(body)
            await next()

        bot.app.middleware(observe)
        yield bot, dispatched


def _records_about_requests(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.INFO]


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_request_without_slacks_signature_is_refused_and_nothing_follows(
    watched: tuple[Bot, list[dict[str, Any]]], caplog: pytest.LogCaptureFixture, variant: str
) -> None:
    bot, dispatched = watched
    make_headers = VARIANTS[variant]
    for body in (command_body(bot.fake), feedback_body(bot.fake)):
        caplog.clear()
        response = await bot.driver.post_raw(body, {**FORM, **make_headers(bot.driver.sign, body)})
        assert response.status == 401, response.text
        assert response.json == {"error": "invalid request"}
        records = _records_about_requests(caplog)
        assert len(records) <= 1, [r.getMessage() for r in records]
        for record in records:
            assert record.exc_info is None
            text = record.getMessage()
            assert not any(word in text for word in SECRET_WORDS), text
            assert "token" not in text and "response" not in text, text
    assert dispatched == []
    assert bot.fake.calls == []  # no Web API call, nothing posted to any response_url
    async with bot.sessions() as session:
        assert (await session.exec(select(Feedback))).all() == []


async def test_the_same_requests_signed_by_slack_are_dispatched(
    watched: tuple[Bot, list[dict[str, Any]]],
) -> None:
    """The control: the refusals above are about the signature, not about the bodies."""
    bot, dispatched = watched
    for body in (command_body(bot.fake), feedback_body(bot.fake)):
        response = await bot.driver.post_raw(body, {**FORM, **bot.driver.sign(body)})
        assert response.status == 200
    assert [body.get("command") or body.get("type") for body in dispatched] == [
        "/contract",
        "view_submission",
    ]


async def test_a_body_that_is_not_utf8_is_refused_even_when_signed(
    watched: tuple[Bot, list[dict[str, Any]]],
) -> None:
    bot, dispatched = watched
    body = b"command=%2Fcontract&text=\xff\xfe&response_url=x"
    stamp = str(int(time.time()))
    mac = hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    response = await bot.driver.post_raw(body, {**FORM, TS: stamp, SIG: f"v0={mac.hexdigest()}"})
    assert response.status == 401
    assert dispatched == [] and bot.fake.calls == []


def test_several_timestamps_or_signatures_are_refused() -> None:
    check = SlackSignature(SIGNING_SECRET)
    stamp, signature = str(int(time.time())), "v0=" + "a" * 64
    assert check.header_problem(CIMultiDictProxy(CIMultiDict({TS: stamp, SIG: signature}))) is None
    twice_stamped = CIMultiDict([(TS, stamp), (TS, stamp), (SIG, signature)])
    twice_signed = CIMultiDict([(TS, stamp), (SIG, signature), (SIG, signature)])
    assert check.header_problem(CIMultiDictProxy(twice_stamped)) == "several timestamps"
    assert check.header_problem(CIMultiDictProxy(twice_signed)) == "several signatures"


# --- Socket Mode: HTTP serves /healthz only, and Bolt still verifies HTTP -------------------


@asynccontextmanager
async def socket_mode_server(fake: FakeSlack, database_url: str) -> AsyncIterator[tuple[Any, str]]:
    settings = make_settings(
        api_url=fake.api_url,
        database_url=database_url,
        slack_app_token="xapp-test-token",
        slack_signing_secret=None,
    )
    engine = create_engine(database_url)
    services = Services(
        settings=settings, sessions=session_factory(engine), clock=ManualClock(START)
    )
    app = create_app(services, create_client(settings))
    runner = web.AppRunner(create_web_app(app, services.sessions, signing_secret=None))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield app, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
        await engine.dispose()


async def test_in_socket_mode_http_serves_the_health_check_only(
    fake_slack: FakeSlack, sqlite_url: str
) -> None:
    body = command_body(fake_slack)
    async with (
        socket_mode_server(fake_slack, sqlite_url) as (app, url),
        aiohttp.ClientSession() as http,
    ):
        async with http.get(f"{url}/healthz") as response:
            assert response.status == 200
        stamp = str(int(time.time()))
        signed = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=stamp, body=body)
        attempts: list[dict[str, str]] = [{}, {TS: stamp, SIG: str(signed)}]
        for headers in attempts:
            async with http.post(
                f"{url}{EVENTS_PATH}", data=body, headers={**FORM, **headers}
            ) as response:
                assert response.status in (404, 405)
        # Bolt itself, handed an HTTP request in Socket Mode, still checks its signature (a
        # signing secret it was never given refuses everything), and a request it cannot
        # check gets no answer at its response_url.
        for headers in attempts:
            request = AsyncBoltRequest(body=body, headers={**headers}, mode="http")
            assert (await app.async_dispatch(request)).status == 401
        forged = AsyncBoltRequest(body=body, headers={TS: "yesterday", SIG: "v0=0"}, mode="http")
        assert (await app.async_dispatch(forged)).status != 200
    assert fake_slack.calls == []


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"SLACK_APP_TOKEN": "xapp-1"}, "127.0.0.1"),
        ({"SLACK_SIGNING_SECRET": "s"}, "0.0.0.0"),
        ({"SLACK_APP_TOKEN": "xapp-1", "HOST": "0.0.0.0"}, "0.0.0.0"),
        ({"SLACK_SIGNING_SECRET": "s", "HOST": " 127.0.0.1 "}, "127.0.0.1"),
        ({"SLACK_SIGNING_SECRET": "s", "HOST": "::1"}, "::1"),
        ({"SLACK_SIGNING_SECRET": "s", "HOST": "bot.internal"}, "bot.internal"),
    ],
)
def test_host_is_loopback_in_socket_mode_and_every_interface_in_http_mode(
    environ: dict[str, str], expected: str
) -> None:
    settings = load_settings({"SLACK_BOT_TOKEN": "xoxb-1", **environ}, env_file=None)
    assert settings.bind_host == expected


@pytest.mark.parametrize("host", ["two words", "http://0.0.0.0", "-x", "a/b"])
def test_a_host_that_is_no_address_is_a_configuration_error(host: str) -> None:
    from bot.settings import SettingsError

    with pytest.raises(SettingsError) as caught:
        load_settings({"HOST": host}, env_file=None)
    assert caught.value.problems[0].startswith("HOST must be")


# --- `northstar run` as a real process -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening_addresses(port: int) -> set[str]:
    """The local addresses a TCP socket listens on at `port`, read from /proc (Linux)."""
    found: set[str] = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            if len(raw) == 4:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def _environment(tmp_path: Path, fake: FakeSlack, port: int, **values: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "DATABASE_URL", "PORT", "HOST", "LOG_LEVEL"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=fake.api_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}",
        PORT=str(port),
        FEEDBACK_HASH_KEY="k" * 40,
        **values,
    )
    return env


class Process:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stderr = ""


@asynccontextmanager
async def northstar_run(env: dict[str, str], cwd: Path, port: int) -> AsyncIterator[Process]:
    """`northstar run` until the block ends, then SIGTERM; its stderr in `.stderr` after."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    running = Process(process)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(400):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    assert process.returncode is None, "northstar run stopped"
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("northstar run never answered /healthz")
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), timeout=30)
        running.stderr = err.decode()
    assert process.returncode == 0, running.stderr


async def test_run_in_socket_mode_serves_only_health_on_loopback(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    port = free_port()
    env = _environment(tmp_path, fake_slack, port, SLACK_APP_TOKEN="xapp-test-token")
    body = command_body(fake_slack)
    async with northstar_run(env, tmp_path, port) as run, aiohttp.ClientSession() as http:
        await fake_slack.wait_for("apps.connections.open")  # it did try Socket Mode
        assert listening_addresses(port) == {"127.0.0.1"}
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
        stamp = str(int(time.time()))
        signed = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=stamp, body=body)
        for headers in ({}, {TS: stamp, SIG: str(signed)}, {TS: "yesterday", SIG: "v0=0"}):
            async with http.post(
                f"http://127.0.0.1:{port}{EVENTS_PATH}", data=body, headers={**FORM, **headers}
            ) as response:
                assert response.status in (404, 405)
    assert [call.method for call in fake_slack.calls] == ["apps.connections.open"] * len(
        fake_slack.calls
    )
    assert not any(word in run.stderr for word in SECRET_WORDS)


async def test_run_in_http_mode_refuses_malformed_headers_in_one_line_each(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    port = free_port()
    env = _environment(
        tmp_path, fake_slack, port, SLACK_SIGNING_SECRET=SIGNING_SECRET, HOST="127.0.0.1"
    )
    verifier = SignatureVerifier(SIGNING_SECRET)

    def sign(body: str, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return {TS: stamp, SIG: str(verifier.generate_signature(timestamp=stamp, body=body))}

    async with northstar_run(env, tmp_path, port) as run, aiohttp.ClientSession() as http:
        assert listening_addresses(port) == {"127.0.0.1"}  # HOST, not 0.0.0.0
        for variant, make_headers in VARIANTS.items():
            for body in (command_body(fake_slack), feedback_body(fake_slack)):
                async with http.post(
                    f"http://127.0.0.1:{port}{EVENTS_PATH}",
                    data=body.encode(),
                    headers={**FORM, **make_headers(sign, body)},
                ) as response:
                    assert response.status == 401, variant
        assert fake_slack.calls == []
    refusals = [line for line in run.stderr.splitlines() if "Refused a request" in line]
    assert len(refusals) == 2 * len(VARIANTS)
    assert "Traceback" not in run.stderr
    assert not any(word in run.stderr for word in SECRET_WORDS)
    assert "response" not in "\n".join(refusals)
