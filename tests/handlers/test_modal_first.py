"""Modals open first: the statements before `views.open` are as few for an owner of 300
contracts, or a contract with 156 weeks of history, as for one contract of one week; the
modal opens as "Loading…" and is then filled in place."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.answers.model import MORE
from bot.checkins.blocks import CHECKIN_MODAL
from bot.checkins.blocks import START as START_CHECKIN
from bot.evidence.blocks import EVIDENCE_MODAL
from bot.renewal.blocks import CLOSE_MODAL
from bot.reviews.blocks import REVIEW_START, REVIEW_SUBMIT
from bot.summary.home import OPEN_SUMMARY
from bot.ui.metadata import CheckinRecordRef, ContractRef, ReviewRef
from bot.ui.views import LOADING
from tests.bench.measure import quiet
from tests.conftest import PEOPLE
from tests.fakes import FakeSlack
from tests.harness import (
    BOT_TOKEN,
    START,
    Bot,
    filled,
    filled_modal,
    loading_while_fills_wait,
    running_bot,
)
from tests.scale import counting_statements, seed_organisation

LEADER, OWNER, SPONSOR = "U0LEAD001", "U0HRBP001", "U0SPON001"
MAX_BEFORE_OPEN = 12  # the request's own bookkeeping and one or two small look-ups

Act = Callable[[Bot], Awaitable[Any]]


async def before_open(
    template: Path, directory: Path, *, contracts: int, weeks: int, act: Act, user: str
) -> tuple[int, dict[str, Any]]:
    """Statements sent before the first `views.open`, and the modal once filled."""
    path = directory / f"{contracts}x{weeks}.db"
    shutil.copyfile(template, path)
    url = f"sqlite+aiosqlite:///{path}"
    await seed_organisation(
        url, now=START, contracts=contracts, weeks=weeks, leader=LEADER, governor=OWNER
    )
    fake = FakeSlack(bot_token=BOT_TOKEN)
    for user_id, (name, real_name, email, tz) in PEOPLE.items():
        fake.add_user(user_id, name=name, real_name=real_name, email=email, tz=tz)
    async with fake, running_bot(fake, url) as bot:
        with counting_statements(lambda: len(fake.calls_to("views.open"))) as seen:
            await act(bot)
            (opened,) = await fake.wait_for("views.open")
            modal = await filled_modal(fake, user)
    assert opened.response["ok"], opened.response
    assert opened.args["view"]["callback_id"] == LOADING
    assert opened.args["view"]["blocks"][0]["text"]["text"] == "Loading…"
    (update,) = fake.calls_to("views.update")
    assert update.response["ok"] and update.args["view_id"] == opened.response["view"]["id"]
    assert update.args["hash"] == opened.response["view"]["hash"]
    return seen.where(lambda views_opened: views_opened == 0), modal


async def checkin(bot: Bot) -> None:
    assert (await bot.driver.command("/checkin", "", user=LEADER)).status == 200


def evidence(user: str) -> Act:
    """`/contract evidence` by `user`."""

    async def act(bot: Bot) -> None:
        assert (await bot.driver.command("/contract", "evidence", user=user)).status == 200

    return act


def shortcut(user: str) -> Act:
    """ "Add as evidence" on a message of the leader's, by `user`."""

    async def act(bot: Bot) -> None:
        message = bot.fake.post_user_message("C0GENERAL1", user=LEADER, text="Shipped the plan")
        response = await bot.driver.message_shortcut(
            user=user, callback_id="add_evidence", message=message, channel="C0GENERAL1"
        )
        assert response.status == 200

    return act


def open_summary(user: str) -> Act:
    """Open summary of the first contract, by `user` (App Home, a digest, a DM)."""

    async def act(bot: Bot) -> None:
        response = await bot.driver.block_action(
            user=user, action_id=OPEN_SUMMARY, value=ContractRef.write(contract_id=1)
        )
        assert response.status == 200

    return act


async def start_review(bot: Bot) -> None:
    response = await bot.driver.block_action(
        user=LEADER, action_id=REVIEW_START, value=ReviewRef.write(contract_id=1, period="2027-Q1")
    )
    assert response.status == 200


async def more(bot: Bot) -> None:
    checkin = CheckinRecordRef.write(checkin_id=1001)  # the first contract's latest week
    response = await bot.driver.block_action(user=OWNER, action_id=MORE, value=checkin)
    assert response.status == 200


async def close(bot: Bot) -> None:
    response = await bot.driver.command(
        "/contract", f"close <@{LEADER}|dana> Reorganised", user=OWNER
    )
    assert response.status == 200


@pytest.mark.parametrize(
    ("act", "user", "callback_id", "sizes"),
    [
        pytest.param(checkin, LEADER, CHECKIN_MODAL, [(1, 1), (1, 156)], id="/checkin"),
        pytest.param(
            evidence(OWNER), OWNER, EVIDENCE_MODAL, [(1, 1), (300, 1)], id="/contract evidence"
        ),
        pytest.param(
            shortcut(OWNER), OWNER, EVIDENCE_MODAL, [(1, 1), (300, 1)], id="Add as evidence"
        ),
        pytest.param(open_summary(OWNER), OWNER, "", [(1, 1), (300, 156)], id="Open summary"),
        pytest.param(start_review, LEADER, REVIEW_SUBMIT, [(1, 1), (1, 156)], id="Start review"),
        pytest.param(more, OWNER, "", [(1, 1), (1, 156)], id="More on a check-in"),
        pytest.param(close, OWNER, CLOSE_MODAL, [(1, 1), (300, 156)], id="/contract close"),
    ],
)
async def test_statements_before_views_open_do_not_grow(
    sqlite_template: Path,
    tmp_path: Path,
    act: Act,
    user: str,
    callback_id: str,
    sizes: list[tuple[int, int]],
) -> None:
    counts = {}
    for contracts, weeks in sizes:
        counts[(contracts, weeks)], modal = await before_open(
            sqlite_template, tmp_path, contracts=contracts, weeks=weeks, act=act, user=user
        )
        assert modal.get("callback_id") == callback_id
        assert "Contract 00001" in str(modal["blocks"])
    assert len(set(counts.values())) == 1, counts
    assert counts[sizes[0]] <= MAX_BEFORE_OPEN, counts


async def start_checkin(bot: Bot) -> None:
    """The weekly prompt's Start check-in."""
    value = json.dumps({"contract_id": 1, "period": "2027-W10"})  # the example's first week
    response = await bot.driver.block_action(user=LEADER, action_id=START_CHECKIN, value=value)
    assert response.status == 200


@pytest.mark.parametrize(
    ("act", "user", "title"),
    [
        pytest.param(checkin, LEADER, "Check-in · week 10", id="/checkin"),
        pytest.param(start_checkin, LEADER, "Check-in · week 10", id="Start check-in"),
        pytest.param(open_summary(SPONSOR), SPONSOR, "Contract summary", id="Open summary"),
        pytest.param(evidence(LEADER), LEADER, "Add evidence", id="/contract evidence"),
        pytest.param(shortcut(LEADER), LEADER, "Add evidence", id="Add as evidence"),
    ],
)
async def test_these_modals_open_before_anything_is_read(
    bot: Bot, example_contract: int, act: Act, user: str, title: str
) -> None:
    """The check-in, the weekly path of every leader, a summary opened from App Home or a
    digest, and adding evidence open their modal on Bolt's work alone: what to show and
    whether the person may see it are found while it shows "Loading…"."""
    await act(bot)  # the process's first request reads the keys of requests already taken
    first = await filled_modal(bot.fake, user)
    # and the summary's draws its charts after it is filled
    assert await quiet(bot.fake, give_up_after=10.0), "the app never went quiet"
    with counting_statements(lambda: len(bot.fake.calls_to("views.open"))) as seen:
        await act(bot)
        await bot.fake.wait_for("views.open", count=2)
        modal = await bot.fake.wait_for_view(
            user, where=lambda v: v["id"] != first["id"] and filled(v)
        )
    assert seen.where(lambda views_opened: views_opened < 2) == 0
    assert modal["title"]["text"] == title
    assert "Head of Platform" in str(modal["blocks"])


async def test_an_expired_trigger_opens_nothing_and_loads_nothing(
    bot: Bot, example_contract: int
) -> None:
    bot.fake.trigger_ttl = -1.0  # every trigger id has expired by the time it is used
    with counting_statements(lambda: len(bot.fake.calls_to("views.open"))) as seen:
        assert (await bot.driver.command("/checkin", "", user=LEADER)).status == 200
        (opened,) = await bot.fake.wait_for("views.open")
        await asyncio.sleep(0.3)  # room for any work the handler would still do
    assert opened.response["error"] == "expired_trigger_id"
    assert bot.fake.calls_to("views.update") == []
    assert seen.where(lambda views_opened: views_opened > 0) == 0  # no plan loaded after


async def test_a_modal_opens_while_every_fill_slot_is_taken_and_fills_after(
    bot: Bot, example_contract: int
) -> None:
    async with loading_while_fills_wait(bot, "/checkin", "", user=LEADER):
        await asyncio.sleep(0.3)  # room for a fill that did not wait its turn
        assert bot.fake.calls_to("views.update") == []
    modal = await filled_modal(bot.fake, LEADER)
    assert modal.get("callback_id") == CHECKIN_MODAL


async def test_a_fill_gives_way_to_a_request_still_opening_its_modal(
    bot: Bot, example_contract: int
) -> None:
    """While another request is on its way to `views.open`, a modal already open is not
    filled; it is once that request has opened its own."""
    turns = bot.services.fill_slots
    turns.monotonic = lambda: 0.0  # time stands still: the other request never times out
    turns.arriving("T-ON-ITS-WAY")
    assert (await bot.driver.command("/checkin", "", user=LEADER)).status == 200
    (opened,) = await bot.fake.wait_for("views.open")
    assert opened.response["ok"], opened.response
    await asyncio.sleep(0.3)  # room for a fill that did not give way
    assert bot.fake.calls_to("views.update") == []
    turns.opened("T-ON-ITS-WAY")
    modal = await filled_modal(bot.fake, LEADER)
    assert modal.get("callback_id") == CHECKIN_MODAL
