"""The strategic-alignment review through signed requests and the fake Slack: the DM to the
leader and the sponsor once per period (across restarts), the modal, the recorded outcome,
retire as a removal amendment, amend as the pre-filled amendment form, and the refusals."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.client import create_client
from bot.core.clock import ManualClock
from bot.report.render import render_csv, render_markdown
from bot.report.service import build_report, parse_period
from bot.reviews.model import opens_on, review_period
from bot.services import Services
from storage.db import create_engine, session_factory, writing
from storage.models import (
    AlignmentReview,
    Amendment,
    ContractStatus,
    Delivery,
    Measurement,
)
from storage.queries import contracts as contract_queries
from tests.bot.checkins.test_support import add_contract, at, run_job, run_job_with, set_status
from tests.conftest import Bot
from tests.handlers.test_amendments import (
    LEADER,
    OWNER,
    PEER,
    SPONSOR,
    buttons,
    dm,
    indicator,
    request_to,
    stored,
    text_of,
)
from tests.harness import filled_modal

REVIEW_OPENS = at("2027-03-18 09:00", "Europe/Berlin")  # Q1 ends 31 March: 14 days before


def review_dms(bot: Bot, user: str) -> list[dict[str, Any]]:
    return [m for m in dm(bot, user) if "Alignment review" in text_of(m)]


async def reviews_sent(bot: Bot) -> list[Delivery]:
    return [d for d in await stored(bot, Delivery) if d.kind == "alignment_review"]


async def send_reviews(bot: Bot, when: Any = REVIEW_OPENS) -> None:
    bot.clock.set(when)
    await run_job(bot, "reviews")


async def start(bot: Bot, user: str) -> dict[str, Any]:
    (message,) = review_dms(bot, user)
    before = len(bot.fake.calls_to("views.open"))
    response = await bot.driver.block_action(
        user=user, action_id="review_start", message=copy.deepcopy(message)
    )
    assert response.status == 200
    calls = await bot.fake.wait_for("views.open", count=before + 1)
    assert calls[-1].response["ok"], calls[-1].response
    return await filled_modal(bot.fake, user)


async def review(bot: Bot, user: str, values: dict[str, Any]) -> Any:
    modal = await start(bot, user)
    return await bot.driver.submit_view(modal, values, user=user)


def test_periods_and_opening_days() -> None:
    q1 = review_period("quarterly", date(2027, 3, 10))
    assert (q1.key, q1.start, q1.end) == ("2027-Q1", date(2027, 1, 1), date(2027, 3, 31))
    assert opens_on("quarterly", q1) == date(2027, 3, 18)
    march = review_period("monthly", date(2027, 3, 10))
    assert (march.key, opens_on("monthly", march)) == ("2027-03", date(2027, 3, 25))
    assert review_period("quarterly", date(2027, 12, 31)).end == date(2027, 12, 31)


async def test_the_review_goes_once_per_period_in_the_morning(
    bot: Bot, example_contract: int
) -> None:
    await send_reviews(bot, REVIEW_OPENS - timedelta(minutes=1))
    assert await reviews_sent(bot) == []
    await send_reviews(bot)
    assert {d.recipient_id for d in await reviews_sent(bot)} == {LEADER, SPONSOR}
    (message,) = review_dms(bot, LEADER)
    assert buttons(message) == ["review_start"]
    assert "Q1 2027" in text_of(message)
    # Again, and after a restart (a fresh app on the same database): nothing more.
    await send_reviews(bot, REVIEW_OPENS + timedelta(hours=5))
    engine = create_engine(bot.services.settings.database_url)
    try:
        later = ManualClock(REVIEW_OPENS + timedelta(days=2))
        restarted = Services(
            settings=bot.services.settings, sessions=session_factory(engine), clock=later
        )
        await run_job_with(restarted, create_client(restarted.settings), "reviews")
    finally:
        await engine.dispose()
    assert len(review_dms(bot, LEADER)) == 1 and len(review_dms(bot, SPONSOR)) == 1
    assert dm(bot, OWNER) == [] and dm(bot, PEER) == []
    # The next quarter's review comes in its own time.
    await send_reviews(bot, at("2027-06-17 09:00", "Europe/Berlin"))
    assert len(review_dms(bot, LEADER)) == 2


async def test_a_closed_contract_gets_no_review(bot: Bot, example_contract: int) -> None:
    await set_status(bot.sessions, example_contract, ContractStatus.closed)
    await send_reviews(bot)
    assert await reviews_sent(bot) == []


async def test_a_whole_organisation_is_reviewed_a_page_of_contracts_at_a_time(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job reads the active contracts one page at a time (here one contract a page) and
    checks each page's sent reviews: each leader and sponsor of an active contract gets one
    DM, the closed contract's none, and a later run adds nothing."""
    monkeypatch.setattr(contract_queries, "ACTIVE_PAGE", 1)
    first = await add_contract(bot.sessions, leader=LEADER, sponsor=SPONSOR)
    closed = await add_contract(bot.sessions, leader=PEER, sponsor=OWNER)
    third = await add_contract(bot.sessions, leader="U0PEER003", sponsor=SPONSOR)
    await set_status(bot.sessions, closed, ContractStatus.closed)
    await send_reviews(bot)
    sent = {(d.contract_id, d.recipient_id) for d in await reviews_sent(bot)}
    assert sent == {
        (first, LEADER),
        (first, SPONSOR),
        (third, "U0PEER003"),
        (third, SPONSOR),
    }
    await send_reviews(bot, REVIEW_OPENS + timedelta(hours=5))
    assert len(await reviews_sent(bot)) == 4
    assert len(review_dms(bot, SPONSOR)) == 2 and dm(bot, PEER) == dm(bot, OWNER) == []


async def test_the_review_records_the_outcome_and_retire_proposes_a_removal(
    bot: Bot, example_contract: int
) -> None:
    await send_reviews(bot)
    modal = await start(bot, LEADER)
    assert modal["callback_id"] == "review_submit"
    inputs = [b["block_id"] for b in modal["blocks"] if b["type"] == "input"]
    assert "expectation.E1" in inputs and "indicator.I2" in inputs and "note.indicator.I2" in inputs

    response = await bot.driver.submit_view(
        modal,
        {
            "expectation.E3": "retire",
            "note.expectation.E3": "The reorg made it moot.",
            "indicator.I2": "amend",
            "note.indicator.I2": "Target too soft.",
        },
        user=LEADER,
    )
    assert response.json["response_action"] == "update", response.json
    done = bot.fake.last_view(LEADER)
    shown = str(done["blocks"])
    assert "retired E3 (amendment #1)" in shown and "to amend I2" in shown
    (saved,) = await stored(bot, AlignmentReview)
    assert (saved.reviewer_id, saved.role, saved.period_key) == (LEADER, "leader", "2027-Q1")
    by_key = {c["key"]: c for c in saved.choices}
    assert by_key["E1"]["choice"] == "keep" and by_key["I2"]["note"] == "Target too soft."
    (amendment,) = await stored(bot, Amendment)
    assert (amendment.item_key, amendment.after, amendment.status) == ("E3", None, "pending")
    assert "alignment review of Q1 2027" in amendment.rationale
    request = await request_to(bot, SPONSOR, count=2)  # after the review's own DM
    assert buttons(request) == ["amendment_approve", "amendment_reject"]

    # Amend opens the amendment form for I2, pre-filled, over the confirmation.
    before = len(bot.fake.calls_to("views.push"))
    await bot.driver.block_action(user=LEADER, action_id="review_amend_0", view=done)
    (push,) = (await bot.fake.wait_for("views.push", count=before + 1))[before:]
    assert push.response["ok"], push.response
    form = bot.fake.last_view(LEADER)
    assert form["callback_id"] == "amendment_item"
    target = next(b for b in form["blocks"] if b.get("block_id") == "target")
    assert target["element"]["initial_value"] == "30"

    # The sponsor sees the leader's choices, and records their own.
    modal = await start(bot, SPONSOR)
    shown = str(modal["blocks"])
    assert "<@U0LEAD001> (leader) chose *Retire*: “The reorg made it moot.”" in shown
    response = await bot.driver.submit_view(modal, {"indicator.I2": "keep"}, user=SPONSOR)
    assert response.json["response_action"] == "update"
    assert len(await stored(bot, AlignmentReview)) == 2


async def test_a_double_submit_or_another_user_records_nothing_more(
    bot: Bot, example_contract: int
) -> None:
    await send_reviews(bot)
    modal = await start(bot, LEADER)
    copy_of = copy.deepcopy(modal)
    await bot.driver.submit_view(modal, {"expectation.E3": "retire"}, user=LEADER)
    # The same click again (a replay of the same view) writes nothing more.
    bot.fake.views[copy_of["id"]] = {**bot.fake.views[copy_of["id"]], **copy_of}
    await bot.driver.submit_view(copy_of, {"expectation.E3": "retire"}, user=LEADER)
    assert len(await stored(bot, AlignmentReview)) == 1
    assert len(await stored(bot, Amendment)) == 1
    # Starting again shows what was recorded, not a second review.
    again = await start(bot, LEADER)
    assert again.get("callback_id") != "review_submit"

    # A peer clicking a forwarded button is refused.
    (message,) = review_dms(bot, LEADER)
    before = len(bot.fake.calls_to("response_url"))
    await bot.driver.block_action(user=PEER, action_id="review_start", message=message)
    await bot.fake.wait_for("response_url", count=before + 1)
    assert "Only the leader and the sponsor" in str(bot.fake.calls_to("response_url")[-1].args)


async def test_a_retirement_that_cannot_be_proposed_is_a_field_error(
    bot: Bot, example_contract: int
) -> None:
    """An indicator with recorded values cannot be removed (as an import refuses it)."""
    await send_reviews(bot)
    i1 = await indicator(bot, "I1")
    async with bot.sessions() as session:
        await writing(session)
        session.add(Measurement(indicator_id=i1.id or 0, value=64, measured_at=bot.clock.now()))
        await session.commit()
    response = await review(bot, LEADER, {"indicator.I1": "retire"})
    assert response.json["response_action"] == "errors"
    assert "cannot be removed" in response.json["errors"]["indicator.I1"]
    assert await stored(bot, AlignmentReview) == [] and await stored(bot, Amendment) == []


async def test_a_review_opens_on_the_sponsors_own_morning(bot: Bot, example_contract: int) -> None:
    bot.fake.add_user(SPONSOR, name="sam", real_name="Sam Sponsor", tz="America/New_York")
    await send_reviews(bot, at("2027-03-18 09:00", "Europe/Berlin"))
    assert {d.recipient_id for d in await reviews_sent(bot)} == {LEADER}
    await send_reviews(bot, at("2027-03-18 09:00", "America/New_York"))
    assert {d.recipient_id for d in await reviews_sent(bot)} == {LEADER, SPONSOR}


async def test_the_digest_and_the_report_show_the_outcome(bot: Bot, example_contract: int) -> None:
    await send_reviews(bot)
    await review(
        bot,
        LEADER,
        {
            "expectation.E3": "retire",
            "indicator.I2": "amend",
            "note.indicator.I2": "Target <too> soft & late",
        },
    )
    await run_job(bot, "digests")
    (digest,) = [m for m in dm(bot, SPONSOR) if "North Star digest" in m["text"]]
    shown = text_of(digest)
    assert "Alignment review 2027-Q1 by <@U0LEAD001> (leader)" in shown
    assert "retired E3 (amendment #1)" in shown and "to amend I2" in shown
    assert "I2: Target &lt;too&gt; soft &amp; late" in shown

    async with bot.sessions() as session:
        reports = await build_report(
            session=session,
            period=parse_period("2027Q1"),
            today=date(2027, 4, 1),
            zone=ZoneInfo("Europe/Berlin"),
        )
    text = render_markdown(parse_period("2027Q1"), reports, today=date(2027, 4, 1))
    assert (
        "- Alignment reviews: 2027-Q1 by U0LEAD001 (leader): kept E1, E2, I1, I3; "
        "retired E3 (amendment #1); to amend I2 (“Target <too> soft & late”)" in text
    ), text
    csv = render_csv(parse_period("2027Q1"), reports)
    assert "alignment_reviews" in csv.splitlines()[0] and "retired E3" in csv


async def test_a_crafted_review_records_nothing(bot: Bot, example_contract: int) -> None:
    await send_reviews(bot)
    modal = await start(bot, LEADER)
    # Someone else submitting the leader's modal.
    response = await bot.driver.submit_view(modal, {"expectation.E3": "retire"}, user=PEER)
    assert "Only the leader and the sponsor" in str(response.json)
    # A period that is not one of the contract's, or no period at all.
    for metadata in (
        {"contract_id": example_contract, "period": "2027-03"},
        {"contract_id": example_contract, "period": "2027-Q5"},
        {"contract_id": 99999},
    ):
        bot.fake.views[modal["id"]]["private_metadata"] = json.dumps(metadata)
        response = await bot.driver.submit_view(modal, {"expectation.E3": "retire"}, user=LEADER)
        assert response.json["response_action"] == "errors", response.json
    assert await stored(bot, AlignmentReview) == [] and await stored(bot, Amendment) == []
