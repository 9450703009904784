"""What the bot writes down keeps secrets: logs, configuration errors and database files.

No request body and no SQL parameter reaches a log; a configuration error names the
variable, never a token, a password or a URL's credentials; the SQLite database, its
folder and its backups are the user's alone.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.cli.main import main
from bot.feedback.blocks import GIVE_FEEDBACK
from bot.settings import SettingsError, load_settings, redact_url
from storage.db import create_engine, session_factory, writing
from storage.migrate import upgrade
from storage.models import Feedback
from tests.fakes import FakeSlack
from tests.harness import running_bot

ANONYMOUS_TEXT = "Kept-quiet-about-the-Quillfeather-incident"


def anonymous_submission(fake: FakeSlack) -> str:
    payload = {
        "type": "view_submission",
        "user": {"id": "U0PEER001", "username": "pia", "team_id": "T0TEST001"},
        "team": {"id": "T0TEST001"},
        "api_app_id": "A0NORTH01",
        "trigger_id": fake.issue_trigger_id(user="U0PEER001"),
        "view": {
            "id": "V0ANON0001",
            "type": "modal",
            "callback_id": GIVE_FEEDBACK,
            "state": {
                "values": {
                    "behaviour": {
                        "behaviour": {"type": "plain_text_input", "value": ANONYMOUS_TEXT}
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
    }
    return urlencode({"payload": json.dumps(payload)})


# --- request bodies ---------------------------------------------------------------------------


async def test_a_refused_anonymous_submission_leaves_no_trace_in_the_logs(
    fake_slack: FakeSlack, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # as `northstar run` logs; set before Bolt copies it
    async with running_bot(fake_slack, sqlite_url) as bot:
        body = anonymous_submission(fake_slack)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        stale = bot.driver.sign(body, timestamp=int(time.time()) - 600)
        assert (await bot.driver.post_raw(body, {**form, **stale})).status == 401
        # Bolt's own check, reached without the server's (its logger said the whole body).
        request = AsyncBoltRequest(
            body=body, headers={k.lower(): v for k, v in stale.items()}, mode="http"
        )
        assert (await bot.app.async_dispatch(request)).status == 401
    assert caplog.records, "the refusal is logged"
    for record in caplog.records:
        assert ANONYMOUS_TEXT not in record.getMessage()
        assert "U0PEER001" not in record.getMessage()
    assert ANONYMOUS_TEXT not in caplog.text


# --- SQL parameters ---------------------------------------------------------------------------


async def test_a_failing_statement_carries_no_parameter_into_its_error_or_log(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    entry = Feedback(
        contract_id=987_654,  # no such contract: the insert fails on its foreign key
        polarity="development",
        situation="Offsite",
        behaviour=ANONYMOUS_TEXT,
        impact="Silence",
        anonymous=True,
        author_hash="c0ffee" * 8,
        created_at=datetime(2027, 3, 10, 9, 41, 27, tzinfo=UTC),
    )
    try:
        async with sessions() as session:
            await writing(session)
            session.add(entry)
            with pytest.raises(DBAPIError) as caught:
                await session.commit()
    finally:
        await engine.dispose()
    # As the app's error handler logs a failure: the error with its traceback.
    logging.getLogger("tests.security").error("Storing feedback failed", exc_info=caught.value)
    said = str(caught.value)
    assert "parameters hidden" in said
    for secret in (ANONYMOUS_TEXT, "c0ffee" * 8, "09:41:27", "9, 41, 27"):
        assert secret not in said
        assert secret not in caplog.text


# --- configuration errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("mysql://north:S3cr3t-pw@db.internal/ns", "mysql://north:***@db.internal/ns"),
        ("mysql://xoxb-1234-token@db/ns", "mysql://***@db/ns"),
        ("mysql://db/ns?user=north&password=S3cr3t-pw", "mysql://db/ns?user=***&password=***"),
        ("north:S3cr3t-pw@db.internal", "north:***@db.internal"),
        ("https://slack.com/api/", "https://slack.com/api/"),
    ],
)
def test_urls_are_shown_without_their_credentials(given: str, shown: str) -> None:
    assert redact_url(given) == shown


SECRETS = {
    "SLACK_BOT_TOKEN": "xoxp-1111-user-token-AAAA",
    "SLACK_APP_TOKEN": "xoxb-2222-bot-token-BBBB",
    "SLACK_SIGNING_SECRET": "signing-secret-CCCC",
    "SLACK_API_URL": "ftp://proxyuser:Pr0xy-pw-DDDD@proxy.internal/api/",
    "DATABASE_URL": "mysql://north:Db-pw-EEEE@db.internal/northstar?password=Db-pw-EEEE",
    "FEEDBACK_HASH_KEY": "short-key-FFFF",
}


def test_configuration_errors_name_the_variable_and_never_its_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    assert main(["run"]) == 2
    said = capsys.readouterr()
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_API_URL", "DATABASE_URL"):
        assert f"northstar: {name}" in said.err
    assert "proxyuser:***@proxy.internal" in said.err
    assert "north:***@db.internal" in said.err
    for marker in ("AAAA", "BBBB", "CCCC", "DDDD", "EEEE", "FFFF"):
        assert marker not in said.err + said.out


def test_settings_never_show_their_secrets() -> None:
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-secret-AAAA",
            "SLACK_APP_TOKEN": "xapp-secret-BBBB",
            "SLACK_SIGNING_SECRET": "secret-CCCC",
            "SLACK_API_URL": "https://user:pw-DDDD@proxy.internal/api/",
            "DATABASE_URL": "postgresql://north:pw-EEEE@db/northstar",
            "FEEDBACK_HASH_KEY": "k" * 28 + "FFFF",
        },
        env_file=None,
    )
    for marker in ("AAAA", "BBBB", "CCCC", "DDDD", "EEEE", "FFFF"):
        assert marker not in repr(settings)
    with pytest.raises(SettingsError) as caught:
        load_settings({"DATABASE_URL": "postgres-ish://north:pw-EEEE@db/x"}, env_file=None)
    assert "EEEE" not in str(caught.value)


# --- the SQLite file ------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_the_sqlite_database_and_its_folder_are_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = os.umask(0o022)  # the usual umask, which would leave both readable by everyone
    try:
        path = tmp_path / "fresh" / "northstar.db"
        url = f"sqlite+aiosqlite:///{path}"
        await upgrade(url)
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                await writing(session)
                await session.exec(text("CREATE TABLE scratch (x)"))  # type: ignore[call-overload]
                await session.commit()
            wal = path.with_name(path.name + "-wal")
            assert wal.exists()
            assert _mode(wal) == 0o600
        finally:
            await engine.dispose()
        assert _mode(path.parent) == 0o700
        assert _mode(path) == 0o600

        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("DATABASE_URL", url)
        for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
            monkeypatch.delenv(name, raising=False)
        backup = tmp_path / "backups" / "copy.db"
        assert main(["db", "backup", str(backup)]) == 0
        assert (_mode(backup.parent), _mode(backup)) == (0o700, 0o600)
    finally:
        os.umask(old)


async def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    """Only what the bot creates is made private; an operator's own choice stands."""
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)
    await upgrade(f"sqlite+aiosqlite:///{path}")
    assert _mode(path) == 0o640
