"""`/contract` through signed requests and the fake Slack: help, summary and who may see it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from storage.db import writing
from storage.models import Measurement, SuccessIndicator
from tests.conftest import Bot, response_texts

LEADER, SPONSOR, OWNER, ESCALATION, PEER, OUTSIDER = (
    "U0LEAD001",
    "U0SPON001",
    "U0HRBP001",
    "U0VP00001",
    "U0PEER001",
    "U0OUTSIDE",
)


async def ask(bot: Bot, text: str, *, user: str) -> str:
    """Send `/contract text` and return what the app answered (ephemeral, via response_url)."""
    before = len(bot.fake.calls_to("response_url"))
    response = await bot.driver.command("/contract", text, user=user)
    assert response.status == 200
    await bot.fake.wait_for("response_url", count=before + 1)
    return "\n".join(response_texts(bot.fake)[before:])


async def test_help_lists_the_subcommands(bot: Bot) -> None:
    said = await ask(bot, "help", user=OUTSIDER)
    for sub in ("summary", "new", "edit", "activate"):
        assert f"/contract {sub}" in said
    call = bot.fake.calls_to("response_url")[-1]
    assert call.args["response_type"] == "ephemeral"


async def test_unknown_subcommand_is_named_and_help_follows(bot: Bot) -> None:
    said = await ask(bot, "frobnicate", user=OUTSIDER)
    assert "frobnicate" in said and "/contract summary" in said


async def test_sponsor_reads_the_leaders_summary(bot: Bot, example_contract: int) -> None:
    said = await ask(bot, f"summary <@{LEADER}|dana>", user=SPONSOR)
    assert "Head of Platform: FY2027 leadership contract" in said
    for line in (
        "I1 · Team engagement score",
        "baseline 62 → latest _no value yet_ → target 75 points",
        "I2 · Median project cycle time",
        "baseline 45 → latest _no value yet_ → target 30 days",
        "I3 · Risks surfaced within 48 hours",
        "baseline 40 → latest _no value yet_ → target 90 %",
    ):
        assert line in said
    for part in ("D1", "Executive influence coaching", "M1", "Coaching budget", "Escalation"):
        assert part in said


async def test_summary_shows_latest_values_with_direction_aware_progress(
    bot: Bot, example_contract: int
) -> None:
    async with bot.sessions() as session:
        await writing(session)
        indicators = {
            i.key: i
            for i in (
                await session.exec(
                    select(SuccessIndicator).where(SuccessIndicator.contract_id == example_contract)
                )
            ).all()
        }
        for key, values in {"I1": [64, 68.5], "I2": [40, 37.5]}.items():
            for day, value in enumerate(values, start=1):
                session.add(
                    Measurement(
                        indicator_id=indicators[key].id or 0,
                        value=value,
                        measured_at=datetime(2027, 2, day, tzinfo=UTC),
                    )
                )
        await session.commit()
    said = await ask(bot, "summary", user=LEADER)
    assert (
        "baseline 62 → latest *68.5* → target 75 points · ▓▓▓▓▓░░░░░ 50% of the "
        "way · ↗ up 4.5 points since 1 Feb 2027 · improving"
    ) in said
    # A cycle time that falls points down and improves: arrow, word and numbers agree.
    assert (
        "baseline 45 → latest *37.5* → target 30 days · ▓▓▓▓▓░░░░░ 50% of the way "
        "· ↘ down 2.5 days since 1 Feb 2027 · improving"
    ) in said
    assert "`" not in said.split("Success indicators")[1].split("Development activities")[0]


@pytest.mark.parametrize("reader", [LEADER, SPONSOR, OWNER, ESCALATION])
async def test_governance_may_read(bot: Bot, example_contract: int, reader: str) -> None:
    said = await ask(bot, f"summary <@{LEADER}|dana>", user=reader)
    assert "Success indicators" in said


async def test_a_peer_may_not_read_someone_elses_summary(bot: Bot, example_contract: int) -> None:
    said = await ask(bot, f"summary <@{LEADER}|dana>", user=PEER)
    assert "Only <@U0LEAD001>, their sponsor" in said
    assert "Team engagement" not in said


async def test_an_unknown_user_gets_a_sentence(bot: Bot, example_contract: int) -> None:
    said = await ask(bot, "summary @ghost", user=SPONSOR)
    assert "couldn't find a Slack user in “@ghost”" in said


async def test_someone_without_a_contract(bot: Bot, example_contract: int) -> None:
    assert "has no contract" in await ask(bot, f"summary <@{PEER}|pia>", user=SPONSOR)
    assert "don't have a contract yet" in await ask(bot, "summary", user=OUTSIDER)


async def test_a_sponsor_without_their_own_contract_is_pointed_to_theirs(
    bot: Bot, example_contract: int
) -> None:
    said = await ask(bot, "summary", user=SPONSOR)
    assert "<@U0LEAD001>" in said and "/contract summary @name" in said


async def test_mentions_arrive_escaped_and_plain(bot: Bot, example_contract: int) -> None:
    said = await ask(bot, f"SUMMARY   <@{LEADER}>", user=SPONSOR)
    assert "Success indicators" in said


async def test_tampered_signature_is_refused_and_nothing_happens(
    bot: Bot, example_contract: int
) -> None:
    body = "command=%2Fcontract&text=summary&user_id=U0LEAD001&response_url=x&trigger_id=t"
    headers = bot.driver.sign(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = await bot.driver.post_raw(body, headers)
    assert response.status == 401
    stale = bot.driver.sign(body, timestamp=1_600_000_000)
    stale["Content-Type"] = "application/x-www-form-urlencoded"
    assert (await bot.driver.post_raw(body, stale)).status == 401
    assert bot.fake.calls_to("response_url") == []
