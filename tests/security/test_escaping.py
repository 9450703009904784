"""What people type is shown as text: links, mentions and `<!channel>` typed into a contract,
a check-in, feedback, evidence or an amendment never become live in Slack's mrkdwn.

A contract whose every typed field is `EVIL` is imported (or built in the modals) and every
surface is driven through signed requests; a walker then reads every text Slack would parse
as mrkdwn in every recorded call (message text and blocks, modals, App Home) and in the
views the app answered with, and finds none of it unescaped.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import yaml

from bot.amendments.blocks import APPROVE, REJECT
from bot.checkins.blocks import START
from bot.contracts.export import export_csv
from bot.contracts.io import import_text
from bot.milestones.blocks import ASK_SUPPORT, SUPPORT_INPUT
from bot.report.model import ContractReport
from bot.report.render import render_csv
from bot.report.service import parse_period
from bot.sandbox.demo import DEMO_CONTRACT
from storage.db import writing
from tests.bot.checkins.test_support import at, run_job, virtual_time
from tests.handlers.test_feedback_support import OUTSIDER, fast_sending, settled
from tests.handlers.test_feedback_support import run_job as feedback_job
from tests.harness import Bot, filled_modal

LEADER, SPONSOR, OWNER, VP = "U0LEAD001", "U0SPON001", "U0HRBP001", "U0VP00001"
PEER1, PEER2, PEER3 = "U0PEER001", "U0PEER002", "U0PEER003"
DANA = f"<@{LEADER}|dana>"
WINS = "C0WINS001"

EVIL = "<http://evil|click here> <!channel> <@U0ATTACK> &"
SHORT = "<@U0ATTACK> <!channel> &"  # fits an indicator unit's 32 characters
NEEDLES = ("<http://evil", "<!channel>", "<@U0ATTACK>")
SHOWN = "&lt;http://evil|click here&gt; &lt;!channel&gt; &lt;@U0ATTACK&gt; &amp;"
SHOWN_SHORT = "&lt;@U0ATTACK&gt;"
# Keys whose strings Slack never renders as mrkdwn (ids, values, defaults of inputs).
NOT_SHOWN = frozenset(
    {
        "action_id",
        "block_id",
        "callback_id",
        "external_id",
        "private_metadata",
        "value",
        "initial_value",
        "url",
        "hash",
        "id",
        "root_view_id",
        "previous_view_id",
        "response_url",
        "trigger_id",
        "channel",
        "ts",
        "user",
        "user_id",
        "message_ts",
        "thread_ts",
        "type",
        "style",
        "response_type",
        # Plain text by Slack's definition ("should not contain any markup"): an image's
        # alt text, and an uploaded file's name, alt text and title (in `files`).
        "alt_text",
        "alt_txt",
        "filename",
        "files",
    }
)


def evil_document(*, title: str = "Head of Platform") -> str:
    """The example contract with every typed text replaced by `EVIL`, as JSON."""
    doc = yaml.safe_load(DEMO_CONTRACT.read_text(encoding="utf-8"))
    doc["title"] = f"{title} {EVIL}"
    doc["mission"] = EVIL
    for item in doc["expectations"]:
        item["text"] = f"{item['key']} {EVIL}"
    for item in doc["development_activities"]:
        item["title"] = f"{item['key']} {EVIL}"
        item["demonstration"] = EVIL
    for item in doc["success_indicators"]:
        item.update(name=f"{item['key']} {EVIL}", unit=SHORT, source=EVIL)
    for item in doc["milestones"]:
        item["title"] = f"{item['key']} {EVIL}"
    for item in doc["resources"]:
        item["text"] = EVIL
    for item in doc["barriers"]:
        item.update(risk=EVIL, contingency=EVIL)
    doc["governance"]["reporting"] = EVIL
    return json.dumps(doc, default=str)


async def import_evil(bot: Bot, *, draft: bool = False) -> int:
    results, problems = await import_text(
        evil_document(),
        filename="evil.json",
        sessions=bot.sessions,
        client=bot.app.client,
        draft=draft,
        now=bot.clock.now(),
    )
    assert problems == [], problems
    return results[0].contract_id


def shown_texts(node: Any, key: str | None = None) -> Iterator[str]:
    """Every string of a payload that Slack parses as mrkdwn (plain_text objects are shown
    as typed, so they are skipped)."""
    if key in NOT_SHOWN:
        return
    if isinstance(node, dict):
        if node.get("type") == "plain_text":
            return
        for name, value in node.items():
            yield from shown_texts(value, name)
    elif isinstance(node, list):
        for item in node:
            yield from shown_texts(item, key)
    elif isinstance(node, str):
        if key in ("blocks", "view", "attachments"):  # JSON-encoded by the client
            try:
                yield from shown_texts(json.loads(node), key)
            except ValueError:
                yield node
        else:
            yield node


def everything_shown(bot: Bot, *answers: Any) -> list[str]:
    """The mrkdwn of every call the app made to the fake Slack, and of `answers` (views the
    app returned in response_action)."""
    texts: list[str] = []
    for call in bot.fake.calls:
        texts += shown_texts(call.args)
    for answer in answers:
        texts += shown_texts(answer)
    return texts


def assert_escaped(bot: Bot, *answers: Any, expect: str = SHOWN) -> None:
    texts = everything_shown(bot, *answers)
    leaks = [
        line
        for text in texts
        for line in text.splitlines()
        if any(needle in line for needle in NEEDLES)
    ]
    assert leaks == [], "\n".join(dict.fromkeys(leaks))
    assert any(expect in t for t in texts), "the typed text was never shown"


def view_of(answer: Any) -> Any:
    return answer.json.get("view") if isinstance(answer.json, dict) else None


def dm(bot: Bot, user: str) -> list[dict[str, Any]]:
    return bot.fake.messages.get(bot.fake.dm_id(user), [])


async def command(bot: Bot, name: str, text: str, *, user: str) -> None:
    before = len(bot.fake.calls)
    response = await bot.driver.command(name, text, user=user)
    assert response.status == 200
    await bot.fake.wait_for("response_url", count=1, where=lambda c: c in bot.fake.calls[before:])


async def opened(bot: Bot, name: str, text: str, *, user: str) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.open"))
    response = await bot.driver.command(name, text, user=user)
    assert response.status == 200
    calls = await bot.fake.wait_for("views.open", count=before + 1)
    assert calls[-1].response["ok"], calls[-1].response
    return await filled_modal(bot.fake, user)


# --- the walker itself ----------------------------------------------------------------------


def test_the_walker_finds_a_live_link_and_skips_plain_text() -> None:
    live = {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": EVIL}}]}
    plain = {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": EVIL}}]}
    encoded = {"text": "ok", "blocks": json.dumps(live["blocks"])}
    assert list(shown_texts(live)) == [EVIL]  # "type" and ids are not shown
    assert list(shown_texts(plain)) == []
    assert EVIL in list(shown_texts(encoded))


# --- the surfaces ---------------------------------------------------------------------------


async def test_the_draft_editor_and_its_modals(bot: Bot) -> None:
    await import_evil(bot, draft=True)
    editor = await opened(bot, "/contract", "edit", user=LEADER)
    assert_escaped(bot)
    await command(bot, "/contract", "amend", user=LEADER)  # a draft: "still a draft"
    await command(bot, "/contract", "summary v2", user=LEADER)  # no versions yet
    assert "still a draft" in str(bot.fake.calls_to("response_url")[-2].args)

    # An item added through its modal, and a new contract made in the modals.
    before = len(bot.fake.calls_to("views.push"))
    await bot.driver.block_action(
        user=LEADER, action_id="contract_add_item:barrier", view=editor, block_id="add_items"
    )
    await bot.fake.wait_for("views.push", count=before + 1)
    pushed = await filled_modal(bot.fake, LEADER)
    answer = await bot.driver.submit_view(
        pushed, {"risk": f"new {EVIL}", "contingency": f"plan {EVIL}"}, user=LEADER
    )
    assert answer.status == 200 and answer.json is None
    await bot.fake.wait_for("views.update")
    assert "new &lt;http://evil" in json.dumps(bot.fake.views[editor["id"]])

    modal = await opened(bot, "/contract", "new", user=PEER2)
    created = await bot.driver.submit_view(
        modal,
        {
            "title": f"VP Sales {EVIL}",
            "leader": PEER2,
            "sponsor": SPONSOR,
            "period_start": "2027-04-05",
            "period_end": "2028-03-17",
            "mission": EVIL,
            "checkin_weekday": "4",
            "checkin_time": "15:00",
        },
        user=PEER2,
    )
    assert created.json["response_action"] == "update"
    assert_escaped(bot, view_of(answer), view_of(created))
    assert "VP Sales &lt;http://evil" in json.dumps(view_of(created))


async def test_summary_history_and_app_home(bot: Bot) -> None:
    contract_id = await import_evil(bot)
    await command(bot, "/contract", "summary", user=LEADER)
    await command(bot, "/contract", f"summary {DANA}", user=SPONSOR)
    await command(bot, "/contract", "history", user=LEADER)
    await command(bot, "/contract", "summary v9", user=LEADER)  # no such version
    await command(bot, "/contract", "activate", user=LEADER)  # already active: a refusal
    for user in (LEADER, SPONSOR, OWNER):
        await bot.driver.app_home_opened(user)
    await bot.fake.wait_for("views.publish", count=3)
    home = bot.fake.home_views[SPONSOR]
    await bot.driver.block_action(
        user=SPONSOR, action_id="home_open_summary", view=home, block_id="governed_0"
    )
    await bot.fake.wait_for("views.open")
    (summary_call, *_) = bot.fake.calls_to("response_url")
    assert summary_call.args["text"].startswith("Summary of Head of Platform &lt;http")
    assert contract_id
    assert_escaped(bot)


async def test_checkin_prompt_modal_history_and_milestones_met(bot: Bot) -> None:
    await import_evil(bot)
    virtual_time(bot.services)
    bot.fake.add_channel(WINS, name="wins")
    bot.clock.set(at("2027-03-12 15:00", "Europe/Berlin"))
    report = await run_job(bot, "checkins")
    assert str(report).startswith("1 sent"), report
    prompt = copy.deepcopy(dm(bot, LEADER)[-1])
    await bot.driver.block_action(user=LEADER, action_id=START, message=prompt)
    await bot.fake.wait_for("views.open")
    modal = await filled_modal(bot.fake, LEADER)
    answers = {
        "ind:I1": "70",
        "ind:I2": "41.5",
        "ind:I3": "55",
        "act:D1:status": "done",
        "act:D1:progress": "100",
        "ev1_item": "indicator:I2",
        "ev1_url": "https://dash.example.com/cycle-time",
        "ev1_note": EVIL,
        "wins": EVIL,
        "risk1": EVIL,
        "risk1_help": ["help"],
        "reflection": EVIL,
        "confidence": "4",
    }
    answer = await bot.driver.submit_view(modal, answers, user=LEADER)
    assert answer.json == {"response_action": "clear"}
    await bot.fake.wait_for("chat.postMessage", count=2, where=lambda c: c.args["channel"] == WINS)
    await bot.fake.wait_for(
        "chat.postMessage", count=3, where=lambda c: c.args["channel"] == SPONSOR
    )
    await command(bot, "/checkin", "history", user=LEADER)
    await command(bot, "/contract", "summary", user=LEADER)
    assert_escaped(bot)


async def test_missed_milestones_amendments_and_the_digest(bot: Bot) -> None:
    await import_evil(bot)
    virtual_time(bot.services)
    bot.clock.set(at("2027-04-02 09:00", "Europe/Berlin"))
    await run_job(bot, "milestones")
    recalibrate = copy.deepcopy(dm(bot, LEADER)[-1])
    await bot.driver.block_action(user=LEADER, action_id=ASK_SUPPORT, message=recalibrate)
    await bot.fake.wait_for("views.open")  # what the leader needs, in their words
    need = bot.fake.last_view(LEADER)
    await bot.driver.submit_view(need, {SUPPORT_INPUT: f"need {EVIL}"}, user=LEADER)
    await bot.fake.wait_for("chat.update")

    # An amendment with a typed reason, the request DM, the digest, a rejection with a reason.
    chooser = await opened(bot, "/contract", "amend", user=LEADER)
    step = await bot.driver.submit_view(
        chooser, {"item": "barrier:B1", "action": "change"}, user=LEADER
    )
    assert step.json["response_action"] == "update", step.json
    form = await filled_modal(bot.fake, LEADER)
    sent = await bot.driver.submit_view(
        form, {"risk": f"changed {EVIL}", "rationale": f"because {EVIL}"}, user=LEADER
    )
    assert sent.json["response_action"] == "update", sent.json
    await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: "Amendment #1" in str(c.args.get("text"))
    )
    request = copy.deepcopy(
        next(m for m in reversed(dm(bot, SPONSOR)) if "Amendment #1" in m["text"])
    )
    bot.clock.set(at("2027-05-03 10:00", "Europe/Berlin"))
    report = await run_job(bot, "digests")
    assert str(report).startswith("2 sent"), report  # the sponsor's and the owner's
    digest = next(m for m in dm(bot, SPONSOR) if "North Star digest" in m["text"])
    assert "Amendment" in json.dumps(digest) or "#1" in json.dumps(digest)
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.block_action(user=SPONSOR, action_id=REJECT, message=request)
    await bot.fake.wait_for("views.open", count=before + 1)
    reject = await filled_modal(bot.fake, SPONSOR)
    rejected = await bot.driver.submit_view(reject, {"reason": f"no {EVIL}"}, user=SPONSOR)
    assert rejected.status == 200
    await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: "rejected" in str(c.args.get("text"))
    )
    await command(bot, "/contract", "history", user=LEADER)
    assert APPROVE in json.dumps(request)
    assert_escaped(bot, view_of(step), view_of(sent))


async def test_evidence_from_a_message_and_from_the_command(bot: Bot) -> None:
    await import_evil(bot)
    message = bot.fake.post_user_message("C0GENERAL1", user=PEER1, text=EVIL)
    await bot.driver.message_shortcut(
        user=LEADER, callback_id="add_evidence", message=message, channel="C0GENERAL1"
    )
    await bot.fake.wait_for("views.open")
    modal = await filled_modal(bot.fake, LEADER)
    done = await bot.driver.submit_view(
        modal, {"item": "expectation:E1", "note": f"note {EVIL}"}, user=LEADER
    )
    assert done.json["response_action"] == "update", done.json
    modal = await opened(bot, "/contract", "evidence", user=LEADER)
    other = await bot.driver.submit_view(
        modal,
        {"item": "indicator:I1", "note": f"other {EVIL}", "link": "https://example.com/x"},
        user=LEADER,
    )
    assert other.json["response_action"] == "update", other.json
    await command(bot, "/contract", "summary", user=LEADER)
    assert_escaped(bot, view_of(done), view_of(other))


async def test_feedback_requests_dms_and_lists(bot: Bot) -> None:
    await import_evil(bot)
    fast_sending(bot)
    await command(bot, "/contract", f"request-feedback <@{PEER1}|pia> E1", user=LEADER)
    await bot.fake.wait_for("chat.postMessage", where=lambda c: PEER1 in str(c.args))
    modal = await opened(bot, "/feedback", f"{DANA} {EVIL}", user=PEER1)
    values = {
        "expectation": "E1",
        "polarity": "strength",
        "situation": f"situation {EVIL}",
        "behaviour": f"behaviour {EVIL}",
        "impact": f"impact {EVIL}",
        "anonymity": "attributed",
        "relation": "peer",
    }
    thanks = await bot.driver.submit_view(modal, values, user=PEER1)
    assert thanks.json["response_action"] == "update", thanks.json
    await settled(bot)
    for peer in (PEER2, PEER3, OUTSIDER):  # the owner reads feedback: they give it by name
        modal = await opened(bot, "/feedback", DANA, user=peer)
        answer = await bot.driver.submit_view(
            modal, {**values, "anonymity": "anonymous"}, user=peer
        )
        assert answer.json["response_action"] == "update", answer.json
    await settled(bot)
    await feedback_job(bot, force=True)  # the anonymous entries reach the leader together
    await settled(bot)
    assert any("Anonymous feedback for you" in m["text"] for m in dm(bot, LEADER))
    await opened(bot, "/feedback", "mine", user=PEER1)
    await command(bot, "/feedback", "received", user=LEADER)
    await command(bot, "/contract", "request-feedback", user=LEADER)
    assert_escaped(bot, view_of(thanks))


# --- CSV exports ----------------------------------------------------------------------------


FORMULAS = ['=HYPERLINK("http://evil","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]


@pytest.mark.parametrize("formula", FORMULAS)
async def test_the_contract_csv_export_does_not_start_a_cell_with_a_formula(
    bot: Bot, formula: str
) -> None:
    doc = json.loads(evil_document())
    doc["title"] = formula
    doc["success_indicators"][0].update(name=formula, unit="", source=formula)
    doc["success_indicators"][2].update(baseline=-40, target=-10)  # numbers stay numbers
    results, problems = await import_text(
        json.dumps(doc),
        filename="f.json",
        sessions=bot.sessions,
        client=bot.app.client,
        draft=False,
        now=bot.clock.now(),
    )
    assert problems == [], problems
    await _measure(bot, results[0].contract_id)
    async with bot.sessions() as session:
        text = await export_csv(session=session, contract_ids=None, leader_id=None)
    rows = list(csv.reader(io.StringIO(text)))
    cells = [cell for row in rows[1:] for cell in row]
    assert cells, "no rows exported"
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") and c[1:2]]
    assert [c for c in cells if c == "'" + formula]
    header = rows[0]
    i3 = [r for r in rows[1:] if r[header.index("indicator_key")] == "I3"]
    assert i3 and {(r[header.index("baseline")], r[header.index("value")]) for r in i3} == {
        ("-40", "-40")
    }


def test_the_report_csv_does_not_start_a_cell_with_a_formula() -> None:
    report = ContractReport(
        contract_id=1,
        title='=HYPERLINK("http://evil")',
        leader="U0LEAD001",
        sponsor="U0SPON001",
        status="active",
        version=1,
    )
    report.met.append("@SUM(A1)")
    report.missed.append("-2+3")
    rows = list(csv.reader(io.StringIO(render_csv(parse_period("2027Q2"), [report]))))
    row = rows[1]
    assert '\'=HYPERLINK("http://evil")' in row
    assert "'@SUM(A1)" in row and "'-2+3" in row
    assert not [c for c in row if c[:1] in ("=", "+", "@") or (c[:1] == "-" and c[1:2])]


async def _measure(bot: Bot, contract_id: int) -> None:
    """One measurement of each indicator, so the CSV export has rows."""
    from sqlmodel import select

    from storage.models import Measurement, SuccessIndicator

    async with bot.sessions() as session:
        await writing(session)
        indicators = (
            await session.exec(
                select(SuccessIndicator).where(SuccessIndicator.contract_id == contract_id)
            )
        ).all()
        for indicator in indicators:
            session.add(
                Measurement(
                    indicator_id=indicator.id or 0,
                    value=indicator.baseline,
                    measured_at=bot.clock.now(),
                    source="=cmd",
                )
            )
        await session.commit()
    assert date.today()


# --- the evidence shortcut keeps what Slack signed -------------------------------------------


FORGED_QUOTE = "CEO: Dana is the best leader we ever had, promote her now"
PHISHING = "https://evil.example/login"


async def shortcut_modal(bot: Bot, *, user: str = LEADER) -> tuple[dict[str, Any], dict[str, Any]]:
    """The shortcut used on a real message in #general; (the message, the modal)."""
    message = bot.fake.post_user_message("C0GENERAL1", user=PEER1, text="Runbook shipped")
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.message_shortcut(
        user=user, callback_id="add_evidence", message=message, channel="C0GENERAL1"
    )
    await bot.fake.wait_for("views.open", count=before + 1)
    await bot.fake.wait_for("chat.getPermalink", count=before + 1)
    return message, (await filled_modal(bot.fake, user))


def tamper(bot: Bot, modal: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What a modified client would send back: the modal's private_metadata changed."""
    data = json.loads(modal["private_metadata"])
    data.update(changes)
    bot.fake.views[modal["id"]]["private_metadata"] = json.dumps(data)
    return bot.fake.views[modal["id"]]


async def evidence_rows(bot: Bot) -> list[Any]:
    from sqlmodel import select

    from storage.models import Evidence

    async with bot.sessions() as session:
        return list((await session.exec(select(Evidence))).all())


async def test_a_forged_quote_and_permalink_in_the_metadata_are_ignored(bot: Bot) -> None:
    await import_evil(bot)
    message, modal = await shortcut_modal(bot)
    assert set(json.loads(modal["private_metadata"])) == {"contract_id", "source"}
    forged = {"channel": "C0GENERAL1", "ts": "1.2", "excerpt": FORGED_QUOTE}
    tamper(bot, modal, message={**forged, "permalink": PHISHING}, excerpt=FORGED_QUOTE)
    answer = await bot.driver.submit_view(modal, {"item": "expectation:E1"}, user=LEADER)
    assert answer.json["response_action"] == "update", answer.json
    async with asyncio.timeout(5):  # a permalink Slack had not given yet is added after ack
        while (row := (await evidence_rows(bot))[0]).url is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    assert row.source == "shortcut" and row.excerpt == "Runbook shipped"
    assert row.url is not None and row.url.endswith(message["ts"].replace(".", ""))
    assert PHISHING not in str(row) and "CEO" not in str(row)


@pytest.mark.parametrize(
    "source",
    ["x" * 32, "", None, 12345, ["a"], "../../etc", "\x00" * 20],
    ids=["unknown", "empty", "null", "number", "list", "path", "nul"],
)
async def test_a_forged_token_adds_no_message(bot: Bot, source: Any) -> None:
    await import_evil(bot)
    _, modal = await shortcut_modal(bot)
    tamper(bot, modal, source=source, message={"excerpt": FORGED_QUOTE, "permalink": PHISHING})
    answer = await bot.driver.submit_view(modal, {"item": "expectation:E1"}, user=LEADER)
    assert answer.status == 200
    assert answer.json["response_action"] == "errors", answer.json
    assert await evidence_rows(bot) == []


async def test_another_persons_token_and_a_second_submission_are_refused(bot: Bot) -> None:
    await import_evil(bot)
    _, modal = await shortcut_modal(bot, user=LEADER)
    stolen = await bot.driver.submit_view(modal, {"item": "expectation:E1"}, user=SPONSOR)
    assert stolen.json["response_action"] == "errors"
    assert "expired" in stolen.json["errors"]["item"]
    assert await evidence_rows(bot) == []

    both = await asyncio.gather(  # a double click: both carry the same token
        bot.driver.submit_view(modal, {"item": "expectation:E1"}, user=LEADER),
        bot.driver.submit_view(modal, {"item": "expectation:E2"}, user=LEADER),
    )
    # One is added. The other, the same view submitted again, either gets the first one's
    # answer (a repeat of the request) or, reaching the token after it was used, an error.
    answers = sorted(a.json["response_action"] for a in both)
    assert answers in (["errors", "update"], ["update", "update"])
    assert len(await evidence_rows(bot)) == 1
