"""Milestones decided met or missed, and the notices of each decision sent once.

The `milestones` job runs against a real database and the fake Slack on the harness's manual
clock; pacing runs on virtual time, so nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.core.clock import ManualClock
from bot.milestones import service as milestone_service
from bot.milestones.jobs import evaluate, notify
from bot.milestones.model import Basis
from bot.milestones.service import (
    ESCALATION,
    MET,
    MET_NOTE,
    MET_POST,
    MISSED,
    MISSED_NOTE,
    decide_milestones,
    decision,
)
from storage.db import SessionFactory, create_engine, session_factory, writing
from storage.models import (
    AuditEvent,
    Contract,
    ContractPerson,
    ContractStatus,
    DevelopmentActivity,
    Measurement,
    Milestone,
    MilestoneStatus,
    SuccessIndicator,
)
from storage.queries.milestones import milestone_bases
from tests.bot.checkins.test_support import (
    add_contract,
    at,
    deliveries,
    posts_to,
    run_job,
    set_status,
    virtual_time,
)
from tests.conftest import ReplicaQueue
from tests.fakes import FakeSlack
from tests.harness import Bot

LEADER, SPONSOR, OWNER, VP = "U0LEAD001", "U0SPON001", "U0HRBP001", "U0VP00001"
WINS = "C0WINS001"
BERLIN = ZoneInfo("Europe/Berlin")
CREATED = datetime(2027, 1, 1, tzinfo=UTC)

INDICATORS = [
    {
        "key": "I1",
        "name": "Engagement",
        "unit": "points",
        "baseline": 62,
        "target": 75,
        "cadence": "weekly",
    },
    {
        "key": "I2",
        "name": "Cycle time",
        "unit": "days",
        "baseline": 45,
        "target": 30,
        "cadence": "monthly",
    },
]
MILESTONES = [
    {"key": "M1", "title": "Engagement at 68", "due": date(2027, 4, 1), "indicator_key": "I1",
     "threshold": 68},
    {"key": "M2", "title": "Coaching done", "due": date(2027, 6, 30), "activity_key": "D1"},
    {"key": "M3", "title": "Cycle time at 35", "due": date(2027, 9, 30), "indicator_key": "I2",
     "threshold": 35},
]  # fmt: skip


async def contract_with_milestones(
    sessions: SessionFactory,
    *,
    leader: str = LEADER,
    timezone: str | None = "Europe/Berlin",
    channel: str | None = WINS,
    escalation: tuple[str, ...] = (VP,),
) -> int:
    cid = await add_contract(
        sessions, leader=leader, timezone=timezone, indicators=INDICATORS, milestones=MILESTONES
    )
    async with sessions() as session:
        await writing(session)
        contract = await session.get(Contract, cid)
        assert contract is not None
        contract.recognition_channel = channel
        contract.created_at = CREATED
        session.add(contract)
        for position, user in enumerate(escalation):
            session.add(
                ContractPerson(contract_id=cid, role="escalation", user_id=user, position=position)
            )
        await session.commit()
    return cid


async def record(
    sessions: SessionFactory, cid: int, key: str, value: float, when: datetime
) -> None:
    async with sessions() as session:
        await writing(session)
        indicator = (
            await session.exec(
                select(SuccessIndicator).where(
                    SuccessIndicator.contract_id == cid, SuccessIndicator.key == key
                )
            )
        ).one()
        session.add(
            Measurement(
                indicator_id=indicator.id or 0, value=value, measured_at=when, created_at=when
            )
        )
        await session.commit()


async def milestone(sessions: SessionFactory, cid: int, key: str) -> Milestone:
    async with sessions() as session:
        return (
            await session.exec(
                select(Milestone).where(Milestone.contract_id == cid, Milestone.key == key)
            )
        ).one()


def texts(fake: FakeSlack, channel: str) -> list[str]:
    return [
        str(m.get("text", "")) + str(m.get("blocks", "")) for m in fake.messages.get(channel, [])
    ]


# --- deciding, as a pure function ------------------------------------------------------------


def _indicator(baseline: float, target: float) -> SuccessIndicator:
    return SuccessIndicator(
        contract_id=1,
        key="I1",
        name="x",
        baseline=baseline,
        target=target,
        direction="increase" if target > baseline else "decrease",
        cadence="weekly",
    )


def _values(*pairs: tuple[float, str]) -> list[Measurement]:
    return [
        Measurement(indicator_id=1, value=v, measured_at=at(t, "Europe/Berlin")) for v, t in pairs
    ]


def _milestone(**values: object) -> Milestone:
    fields: dict[str, object] = {
        "contract_id": 1,
        "key": "M1",
        "title": "t",
        "due": date(2027, 4, 1),
    }
    fields.update(values)
    return Milestone(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("baseline", "target", "value", "expected"),
    [
        (62, 75, 67.9, None),
        (62, 75, 68, MilestoneStatus.met),
        (62, 75, 80, MilestoneStatus.met),
        (45, 30, 35.5, None),  # a decrease indicator: at or below the threshold
        (45, 30, 35, MilestoneStatus.met),
        (45, 30, 20, MilestoneStatus.met),
    ],
)
def test_a_threshold_is_reached_in_the_indicators_direction(
    baseline: float, target: float, value: float, expected: MilestoneStatus | None
) -> None:
    threshold = 68 if target > baseline else 35
    m = _milestone(indicator_key="I1", threshold=threshold)
    basis = Basis(
        indicator=_indicator(baseline, target), values=_values((value, "2027-03-20 10:00"))
    )
    assert decision(m, basis, now=at("2027-03-21 10:00", "Europe/Berlin"), zone=BERLIN) == expected


def test_missed_only_once_the_due_day_has_ended_on_the_leaders_clock() -> None:
    m = _milestone(indicator_key="I1", threshold=68)
    basis = Basis(indicator=_indicator(62, 75), values=_values((65, "2027-03-20 10:00")))
    new_york = ZoneInfo("America/New_York")
    late_on_the_day = at("2027-04-01 23:59", "America/New_York")
    assert decision(m, basis, now=late_on_the_day, zone=new_york) is None
    assert decision(m, basis, now=late_on_the_day, zone=BERLIN) == MilestoneStatus.missed
    assert (
        decision(m, basis, now=at("2027-04-02 00:00", "America/New_York"), zone=new_york)
        == MilestoneStatus.missed
    )


def test_only_values_recorded_by_the_due_day_count() -> None:
    m = _milestone(indicator_key="I1", threshold=68)
    late = Basis(indicator=_indicator(62, 75), values=_values((70, "2027-04-02 09:00")))
    in_time = Basis(indicator=_indicator(62, 75), values=_values((70, "2027-04-01 23:30")))
    later = at("2027-04-05 12:00", "Europe/Berlin")  # the job was down until then
    assert decision(m, late, now=later, zone=BERLIN) == MilestoneStatus.missed
    assert decision(m, in_time, now=later, zone=BERLIN) == MilestoneStatus.met


def test_an_activity_milestone_is_met_when_the_activity_is_done() -> None:
    m = _milestone(activity_key="D1")
    done = DevelopmentActivity(
        contract_id=1,
        key="D1",
        title="Coaching",
        modality="coaching",
        due=date(2027, 6, 30),
        status="done",
        updated_at=at("2027-03-15 10:00"),
    )
    busy = DevelopmentActivity(**{**done.model_dump(), "status": "in_progress"})
    now = at("2027-03-16 10:00")
    assert decision(m, Basis(activity=done), now=now, zone=BERLIN) == MilestoneStatus.met
    assert decision(m, Basis(activity=busy), now=now, zone=BERLIN) is None
    decided = _milestone(activity_key="D1", status="met")
    assert decision(decided, Basis(activity=done), now=now, zone=BERLIN) is None


# --- the job -------------------------------------------------------------------------------


async def test_a_met_milestone_is_celebrated_once(bot: Bot) -> None:
    virtual_time(bot.services)
    bot.fake.add_channel(WINS, name="wins")
    cid = await contract_with_milestones(bot.sessions)
    await record(bot.sessions, cid, "I1", 66, bot.clock.now())
    assert str(await run_job(bot, "milestones")).startswith("nothing due")
    await record(bot.sessions, cid, "I1", 69, bot.clock.now())
    decided_at = bot.clock.now()
    report = await run_job(bot, "milestones")
    assert str(report).startswith("3 sent")
    await run_job(bot, "milestones")

    m1 = await milestone(bot.sessions, cid, "M1")
    assert (m1.status, m1.decided_at, m1.missed_count) == ("met", decided_at, 0)
    (to_leader,) = posts_to(bot.fake, LEADER)
    assert "You met milestone M1" in to_leader.args["text"]
    assert "*69* points (threshold 68 points)" in str(to_leader.args["blocks"])
    (note,) = posts_to(bot.fake, SPONSOR)
    assert "<@U0LEAD001> met milestone M1" in note.args["text"]
    (post,) = bot.fake.messages[WINS]
    assert "Congratulations <@U0LEAD001>" in str(post["blocks"]) and "69" not in str(post)
    rows = await deliveries(bot.sessions)
    assert sorted((d.kind, d.recipient_id, d.period_key, d.status) for d in rows) == sorted(
        [
            (MET, LEADER, "M1:met:2027-03-10", "sent"),
            (MET_NOTE, SPONSOR, "M1:met:2027-03-10", "sent"),
            (MET_POST, WINS, "M1:met:2027-03-10", "sent"),
        ]
    )
    events = [e.action for e in await stored_events(bot.sessions)]
    assert events == ["milestone.met"]


async def test_a_whole_organisation_is_decided_a_batch_of_contracts_at_a_time(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hourly run reads `DECIDE_BATCH` contracts at a time: each batch's milestones are
    decided, none twice, and the leaders of all of them told."""
    virtual_time(bot.services)
    monkeypatch.setattr(milestone_service, "DECIDE_BATCH", 2)
    leaders = [f"U0LEAD{n:03d}" for n in range(1, 6)]
    for who in leaders[1:]:
        bot.fake.add_user(who, name=who.lower(), tz="Europe/Berlin")
    contracts = [
        await contract_with_milestones(bot.sessions, leader=who, channel=None) for who in leaders
    ]
    for cid in contracts[1:]:  # the first stays below its threshold
        await record(bot.sessions, cid, "I1", 69, bot.clock.now())
    await run_job(bot, "milestones")
    await run_job(bot, "milestones")

    status = [(await milestone(bot.sessions, cid, "M1")).status for cid in contracts]
    assert status == ["pending", "met", "met", "met", "met"]
    assert [e.action for e in await stored_events(bot.sessions)] == ["milestone.met"] * 4
    told = [who for who in leaders for post in posts_to(bot.fake, who)]
    assert told == leaders[1:]


async def test_a_decision_on_a_contract_closed_since_is_not_announced(bot: Bot) -> None:
    """Notices are of active contracts only: a milestone decided, then its contract closed
    before the notices went, is told to no one (and the other contract's is)."""
    virtual_time(bot.services)
    bot.fake.add_user("U0LEAD002", name="u0lead002", tz="Europe/Berlin")
    closing = await contract_with_milestones(bot.sessions, channel=None)
    staying = await contract_with_milestones(bot.sessions, leader="U0LEAD002", channel=None)
    for cid in (closing, staying):
        await record(bot.sessions, cid, "I1", 69, bot.clock.now())
    assert len(await decide_milestones(services=bot.services)) == 2
    await set_status(bot.sessions, closing, ContractStatus.closed)
    await notify(services=bot.services, client=bot.app.client)
    assert posts_to(bot.fake, LEADER) == []
    assert len(posts_to(bot.fake, "U0LEAD002")) == 1


async def test_an_hourly_run_reads_only_the_latest_value_before_the_window(bot: Bot) -> None:
    """Of the values recorded before a pending milestone could be asked about, only each
    indicator's latest is read; the decision is the same as on the whole history."""
    virtual_time(bot.services)  # 10 March 2027; M1 is due on 1 April
    cid = await contract_with_milestones(bot.sessions)
    for day, value in ((1, 70), (2, 61), (3, 62), (4, 66)):  # the oldest one met it
        await record(bot.sessions, cid, "I1", value, at(f"2026-0{day}-15 10:00"))
    async with bot.sessions() as session:
        pending = list((await session.exec(select(Milestone))).all())
        since = at("2027-03-01 00:00")
        bases = await milestone_bases(session=session, milestones=pending, since=since)
        whole = await milestone_bases(session=session, milestones=pending)
    [(indicator_id, series)] = [(i, s) for i, s in whole.series.items() if s]
    assert [m.value for m in series] == [70, 61, 62, 66]
    assert [m.value for m in bases.series[indicator_id]] == [66]  # the latest before `since`

    await run_job(bot, "milestones")  # 66 is the value as of now: not met
    assert (await milestone(bot.sessions, cid, "M1")).status == "pending"
    await record(bot.sessions, cid, "I1", 64, at("2027-03-05 10:00"))  # after the window opened
    await record(bot.sessions, cid, "I1", 68, at("2027-03-09 10:00"))
    await run_job(bot, "milestones")
    assert (await milestone(bot.sessions, cid, "M1")).status == "met"


async def stored_events(sessions: SessionFactory) -> list[AuditEvent]:
    async with sessions() as session:
        return list((await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all())


async def test_a_decrease_indicator_and_an_activity_meet_theirs(bot: Bot) -> None:
    virtual_time(bot.services)
    cid = await contract_with_milestones(bot.sessions, channel=None)
    await record(bot.sessions, cid, "I2", 35.5, bot.clock.now())
    await run_job(bot, "milestones")
    assert (await milestone(bot.sessions, cid, "M3")).status == "pending"
    await record(bot.sessions, cid, "I2", 35, bot.clock.now())
    async with bot.sessions() as session:
        await writing(session)
        d1 = (await session.exec(select(DevelopmentActivity))).one()
        d1.status, d1.updated_at = "done", bot.clock.now()
        session.add(d1)
        await session.commit()
    await run_job(bot, "milestones")
    assert (await milestone(bot.sessions, cid, "M3")).status == "met"
    assert (await milestone(bot.sessions, cid, "M2")).status == "met"
    assert (await milestone(bot.sessions, cid, "M1")).status == "pending"
    assert len(posts_to(bot.fake, LEADER)) == 2
    assert "“Coaching” is done." in str(posts_to(bot.fake, LEADER)[0].args["blocks"]) + str(
        posts_to(bot.fake, LEADER)[1].args["blocks"]
    )
    assert not any(d.kind == MET_POST for d in await deliveries(bot.sessions))  # no channel


async def test_a_channel_the_bot_cannot_post_in_is_logged_and_skipped(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    virtual_time(bot.services)
    cid = await contract_with_milestones(bot.sessions, channel="C0GONE001")
    await record(bot.sessions, cid, "I1", 70, bot.clock.now())
    with caplog.at_level(logging.WARNING, logger="bot.milestones"):
        report = await run_job(bot, "milestones")
    assert "2 sent" in str(report) and "1 undeliverable" in str(report)
    assert "channel_not_found" in caplog.text
    assert len(posts_to(bot.fake, LEADER)) == len(posts_to(bot.fake, SPONSOR)) == 1
    await run_job(bot, "milestones")  # not tried again
    assert len(bot.fake.calls_to("chat.postMessage")) == 3


async def test_a_miss_at_the_leaders_midnight_asks_for_recalibration(bot: Bot) -> None:
    virtual_time(bot.services)
    cid = await contract_with_milestones(bot.sessions, leader=VP, timezone=None, escalation=())
    await record(bot.sessions, cid, "I1", 65, at("2027-03-20 10:00"))
    bot.clock.set(at("2027-04-01 23:30", "America/New_York"))  # already 2 April in Berlin
    await run_job(bot, "milestones")
    assert (await milestone(bot.sessions, cid, "M1")).status == "pending"
    bot.clock.set(at("2027-04-02 00:10", "America/New_York"))
    report = await run_job(bot, "milestones")
    assert str(report).startswith("2 sent")
    m1 = await milestone(bot.sessions, cid, "M1")
    assert (m1.status, m1.missed_count) == ("missed", 1)
    (dm,) = posts_to(bot.fake, VP)
    blocks = dm.args["blocks"]
    buttons = [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["Propose a new date or target", "Ask my sponsor for support"]
    assert "*65* points (threshold 68 points)" in str(blocks)
    (note,) = posts_to(bot.fake, SPONSOR)
    assert "missed milestone M1" in note.args["text"]
    await run_job(bot, "milestones")
    assert len(bot.fake.calls_to("chat.postMessage")) == 2


async def test_a_second_miss_tells_the_escalation_contacts(bot: Bot) -> None:
    virtual_time(bot.services)
    cid = await contract_with_milestones(bot.sessions)
    bot.clock.set(at("2027-04-02 08:00", "Europe/Berlin"))
    await run_job(bot, "milestones")
    assert posts_to(bot.fake, VP) == []
    # An approved amendment moved the date: the milestone is decided afresh (bot.amendments).
    async with bot.sessions() as session:
        await writing(session)
        m1 = (await session.exec(select(Milestone).where(Milestone.key == "M1"))).one()
        m1.due, m1.status, m1.decided_at = date(2027, 5, 14), "pending", None
        session.add(m1)
        await session.commit()
    bot.clock.set(at("2027-05-15 08:00", "Europe/Berlin"))
    await run_job(bot, "milestones")
    await run_job(bot, "milestones")
    m1 = await milestone(bot.sessions, cid, "M1")
    assert (m1.status, m1.missed_count) == ("missed", 2)
    (escalated,) = posts_to(bot.fake, VP)
    assert "missed milestone M1 again" in escalated.args["text"]
    assert len(posts_to(bot.fake, LEADER)) == len(posts_to(bot.fake, SPONSOR)) == 2
    assert "missed 2 times, so <@U0VP00001> were told" in str(
        posts_to(bot.fake, LEADER)[-1].args["blocks"]
    )
    keys = Counter((d.kind, d.period_key) for d in await deliveries(bot.sessions))
    assert keys == {
        (MISSED, "M1:missed1"): 1,
        (MISSED_NOTE, "M1:missed1"): 1,
        (MISSED, "M1:missed2"): 1,
        (MISSED_NOTE, "M1:missed2"): 1,
        (ESCALATION, "M1:missed2"): 1,
    }


async def test_old_news_is_recorded_but_not_announced(bot: Bot) -> None:
    virtual_time(bot.services)
    cid = await contract_with_milestones(bot.sessions, channel=None)
    imported = await contract_with_milestones(bot.sessions, leader=VP, channel=None)
    async with bot.sessions() as session:
        await writing(session)
        late = await session.get(Contract, imported)
        assert late is not None
        late.created_at = at("2027-04-20 10:00")  # imported after M1's due day
        session.add(late)
        await session.commit()
    bot.clock.set(at("2027-04-25 10:00", "Europe/Berlin"))  # the bot was down since March
    await run_job(bot, "milestones")
    assert (await milestone(bot.sessions, cid, "M1")).status == "missed"
    assert (await milestone(bot.sessions, imported, "M1")).status == "missed"
    assert bot.fake.calls_to("chat.postMessage") == []
    bot.clock.set(at("2027-07-01 10:00", "Europe/Berlin"))  # M2 (30 June) is news again
    await run_job(bot, "milestones")
    assert {c.args["channel"] for c in bot.fake.calls_to("chat.postMessage")} == {
        LEADER,
        VP,
        SPONSOR,
    }
    assert all("M2" in c.args["text"] for c in bot.fake.calls_to("chat.postMessage"))


async def test_a_rate_limit_is_waited_out_and_each_notice_goes_once(bot: Bot) -> None:
    time = virtual_time(bot.services)
    bot.fake.add_channel(WINS, name="wins")
    cid = await contract_with_milestones(bot.sessions)
    await record(bot.sessions, cid, "I1", 70, bot.clock.now())
    bot.fake.fail_next("chat.postMessage", status=429, retry_after=3, times=2)
    report = await run_job(bot, "milestones")
    assert report.rate_limited == 2 and str(report).startswith("3 sent")
    assert sum(time.sleeps) >= 3
    ok = [c for c in bot.fake.calls_to("chat.postMessage") if c.response.get("ok")]
    assert len(ok) == 3


async def test_a_notice_that_failed_is_sent_by_a_later_run_only_while_recent(bot: Bot) -> None:
    virtual_time(bot.services)
    cid = await contract_with_milestones(bot.sessions, channel=None)
    await record(bot.sessions, cid, "I1", 70, bot.clock.now())
    bot.fake.fail_next("chat.postMessage", status=200, error="invalid_blocks")
    report = await run_job(bot, "milestones")
    assert "1 failed" in str(report) and "1 sent" in str(report)
    bot.clock.advance(timedelta(hours=1))
    report = await run_job(bot, "milestones")
    assert str(report).startswith("1 sent")
    assert len(posts_to(bot.fake, LEADER)) == len(posts_to(bot.fake, SPONSOR)) == 1


async def test_a_decision_undone_before_a_retry_is_not_told(bot: Bot) -> None:
    virtual_time(bot.services)
    cid = await contract_with_milestones(bot.sessions, channel=None)
    bot.clock.set(at("2027-04-02 08:00", "Europe/Berlin"))
    bot.fake.fail_next("chat.postMessage", status=200, error="invalid_blocks")
    await evaluate(services=bot.services, client=bot.app.client)  # the leader's DM failed
    assert posts_to(bot.fake, LEADER) == []
    async with bot.sessions() as session:
        await writing(session)
        m1 = (await session.exec(select(Milestone).where(Milestone.key == "M1"))).one()
        m1.due, m1.status, m1.decided_at = date(2027, 5, 14), "pending", None  # recalibrated
        session.add(m1)
        await session.commit()
    bot.clock.advance(timedelta(hours=1))
    report = await notify(services=bot.services, client=bot.app.client, contract_ids=[cid])
    assert str(report).startswith("nothing due")
    assert posts_to(bot.fake, LEADER) == []


@pytest.mark.postgres
async def test_two_replicas_on_postgresql_decide_and_tell_once(
    postgres_url: str, fake_slack: FakeSlack, replica_queue: ReplicaQueue
) -> None:
    leaders = [f"U0MILE{n:03d}" for n in range(12)]
    for user in leaders:
        fake_slack.add_user(user, name=user.lower(), tz="Europe/Berlin")
    fake_slack.add_channel(WINS, name="wins")
    clock = ManualClock(at("2027-04-02 08:00", "Europe/Berlin"))
    engine = create_engine(postgres_url)
    setup = session_factory(engine)
    for n, user in enumerate(leaders):
        cid = await contract_with_milestones(setup, leader=user)
        await record(setup, cid, "I2", 34 if n % 2 else 40, at("2027-03-20 10:00"))

    async def replica(name: str) -> None:
        from bot.milestones.service import decide_milestones

        async with replica_queue(name, clock) as r:
            await decide_milestones(services=r.services)
            await notify(services=r.services, client=r.client, queue=r.queue)

    await asyncio.gather(*(asyncio.to_thread(asyncio.run, replica(n)) for n in ("a", "b")))
    sent = Counter(
        (c.args["channel"], c.args["text"])
        for c in fake_slack.calls_to("chat.postMessage")
        if c.response.get("ok")
    )
    assert set(sent.values()) == {1}
    rows = await deliveries(setup)
    # Each leader: M1 missed (DM + sponsor note, VP only at a second miss); half met M3 too.
    assert Counter(d.kind for d in rows) == {
        MISSED: 12,
        MISSED_NOTE: 12,
        MET: 6,
        MET_NOTE: 6,
        MET_POST: 6,
    }
    assert {d.status for d in rows} == {"sent"}
    async with setup() as session:
        events = (await session.exec(select(AuditEvent.action))).all()
    assert Counter(events) == {"milestone.missed": 12, "milestone.met": 6}
    await engine.dispose()
