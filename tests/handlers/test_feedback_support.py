"""Helpers for the feedback and evidence scenarios (this module holds no tests)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlmodel import SQLModel, select

from bot import delivery
from bot.feedback.jobs import feedback_job
from bot.scheduler import JobRun
from storage.db import SessionFactory, writing
from storage.models import Delivery, DeliveryStatus
from tests.conftest import Bot, response_texts
from tests.fakes import DriverResponse
from tests.harness import filled_modal

LEADER, SPONSOR, OWNER, ESCALATION = "U0LEAD001", "U0SPON001", "U0HRBP001", "U0VP00001"
PEER1, PEER2, PEER3, OUTSIDER = "U0PEER001", "U0PEER002", "U0PEER003", "U0OUTSIDE"
DANA = f"<@{LEADER}|dana>"
TEAM = "T0TEST001"
BEHAVIOUR = "She paused the roadmap review to ask each product lead for their risks first."

# People who are in no contract: their ids, names and e-mails must never reach the database
# when they give feedback anonymously.
STRANGERS = {
    "U0ZELDA01": ("zelda.q", "Zelda Quux", "zelda.quux@example.com"),
    "U0YORICK1": ("yorick.w", "Yorick Wibble", "yorick.wibble@example.com"),
    "U0XAVER01": ("xaver.t", "Xaver Thrum", "xaver.thrum@example.com"),
}


def fast_sending(bot: Bot) -> None:
    """No pacing waits: the delivery queue's pace is tested with the check-ins."""
    delivery.install_pacer(
        bot.services.settings, delivery.Pacer(per_minute=6_000_000, per_channel=0)
    )


def add_strangers(bot: Bot) -> None:
    for user_id, (name, real_name, email) in STRANGERS.items():
        bot.fake.add_user(user_id, name=name, real_name=real_name, email=email)


async def say(bot: Bot, command: str, text: str, *, user: str) -> str:
    """Run a slash command and return what the app answered through the response URL."""
    before = len(bot.fake.calls_to("response_url"))
    response = await bot.driver.command(command, text, user=user)
    assert response.status == 200
    await bot.fake.wait_for("response_url", count=before + 1)
    return "\n".join(response_texts(bot.fake)[before:])


async def open_modal(bot: Bot, command: str, text: str, *, user: str) -> dict[str, Any]:
    """Run a slash command that opens a modal; the modal as the user sees it."""
    before = len(bot.fake.calls_to("views.open"))
    response = await bot.driver.command(command, text, user=user)
    assert response.status == 200
    opened = (await bot.fake.wait_for("views.open", count=before + 1))[-1]
    assert opened.response["ok"], opened.response
    return await filled_modal(bot.fake, user)


def answers(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "expectation": "E1",
        "polarity": "strength",
        "situation": "The Q2 roadmap review with the product leads.",
        "behaviour": BEHAVIOUR,
        "impact": "Two hidden risks came out early and were planned for.",
        "anonymity": "attributed",
        "relation": "peer",  # asked of a reviewer whose relationship the contract does not state
    }
    values.update(overrides)
    return values


def for_modal(modal: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """`values` for the inputs this modal has: the relationship is asked only when it is not
    known, anonymity offered only where it is possible."""
    inputs = {b.get("block_id") for b in modal.get("blocks") or [] if b.get("type") == "input"}
    return {key: value for key, value in values.items() if key in inputs}


async def give(
    bot: Bot, *, user: str, anonymous: bool = False, leader: str = DANA, **overrides: Any
) -> DriverResponse:
    """`/feedback @leader`, then the modal submitted with `answers(**overrides)`."""
    modal = await open_modal(bot, "/feedback", leader, user=user)
    values = answers(anonymity="anonymous" if anonymous else "attributed", **overrides)
    response = await bot.driver.submit_view(modal, for_modal(modal, values), user=user)
    assert response.status == 200
    return response


def dms(bot: Bot, user: str) -> list[dict[str, Any]]:
    """Messages the bot posted in its DM with `user`."""
    return list(bot.fake.messages.get(bot.fake.dm_id(user), []))


def notices(bot: Bot, user: str) -> list[dict[str, Any]]:
    """The bot's DMs to `user` other than requests for feedback (the cadence asks the leader
    for their self view too)."""
    return [m for m in dms(bot, user) if "feedback_request_give" not in text_of(m)]


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


async def run_job(bot: Bot, *, force: bool = False) -> object:
    return await feedback_job(JobRun(services=bot.services, client=bot.app.client, force=force))


async def settled(bot: Bot, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Wait until no delivery is mid-way (claimed, its Slack call made, not yet marked)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with bot.sessions() as session:
            busy = (await session.exec(select(Delivery).where(Delivery.status == "claimed"))).all()
        if not busy:
            return
        assert asyncio.get_running_loop().time() < deadline, f"deliveries stuck: {busy}"
        await asyncio.sleep(0.02)


async def not_yet_recorded(bot: Bot, *where: Any) -> None:
    """Put the one delivery matching `where` back where a quick click finds it: claimed, its
    message posted but not yet recorded (the moments between the post and the record)."""
    async with bot.sessions() as session:
        await writing(session)
        row = (await session.exec(select(Delivery).where(*where))).one()
        row.status, row.slack_channel, row.slack_ts = DeliveryStatus.claimed, None, None
        session.add(row)
        await session.commit()


async def every_row(sessions: SessionFactory) -> list[tuple[str, dict[str, Any]]]:
    """Every row of every table the models define, as (table, row)."""
    found: list[tuple[str, dict[str, Any]]] = []
    async with sessions() as session:
        connection = await session.connection()
        for table in SQLModel.metadata.sorted_tables:
            rows = (await connection.execute(table.select())).mappings().all()
            found += [(table.name, dict(row)) for row in rows]
    return found


async def traces_of(sessions: SessionFactory, needles: list[str]) -> list[str]:
    """Every (table, column) whose value contains one of `needles`, case-insensitively."""
    hits = []
    lowered = [n.lower() for n in needles]
    for table, row in await every_row(sessions):
        for column, value in row.items():
            text = json.dumps(value, default=str, ensure_ascii=False).lower()
            hits += [f"{table}.{column} has {n!r}" for n in lowered if n in text]
    return hits
