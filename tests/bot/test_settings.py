"""Configuration: defaults, URL spellings, and one clear line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import DATABASE_URL_DEFAULT, SettingsError, load_settings


def test_defaults_need_nothing(tmp_path: Path) -> None:
    settings = load_settings({}, env_file=tmp_path / "absent.env")
    assert settings.database_url == DATABASE_URL_DEFAULT
    assert (settings.port, settings.log_level, settings.default_timezone) == (3000, "INFO", "UTC")
    assert settings.slack_api_url == "https://slack.com/api/"
    assert not settings.has_slack_credentials


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
        ("sqlite+aiosqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
        ("postgresql://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_database_url_spellings(given: str, expected: str, tmp_path: Path) -> None:
    # PostgreSQL needs a configured hash key (tests/security/test_anonymity.py).
    settings = load_settings({"DATABASE_URL": given, "FEEDBACK_HASH_KEY": "k" * 32}, env_file=None)
    assert settings.database_url == expected


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "SLACK_BOT_TOKEN": "xoxp-user-token",
                "SLACK_APP_TOKEN": "nope",
                "SLACK_API_URL": "ftp://slack",
                "DATABASE_URL": "mysql://x",
                "PORT": "eighty",
                "LOG_LEVEL": "loud",
                "DEFAULT_TIMEZONE": "Mars/Olympus",
            },
            env_file=None,
        )
    problems = caught.value.problems
    assert len(problems) == 7
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
        "DATABASE_URL",
        "PORT",
        "LOG_LEVEL",
        "DEFAULT_TIMEZONE",
    ):
        assert any(p.startswith(name) for p in problems), name


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("PORT=4000\nLOG_LEVEL=debug\n")
    settings = load_settings({"PORT": "5000"}, env_file=env)
    assert (settings.port, settings.log_level) == (5000, "DEBUG")


def test_slack_is_required_to_run_and_says_how() -> None:
    settings = load_settings({}, env_file=None)
    with pytest.raises(SettingsError) as caught:
        settings.require_slack()
    text = "\n".join(caught.value.problems)
    assert "SLACK_BOT_TOKEN" in text and "SLACK_SIGNING_SECRET" in text
    assert "manifest.yml" in text


def test_socket_mode_needs_no_signing_secret() -> None:
    settings = load_settings(
        {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}, env_file=None
    )
    settings.require_slack()
    assert settings.socket_mode
