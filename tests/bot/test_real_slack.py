"""The app against Slack as it really behaves, where it differs from a naive fake.

- a deactivated account still takes DMs, so `users.info` decides who is prompted;
- `account_inactive`, `invalid_auth`, `token_revoked` are about the bot's own token;
- block text past about 11k characters is refused with `msg_blocks_too_long`;
- a person may have no `tz`, only a `tz_offset`; `users.list` is Tier 2;
- a response_url takes five posts; every HTTP session is closed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.models.blocks import Block, DividerBlock
from sqlalchemy import update
from sqlmodel import col

from bot.checkins.model import PROMPT, REMINDER, UNDELIVERABLE_NOTICE
from bot.core.calendar import CadencePeriod, fixed_offset_zone, zone_of
from bot.delivery import DeliveryKey, Message, Outcome, Outgoing, fixed, queue_of
from bot.digest.blocks import MAX_PARTS, build_digest
from bot.digest.model import (
    DIGEST,
    DIGEST_PART,
    NEEDS_SHOWN,
    PROGRESS_SHOWN,
    ContractDigest,
    Digest,
    Schedule,
)
from bot.people.model import DEACTIVATED, IS_BOT
from bot.sandbox.fake_slack import MESSAGE_BLOCKS_TEXT_LIMIT, validate_message_blocks
from bot.ui.blocks import MESSAGE_TEXT_BUDGET, section, split_messages, text_length
from handlers.common import RESPONSE_URL_USES, reply_blocks
from storage.db import writing
from storage.models import (
    Amendment,
    Contract,
    Milestone,
    Risk,
    SlackUser,
    SuccessIndicator,
)
from storage.queries.contracts import ContractBundle
from tests.bot.checkins.test_support import (
    add_contract,
    at,
    deliveries,
    posts_to,
    run_job,
    virtual_time,
)
from tests.bot.digest.test_service import busy_contract, flat, run, sponsored
from tests.harness import Bot

LEADER, SPONSOR, OWNER = "U0LEAD001", "U0SPON001", "U0HRBP001"
FRIDAY = "2027-03-12 15:00"  # the contracts' check-in time, in their zone


def texts_of(calls: list[Any]) -> str:
    return "\n".join(flat(c) for c in calls)


# --- deactivated people and bots ----------------------------------------------------------


async def test_a_deactivated_leader_is_not_prompted_and_the_owner_is_told_once(bot: Bot) -> None:
    virtual_time(bot.services)
    bot.fake.users[LEADER]["deleted"] = True  # Slack would accept the DM: nobody reads it
    await add_contract(bot.sessions, title="Head of Platform")
    bot.clock.set(at(FRIDAY, "Europe/Berlin"))
    report = await run_job(bot, "checkins")
    assert report.count(Outcome.undeliverable) == 1
    assert posts_to(bot.fake, LEADER) == []
    (prompt,) = await deliveries(bot.sessions, PROMPT)
    assert (prompt.status, prompt.last_error) == ("undeliverable", DEACTIVATED)
    (notice,) = posts_to(bot.fake, OWNER)
    assert "deactivated" in notice.args["text"] and "Head of Platform" in notice.args["text"]
    await run_job(bot, "checkins")
    bot.clock.advance(timedelta(days=7))
    await run_job(bot, "checkins")
    assert len(posts_to(bot.fake, OWNER)) == 1
    assert posts_to(bot.fake, LEADER) == []
    assert await deliveries(bot.sessions, REMINDER) == []


async def test_a_leader_deactivated_after_the_prompt_gets_no_reminder(bot: Bot) -> None:
    virtual_time(bot.services)
    await add_contract(bot.sessions, title="Head of Platform")
    bot.clock.set(at(FRIDAY, "Europe/Berlin"))
    await run_job(bot, "checkins")
    assert len(posts_to(bot.fake, LEADER)) == 1
    bot.fake.users[LEADER]["deleted"] = True
    bot.clock.advance(timedelta(days=1, minutes=1))  # the reminder is due; the cache is stale
    await run_job(bot, "reminders")
    assert len(posts_to(bot.fake, LEADER)) == 1
    (reminder,) = await deliveries(bot.sessions, REMINDER)
    assert (reminder.status, reminder.last_error) == ("undeliverable", DEACTIVATED)
    assert len(posts_to(bot.fake, OWNER)) == 1


async def test_a_bot_named_as_leader_is_not_messaged(bot: Bot) -> None:
    virtual_time(bot.services)
    bot.fake.add_user("U0SOMEBOT", name="somebot", is_bot=True)
    await add_contract(bot.sessions, leader="U0SOMEBOT")
    bot.clock.set(at(FRIDAY, "Europe/Berlin"))
    await run_job(bot, "checkins")
    assert bot.fake.calls_to("chat.postMessage")[0].args["channel"] == OWNER
    (prompt,) = await deliveries(bot.sessions, PROMPT)
    assert (prompt.status, prompt.last_error) == ("undeliverable", IS_BOT)


async def test_a_deactivated_sponsor_gets_no_digest_and_the_owner_is_told(bot: Bot) -> None:
    virtual_time(bot.services)
    bot.fake.users[SPONSOR]["deleted"] = True
    await sponsored(bot.sessions, title="Head of Platform")
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))
    await run(bot)
    assert posts_to(bot.fake, SPONSOR) == []
    digest_rows = {d.recipient_id: d for d in await deliveries(bot.sessions, DIGEST)}
    assert (digest_rows[SPONSOR].status, digest_rows[SPONSOR].last_error) == (
        "undeliverable",
        DEACTIVATED,
    )
    assert digest_rows[OWNER].status == "sent"
    told = [c for c in posts_to(bot.fake, OWNER) if "couldn't deliver" in c.args["text"]]
    assert len(told) == 1 and "digest" in told[0].args["text"]
    notices = await deliveries(bot.sessions, UNDELIVERABLE_NOTICE)
    assert [(n.recipient_id, n.period_key) for n in notices] == [(OWNER, SPONSOR)]


# --- the bot's own token ----------------------------------------------------------------------


@pytest.mark.parametrize("error", ["account_inactive", "invalid_auth", "token_revoked"])
async def test_a_refused_token_stops_sending_and_keeps_everything_pending(
    bot: Bot, caplog: pytest.LogCaptureFixture, error: str
) -> None:
    virtual_time(bot.services)
    for leader in (LEADER, "U0VP00001", "U0PEER002"):
        await add_contract(bot.sessions, leader=leader)
    bot.clock.set(at(FRIDAY, "Europe/Berlin"))
    bot.fake.token_error = error
    with caplog.at_level(logging.WARNING, logger="bot.delivery"):
        first = await run_job(bot, "checkins")
        bot.clock.advance(timedelta(minutes=1))
        await run_job(bot, "checkins")
    assert first.count(Outcome.held) == 3 and first.count(Outcome.undeliverable) == 0
    assert len(bot.fake.calls_to("chat.postMessage")) == 2  # one try a run, then it stops
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1 and error in critical[0].getMessage()
    rows = await deliveries(bot.sessions, PROMPT)
    assert {r.status for r in rows} == {"claimed"} and {r.last_error for r in rows} <= {error}
    assert await deliveries(bot.sessions, UNDELIVERABLE_NOTICE) == []

    bot.fake.token_error = None  # a new token, or the app reinstalled
    bot.clock.advance(timedelta(minutes=1))
    report = await run_job(bot, "checkins")
    assert report.count(Outcome.sent) == 3
    assert {r.status for r in await deliveries(bot.sessions, PROMPT)} == {"sent"}
    assert all(len(posts_to(bot.fake, u)) == 1 for u in (LEADER, "U0VP00001", "U0PEER002"))


async def test_a_refused_token_holds_a_scheduled_reminder_for_later(bot: Bot) -> None:
    virtual_time(bot.services)
    await add_contract(bot.sessions)
    bot.clock.set(at(FRIDAY, "Europe/Berlin"))
    await run_job(bot, "checkins")
    bot.clock.advance(timedelta(days=1, minutes=1))
    bot.fake.token_error = "token_revoked"
    assert (await run_job(bot, "reminders")).count(Outcome.held) == 1
    (reminder,) = await deliveries(bot.sessions, REMINDER)
    assert reminder.status == "scheduled" and reminder.attempts == 0
    bot.fake.token_error = None
    assert (await run_job(bot, "reminders")).count(Outcome.sent) == 1


# --- time zones -----------------------------------------------------------------------------


def test_a_fixed_offset_zone_is_a_zoneinfo_at_that_offset_all_year() -> None:
    for seconds in (19800, -12600, 20700, 0, 50400, -36000):
        zone = fixed_offset_zone(seconds)
        assert isinstance(zone, ZoneInfo)
        for month in (1, 7):
            local = datetime(2027, month, 1, 12, tzinfo=UTC).astimezone(zone)
            assert local.utcoffset() == timedelta(seconds=seconds)
    assert fixed_offset_zone(19800).key == "UTC+05:30"
    assert fixed_offset_zone(-12600).key == "UTC-03:30"
    named = SlackUser(user_id="U1", tz="Asia/Kolkata", tz_offset=0)
    assert zone_of(named) == ZoneInfo("Asia/Kolkata")
    assert zone_of(SlackUser(user_id="U1", tz=None, tz_offset=-18000)) == fixed_offset_zone(-18000)
    assert zone_of(SlackUser(user_id="U1", tz=None, tz_offset=None)) is None


async def test_a_leader_without_a_tz_is_prompted_at_their_offset(bot: Bot) -> None:
    virtual_time(bot.services)
    bot.fake.add_user("U0NOZONE1", name="nozone", tz=None, tz_offset=5 * 3600 + 1800)
    await add_contract(bot.sessions, leader="U0NOZONE1", timezone=None)
    due = datetime(2027, 3, 12, 9, 30, tzinfo=UTC)  # 15:00 at UTC+05:30; Berlin's is 14:00 UTC
    bot.clock.set(due - timedelta(minutes=1))
    await run_job(bot, "checkins")
    assert posts_to(bot.fake, "U0NOZONE1") == []
    bot.clock.set(due)
    await run_job(bot, "checkins")
    assert len(posts_to(bot.fake, "U0NOZONE1")) == 1
    async with bot.sessions() as session:
        cached = await session.get(SlackUser, "U0NOZONE1")
    assert cached is not None and (cached.tz, cached.tz_offset) == (None, 19800)


async def test_known_prompts_go_before_anyone_is_looked_up_and_never_with_users_list(
    bot: Bot,
) -> None:
    virtual_time(bot.services, per_minute=100_000)
    await add_contract(bot.sessions, leader=LEADER, timezone="Europe/Berlin")
    for n in range(60):
        user = f"U0MANY{n:03d}"
        bot.fake.add_user(user, name=f"m{n}", tz="Europe/Berlin")
        await add_contract(bot.sessions, leader=user, timezone=None, owner=None)
    bot.clock.set(at(FRIDAY, "Europe/Berlin"))
    await run_job(bot, "checkins")
    calls = [(c.method, c.args.get("channel") or c.args.get("user")) for c in bot.fake.calls]
    first_lookup = next(i for i, c in enumerate(calls) if c == ("users.info", "U0MANY000"))
    assert calls.index(("chat.postMessage", LEADER)) < first_lookup
    assert bot.fake.calls_to("users.list") == []
    await run_job(bot, "checkins")
    assert len(bot.fake.calls_to("chat.postMessage")) == 61


# --- long digests -----------------------------------------------------------------------------


async def twelve(bot: Bot) -> list[str]:
    """Twelve busy contracts under one sponsor (and no owner), titles as long as they may be."""
    titles = []
    for n in range(12):
        title = (f"Contract {n:02d}: " + "a long name for the platform group's turnaround " * 3)[
            :150
        ]
        await busy_contract(bot.sessions, leader=f"U0LONG{n:03d}", title=title)
        titles.append(title)
    long = "because the launch moved and two engineers went with it; " * 8
    async with bot.sessions() as session:
        await writing(session)
        await session.exec(update(Contract).values(owner_id=None))
        await session.exec(update(Risk).values(text=long))
        await session.exec(update(Amendment).values(rationale=long))
        await session.exec(update(SuccessIndicator).values(name=long[:120]))
        await session.exec(update(Milestone).values(title=long[:150]))
        await session.commit()
    return titles


async def test_a_digest_of_twelve_contracts_is_cut_by_text_size_too(bot: Bot) -> None:
    virtual_time(bot.services, per_minute=6000)
    titles = await twelve(bot)
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))
    await run(bot)
    calls = [c for c in bot.fake.calls_to("chat.postMessage") if c.args["channel"] == SPONSOR]
    assert all(c.response["ok"] for c in calls), [c.response for c in calls]
    sizes = [text_length(c.args["blocks"]) for c in calls]
    blocks = sum(len(c.args["blocks"]) for c in calls)
    # Cut by block count alone, fewer messages would have had to carry all of it.
    assert len(calls) > -(-blocks // 49) and sum(sizes) > 2 * MESSAGE_BLOCKS_TEXT_LIMIT
    assert max(sizes) <= MESSAGE_TEXT_BUDGET and len(calls) <= MAX_PARTS
    whole = texts_of(calls)
    assert all(title in whole for title in titles)
    assert {d.status for d in await deliveries(bot.sessions, DIGEST_PART)} == {"sent"}


async def test_a_message_refused_as_too_long_is_cut_smaller_not_sent_again(bot: Bot) -> None:
    virtual_time(bot.services, per_minute=6000)
    titles = await twelve(bot)
    async with bot.sessions() as session:  # all of it fits four half-size parts
        await writing(session)
        await session.exec(update(Risk).values(text="The launch moved. " * 8))
        # Every open risk is listed: the ones not asking for help are resolved, to fit.
        await session.exec(
            update(Risk).where(col(Risk.needs_sponsor_help).is_(False)).values(status="resolved")
        )
        await session.commit()
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))
    bot.fake.fail_next("chat.postMessage", status=200, error="msg_blocks_too_long")
    await run(bot)
    (refused,) = bot.fake.calls_to("chat.postMessage")
    (row,) = await deliveries(bot.sessions, DIGEST)
    assert (row.status, row.last_error) == ("failed", "msg_blocks_too_long")
    await run(bot)
    assert len(bot.fake.calls_to("chat.postMessage")) == 1  # not again at once
    bot.clock.advance(timedelta(minutes=6))
    await run(bot)
    calls = bot.fake.calls_to("chat.postMessage")[1:]
    assert all(c.response["ok"] for c in calls)
    first = text_length(calls[0].args["blocks"])
    assert first <= MESSAGE_TEXT_BUDGET // 2 < text_length(refused.args["blocks"])
    whole = texts_of(calls)
    assert all(title in whole for title in titles)


async def test_a_later_part_refused_as_too_long_is_cut_smaller(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.digest import jobs as digest_module

    async def crashed(**_: Any) -> int:
        return 0

    virtual_time(bot.services, per_minute=6000)
    titles = await twelve(bot)
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))
    with monkeypatch.context() as patched:
        patched.setattr(digest_module, "send_parts", crashed)
        await run(bot)
    bot.fake.fail_next("chat.postMessage", status=200, error="msg_blocks_too_long")
    await run(bot)
    part = next(d for d in await deliveries(bot.sessions, DIGEST_PART) if d.status == "failed")
    assert part.last_error == "msg_blocks_too_long"
    refused = bot.fake.calls_to("chat.postMessage")[1]
    bot.clock.advance(timedelta(minutes=6))
    await run(bot)
    calls = bot.fake.calls_to("chat.postMessage")
    later = calls[2:]
    assert all(c.response["ok"] for c in later)
    assert text_length(later[0].args["blocks"]) < text_length(refused.args["blocks"])
    assert text_length(later[0].args["blocks"]) <= MESSAGE_TEXT_BUDGET // 2
    whole = texts_of([calls[0], *later])
    assert all(title in whole for title in titles)


def portfolio(size: int, needing: int) -> Digest:
    """A digest of `size` contracts, the first `needing` of them with a missed check-in."""
    now = datetime(2027, 3, 15, 8, tzinfo=UTC)
    items = []
    for n in range(size):
        contract = Contract(
            id=n + 1,
            title=f"Contract {n:03d}",
            leader_id=f"U0L{n:06d}",
            sponsor_id=SPONSOR,
            period_start=datetime(2027, 1, 4).date(),
            period_end=datetime(2027, 12, 17).date(),
        )
        item = ContractDigest(bundle=ContractBundle(contract=contract), headline="On track")
        if n < needing:
            item.missed_checkins = ["2027-W10"]
        items.append(item)
    schedule = Schedule("weekly", 0, "09:00", datetime(2027, 1, 4).date())
    period = CadencePeriod(
        "weekly:2027-W11", now.date(), now.date() + timedelta(days=7), now.date()
    )
    return Digest(SPONSOR, schedule, period, ZoneInfo("Europe/Berlin"), now, now, items)


@pytest.mark.parametrize(("size", "needing"), [(500, 0), (500, 60), (500, 500), (40, 12)])
def test_a_large_portfolio_is_a_few_readable_messages(size: int, needing: int) -> None:
    home = "slack://app?team=T0TEST001&id=A0NORTH01&tab=home"
    messages = build_digest(portfolio(size, needing), home=home)
    assert 1 <= len(messages) <= MAX_PARTS
    for message in messages:
        blocks = [b.to_dict() for b in message.blocks or []]
        assert validate_message_blocks(blocks) == []
        assert text_length(blocks) <= MESSAGE_TEXT_BUDGET
    whole = "\n".join(flat(m.arguments()) for m in messages)
    assert whole.index("Needs you") < whole.index("Progress since")
    on_track = size - needing
    hidden = size - PROGRESS_SHOWN
    hidden_on_track = min(on_track, hidden) if on_track else 0
    if hidden_on_track:
        assert f"…and {hidden_on_track} more on track" in whole
    assert f"<{home}|open App Home>" in whole
    in_full = min(needing, NEEDS_SHOWN)
    assert whole.count("📭 1 missed check-in") == in_full


# --- HTTP sessions and response_urls ---------------------------------------------------------


async def test_a_delivery_queue_closes_its_http_session(bot: Bot) -> None:
    virtual_time(bot.services)
    key = DeliveryKey("test_notice", 0, LEADER, "once")
    async with queue_of(bot.services, bot.app.client) as queue:
        result = await queue.deliver(Outgoing(key=key, build=fixed(Message(text="hello"))))
        session = queue._http
        assert result.outcome == Outcome.sent and session is not None and not session.closed
    assert session.closed and queue._http is None


async def test_a_long_reply_uses_a_response_url_five_times_at_most() -> None:
    sent: list[dict[str, Any]] = []

    async def respond(**kwargs: Any) -> None:
        sent.append(kwargs)

    blocks: list[Block] = []
    for n in range(400):
        blocks += [section(f"*Item {n}* " + "words " * 300), DividerBlock()]
    assert len(split_messages(blocks)) > RESPONSE_URL_USES
    await reply_blocks(respond, blocks, text="Summary")  # type: ignore[arg-type]
    assert len(sent) == RESPONSE_URL_USES
    assert all(len(m["blocks"]) <= 50 for m in sent)
    assert "App Home shows all of it" in str(sent[-1]["blocks"][-1])
