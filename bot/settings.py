"""One settings object, read from the environment and `.env`, validated at start-up."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

SLACK_API_URL_DEFAULT = "https://slack.com/api/"
DATABASE_URL_DEFAULT = "sqlite+aiosqlite:///./data/northstar.db"
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
SANDBOX_PORT_DEFAULT = 8080
SLACK_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")
DELIVERY_RATE_DEFAULT = 120
DELIVERY_RATE_MAX = 100_000
FEEDBACK_HASH_KEY_MIN = 32
SHUTDOWN_GRACE_DEFAULT = 5.0
SHUTDOWN_GRACE_MAX = 60.0
LEADER_POLL_DEFAULT = 3.0
LEADER_POLL_MAX = 60.0
# Where the HTTP server listens unless HOST says: in HTTP mode Slack must reach it; in
# Socket Mode it serves only /healthz, for this machine.
HTTP_MODE_HOST = "0.0.0.0"
SOCKET_MODE_HOST = "127.0.0.1"
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")

MANIFEST_HELP = (
    "Create the Slack app from manifest.yml (https://api.slack.com/apps > Create New App > "
    "From a manifest), install it to your workspace, then put its Bot User OAuth Token in "
    "SLACK_BOT_TOKEN and either its App-Level Token (connections:write) in SLACK_APP_TOKEN "
    "for Socket Mode or its Signing Secret in SLACK_SIGNING_SECRET for HTTP mode, "
    "in .env (see .env.example)."
)


class SettingsError(Exception):
    """Raised with every problem found in the configuration, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Settings:
    """The validated configuration of one North Star process."""

    # Secrets, and URLs that may hold one, stay out of the repr (and so out of any log).
    slack_bot_token: str | None = field(repr=False)
    slack_signing_secret: str | None = field(repr=False)
    slack_app_token: str | None = field(repr=False)
    slack_api_url: str = field(repr=False)
    database_url: str = field(repr=False)
    port: int
    log_level: str
    default_timezone: str
    delivery_rate_per_minute: int = DELIVERY_RATE_DEFAULT
    # Keys the hashes that stand in for anonymous feedback authors; unset (SQLite only): a
    # generated key in the operator's config folder, never the data folder (bot/privacy/keys.py).
    feedback_hash_key: str | None = field(default=None, repr=False)
    # The page of `northstar sandbox` (and of `make run` without Slack tokens).
    sandbox_port: int = SANDBOX_PORT_DEFAULT
    # The address the HTTP server binds; unset: `bind_host`'s default for the mode.
    host: str | None = None
    # On SIGTERM or SIGINT, how long the jobs running may take to finish before they are
    # cancelled (they stop claiming new work at once).
    shutdown_grace_seconds: float = SHUTDOWN_GRACE_DEFAULT
    # On PostgreSQL: how often a follower tries to become the leader, and the leader checks
    # it still is (so a dead leader is replaced within about this long).
    leader_poll_seconds: float = LEADER_POLL_DEFAULT

    @property
    def socket_mode(self) -> bool:
        """Socket Mode is used whenever an app-level token is configured."""
        return self.slack_app_token is not None

    @property
    def bind_host(self) -> str:
        """HOST, else every interface in HTTP mode (Slack posts to it), loopback in Socket Mode."""
        if self.host is not None:
            return self.host
        return SOCKET_MODE_HOST if self.socket_mode else HTTP_MODE_HOST

    @property
    def has_slack_credentials(self) -> bool:
        return self.slack_bot_token is not None and (
            self.socket_mode or self.slack_signing_secret is not None
        )

    def require_slack(self) -> None:
        """Raise SettingsError unless the bot can talk to Slack."""
        problems: list[str] = []
        if self.slack_bot_token is None:
            problems.append("SLACK_BOT_TOKEN is not set: the bot needs its xoxb- token.")
        if not self.socket_mode and self.slack_signing_secret is None:
            problems.append(
                "SLACK_SIGNING_SECRET is not set: HTTP mode needs it "
                "(or set SLACK_APP_TOKEN to use Socket Mode)."
            )
        if problems:
            raise SettingsError([*problems, MANIFEST_HELP])


def normalise_database_url(url: str) -> str:
    """Map the plain URL spellings onto the async drivers this app uses."""
    if url.startswith("sqlite:///") or url == "sqlite://":
        return "sqlite+aiosqlite" + url[len("sqlite") :]
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def redact_url(url: str) -> str:
    """`url` fit for a message: its password (or a lone userinfo) and query values as ***."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        user, colon, _password = userinfo.partition(":")
        authority = f"{user}:***@{host}" if colon else f"***@{host}"
    path, question, query = tail.partition("?")
    if question:
        query, hash_mark, fragment = query.partition("#")
        query = "&".join(
            f"{pair.partition('=')[0]}=***" if "=" in pair else pair for pair in query.split("&")
        )
        tail = f"{path}?{query}{hash_mark}{fragment}"
    return f"{scheme}{separator}{authority}{tail}"


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _HOSTNAME.fullmatch(host) is not None
    return True


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _read(environ: Mapping[str, str] | None, env_file: str | Path | None) -> dict[str, str | None]:
    """`.env`'s values overridden by the environment's."""
    values: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update(dotenv_values(env_file))
    values.update(os.environ if environ is None else environ)
    return values


def slack_variables_set(
    environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
) -> list[str]:
    """The Slack credentials given a value: with none, `make run` starts the sandbox."""
    values = _read(environ, env_file)
    return [name for name in SLACK_VARIABLES if _clean(values.get(name)) is not None]


def load_settings(
    environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
) -> Settings:
    """Read and validate the settings; raise SettingsError listing every problem."""
    values = _read(environ, env_file)

    def get(name: str) -> str | None:
        return _clean(values.get(name))

    problems: list[str] = []

    bot_token = get("SLACK_BOT_TOKEN")
    if bot_token is not None and not bot_token.startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-.")
    app_token = get("SLACK_APP_TOKEN")
    if app_token is not None and not app_token.startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN must be an app-level token starting with xapp-.")

    api_url = get("SLACK_API_URL") or SLACK_API_URL_DEFAULT
    if not api_url.startswith(("http://", "https://")):
        problems.append(f"SLACK_API_URL must be an http(s) URL, got {redact_url(api_url)!r}.")
    elif not api_url.endswith("/"):
        api_url += "/"

    database_url = normalise_database_url(get("DATABASE_URL") or DATABASE_URL_DEFAULT)
    if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        problems.append(
            "DATABASE_URL must be sqlite:///PATH, sqlite+aiosqlite:///PATH, "
            "postgresql://... or postgresql+asyncpg://..., "
            f"got {redact_url(database_url)!r}."
        )

    port_text = get("PORT") or "3000"
    port = 0
    try:
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        problems.append(f"PORT must be a whole number from 1 to 65535, got {port_text!r}.")

    sandbox_port_text = get("SANDBOX_PORT") or str(SANDBOX_PORT_DEFAULT)
    sandbox_port = SANDBOX_PORT_DEFAULT
    try:
        sandbox_port = int(sandbox_port_text)
        if not 0 < sandbox_port < 65536:
            raise ValueError
    except ValueError:
        problems.append(
            f"SANDBOX_PORT must be a whole number from 1 to 65535, got {sandbox_port_text!r}."
        )

    host = get("HOST")
    if host is not None and not _valid_host(host):
        problems.append(
            f"HOST must be an IP address or host name to listen on, such as 127.0.0.1 or "
            f"0.0.0.0, got {host!r}."
        )

    log_level = (get("LOG_LEVEL") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}.")

    timezone = get("DEFAULT_TIMEZONE") or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            f"DEFAULT_TIMEZONE must be an IANA time zone such as Europe/Berlin, got {timezone!r}."
        )

    rate_text = get("DELIVERY_RATE_PER_MINUTE") or str(DELIVERY_RATE_DEFAULT)
    rate = DELIVERY_RATE_DEFAULT
    try:
        rate = int(rate_text)
        if not 0 < rate <= DELIVERY_RATE_MAX:
            raise ValueError
    except ValueError:
        problems.append(
            f"DELIVERY_RATE_PER_MINUTE must be a whole number from 1 to {DELIVERY_RATE_MAX}, "
            f"got {rate_text!r}."
        )

    grace_text = get("SHUTDOWN_GRACE_SECONDS") or str(SHUTDOWN_GRACE_DEFAULT)
    grace = SHUTDOWN_GRACE_DEFAULT
    try:
        grace = float(grace_text)
        if not 0 <= grace <= SHUTDOWN_GRACE_MAX:
            raise ValueError
    except ValueError:
        problems.append(
            f"SHUTDOWN_GRACE_SECONDS must be a number of seconds from 0 to "
            f"{SHUTDOWN_GRACE_MAX:g}, got {grace_text!r}."
        )

    poll_text = get("LEADER_POLL_SECONDS") or str(LEADER_POLL_DEFAULT)
    poll = LEADER_POLL_DEFAULT
    try:
        poll = float(poll_text)
        if not 0.1 <= poll <= LEADER_POLL_MAX:
            raise ValueError
    except ValueError:
        problems.append(
            f"LEADER_POLL_SECONDS must be a number of seconds from 0.1 to {LEADER_POLL_MAX:g}, "
            f"got {poll_text!r}."
        )

    hash_key = get("FEEDBACK_HASH_KEY")
    if hash_key is not None and len(hash_key) < FEEDBACK_HASH_KEY_MIN:
        problems.append(
            f"FEEDBACK_HASH_KEY must be at least {FEEDBACK_HASH_KEY_MIN} characters of secret "
            "(e.g. the output of `python -c 'import secrets; print(secrets.token_hex(32))'`)."
        )
    elif hash_key is None and database_url.startswith("postgresql"):
        problems.append(
            "FEEDBACK_HASH_KEY must be set with a PostgreSQL DATABASE_URL: every replica needs "
            "the same secret (32+ characters) for anonymous feedback hashes."
        )

    if problems:
        raise SettingsError(problems)
    return Settings(
        slack_bot_token=bot_token,
        slack_signing_secret=get("SLACK_SIGNING_SECRET"),
        slack_app_token=app_token,
        slack_api_url=api_url,
        database_url=database_url,
        port=port,
        log_level=log_level,
        default_timezone=timezone,
        delivery_rate_per_minute=rate,
        feedback_hash_key=hash_key,
        sandbox_port=sandbox_port,
        host=host,
        shutdown_grace_seconds=grace,
        leader_poll_seconds=poll,
    )


class _MigrationsRun(logging.Filter):
    """Alembic's INFO lines only for a migration that runs, one line each: it also names the
    dialect and DDL mode on every connection, which would print on every command."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or record.getMessage().startswith("Running ")


_MIGRATIONS_RUN = _MigrationsRun()


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic announces each of its plugins at INFO on every start; the migrations it runs
    # are what an operator wants to read.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.migration").addFilter(_MIGRATIONS_RUN)
    # APScheduler says at INFO that each job runs and ran, every minute; the jobs log what
    # they did, and its warnings (a run missed) still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
