"""The `northstar` command line, run as a real process against the fake Slack."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLE_CONTRACT
from tests.fakes import FakeSlack
from tests.harness import BOT_TOKEN, running_bot

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Run:
    code: int
    out: str
    err: str


async def northstar(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Run:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "DATABASE_URL", "PORT", "LOG_LEVEL", "DEFAULT_TIMEZONE"))
    }
    environment["PYTHONPATH"] = str(ROOT)
    environment.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return Run(process.returncode or 0, out.decode(), err.decode())


@pytest.fixture
def env(fake_slack: FakeSlack, sqlite_url: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": fake_slack.api_url,
        "DATABASE_URL": sqlite_url,
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def example(tmp_path: Path) -> Path:
    if not EXAMPLE_CONTRACT.is_file():
        pytest.skip(f"{EXAMPLE_CONTRACT} is not there")
    return EXAMPLE_CONTRACT


async def test_bad_configuration_is_one_line_each_and_exit_2(tmp_path: Path) -> None:
    run = await northstar(
        "db", "upgrade", cwd=tmp_path, env={"PORT": "http", "DEFAULT_TIMEZONE": "Nowhere/City"}
    )
    assert run.code == 2
    lines = run.err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("northstar: ") for line in lines)
    assert "Traceback" not in run.err


async def test_run_without_slack_says_what_to_set(tmp_path: Path) -> None:
    run = await northstar("run", cwd=tmp_path, env={"SLACK_SIGNING_SECRET": "half-configured"})
    assert run.code == 2
    assert "SLACK_BOT_TOKEN" in run.err and "manifest.yml" in run.err
    assert "Traceback" not in run.err


async def test_run_with_no_slack_variable_fails_instead_of_starting_the_sandbox(
    tmp_path: Path,
) -> None:
    # A deploy whose secrets did not load must not come up "healthy" against a fake Slack.
    run = await northstar("run", cwd=tmp_path)
    assert run.code == 2
    lines = run.err.strip().splitlines()
    assert lines[0].startswith("northstar: SLACK_BOT_TOKEN is not set")
    assert lines[1].startswith("northstar: SLACK_SIGNING_SECRET is not set")
    assert "`northstar sandbox`" in lines[-1]
    assert run.out == "" and "Traceback" not in run.err
    assert not (tmp_path / "data").exists()  # nothing was started, nothing was created


async def test_the_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=not-a-port\n")
    run = await northstar("db", "upgrade", cwd=tmp_path)
    assert run.code == 2 and "PORT must be a whole number" in run.err


async def test_validate_the_example(example: Path, env: dict[str, str], tmp_path: Path) -> None:
    run = await northstar("contract", "validate", str(example), cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    assert "is valid" in run.out


async def test_validate_offline_checks_the_form_and_lists_the_emails_to_look_up(
    example: Path, tmp_path: Path
) -> None:
    run = await northstar("contract", "validate", str(example), cwd=tmp_path)  # no token
    assert run.code == 0, run.err
    assert f"{example}: “Head of Platform: FY2027 leadership contract” for U0LEAD001 is valid." in (
        run.out
    )
    assert (
        "1 e-mail address will be looked up in Slack at import (which needs SLACK_BOT_TOKEN): "
        "peer.three@example.com (feedback.reviewers[2])"
    ) in run.out
    assert "nobody was checked with Slack" in run.err

    data = yaml.safe_load(example.read_text())
    data["sponsor"] = "not a person"
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(data))
    run = await northstar("contract", "validate", str(bad), cwd=tmp_path)
    assert run.code == 1 and "sponsor" in run.err  # the form is still checked offline
    run = await northstar("contract", "import", str(example), cwd=tmp_path)
    assert run.code == 1  # an import cannot store an address it could not look up
    assert "peer.three@example.com is an e-mail address: looking it up" in run.err


async def test_validate_reports_every_problem_with_its_path(
    tmp_path: Path, env: dict[str, str], example: Path
) -> None:
    data = yaml.safe_load(example.read_text())
    data["success_indicators"][1]["target"] = data["success_indicators"][1]["baseline"]
    data["milestones"][0]["due"] = "2030-01-01"
    data["governance"]["escalation"] = ["nobody@example.com"]
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(data))
    run = await northstar("contract", "validate", str(bad), cwd=tmp_path, env=env)
    assert run.code == 1
    assert "success_indicators[1].target: must differ from baseline" in run.err
    assert "milestones[0].due" in run.err
    assert "governance.escalation[0]" in run.err
    assert "Traceback" not in run.err


async def test_malformed_yaml_is_one_clear_problem(tmp_path: Path, env: dict[str, str]) -> None:
    bad = tmp_path / "broken.yml"
    bad.write_text("title: [unclosed\nleader: U0LEAD001\n")
    run = await northstar("contract", "import", str(bad), cwd=tmp_path, env=env)
    assert run.code == 1 and "line" in run.err and "Traceback" not in run.err


async def test_import_export_round_trip(example: Path, env: dict[str, str], tmp_path: Path) -> None:
    first = await northstar("contract", "import", str(example), "--agreed", cwd=tmp_path, env=env)
    assert first.code == 0, first.err
    assert "created, version 1" in first.out
    again = await northstar("contract", "import", str(example), "--agreed", cwd=tmp_path, env=env)
    assert "unchanged, version 1" in again.out

    for fmt in ("yaml", "json"):
        out = tmp_path / f"export.{fmt}"
        run = await northstar(
            "contract", "export", "--format", fmt, "--out", str(out), cwd=tmp_path, env=env
        )
        assert run.code == 0, run.err
        back = await northstar("contract", "import", str(out), "--agreed", cwd=tmp_path, env=env)
        assert "unchanged, version 1" in back.out, back.err
    exported = json.loads((tmp_path / "export.json").read_text())
    assert exported["feedback"]["reviewers"][2] == "U0PEER003"

    changed = yaml.safe_load((tmp_path / "export.yaml").read_text())
    changed["success_indicators"][1]["target"] = 28
    (tmp_path / "changed.yml").write_text(yaml.safe_dump(changed))
    run = await northstar(
        "contract", "import", str(tmp_path / "changed.yml"), "--agreed", cwd=tmp_path, env=env
    )
    assert "updated, version 2" in run.out
    assert "I2" in run.out and "28" in run.out

    run = await northstar("contract", "export", "--format", "csv", cwd=tmp_path, env=env)
    rows = list(csv.reader(io.StringIO(run.out)))
    assert rows[0][:4] == ["contract_id", "contract_title", "leader", "indicator_key"]


async def test_backup_copies_the_live_database(env: dict[str, str], tmp_path: Path) -> None:
    assert (await northstar("db", "upgrade", cwd=tmp_path, env=env)).code == 0
    copy = tmp_path / "backups" / "copy.db"
    run = await northstar("db", "backup", str(copy), cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    import sqlite3

    with sqlite3.connect(copy) as connection:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    assert "contract" in tables and "alembic_version" in tables


async def test_imported_contract_is_summarised_for_the_sponsor(
    example: Path, env: dict[str, str], fake_slack: FakeSlack, sqlite_url: str, tmp_path: Path
) -> None:
    """The foundation end to end: CLI import, then /contract summary in Slack."""
    run = await northstar("contract", "import", str(example), cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    async with running_bot(fake_slack, sqlite_url) as bot:
        await bot.driver.command("/contract", "summary <@U0LEAD001|dana>", user="U0SPON001")
        (call,) = await bot.fake.wait_for("response_url")
    text = json.dumps(call.args["blocks"], ensure_ascii=False)
    for indicator, baseline, target in (
        ("Team engagement score", 62, 75),
        ("Median project cycle time", 45, 30),
        ("Risks surfaced within 48 hours", 40, 90),
    ):
        assert indicator in text
        assert f"baseline {baseline} → latest _no value yet_ → target {target}" in text


async def test_alembic_speaks_only_when_a_migration_runs(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config

    revisions = len(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'quiet.db'}"}  # LOG_LEVEL: INFO
    first = await northstar("db", "upgrade", cwd=tmp_path, env=env)
    assert first.code == 0, first.err
    said = [line for line in first.err.splitlines() if "alembic" in line]
    assert len(said) == revisions and all("Running upgrade" in line for line in said)
    for command in (("db", "upgrade"), ("contract", "export", "--format", "csv"), ("report",)):
        args = (*command, "--period", "2027Q2") if command == ("report",) else command
        run = await northstar(*args, cwd=tmp_path, env=env)
        assert "alembic" not in run.err, (command, run.err)


async def test_an_export_with_no_contract_says_so_and_writes_nothing(
    example: Path, env: dict[str, str], tmp_path: Path
) -> None:
    assert (await northstar("db", "upgrade", cwd=tmp_path, env=env)).code == 0
    out = tmp_path / "export.csv"
    out.write_text("yesterday's good export\n")
    for fmt in ("csv", "yaml", "json"):
        run = await northstar(
            "contract", "export", "--format", fmt, "--out", str(out), cwd=tmp_path, env=env
        )
        assert run.code == 1 and run.out == ""
        assert "northstar: no contracts: this database holds none" in run.err
    assert out.read_text() == "yesterday's good export\n"

    assert (await northstar("contract", "import", str(example), cwd=tmp_path, env=env)).code == 0
    run = await northstar("contract", "export", "--leader", "U0NOBODY1", cwd=tmp_path, env=env)
    assert run.code == 1 and run.out == ""
    assert "no contract matches --leader U0NOBODY1; nothing was exported" in run.err
    # A contract with no measurement yet is a real, empty CSV: the header, and status 0.
    run = await northstar("contract", "export", "--format", "csv", cwd=tmp_path, env=env)
    assert run.code == 0 and run.out.startswith("contract_id,") and len(run.out.splitlines()) == 1


async def test_an_operator_closes_a_contract_once(
    example: Path, env: dict[str, str], tmp_path: Path
) -> None:
    assert (
        await northstar("contract", "import", str(example), "--agreed", cwd=tmp_path, env=env)
    ).code == 0
    run = await northstar("contract", "close", "9", cwd=tmp_path, env=env)
    assert run.code == 1 and "no contract 9" in run.err
    run = await northstar("contract", "close", "1", "--reason", "Role ended", cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    assert "is closed: its loops have stopped" in run.out
    run = await northstar("contract", "close", "1", cwd=tmp_path, env=env)
    assert run.code == 0 and "already" in run.out
    run = await northstar("contract", "close", "x", cwd=tmp_path, env=env)
    assert run.code == 2 and "invalid int value" in run.err


async def test_an_import_is_sent_for_agreement_unless_agreed_outside_slack(
    example: Path, env: dict[str, str], sqlite_url: str, tmp_path: Path
) -> None:
    import getpass
    import sqlite3

    run = await northstar("contract", "import", str(example), cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    assert "created, version 1" in run.out and "sent for agreement" in run.out
    database = sqlite_url.split("///", 1)[1]
    with sqlite3.connect(database) as connection:
        ((status, sent),) = connection.execute(
            "SELECT status, agreement_sent_at IS NOT NULL FROM contract"
        ).fetchall()
    assert (status, sent) == ("draft", 1)

    run = await northstar("contract", "import", str(example), "--agreed", cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    assert "status: draft -> active" in run.out
    with sqlite3.connect(database) as connection:
        (status,) = connection.execute("SELECT status FROM contract").fetchone()
        (detail,) = connection.execute(
            "SELECT detail FROM audit_event WHERE action = 'contract.agreed_outside_slack'"
        ).fetchone()
        agreed = connection.execute("SELECT user_id, via FROM agreement").fetchall()
    assert status == "active"
    assert json.loads(detail)["operator"].startswith(getpass.getuser() + "@")
    assert sorted(agreed) == [
        ("U0HRBP001", "outside"),
        ("U0LEAD001", "outside"),
        ("U0SPON001", "outside"),
    ]

    both = await northstar(
        "contract", "import", str(example), "--agreed", "--draft", cwd=tmp_path, env=env
    )
    assert both.code == 2 and "not allowed with argument" in both.err
