"""Numbers that mean what they say, through signed requests and the fake Slack: a check-in
records only what the leader entered (or confirmed), named feedback answers requests, no
surface double-bolds, and the summary labels its figures."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest_asyncio
from sqlmodel import col, select

from bot.contracts.export import export_csv
from storage.db import writing
from storage.models import AuditEvent, Delivery, FeedbackRequest, Measurement, SuccessIndicator
from tests.bot.checkins.test_support import at, run_job, virtual_time
from tests.conftest import Bot, import_example
from tests.fakes import FakeSlack
from tests.handlers.test_amendments import ESCALATION, OWNER, propose
from tests.handlers.test_checkin_modal import open_checkin, submit
from tests.handlers.test_feedback_requests import request_dm
from tests.handlers.test_feedback_support import (
    DANA,
    LEADER,
    OUTSIDER,
    PEER1,
    PEER2,
    PEER3,
    SPONSOR,
    dms,
    fast_sending,
    give,
    open_modal,
    say,
    settled,
    text_of,
)
from tests.handlers.test_feedback_support import run_job as run_feedback_job
from tests.harness import START, running_bot


@pytest_asyncio.fixture
async def bot(fake_slack: FakeSlack, database_url: str) -> AsyncIterator[Bot]:
    """The app on SQLite, and on PostgreSQL where a server answers."""
    async with running_bot(fake_slack, database_url) as harness:
        fast_sending(harness)
        yield harness


async def series(bot: Bot) -> dict[str, list[tuple[float, bool, datetime]]]:
    """Each indicator's measurements: (value, confirmed, when), oldest first."""
    async with bot.sessions() as session:
        rows = await session.exec(
            select(SuccessIndicator.key, Measurement)
            .join(SuccessIndicator, col(SuccessIndicator.id) == col(Measurement.indicator_id))
            .order_by(col(Measurement.measured_at), col(Measurement.id))
        )
        found: dict[str, list[tuple[float, bool, datetime]]] = {}
        for key, m in rows.all():
            found.setdefault(key, []).append((m.value, m.confirmed, m.measured_at))
    return found


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


# --- 1. a check-in records what the leader entered -------------------------------------------


async def test_a_checkin_records_only_what_was_entered_or_confirmed(bot: Bot) -> None:
    virtual_time(bot.services)
    bot.clock.set(at("2027-02-12 15:30", "Europe/Berlin"))  # week 6: every indicator is due
    await import_example(bot)
    february = await open_checkin(bot)
    response = await submit(
        bot, february, {"ind:I1": "65", "ind:I2": "43", "ind:I3": "52", "confidence": "4"}
    )
    assert response.json == {"response_action": "clear"}

    # April's first week: I1 (quarterly), I2 and I3 (monthly) are due again.
    bot.clock.set(at("2027-04-09 15:30", "Europe/Berlin"))
    april = await open_checkin(bot)
    i1 = block(april, "ind:I1")
    assert i1["element"].get("initial_value") is None  # shown, never pre-filled
    assert i1["element"]["placeholder"]["text"] == "Last 65 points on 12 Feb 2027"
    assert "last 65 points on 12 Feb 2027" in i1["hint"]["text"]
    assert block(april, "same:I1")["element"]["options"][0]["text"]["text"] == (
        "No change: still 65 points"
    )
    # A bad number, or a number beside "no change", is a field error; nothing is saved.
    response = await submit(bot, april, {"ind:I2": "soon", "confidence": "4"})
    assert response.json["errors"] == {"ind:I2": "“soon” is not a number."}
    response = await submit(bot, april, {"ind:I3": "60", "same:I3": ["same"], "confidence": "4"})
    assert "You ticked “no change” (52 %)" in response.json["errors"]["ind:I3"]
    assert len((await series(bot))["I2"]) == 1

    # Only I2 changed; I3 is confirmed unchanged; I1 is left alone.
    response = await submit(bot, april, {"ind:I2": "40", "same:I3": ["same"], "confidence": "4"})
    assert response.json == {"response_action": "clear"}
    values = await series(bot)
    assert [v for v, _, _ in values["I1"]] == [65]  # February's value is not April's
    assert [(v, c) for v, c, _ in values["I2"]] == [(43, False), (40, False)]
    assert [(v, c) for v, c, _ in values["I3"]] == [(52, False), (52, True)]
    async with bot.sessions() as session:
        submitted = (
            await session.exec(
                select(AuditEvent)
                .where(AuditEvent.action == "checkin.submitted")
                .order_by(col(AuditEvent.id).desc())
            )
        ).first()
    assert submitted is not None
    assert submitted.detail["after"]["values"] == {"I2": 40, "I3": 52}
    assert submitted.detail["after"]["confirmed"] == ["I3"]
    async with bot.sessions() as session:
        exported = list(
            csv.DictReader(
                io.StringIO(await export_csv(session=session, contract_ids=None, leader_id=None))
            )
        )
    assert [(r["indicator_key"], r["value"], r["confirmed"]) for r in exported] == [
        ("I1", "65", ""),
        ("I2", "43", ""),
        ("I2", "40", ""),
        ("I3", "52", ""),
        ("I3", "52", "yes"),
    ]

    # The edit shows what was recorded: I2 typed, I3 ticked, I1 still empty.
    edit = await open_checkin(bot)
    assert block(edit, "ind:I2")["element"]["initial_value"] == "40"
    assert block(edit, "ind:I3")["element"].get("initial_value") is None
    assert block(edit, "same:I3")["element"]["initial_options"][0]["value"] == "same"
    assert block(edit, "ind:I1")["element"].get("initial_value") is None
    # Unticking "no change" and leaving the value empty takes the confirmation back.
    response = await submit(bot, edit, {"same:I3": [], "confidence": "4"})
    assert response.json == {"response_action": "clear"}
    assert [(v, c) for v, c, _ in (await series(bot))["I3"]] == [(52, False)]

    said = await say(bot, "/contract", "summary", user=LEADER)
    assert "↘ down 3 days since 12 Feb 2027 · improving" in said
    bot.clock.advance(timedelta(hours=1))
    await submit(bot, await open_checkin(bot), {"same:I3": ["same"], "confidence": "4"})
    said = await say(bot, "/contract", f"summary <@{LEADER}>", user=SPONSOR)
    assert "→ no change, confirmed 9 Apr 2027" in said


# --- 4. the summary says what its numbers are --------------------------------------------------


async def record(bot: Bot, contract_id: int, values: dict[str, list[tuple[str, float]]]) -> None:
    """Measurements as check-ins would have stored them: {key: [(UTC day, value), ...]}."""
    async with bot.sessions() as session:
        await writing(session)
        ids = {
            i.key: i.id or 0
            for i in (
                await session.exec(
                    select(SuccessIndicator).where(SuccessIndicator.contract_id == contract_id)
                )
            ).all()
        }
        for key, points in values.items():
            for when, value in points:
                moment = datetime.fromisoformat(when).replace(tzinfo=UTC)
                session.add(Measurement(indicator_id=ids[key], value=value, measured_at=moment))
        await session.commit()


def section_of(said: str, title: str, next_title: str) -> str:
    return said[said.index(f"*{title}*") : said.index(f"*{next_title}*")]


async def test_the_summary_lists_expectations_and_labels_every_number(bot: Bot) -> None:
    contract_id = await import_example(bot)
    # Engagement fell (worse), cycle time fell (better): the arrow follows the value, the
    # word the target.
    await record(
        bot,
        contract_id,
        {
            "I1": [("2027-02-12", 66), ("2027-03-05", 63)],
            "I2": [("2027-02-12", 43), ("2027-03-05", 39)],
        },
    )
    said = await say(bot, "/contract", f"summary <@{LEADER}>", user=SPONSOR)

    expectations = section_of(said, "Expectations", "Success indicators")
    assert "*E1* Own the platform reliability roadmap" in expectations
    assert "*E2* Grow two engineering managers able to run their teams" in expectations
    assert "*E3* Decide build-versus-buy for the observability stack" in expectations

    indicators = section_of(said, "Success indicators", "Development activities")
    assert "`" not in indicators  # no red code styling on numbers
    assert (
        "baseline 62 → latest *63* → target 75 points · ▓░░░░░░░░░ 8% of the way · "
        "↘ down 3 points since 12 Feb 2027 · slipping"
    ) in indicators
    assert (
        "baseline 45 → latest *39* → target 30 days · ▓▓▓▓░░░░░░ 40% of the way · "
        "↘ down 4 days since 12 Feb 2027 · improving"
    ) in indicators
    assert "baseline 40 → latest _no value yet_ → target 90 %" in indicators
    # 10 March is 65 of the period's 347 days (19%); the mean progress is 16%.
    assert "_Overall: 16% toward targets, 19% of the period gone: on pace._" in indicators

    before = len(bot.fake.calls_to("views.publish"))
    await bot.driver.app_home_opened(SPONSOR)
    await bot.fake.wait_for("views.publish", count=before + 1)
    home = json.dumps(bot.fake.home_views[SPONSOR], ensure_ascii=False)
    assert "16% toward targets, 19% of the period gone: on pace" in home

    bot.clock.set(datetime(2027, 7, 1, 9, 0, tzinfo=UTC))  # half the period gone, no new values
    said = await say(bot, "/contract", f"summary <@{LEADER}>", user=SPONSOR)
    assert "16% toward targets, 51% of the period gone: behind pace" in said


# --- 3. no surface doubles or nests its mrkdwn markers --------------------------------------

CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
ANGLED = re.compile(r"<[^<>\n]*>")  # mentions, links, dates: Slack reads them whole


def marker_problems(text: str) -> list[str]:
    """Where `text` doubles (`**`) or nests (`*a *b* c*`) a bold, italic or strike marker,
    or leaves one open: Slack shows such markup broken, with stray asterisks."""
    problems = []
    for line in ANGLED.sub("x", CODE.sub("x", text)).split("\n"):
        for marker in "*_~":
            if marker * 2 in line:
                problems.append(f"doubled {marker}: {line!r}")
                continue
            inside = False
            for index, char in enumerate(line):
                if char != marker:
                    continue
                before = line[index - 1] if index else " "
                after = line[index + 1] if index + 1 < len(line) else " "
                opens = not after.isspace() and not before.isalnum()
                closes = not before.isspace() and not after.isalnum()
                if inside and closes:
                    inside = False
                elif inside and opens:
                    problems.append(f"nested {marker}: {line!r}")
                elif opens:
                    inside = True
            if inside:
                problems.append(f"unclosed {marker}: {line!r}")
    return problems


def mrkdwn_texts(node: Any) -> list[str]:
    """Every mrkdwn text in a message, view or call: text objects of type mrkdwn, and a
    message's own `text` (mrkdwn unless it says otherwise). Plain text shows `*` as is."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            found.append(node["text"])
        for key, value in node.items():
            if key == "text" and isinstance(value, str) and "type" not in node:
                found.append(value)
            else:
                found += mrkdwn_texts(value)
    elif isinstance(node, list):
        for item in node:
            found += mrkdwn_texts(item)
    return found


def test_the_marker_check_finds_what_slack_shows_broken() -> None:
    assert marker_problems("*E2* Grow two managers · _behavior_") == []
    assert marker_problems("`**not markup**` and <https://x.example/a_b*c|a link>") == []
    assert marker_problems("feedback_request and 2*3 and *_bold italic_*") == []
    assert marker_problems("**E2* Grow two…*")  # the release DM's title, bolded twice
    assert marker_problems("*Feedback on *E2* today*")
    assert marker_problems("*Mission")
    assert mrkdwn_texts({"text": "*a*", "blocks": [{"type": "plain_text", "text": "**"}]}) == [
        "*a*"
    ]


async def test_no_surface_doubles_or_nests_its_mrkdwn_markers(bot: Bot) -> None:
    """Every message and view a busy month produces, read for broken markup."""
    virtual_time(bot.services)
    contract_id = await import_example(bot)
    await record(bot, contract_id, {"I2": [("2027-02-12", 43)], "I1": [("2027-02-12", 65)]})
    modal = await open_checkin(bot)
    values = {
        "ind:I3": "55",
        "same:I2": ["same"],
        "act:D1:status": "in_progress",
        "ev1_item": "expectation:E2",
        "ev1_url": "https://wiki.example.com/e2",
        "wins": "Marta chaired the review.",
        "risk1": "Two engineers move to the launch team.",
        "risk1_help": ["help"],
        "confidence": "4",
    }
    assert (await submit(bot, modal, values)).json == {"response_action": "clear"}
    await say(bot, "/checkin", "history", user=LEADER)

    await say(bot, "/contract", f"request-feedback <@{PEER1}> <@{PEER3}> E2", user=LEADER)
    await give(bot, user=PEER1, expectation="E2")  # by name, with /feedback
    for peer in (PEER2, PEER3, OUTSIDER):
        await give(bot, user=peer, anonymous=True, expectation="E2")
    bot.clock.advance(timedelta(days=4))
    await run_feedback_job(bot)  # the release (a later day) and the reminders
    assert [m for m in dms(bot, LEADER) if "Anonymous feedback for you" in text_of(m)]
    await propose(bot, values={"target": "28"})
    await bot.fake.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == SPONSOR)
    await run_job(bot, "digests", force=True)
    await run_job(bot, "milestones", force=True)

    for user, about in ((LEADER, ""), (SPONSOR, f" <@{LEADER}>"), (OWNER, f" <@{LEADER}>")):
        for text in (f"summary{about}", f"history{about}", "help", "request-feedback"):
            await say(bot, "/contract", text, user=user)
        await bot.driver.app_home_opened(user)
    await say(bot, "/feedback", "received", user=LEADER)
    await open_modal(bot, "/feedback", "mine", user=PEER1)
    await open_modal(bot, "/feedback", DANA, user=PEER2)
    await settled(bot)

    calls = [c.args for c in bot.fake.calls]
    stored = [bot.fake.messages, bot.fake.views, bot.fake.home_views]
    texts = mrkdwn_texts([calls, stored])
    assert len(texts) > 200 and any("Anonymous feedback for you" in t for t in texts)
    broken = sorted({problem for text in texts for problem in marker_problems(text)})
    assert broken == []


# --- 2. named feedback answers requests; one reminder per request; each reviewer's zone ---------


def reminders_in(messages: list[dict[str, Any]]) -> int:
    return sum("Reminder" in text_of(m) for m in messages)


async def test_named_feedback_answers_the_requests_and_each_gets_one_reminder(bot: Bot) -> None:
    """Pia's month: asked on the cadence, by Dana and by Sam; she answers once with
    `/feedback @dana` and hears nothing more. Raj answers anonymously, which marks nothing."""
    await import_example(bot)  # Wednesday 10 March; reviewers Pia, Raj, Paul; monthly
    await run_feedback_job(bot)  # March's cadence requests
    await say(bot, "/contract", f"request-feedback <@{PEER1}> <@{PEER2}> E2", user=LEADER)
    await say(bot, "/contract", f"request-feedback <@{PEER1}> for {DANA}", user=SPONSOR)
    await request_dm(bot, PEER1, count=3)
    await request_dm(bot, PEER2, count=2)
    await settled(bot)
    assert [len(dms(bot, p)) for p in (PEER1, PEER2, PEER3)] == [3, 2, 1]

    await give(bot, user=PEER1, expectation="E2")  # by name, not from a request's button
    await give(bot, user=PEER2, anonymous=True, expectation="E2")
    async with bot.sessions() as session:
        requests = (await session.exec(select(FeedbackRequest))).all()
    assert {r.status for r in requests if r.reviewer_id == PEER1} == {"answered"}
    assert {r.status for r in requests if r.reviewer_id != PEER1} == {"open"}
    said = await say(bot, "/contract", "request-feedback", user=LEADER)
    assert f"answered by name: <@{PEER1}>" in said and PEER2 not in said

    # Three and a half weeks of the job, twice at once each day: on 1 April, before the
    # cadence's hour in Berlin, Pia gives feedback by name again, which answers April's.
    for days in range(1, 25):
        today = START + timedelta(days=days)
        if today.date() == date(2027, 4, 1):
            bot.clock.set(today.replace(hour=5))  # 07:00 in Berlin
            await give(bot, user=PEER1, expectation="E1")
        bot.clock.set(today.replace(hour=10))
        await asyncio.gather(run_feedback_job(bot), run_feedback_job(bot))
        await settled(bot)

    pia, raj, paul = (dms(bot, p) for p in (PEER1, PEER2, PEER3))
    assert (len(pia), reminders_in(pia)) == (3, 0)  # six before
    assert (len(raj), reminders_in(raj)) == (5, 2)  # 2 in March, a reminder each, April's
    assert (len(paul), reminders_in(paul)) == (3, 1)
    async with bot.sessions() as session:
        sent = (
            await session.exec(
                select(Delivery.period_key).where(
                    Delivery.kind == "feedback_reminder", Delivery.status == "sent"
                )
            )
        ).all()
        april = (
            await session.exec(
                select(FeedbackRequest).where(FeedbackRequest.batch == "cadence:1:2027-04")
            )
        ).all()
    # One per request, however many runs: Raj's two, Paul's, and March's cadence request to
    # the sponsor and to the leader (their self view), who answered neither.
    assert len(sent) == len(set(sent)) == 5
    assert {r.reviewer_id: r.status for r in april} == {
        PEER1: "answered",
        PEER2: "open",
        PEER3: "open",
        SPONSOR: "open",
        LEADER: "open",
    }


async def test_requests_are_timed_and_worded_in_each_reviewers_own_zone(bot: Bot) -> None:
    bot.clock.set(datetime(2027, 3, 1, 3, 45, tzinfo=UTC))  # Monday: 09:15 in Kolkata, 04:45 Berlin
    await import_example(bot)
    await run_feedback_job(bot)
    await settled(bot)
    [raj] = dms(bot, PEER2)
    assert "Open until Mon 15 Mar 2027, 09:15 (your time)." in text_of(raj)
    assert dms(bot, PEER1) == [] == dms(bot, PEER3)  # still night in Berlin

    bot.clock.set(datetime(2027, 3, 1, 8, 5, tzinfo=UTC))  # 09:05 in Berlin
    await run_feedback_job(bot)
    await settled(bot)
    [pia] = dms(bot, PEER1)
    assert "Open until Mon 15 Mar 2027, 09:05 (your time)." in text_of(pia)

    # Dana asks Raj at 20:00 his time on a Wednesday: three days on is a Saturday evening
    # in Kolkata, so the reminder waits for Monday morning there.
    bot.clock.set(datetime(2027, 3, 10, 14, 30, tzinfo=UTC))
    await say(bot, "/contract", f"request-feedback <@{PEER2}>", user=LEADER)
    asked = await request_dm(bot, PEER2, count=2)
    await settled(bot)
    assert "Open until Wed 24 Mar 2027, 20:00 (your time)." in text_of(asked)
    async with bot.sessions() as session:
        due = (
            await session.exec(
                select(Delivery.due_at).where(
                    Delivery.kind == "feedback_reminder", Delivery.recipient_id == PEER2
                )
            )
        ).all()
    assert sorted(d for d in due if d is not None)[-1] == datetime(2027, 3, 15, 3, 30, tzinfo=UTC)


# --- the audit log reads as sentences, at the reader's own time ---------------------------------


async def test_the_history_says_what_happened_in_the_readers_own_zone(bot: Bot) -> None:
    virtual_time(bot.services)
    await import_example(bot)  # 09:00 UTC on 10 March: 10:00 in Berlin, 04:00 in New York
    await submit(bot, await open_checkin(bot), {"ind:I2": "41", "confidence": "4"})
    await say(bot, "/contract", f"request-feedback <@{PEER1}> E2", user=LEADER)
    await give(bot, user=PEER1, expectation="E2")
    await say(bot, "/checkin", "skip leave", user=LEADER)

    dana = await say(bot, "/contract", "history", user=LEADER)
    log = dana[dana.index("*Audit log*") :]
    for line in (
        "|10 Mar 2027 10:00 CET> · <@U0LEAD001> submitted the check-in for week 10 (8–14 Mar 2027)",
        "|10 Mar 2027 10:00 CET> · <@U0LEAD001> asked 1 person for feedback on E2",
        "|10 Mar 2027 10:00 CET> · Feedback was given by name on E2",
        "|10 Mar 2027 10:00 CET> · _the command line_ imported the contract",
    ):
        assert line in log
    assert "`" not in log and PEER1 not in log  # no raw codes; feedback names nobody

    victor = await say(bot, "/contract", f"history <@{LEADER}>", user=ESCALATION)
    assert "|10 Mar 2027 04:00 EST> · <@U0LEAD001> submitted the check-in" in victor
    assert "CET" not in victor and "UTC" not in victor


ACTIONS_WRITTEN: dict[str, dict[str, Any]] = {
    "checkin.submitted": {"period": "2027-W10"},
    "checkin.edited": {"period": "2027-W10"},
    "checkin.skipped": {"period": "2027-W10", "reason": "leave"},
    "checkin.snoozed": {"period": "2027-W10", "until": "2027-03-11T14:00:00+00:00"},
    "evidence.added": {"evidence_id": 3, "item": "indicator:I2"},
    "feedback.requested": {"batch": "b", "reviewers": 3, "expectation": None},
    "feedback.given": {"feedback_id": 1, "expectation": "E2", "polarity": "strength"},
    "feedback.withdrawn": {"anonymous": False},
    "feedback.released": {"entries": 4},
    "milestone.met": {"milestone": "M1", "due": "2027-04-01", "value": 69, "missed_count": 0},
    "milestone.missed": {"milestone": "M3", "due": "2027-09-30", "value": 40, "missed_count": 1},
    "milestone.support_requested": {"milestone": "M3", "missed_count": 1},
    "contract.returned_to_draft": {"reason": "one active", "active_contract": 2},
    "contract.closed": {"reason": "Role ended", "superseded_by": 7, "messages_cancelled": 2},
    "contract.reflection": {"summary": "wrote the closing reflection"},
    "risk.resolved": {"risk": 3, "note": "Moved the launch.", "from": "summary"},
    "draft.details_changed": {"title": "New title", "sponsor_id": "U0SPON001"},
    "draft.expectation_changed": {"item": "E2", "text": "Forecast within 3%."},
    "draft.barrier_removed": {"item": "B1", "text": "Q4 hiring freeze"},
    "draft.discarded": {"contract_id": 1, "title": "VP Sales", "leader": "U0LEAD001", "items": 3},
    "contract.sent_for_agreement": {"version": 1, "replaces_current": True, "again": False},
    "contract.agreed": {"version": 2, "via": "slack"},
    "contract.agreed_outside_slack": {
        "version": 1,
        "operator": "ops@host",
        "parties": ["U0SPON001", "U0HRBP001"],
    },
    "contract.change_requested": {"version": 1, "comment": "Make it *80*"},
    "contract.terms_changed": {"version": 3},
    "contract.agreement_waiting": {"version": 1, "current": 2},
    "contract.renewed": {"summary": "Renewed by <@U0HRBP001> …", "draft": 7},
}


UNNAMED = {
    "feedback.given",
    "feedback.withdrawn",
    "feedback.released",
    "milestone.met",
    "milestone.missed",
    "contract.returned_to_draft",
    "contract.agreed_outside_slack",
    "contract.terms_changed",
    "contract.agreement_waiting",
}


def test_every_event_the_bot_writes_reads_as_words() -> None:
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from bot.amendments.blocks import audit_line

    root = Path(__file__).resolve().parents[2]
    written = set()
    for path in [*(root / "bot").rglob("*.py"), *(root / "storage").rglob("*.py")]:
        written |= set(re.findall(r'action="([a-z_]+\.[a-z_]+)"', path.read_text()))
    written |= {"milestone.met", "milestone.missed"}  # written as f"milestone.{outcome}"
    assert written - {"privacy.erased"} <= set(ACTIONS_WRITTEN) | {
        "contract.drafted",
        "contract.activated",
        "contract.imported",
        "contract.amended",
        "amendment.proposed",
        "amendment.approved",
        "amendment.rejected",
        "amendment.stale",
        "amendment.applied",
    }  # privacy.erased belongs to no contract, so no contract's history shows it
    zone = ZoneInfo("Asia/Kolkata")
    for action, detail in ACTIONS_WRITTEN.items():
        event = AuditEvent(
            contract_id=1,
            actor_id="U0LEAD001",
            action=action,
            detail=detail,
            created_at=datetime(2027, 3, 10, 9, 0, tzinfo=UTC),
        )
        line = audit_line(event, zone)
        assert "`" not in line and action not in line, line
        assert "|10 Mar 2027 14:30 IST>" in line
        # Who gave or withdrew feedback stays with the feedback's own rules; the bot's own
        # decisions have nobody to name.
        assert ("U0LEAD001" in line) is (action not in UNNAMED), line
