"""`make run` with and without Slack tokens, and `northstar sandbox`, as real processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.bot.cli.test_main import northstar
from tests.sandbox.conftest import StartSandbox

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    keep = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "DATABASE_URL", "PORT", "SANDBOX_", "LOG_LEVEL"))
    }
    return {**keep, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING", **extra}


async def wait_until_answering(url: str, within: float = 60.0) -> tuple[dict[str, str], str]:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"{url}/healthz") as health:
                    status = await health.json()
                async with session.get(url + "/") as page:
                    html = await page.text()
                if status.get("status") == "ok" and page.status == 200:
                    return status, html
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing answered at {url} within {within} s")
            await asyncio.sleep(0.2)


def make_run(cwd: Path, **env: str) -> list[str]:
    """`make run` as on a fresh clone in `cwd`, with this checkout's Makefile and .venv."""
    venv = ROOT / ".venv"
    if shutil.which("make") is None or not (venv / "bin" / "northstar").is_file():
        pytest.skip("needs make and the .venv that `make test` creates")
    # -o: the installed .venv counts as current (never reinstall from the test).
    return [
        "make",
        "-s",
        "-f",
        str(ROOT / "Makefile"),
        f"VENV={venv}",
        "-o",
        f"{venv}/.installed",
        "run",
    ]


async def test_make_run_on_a_fresh_clone_starts_the_sandbox(tmp_path: Path) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *make_run(tmp_path),
        cwd=tmp_path,
        env={**clean_env(SANDBOX_PORT=str(port)), "MAKEFLAGS": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # Ctrl+C reaches make and the sandbox alike
    )
    try:
        assert process.stdout is not None
        banner = await asyncio.wait_for(process.stdout.readline(), 60)
        assert banner.decode().strip() == f"North Star sandbox: open http://127.0.0.1:{port}"
        health, html = await wait_until_answering(f"http://127.0.0.1:{port}")
        assert health["database"] == "ok"
        assert "<title>North Star sandbox</title>" in html
    finally:
        os.killpg(process.pid, signal.SIGINT)
        _out, err = await asyncio.wait_for(process.communicate(), 30)
    assert "make run: no Slack token in .env or the environment" in err.decode()
    assert "Traceback" not in err.decode()
    assert (tmp_path / "data" / "sandbox" / "northstar.db").is_file()
    assert not (tmp_path / "data" / "northstar.db").exists()


async def test_make_run_with_some_tokens_runs_the_bot_and_names_what_is_missing(
    tmp_path: Path,
) -> None:
    (tmp_path / ".env").write_text("SLACK_SIGNING_SECRET=from-the-env-file\n")
    process = await asyncio.create_subprocess_exec(
        *make_run(tmp_path),
        cwd=tmp_path,
        env={**clean_env(), "MAKEFLAGS": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    said = err.decode()
    assert "northstar: SLACK_BOT_TOKEN is not set" in said
    assert "sandbox (set them" not in said and "Traceback" not in said
    assert not (tmp_path / "data" / "sandbox").exists()


async def test_a_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "sandbox",
            "--empty",
            "--port",
            str(port),
            cwd=tmp_path,
            env=clean_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in err.decode()
    assert "Traceback" not in err.decode()


async def test_ctrl_c_stops_the_sandbox_while_a_page_is_listening(tmp_path: Path) -> None:
    """SIGINT (Ctrl+C) ends the sandbox promptly even with a page's event stream open."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "sandbox",
        "--empty",
        "--port",
        str(port),
        cwd=tmp_path,
        env=clean_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_answering(url)
        async with aiohttp.ClientSession() as session:
            events = await session.get(f"{url}/sandbox/events")
            assert events.status == 200
            await asyncio.wait_for(events.content.readline(), 10)  # the stream is live
            process.send_signal(signal.SIGINT)
            _out, err = await asyncio.wait_for(process.communicate(), 20)
            events.close()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()


async def test_a_report_on_the_sandbox_database_reads_its_clock_and_people(
    start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    sandbox = await start_sandbox(data=tmp_path / "data")
    await sandbox.advance("day")  # the sandbox's clock: 11 March 2027, 09:00 UTC
    await sandbox.stop()
    env = {"DATABASE_URL": f"sqlite:///{sandbox.db_path}", "LOG_LEVEL": "WARNING"}
    run = await northstar("report", "--period", "2027Q1", cwd=tmp_path, env=env)  # no token
    assert run.code == 0, run.err
    assert "generated 11 Mar 2027 · check-ins and missed milestones counted up to 11 Mar" in run.out
    assert "Leader Dana Leader (U0LEAD001) · sponsor Sam Sponsor (U0SPON001)" in run.out
    assert "this is the sandbox's database: today is 11 Mar 2027 by its clock" in run.err
