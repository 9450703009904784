"""The `digests` job: cadence and periods, each recipient's local time, content order,
splitting across messages, exactly once (crashes, re-runs, replicas) and rate limits.

Time is the harness's manual clock; pacing runs on it too, so nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.core.clock import ManualClock
from bot.delivery import Outcome, Report
from bot.digest import jobs as digest_module
from bot.digest import service as digest_service
from bot.digest.blocks import MAX_PARTS, build_digest
from bot.digest.jobs import send_digests
from bot.digest.model import (
    DIGEST,
    DIGEST_PART,
    NEEDS_SHOWN,
    PROGRESS_SHOWN,
    Digest,
    Schedule,
    needs_shown,
    progress_shown,
)
from bot.digest.service import (
    due_digests,
    is_digest_day,
    load_digest,
    period_of,
    schedule_of,
)
from bot.sandbox.timeline import Schedule as SandboxSchedule
from bot.sandbox.timeline import next_digest
from bot.ui.blocks import MESSAGE_TEXT_BUDGET, text_length
from storage.db import SessionFactory, create_engine, session_factory, writing
from storage.models import (
    Amendment,
    CheckIn,
    Contract,
    ContractStatus,
    Delivery,
    DevelopmentActivity,
    Feedback,
    Measurement,
    Risk,
    SuccessIndicator,
)
from storage.queries import contracts as contract_queries
from tests.bot.checkins.test_support import (
    add_contract,
    at,
    deliveries,
    posts_to,
    set_status,
    virtual_time,
)
from tests.conftest import ReplicaQueue
from tests.fakes import FakeSlack
from tests.harness import Bot

LEADER, SPONSOR, OWNER, VP, RAJ = "U0LEAD001", "U0SPON001", "U0HRBP001", "U0VP00001", "U0PEER002"
BERLIN = ZoneInfo("Europe/Berlin")
CREATED = datetime(2027, 1, 1, tzinfo=UTC)


# --- cadence and periods, as pure functions ------------------------------------------------


def contract(cid: int, cadence: str, weekday: int = 0, time: str = "09:00") -> Contract:
    return Contract(
        id=cid,
        title=f"c{cid}",
        leader_id=f"U{cid}",
        sponsor_id=SPONSOR,
        period_start=date(2027, 1, 6),  # a Wednesday
        period_end=date(2027, 12, 17),
        digest_cadence=cadence,
        digest_weekday=weekday,
        digest_time=time,
    )


def test_the_most_frequent_cadence_wins_with_its_weekday_and_time() -> None:
    mixed = [contract(1, "monthly"), contract(3, "biweekly", 2), contract(2, "weekly", 4, "16:30")]
    assert schedule_of(mixed) == Schedule("weekly", 4, "16:30", date(2027, 1, 4))
    assert schedule_of([contract(5, "monthly", 1), contract(4, "biweekly", 2)]).cadence == (
        "biweekly"
    )
    assert schedule_of([contract(7, "fortnightly")]).cadence == "monthly"  # unknown: monthly


async def test_recipients_are_found_a_page_of_contracts_at_a_time(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`due_digests` reads the active contracts one page at a time (one contract a page
    here) and keeps of each recipient their contracts' ids and the contract that sets their
    schedule: the same schedule as from all their contracts at once."""
    monkeypatch.setattr(contract_queries, "ACTIVE_PAGE", 1)
    monthly = await add_contract(bot.sessions, leader=LEADER, sponsor=SPONSOR)
    closed = await add_contract(bot.sessions, leader=RAJ, sponsor=VP)
    weekly = await add_contract(bot.sessions, leader=VP, sponsor=SPONSOR)
    biweekly = await add_contract(bot.sessions, leader="U0PEER001", sponsor=SPONSOR)
    cadences = ((monthly, "monthly", 1), (weekly, "weekly", 3), (biweekly, "biweekly", 4))
    async with bot.sessions() as session:
        await writing(session)
        for cid, cadence, weekday in cadences:
            row = await session.get(Contract, cid)
            assert row is not None
            row.digest_cadence, row.digest_weekday = cadence, weekday
        await session.commit()
    await set_status(bot.sessions, closed, ContractStatus.closed)
    due = await due_digests(services=bot.services, client=None, now=bot.clock.now(), force=True)
    found = {d.recipient: (d.contract_ids, d.schedule.cadence, d.schedule.weekday) for d in due}
    assert found == {
        SPONSOR: ((monthly, weekly, biweekly), "weekly", 3),
        OWNER: ((monthly, weekly, biweekly), "weekly", 3),
    }


@pytest.mark.parametrize(
    ("cadence", "day", "key", "due"),
    [
        ("weekly", date(2027, 3, 10), "weekly:2027-W10", date(2027, 3, 8)),
        ("biweekly", date(2027, 3, 10), "biweekly:2027-W09", date(2027, 3, 1)),
        ("biweekly", date(2027, 3, 17), "biweekly:2027-W11", date(2027, 3, 15)),
        ("monthly", date(2027, 3, 10), "monthly:2027-03", date(2027, 3, 1)),
        ("monthly", date(2027, 5, 31), "monthly:2027-05", date(2027, 5, 3)),
        ("weekly", date(2027, 1, 1), "weekly:2026-W53", date(2026, 12, 28)),
    ],
)
def test_periods_and_their_digest_days(cadence: str, day: date, key: str, due: date) -> None:
    schedule = Schedule(cadence, 0, "09:00", date(2027, 1, 4))
    period = period_of(schedule, day)
    assert (period.key, period.due_day) == (key, due)
    assert period.start <= day < period.end


def test_the_sandbox_clock_stops_where_the_job_sends() -> None:
    """Over a year, for every cadence: the sandbox's next digest is a digest day of the job."""
    for cadence in ("weekly", "biweekly", "monthly"):
        sandbox = SandboxSchedule(
            checkin_weekday=4,
            checkin_time="15:00",
            checkin_tz=BERLIN,
            reminder_hours=24,
            digest_cadence=cadence,
            digest_weekday=0,
            digest_time="09:00",
            digest_tz=BERLIN,
            period_start=datetime(2027, 1, 6, tzinfo=UTC),  # a Wednesday
        )
        job = schedule_of([contract(1, cadence)])
        moment = datetime(2027, 1, 1, tzinfo=UTC)
        seen = set()
        while (moment := next_digest(sandbox, moment)) < datetime(2028, 1, 1, tzinfo=UTC):
            local = moment.astimezone(BERLIN)
            period = period_of(job, local.date())
            assert period.due_day == local.date(), (cadence, local)
            assert (local.hour, local.minute) == (9, 0)
            seen.add(period.key)
        assert len(seen) == {"weekly": 52, "biweekly": 26, "monthly": 12}[cadence]
        assert is_digest_day(cadence, date(2027, 3, 1), date(2027, 1, 6))


# --- helpers ------------------------------------------------------------------------------


async def sponsored(
    sessions: SessionFactory,
    *,
    leader: str = LEADER,
    sponsor: str = SPONSOR,
    owner: str | None = OWNER,
    cadence: str = "weekly",
    weekday: int = 0,
    clock_time: str = "09:00",
    title: str | None = None,
    milestones: list[dict[str, Any]] | None = None,
) -> int:
    cid = await add_contract(
        sessions, leader=leader, sponsor=sponsor, owner=owner, title=title, milestones=milestones
    )
    async with sessions() as session:
        await writing(session)
        c = await session.get(Contract, cid)
        assert c is not None
        c.digest_cadence, c.digest_weekday, c.digest_time = cadence, weekday, clock_time
        c.created_at = CREATED
        session.add(c)
        await session.commit()
    return cid


async def run(bot: Bot, *, force: bool = False) -> Report:
    return await send_digests(services=bot.services, client=bot.app.client, force=force)


def flat(message: dict[str, Any] | Any) -> str:
    """A message's text and blocks as one string (a Call's args or a stored message)."""
    args = message.args if hasattr(message, "args") else message
    blocks = args.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return str(args.get("text", "")) + "\n" + json.dumps(blocks, ensure_ascii=False)


def sent_to(fake: FakeSlack, channel: str) -> list[Any]:
    return [c for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == channel]


def digests_to(fake: FakeSlack, user: str) -> list[Any]:
    return [c for c in posts_to(fake, user) if "North Star digest" in c.args["text"]]


# --- when, and to whom --------------------------------------------------------------------


async def test_each_recipient_gets_theirs_at_their_own_local_time(bot: Bot) -> None:
    virtual_time(bot.services)
    await sponsored(bot.sessions, owner=VP)  # the owner is in New York
    bot.clock.set(at("2027-03-15 08:59", "Europe/Berlin"))
    assert str(await run(bot)).startswith("nothing due")
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))
    await run(bot)
    assert len(digests_to(bot.fake, SPONSOR)) == 1 and digests_to(bot.fake, VP) == []
    bot.clock.set(at("2027-03-15 08:59", "America/New_York"))
    await run(bot)
    assert digests_to(bot.fake, VP) == []
    bot.clock.set(at("2027-03-15 09:00", "America/New_York"))
    await run(bot)
    await run(bot)
    assert len(digests_to(bot.fake, VP)) == len(digests_to(bot.fake, SPONSOR)) == 1
    rows = await deliveries(bot.sessions, DIGEST)
    assert {(d.recipient_id, d.contract_id, d.period_key, d.status) for d in rows} == {
        (SPONSOR, 0, "weekly:2027-W11", "sent"),
        (VP, 0, "weekly:2027-W11", "sent"),
    }
    assert len(bot.fake.calls_to("users.info")) == 2  # each recipient's zone, then cached


async def test_one_digest_covers_all_of_a_recipients_contracts(bot: Bot) -> None:
    virtual_time(bot.services)
    for leader, title in ((LEADER, "Platform"), (VP, "Sales"), (RAJ, "Support")):
        await sponsored(bot.sessions, leader=leader, title=title, owner=None)
    await sponsored(bot.sessions, leader="U0PEER001", title="Design", sponsor=OWNER, owner=None)
    bot.clock.set(at("2027-03-15 10:00", "Europe/Berlin"))
    await run(bot)
    (digest,) = digests_to(bot.fake, SPONSOR)
    text = flat(digest)
    assert all(title in text for title in ("Platform", "Sales", "Support"))
    assert "Design" not in text and "3 contracts you sponsor or own" in text
    (other,) = digests_to(bot.fake, OWNER)
    assert "Design" in flat(other) and "Platform" not in flat(other)


async def test_mixed_cadences_follow_the_most_frequent(bot: Bot) -> None:
    virtual_time(bot.services)
    await sponsored(bot.sessions, cadence="monthly", owner=None)
    await sponsored(bot.sessions, leader=VP, cadence="weekly", weekday=2, owner=None)
    for day in ("2027-03-10", "2027-03-17", "2027-03-24"):  # Wednesdays
        bot.clock.set(at(f"{day} 09:05", "Europe/Berlin"))
        await run(bot)
    assert [d.period_key for d in await deliveries(bot.sessions, DIGEST)] == [
        "weekly:2027-W10",
        "weekly:2027-W11",
        "weekly:2027-W12",
    ]


async def test_after_downtime_it_goes_once_while_its_period_is_open(bot: Bot) -> None:
    virtual_time(bot.services)
    await sponsored(bot.sessions, owner=None)
    bot.clock.set(at("2027-03-17 14:00", "Europe/Berlin"))  # down since Monday morning
    await run(bot)
    await run(bot)
    assert len(digests_to(bot.fake, SPONSOR)) == 1
    bot.clock.set(at("2027-03-30 08:00", "Europe/Berlin"))  # slept through week 12 entirely
    await run(bot)
    assert [d.period_key for d in await deliveries(bot.sessions, DIGEST)] == [
        "weekly:2027-W11",
        "weekly:2027-W13",
    ]
    # The late one reaches back to the last digest sent, so week 12 is covered.
    assert "since 17 Mar 2027" in flat(digests_to(bot.fake, SPONSOR)[-1])


async def test_now_sends_every_due_digest_at_once_but_once(bot: Bot) -> None:
    virtual_time(bot.services)
    await sponsored(bot.sessions, cadence="monthly", weekday=4)
    bot.clock.set(at("2027-04-01 10:00", "Europe/Berlin"))  # a Thursday: April's is 2 April
    assert str(await run(bot)).startswith("nothing due")
    assert str(await run(bot, force=True)).startswith("2 sent")
    assert str(await run(bot, force=True)).startswith("nothing due")
    bot.clock.set(at("2027-04-02 10:00", "Europe/Berlin"))
    assert str(await run(bot)).startswith("nothing due")


async def test_drafts_and_closed_contracts_get_no_digest(bot: Bot) -> None:
    virtual_time(bot.services)
    await add_contract(bot.sessions, status="draft")
    await add_contract(bot.sessions, leader=VP, status="closed")
    assert str(await run(bot, force=True)).startswith("nothing due")


# --- what it says --------------------------------------------------------------------------

MILESTONES = [
    {"key": "M1", "title": "Engagement at 68", "due": date(2027, 3, 1), "indicator_key": "I1",
     "threshold": 68, "status": "missed", "missed_count": 1,
     "decided_at": datetime(2027, 3, 2, tzinfo=UTC)},
    {"key": "M2", "title": "Coaching done", "due": date(2027, 3, 31), "activity_key": "D1",
     "status": "met", "decided_at": datetime(2027, 3, 12, 10, tzinfo=UTC)},
    {"key": "M3", "title": "Old win", "due": date(2027, 2, 1), "activity_key": "D1",
     "status": "met", "decided_at": datetime(2027, 2, 1, 10, tzinfo=UTC)},
]  # fmt: skip


async def busy_contract(sessions: SessionFactory, *, leader: str = LEADER, title: str) -> int:
    """A contract with something in every part of the digest for the week to 15 March."""
    cid = await sponsored(sessions, leader=leader, title=title, milestones=MILESTONES)
    last_week = datetime(2027, 3, 12, 14, 30, tzinfo=UTC)
    async with sessions() as session:
        await writing(session)
        indicators = {
            i.key: i
            for i in (
                await session.exec(
                    select(SuccessIndicator).where(SuccessIndicator.contract_id == cid)
                )
            ).all()
        }
        session.add(
            SuccessIndicator(
                contract_id=cid,
                key="I2",
                name="Cycle time",
                unit="days",
                baseline=45,
                target=30,
                direction="decrease",
                cadence="monthly",
                position=1,
            )
        )
        await session.flush()
        i2 = (
            await session.exec(
                select(SuccessIndicator).where(
                    SuccessIndicator.contract_id == cid, SuccessIndicator.key == "I2"
                )
            )
        ).one()
        for indicator, value, when in (
            (indicators["I1"], 64, datetime(2027, 2, 26, tzinfo=UTC)),
            (indicators["I1"], 66, last_week),
            (i2, 40, datetime(2027, 2, 26, tzinfo=UTC)),
            (i2, 43, last_week),  # a decrease indicator going up: the wrong way
        ):
            session.add(Measurement(indicator_id=indicator.id or 0, value=value, measured_at=when))
        # Week 9 was missed: it closed at the end of Tuesday 9 March, after the last digest.
        # Week 10
        # (to Sunday 14 March) is still open until Tuesday, so not missed yet either way.
        for week in ("2027-W08", "2027-W10"):
            session.add(CheckIn(contract_id=cid, period_key=week, confidence=3))
        d1 = (
            await session.exec(
                select(DevelopmentActivity).where(DevelopmentActivity.contract_id == cid)
            )
        ).one()
        d1.status, d1.progress, d1.updated_at = "done", 100, last_week
        session.add(d1)
        session.add(
            Risk(
                contract_id=cid,
                text="Two engineers move to the launch team.",
                needs_sponsor_help=True,
                created_at=last_week,
            )
        )
        session.add(Risk(contract_id=cid, text="No help asked", created_at=last_week))
        for anonymous, released in ((False, None), (False, None), (True, last_week), (True, None)):
            session.add(
                Feedback(
                    contract_id=cid,
                    polarity="strength",
                    situation="SECRET situation",
                    behaviour="SECRET behaviour",
                    impact="SECRET impact",
                    anonymous=anonymous,
                    author_id=None if anonymous else "U0PEER001",
                    released_at=released,
                    created_at=last_week,
                )
            )
        session.add(
            Amendment(
                contract_id=cid,
                proposer_id=leader,
                item_type="milestone",
                item_key="M1",
                before={"key": "M1", "title": "Engagement at 68", "due": "2027-03-01"},
                after={"key": "M1", "title": "Engagement at 68", "due": "2027-05-14"},
                rationale="The survey moved to May.",
                base_version=1,
                created_at=last_week,
            )
        )
        await session.commit()
    return cid


ORDER = [
    "Needs you",
    "⏰ Milestone *M1*",
    "📭 1 missed check-in: week 9",
    "🆘 “Two engineers move",
    "⏳ *#1* change milestone M1",
    "📉 *I2 · Cycle time*",
    "Progress since 8 Mar 2027",
    "🎉 Milestone *M2*",
    "📈 *I1 · Engagement*",
    "✅ *D1* Coaching completed",
    "💬 3 feedback entries reached the leader (2 named, 1 anonymous)",
]


async def test_the_digest_puts_what_needs_the_sponsor_first(bot: Bot) -> None:
    virtual_time(bot.services)
    cid = await busy_contract(bot.sessions, title="Head of Platform")
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))
    await run(bot)
    (digest,) = digests_to(bot.fake, SPONSOR)
    text = flat(digest)
    positions = [text.find(marker) for marker in ORDER]
    assert -1 not in positions, [m for m, p in zip(ORDER, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    assert "SECRET" not in text
    # Every open risk is listed until it is resolved, the ones asking for help first.
    assert text.find("Two engineers move") < text.find("No help asked")
    assert "Old win" not in text  # met before the window
    assert "baseline 45 → latest *43* → target 30 days" in text
    assert "↗ up 3 days from 40 · slipping" in text  # a cycle time that rose: worse
    assert "baseline 62 → latest *66* → target 75 points" in text
    assert "↗ up 2 points from 64 · improving" in text
    actions = [
        (e["action_id"], e["value"])
        for b in json.loads(json.dumps(digest.args["blocks"]))
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert actions == [
        ("checkin_nudge", '{"contract_id": 1, "period": "2027-W09"}'),
        ("amendment_approve", "1"),
        ("amendment_reject", "1"),
    ]
    assert digest.args["text"].startswith("North Star digest: 6 things need you")
    (to_owner,) = digests_to(bot.fake, OWNER)  # not an approver: the line, no buttons
    assert "⏳ *#1* change milestone M1" in flat(to_owner)
    assert "amendment_approve" not in flat(to_owner)
    summaries = [
        json.loads(b["accessory"]["value"])["contract_id"]
        for b in digest.args["blocks"]
        if b.get("accessory", {}).get("action_id") == "home_open_summary"
    ]
    assert summaries == [cid, cid]  # under "Needs you" and under "Progress"


async def test_a_quiet_period_says_so(bot: Bot) -> None:
    virtual_time(bot.services)
    cid = await sponsored(bot.sessions, owner=None, title="Quiet one")
    async with bot.sessions() as session:
        await writing(session)
        session.add(CheckIn(contract_id=cid, period_key="2027-W09", confidence=3))
        await session.commit()
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))
    await run(bot)
    (digest,) = digests_to(bot.fake, SPONSOR)
    text = flat(digest)
    assert "Nothing needs you this time." in text and "Nothing new since 8 Mar 2027" in text
    assert digest.args["text"].endswith("progress on 1 contract")


# --- splitting and exactly once -----------------------------------------------------------


async def thirty(sessions: SessionFactory, sponsor: str = SPONSOR) -> list[str]:
    titles = []
    for n in range(30):
        title = f"Contract number {n:02d} of a busy sponsor"
        await busy_contract(sessions, leader=f"U0MANY{n:03d}", title=title)
        titles.append(title)
    return titles


def split_checks(
    fake: FakeSlack,
    titles: list[str],
    user: str = SPONSOR,
    *,
    approver: bool = True,
    failed: int = 0,
) -> list[str]:
    """Every part accepted, within 50 blocks and the text budget, in order, a few at most;
    each contract under "Needs you" exactly once, the first `NEEDS_SHOWN` in full (Approve
    on their amendment, for an approver), the rest a line each; `PROGRESS_SHOWN` under
    "Progress", the rest counted with a pointer to App Home.

    `failed`: how many calls the test made fail on purpose."""
    calls = [c for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == user]
    assert len([c for c in calls if not c.response.get("ok")]) == failed, calls
    calls = [c for c in calls if c.response.get("ok")]
    assert calls
    assert all(len(c.args["blocks"]) <= 50 for c in calls)
    assert all(text_length(c.args["blocks"]) <= MESSAGE_TEXT_BUDGET for c in calls)
    total = len(calls)
    assert 2 <= total <= MAX_PARTS
    assert calls[0].args["text"].endswith(f"(1 of {total})")
    for number, call in enumerate(calls[1:], 2):
        assert call.args["text"].endswith(f"continued ({number} of {total})")
    texts = [flat(c) for c in calls]
    needs, progress = "\n".join(texts).split("Progress since")
    for title in titles:
        assert needs.count(title) == 1, title
    assert sum(progress.count(title) for title in titles) == PROGRESS_SHOWN
    assert f"{len(titles) - PROGRESS_SHOWN} more listed above" in progress
    assert "tab=home|open App Home>" in progress
    approvals = [
        int(element["value"])
        for call in calls
        for block in call.args["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == "amendment_approve"
    ]
    assert approvals == (list(range(1, NEEDS_SHOWN + 1)) if approver else [])
    return texts


async def test_a_sponsor_of_thirty_contracts_gets_every_part_once(bot: Bot) -> None:
    virtual_time(bot.services, per_minute=6000)
    titles = await thirty(bot.sessions)
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))
    report = await run(bot)
    to_sponsor = split_checks(bot.fake, titles)
    to_owner = split_checks(bot.fake, titles, user=OWNER, approver=False)
    assert report.count(Outcome.sent) == len(to_sponsor) + len(to_owner)
    await run(bot)
    bot.clock.advance(timedelta(hours=1))
    await run(bot, force=True)
    assert len(bot.fake.calls_to("chat.postMessage")) == len(to_sponsor) + len(to_owner)
    parts = await deliveries(bot.sessions, DIGEST_PART)
    assert [p.period_key for p in parts if p.recipient_id == SPONSOR] == [
        f"weekly:2027-W11#{n}" for n in range(2, len(to_sponsor) + 1)
    ]
    assert {p.status for p in parts} == {"sent"}
    assert {(d.recipient_id, d.contract_id) for d in await deliveries(bot.sessions, DIGEST)} == {
        (SPONSOR, 0),
        (OWNER, 0),
    }


async def test_a_digest_read_in_batches_is_the_digest_read_at_once(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sponsor of thousands of contracts: the digest reads them `DIGEST_BATCH` at a time and
    keeps whole only those it shows in full, and says what a digest of them all kept whole
    says. The
    contracts are read in the reverse of their titles' order, so each batch comes before the
    last in the digest, and twelve have nothing recorded yet (and sort first)."""
    titles = await thirty(bot.sessions)
    for n in range(12):
        await sponsored(bot.sessions, leader=f"U0NEW{n:04d}", title=f"A new contract {n:02d}")
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))
    (due,) = [
        d
        for d in await due_digests(services=bot.services, client=None, now=bot.clock.now())
        if d.recipient == SPONSOR
    ]
    due = replace(due, contract_ids=tuple(reversed(due.contract_ids)))
    assert len(due.contract_ids) == len(titles) + 12

    def said(digest: Digest) -> list[dict[str, Any]]:
        return [m.arguments() for m in build_digest(digest)]

    with monkeypatch.context() as whole_kept:  # the reference: every contract kept whole
        whole_kept.setattr(digest_service, "briefed", list)
        whole = await load_digest(services=bot.services, due=due)
    assert all(c.detailed for c in whole.contracts)
    monkeypatch.setattr(digest_service, "DIGEST_BATCH", 4)
    batched = await load_digest(services=bot.services, due=due)

    assert said(batched) == said(whole)
    assert [c.contract.id for c in batched.contracts] == [c.contract.id for c in whole.contracts]
    in_full = {
        c.contract.id for c in (*needs_shown(whole.contracts), *progress_shown(whole.contracts))
    }
    assert {c.contract.id for c in batched.contracts if c.detailed} == in_full
    assert len(in_full) < len(whole.contracts)
    let_go = [c for c in batched.contracts if not c.detailed]
    assert all(not c.bundle.people and not c.bundle.checkins and not c.pending for c in let_go)
    for brief, kept in zip(batched.contracts, whole.contracts, strict=True):
        assert (brief.needs_count, brief.has_progress) == (kept.needs_count, kept.has_progress)
    assert len(said(batched)) >= 2  # more than one message: the test reaches past the first


async def crashed(**_: Any) -> int:
    """`send_parts` of a process that died right after a digest's first part went."""
    return 0


async def test_a_crash_after_the_first_part_resumes_with_the_rest_as_built(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    virtual_time(bot.services, per_minute=6000)
    titles = await thirty(bot.sessions)
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))

    with monkeypatch.context() as patched:
        patched.setattr(digest_module, "send_parts", crashed)
        await run(bot)
    assert (
        len([c for c in bot.fake.calls_to("chat.postMessage") if c.args["channel"] == SPONSOR]) == 1
    )
    (waiting,) = [
        d for d in await deliveries(bot.sessions, DIGEST_PART) if d.recipient_id == SPONSOR
    ]
    assert (waiting.period_key, waiting.status) == ("weekly:2027-W11#2", "scheduled")
    # Meanwhile a new contract: the digest that began is not rebuilt, so it does not appear.
    await busy_contract(bot.sessions, leader="U0LATE001", title="Arrived after the crash")
    bot.clock.advance(timedelta(minutes=1))
    await run(bot)
    texts = split_checks(bot.fake, titles)
    assert "Arrived after the crash" not in "".join(texts)


async def test_a_first_part_that_failed_is_sent_again_later(bot: Bot) -> None:
    virtual_time(bot.services, per_minute=6000)
    titles = await thirty(bot.sessions)
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))
    bot.fake.fail_next("chat.postMessage", status=200, error="invalid_blocks")  # the owner's
    await run(bot)
    assert len(digests_to(bot.fake, SPONSOR)) >= 2
    async with bot.sessions() as session:
        (first,) = (
            await session.exec(
                select(Delivery).where(Delivery.kind == DIGEST, Delivery.recipient_id == OWNER)
            )
        ).all()
    assert first.status == "failed"
    bot.clock.advance(timedelta(minutes=6))
    await run(bot)
    assert len(digests_to(bot.fake, OWNER)) >= 2
    split_checks(bot.fake, titles, user=SPONSOR)
    split_checks(bot.fake, titles, user=OWNER, approver=False, failed=1)


async def test_a_claimed_part_of_a_crashed_sender_goes_once_its_lease_ran_out(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    virtual_time(bot.services, per_minute=6000)
    titles = await thirty(bot.sessions)
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))
    with monkeypatch.context() as patched:
        patched.setattr(digest_module, "send_parts", crashed)
        await run(bot)
    async with bot.sessions() as session:
        await writing(session)
        part = (
            await session.exec(
                select(Delivery).where(
                    Delivery.kind == DIGEST_PART, Delivery.recipient_id == SPONSOR
                )
            )
        ).one()
        part.status, part.claimed_by, part.claimed_at = "claimed", "dead", bot.clock.now()
        session.add(part)
        await session.commit()
    await run(bot)
    assert (
        len([c for c in bot.fake.calls_to("chat.postMessage") if c.args["channel"] == SPONSOR]) == 1
    )
    bot.clock.advance(timedelta(minutes=11))
    await run(bot)
    split_checks(bot.fake, titles)


async def test_a_rate_limit_is_waited_out_and_the_digest_sent_once(bot: Bot) -> None:
    time = virtual_time(bot.services)
    await busy_contract(bot.sessions, title="Head of Platform")
    bot.clock.set(at("2027-03-15 09:00", "Europe/Berlin"))
    bot.fake.fail_next("chat.postMessage", status=429, retry_after=5, times=2)
    report = await run(bot)
    assert report.rate_limited == 2 and str(report).startswith("2 sent")
    assert sum(time.sleeps) >= 5
    assert len(digests_to(bot.fake, SPONSOR)) == len(digests_to(bot.fake, OWNER)) == 1


async def test_the_job_is_registered_for_the_cli(bot: Bot) -> None:
    from bot.jobs import JOBS
    from tests.bot.checkins.test_support import run_job

    virtual_time(bot.services)
    await sponsored(bot.sessions)
    assert JOBS["digests"].every_seconds == 60
    assert str(await run_job(bot, "digests", force=True)).startswith("2 sent")


@pytest.mark.postgres
async def test_two_replicas_on_postgresql_send_each_digest_once(
    postgres_url: str, fake_slack: FakeSlack, replica_queue: ReplicaQueue
) -> None:
    sponsors = [f"U0SPNS{n:03d}" for n in range(8)]
    for user in [*sponsors, *(f"U0MANY{n:03d}" for n in range(30))]:
        fake_slack.add_user(user, name=user.lower(), tz="Europe/Berlin")
    clock = ManualClock(at("2027-03-15 09:30", "Europe/Berlin"))
    engine = create_engine(postgres_url)
    setup = session_factory(engine)
    titles = await thirty(setup)  # SPONSOR, split across messages; OWNER too
    for n, user in enumerate(sponsors):
        await sponsored(setup, leader=f"U0LDR{n:04d}", sponsor=user, owner=None)

    async def replica(name: str) -> Report:
        async with replica_queue(name, clock) as r:
            return await send_digests(services=r.services, client=r.client, queue=r.queue)

    await asyncio.gather(*(asyncio.to_thread(asyncio.run, replica(n)) for n in ("a", "b")))
    sent = Counter(
        (c.args["channel"], c.args["text"])
        for c in fake_slack.calls_to("chat.postMessage")
        if c.response.get("ok")
    )
    assert set(sent.values()) == {1}
    assert {channel for channel, _ in sent} == {*sponsors, SPONSOR, OWNER}
    split_checks(fake_slack, titles, user=SPONSOR)
    rows = await deliveries(setup, DIGEST)
    assert len(rows) == len(sponsors) + 2 and {r.status for r in rows} == {"sent"}
    await engine.dispose()
