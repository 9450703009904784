"""Bad input never becomes a 500: ids that are no ids in button values and private_metadata,
NUL characters in typed text, a view whose state is null, a views.update that meets a newer
view, and contract files too large, too deep or too repetitive to read.

Requests go signed into the real app, on SQLite and, when TEST_DATABASE_URL is set, on
PostgreSQL (where 2**31 is no INTEGER and NUL no text). Each gets a short ephemeral message,
a DM or a field error; nothing is written; nothing is logged at ERROR.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from sqlmodel import select

from bot.amendments.blocks import APPROVE, REJECT
from bot.checkins.blocks import SNOOZE, START
from bot.contracts.blocks import ADD_ITEM, SEND
from bot.contracts.io import import_file, import_text, validate_file
from bot.contracts.schema import MAX_DEPTH
from bot.feedback.blocks import DELETE_MINE, REQUEST_GIVE
from bot.milestones.blocks import ASK_SUPPORT, PROPOSE
from bot.sandbox.demo import DEMO_CONTRACT
from bot.summary.home import EDIT_DRAFT, OPEN_SUMMARY
from bot.ui.views import OUT_OF_DATE
from storage.models import AuditEvent, CheckIn, Contract, Evidence, Expectation, Feedback
from tests.bot.checkins.test_support import virtual_time
from tests.bot.cli.test_main import northstar
from tests.fakes import DriverResponse, FakeSlack
from tests.fakes.driver import VERIFICATION_TOKEN
from tests.handlers.test_amendments import open_amend, open_form, propose, request_to
from tests.handlers.test_checkin_modal import ANSWERS, open_checkin
from tests.handlers.test_checkin_prompt import prompt
from tests.handlers.test_feedback_support import (
    DANA,
    LEADER,
    PEER1,
    SPONSOR,
    answers,
    dms,
    every_row,
    fast_sending,
    give,
    open_modal,
    say,
    settled,
)
from tests.handlers.test_milestones import m1, missed_m1
from tests.harness import Bot, filled_modal, running_bot

# Fifteen ways an id can be no id, as JSON text (a plain button value is this text itself).
FRAGMENTS: dict[str, str] = {
    "10**30": "1" + "0" * 30,
    "2**31": str(2**31),
    "2**63": str(2**63),
    "-1": "-1",
    "0": "0",
    "text": '"abc"',
    "empty": '""',
    "null": "null",
    "float": "1.5",
    "exponent": "1e3",
    "true": "true",
    "list": "[1]",
    "object": '{"id": 1}',
    "other digits": '"١٢"',
    "nested": "[" * 1200 + "]" * 1200,
}
PERIODS = ['"2027-W99"', '"2027-W10; x"', '"abc"', "12", "null", '"2027-W10\\u0000"']
NUL = "\x00"


@pytest_asyncio.fixture
async def bot(fake_slack: FakeSlack, database_url: str) -> AsyncIterator[Bot]:
    """The app on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set."""
    async with running_bot(fake_slack, database_url) as harness:
        fast_sending(harness)
        yield harness


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)


def assert_no_errors(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing at ERROR, but asyncio's notes on HTTP sessions that other code left open."""
    errors = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        and not (r.name == "asyncio" and r.getMessage().startswith("Unclosed"))
    ]
    assert errors == [], [f"{r.name}: {r.getMessage()} {r.exc_text or ''}" for r in errors]


def with_value(template: str, fragment: str) -> str:
    """`template` with its `@` replaced by the JSON text `fragment`."""
    return template.replace("@", fragment)


async def answered_ephemerally(bot: Bot, before: int) -> str:
    calls = await bot.fake.wait_for("response_url", count=before + 1)
    assert calls[before].args.get("response_type") == "ephemeral"
    return str(calls[before].args["text"])


async def told_by_dm(bot: Bot, before: int) -> str:
    def refusal(call: Any) -> bool:
        return call.args.get("text") == OUT_OF_DATE

    calls = await bot.fake.wait_for("chat.postMessage", count=before + 1, where=refusal)
    return str(calls[before].args["text"])


def refusals(bot: Bot) -> int:
    return len([c for c in bot.fake.calls_to("chat.postMessage") if c.args["text"] == OUT_OF_DATE])


async def import_draft(bot: Bot) -> int:
    results, problems = await import_text(
        DEMO_CONTRACT.read_text(encoding="utf-8"),
        filename="contract.yml",
        sessions=bot.sessions,
        client=bot.app.client,
        draft=True,
        now=bot.clock.now(),
    )
    assert problems == [], problems
    return results[0].contract_id


async def opened_view(bot: Bot, user: str, before: int, method: str = "views.open") -> Any:
    calls = await bot.fake.wait_for(method, count=before + 1)
    assert calls[-1].response["ok"], calls[-1].response
    return await filled_modal(bot.fake, user)


def set_metadata(bot: Bot, view: dict[str, Any], key: str, fragment: str) -> None:
    """What a modified client sends back: the view's private_metadata with `key` replaced."""
    stored = bot.fake.views[view["id"]]
    data = json.loads(stored["private_metadata"])
    data[key] = "@@"
    stored["private_metadata"] = json.dumps(data).replace('"@@"', fragment)


# --- ids in button values -------------------------------------------------------------------


@pytest.mark.parametrize("action", [APPROVE, REJECT])
async def test_an_amendment_button_with_no_id(
    bot: Bot, example_contract: int, caplog: pytest.LogCaptureFixture, action: str
) -> None:
    response = await propose(bot, "milestone:M1", {"due": "2027-06-30"})
    assert response.json["response_action"] == "update", response.json
    request = await request_to(bot, SPONSOR)
    await settled(bot)
    rows = await every_row(bot.sessions)
    for name, fragment in FRAGMENTS.items():
        before = len(bot.fake.calls_to("response_url"))
        sent = await bot.driver.block_action(
            user=SPONSOR, action_id=action, message=request, value=fragment
        )
        assert sent.status == 200, name
        assert await answered_ephemerally(bot, before) == OUT_OF_DATE, name
    assert await every_row(bot.sessions) == rows
    assert_no_errors(caplog)


@pytest.mark.parametrize("action", [START, SNOOZE])
async def test_a_checkin_button_with_no_id_or_week(
    bot: Bot, example_contract: int, caplog: pytest.LogCaptureFixture, action: str
) -> None:
    message = await prompt(bot)
    await settled(bot)
    rows = await every_row(bot.sessions)
    values = [with_value('{"contract_id": @, "period": "2027-W10"}', f) for f in FRAGMENTS.values()]
    values += [
        with_value(f'{{"contract_id": {example_contract}, "period": @}}', p) for p in PERIODS
    ]
    for value in values:
        before = len(bot.fake.calls_to("response_url"))
        sent = await bot.driver.block_action(
            user=LEADER, action_id=action, message=message, value=value
        )
        assert sent.status == 200, value[:80]
        assert await answered_ephemerally(bot, before) == OUT_OF_DATE, value[:80]
    assert bot.fake.calls_to("views.open") == []
    assert await every_row(bot.sessions) == rows
    assert_no_errors(caplog)


@pytest.mark.parametrize("action", [PROPOSE, ASK_SUPPORT])
async def test_a_recalibration_button_with_no_id(
    bot: Bot, example_contract: int, caplog: pytest.LogCaptureFixture, action: str
) -> None:
    message = await missed_m1(bot)
    await settled(bot)
    milestone = (await m1(bot)).id
    rows = await every_row(bot.sessions)
    values = [with_value('{"milestone": @, "miss": 1}', f) for f in FRAGMENTS.values()]
    values += [
        with_value(f'{{"milestone": {milestone}, "miss": @}}', f) for f in FRAGMENTS.values()
    ]
    for value in values:
        before = len(bot.fake.calls_to("response_url"))
        sent = await bot.driver.block_action(
            user=LEADER, action_id=action, message=message, value=value
        )
        assert sent.status == 200, value[:80]
        assert await answered_ephemerally(bot, before) == OUT_OF_DATE, value[:80]
    assert bot.fake.calls_to("views.open") == []
    assert await every_row(bot.sessions) == rows
    assert_no_errors(caplog)


async def test_open_summary_and_give_feedback_buttons_with_no_id(
    bot: Bot, example_contract: int, caplog: pytest.LogCaptureFixture
) -> None:
    await missed_m1(bot)
    note = copy.deepcopy(bot.fake.messages[bot.fake.dm_id(SPONSOR)][-1])  # "Open summary"
    await say(bot, "/contract", f"request-feedback <@{PEER1}|pia>", user=LEADER)
    await bot.fake.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == PEER1)
    request = copy.deepcopy(dms(bot, PEER1)[-1])
    await settled(bot)
    rows = await every_row(bot.sessions)
    for name, fragment in FRAGMENTS.items():
        before = refusals(bot)
        sent = await bot.driver.block_action(
            user=SPONSOR,
            action_id=OPEN_SUMMARY,
            message=note,
            value=with_value('{"contract_id": @}', fragment),
        )
        assert sent.status == 200, name
        assert await told_by_dm(bot, before) == OUT_OF_DATE, name

        before = len(bot.fake.calls_to("response_url"))
        sent = await bot.driver.block_action(
            user=PEER1,
            action_id=REQUEST_GIVE,
            message=request,
            value=with_value('{"request_id": @}', fragment),
        )
        assert sent.status == 200, name
        assert await answered_ephemerally(bot, before) == OUT_OF_DATE, name
    assert bot.fake.calls_to("views.open") == []
    assert await every_row(bot.sessions) == rows
    assert_no_errors(caplog)


async def test_draft_buttons_with_no_id(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    await import_draft(bot)
    await bot.driver.app_home_opened(LEADER)
    await bot.fake.wait_for("views.publish")
    home = bot.fake.home_views[LEADER]
    editor = await open_modal(bot, "/contract", "edit", user=LEADER)
    rows = await every_row(bot.sessions)
    for name, fragment in FRAGMENTS.items():
        before = refusals(bot)
        await bot.driver.block_action(
            user=LEADER,
            action_id=EDIT_DRAFT,
            view=home,
            block_id="led_0",
            value=with_value('{"contract_id": @}', fragment),
        )
        assert await told_by_dm(bot, before) == OUT_OF_DATE, name
        set_metadata(bot, editor, "contract_id", fragment)
        for action, block in ((f"{ADD_ITEM}:expectation", "add_items"), (SEND, "activate")):
            before = refusals(bot)
            sent = await bot.driver.block_action(
                user=LEADER, action_id=action, view=editor, block_id=block
            )
            assert sent.status == 200, name
            assert await told_by_dm(bot, before) == OUT_OF_DATE, (name, action)
    assert len(bot.fake.calls_to("views.open")) == 1  # the editor itself
    assert bot.fake.calls_to("views.push") == []
    assert await every_row(bot.sessions) == rows
    assert_no_errors(caplog)


async def test_delete_with_no_id(
    bot: Bot, example_contract: int, caplog: pytest.LogCaptureFixture
) -> None:
    await give(bot, user=PEER1)
    await settled(bot)
    mine = await open_modal(bot, "/feedback", "mine", user=PEER1)
    async with bot.sessions() as session:
        (entry,) = (await session.exec(select(Feedback))).all()
    rows = await every_row(bot.sessions)
    for name, fragment in FRAGMENTS.items():
        before = len(bot.fake.calls_to("views.update"))
        sent = await bot.driver.block_action(
            user=PEER1,
            action_id=DELETE_MINE,
            view=mine,
            block_id=f"mine_{entry.id}",
            value=fragment,
        )
        assert sent.status == 200, name
        (update,) = (await bot.fake.wait_for("views.update", count=before + 1))[before:]
        assert "not yours, or it is already gone" in json.dumps(update.args["view"]), name
    assert await every_row(bot.sessions) == rows
    assert_no_errors(caplog)


# --- ids in a submitted view's private_metadata -------------------------------------------


Opened = tuple[dict[str, Any], dict[str, Any], str, str]  # view, values, user, metadata key


async def draft_item_form(bot: Bot) -> Opened:
    await import_draft(bot)
    editor = await open_modal(bot, "/contract", "edit", user=LEADER)
    await bot.driver.block_action(
        user=LEADER, action_id=f"{ADD_ITEM}:expectation", view=editor, block_id="add_items"
    )
    pushed = await opened_view(bot, LEADER, 0, "views.push")
    return pushed, {"kind": "impact", "text": "Lead the guild"}, LEADER, "contract_id"


async def amend_chooser(bot: Bot) -> Opened:
    await with_example(bot)
    chooser = await open_amend(bot)
    return chooser, {"item": "indicator:I2", "action": "change"}, LEADER, "contract_id"


async def amend_form(bot: Bot) -> Opened:
    await with_example(bot)
    form = await open_form(bot, "indicator:I2")
    return form, {"rationale": "Because."}, LEADER, "contract_id"


async def reject_reason(bot: Bot) -> Opened:
    await with_example(bot)
    response = await propose(bot, "milestone:M1", {"due": "2027-06-30"})
    assert response.json["response_action"] == "update", response.json
    request = await request_to(bot, SPONSOR)
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.block_action(user=SPONSOR, action_id=REJECT, message=request)
    modal = await opened_view(bot, SPONSOR, before)
    return modal, {"reason": "Not now."}, SPONSOR, "amendment_id"


async def feedback_form(bot: Bot) -> Opened:
    await with_example(bot)
    modal = await open_modal(bot, "/feedback", DANA, user=PEER1)
    return modal, answers(), PEER1, "contract_id"


async def evidence_form(bot: Bot) -> Opened:
    await with_example(bot)
    modal = await open_modal(bot, "/contract", "evidence", user=LEADER)
    return modal, {"item": "indicator:I1", "note": "Survey results"}, LEADER, "contract_id"


async def checkin_form(bot: Bot) -> Opened:
    await with_example(bot)
    virtual_time(bot.services)
    modal = await open_checkin(bot)
    return modal, ANSWERS, LEADER, "contract_id"


async def with_example(bot: Bot) -> None:
    results, problems = await import_text(
        DEMO_CONTRACT.read_text(encoding="utf-8"),
        filename="contract.yml",
        sessions=bot.sessions,
        client=bot.app.client,
        draft=False,
        now=bot.clock.now(),
    )
    assert problems == [] and results


FORMS: dict[str, Callable[[Bot], Awaitable[Opened]]] = {
    "draft item": draft_item_form,
    "amend chooser": amend_chooser,
    "amend form": amend_form,
    "reject reason": reject_reason,
    "feedback": feedback_form,
    "evidence": evidence_form,
    "checkin": checkin_form,
}


def answer_of(response: DriverResponse, view: dict[str, Any]) -> str:
    """A clear answer: field errors on the view's inputs, or the modal replaced by a note."""
    assert response.status == 200, response.text
    body = response.json
    assert isinstance(body, dict), response.text
    if body.get("response_action") == "errors":
        inputs = {b["block_id"] for b in view["blocks"] if b["type"] == "input"}
        assert body["errors"] and set(body["errors"]) <= inputs, body
        return " ".join(body["errors"].values())
    assert body.get("response_action") == "update", body
    return json.dumps(body["view"])


@pytest.mark.parametrize("form", list(FORMS))
async def test_a_submitted_form_with_no_id(
    bot: Bot, caplog: pytest.LogCaptureFixture, form: str
) -> None:
    view, values, user, key = await FORMS[form](bot)
    await settled(bot)
    rows = await every_row(bot.sessions)
    for name, fragment in FRAGMENTS.items():
        set_metadata(bot, view, key, fragment)
        response = await bot.driver.submit_view(view, values, user=user)
        assert answer_of(response, view), (form, name)
    assert await every_row(bot.sessions) == rows
    assert_no_errors(caplog)


# --- a view whose state is null -----------------------------------------------------------


STATES: dict[str, Any] = {
    "null": None,
    "no values": {},
    "null values": {"values": None},
    "values a list": {"values": []},
    "a block null": {"values": {"text": None, "rationale": None, "behaviour": None}},
    "text": "x",
}


async def submit_with_state(bot: Bot, view: dict[str, Any], user: str, state: Any) -> Any:
    """A view_submission exactly as submit_view sends it, but with this `state`."""
    current = {k: v for k, v in copy.deepcopy(bot.fake.views[view["id"]]).items() if k != "user"}
    current["state"] = state
    payload = {
        "type": "view_submission",
        "token": VERIFICATION_TOKEN,
        "api_app_id": bot.driver.api_app_id,
        "team": {"id": bot.driver.team_id, "domain": bot.fake.team_domain},
        "user": {"id": user, "username": user.lower(), "name": user.lower()},
        "trigger_id": bot.fake.issue_trigger_id(user=user, view_id=current["id"]),
        "view": current,
        "response_urls": [],
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = {"Content-Type": "application/x-www-form-urlencoded", **bot.driver.sign(body)}
    return await bot.driver.post_raw(body, headers)


async def new_contract_form(bot: Bot) -> Opened:
    modal = await open_modal(bot, "/contract", "new", user=LEADER)
    return modal, {}, LEADER, ""


@pytest.mark.parametrize("form", ["new contract", *FORMS])
async def test_a_submission_whose_state_is_null(
    bot: Bot, caplog: pytest.LogCaptureFixture, form: str
) -> None:
    view, _, user, _ = await (FORMS.get(form) or new_contract_form)(bot)
    await settled(bot)
    rows = await every_row(bot.sessions)
    for name, state in STATES.items():
        response = await submit_with_state(bot, view, user, state)
        assert answer_of(response, view), (form, name)
    assert await every_row(bot.sessions) == rows
    assert_no_errors(caplog)


# --- NUL characters in typed text ---------------------------------------------------------


async def test_nul_characters_are_dropped_before_storage(
    bot: Bot, example_contract: int, caplog: pytest.LogCaptureFixture
) -> None:
    virtual_time(bot.services)
    modal = await open_modal(bot, "/feedback", DANA, user=PEER1)
    values = answers(situation=f"The review{NUL}.", behaviour=f"She paused{NUL} the " + "x" * 40)
    response = await bot.driver.submit_view(modal, values, user=PEER1)
    assert response.json["response_action"] == "update", response.json

    modal = await open_modal(bot, "/contract", "evidence", user=LEADER)
    values = {"item": "indicator:I1", "note": f"Survey{NUL} results", "link": ""}
    response = await bot.driver.submit_view(modal, values, user=LEADER)
    assert response.json["response_action"] == "update", response.json

    modal = await open_checkin(bot)
    response = await bot.driver.submit_view(
        modal, {**ANSWERS, "reflection": f"Delegating{NUL} worked."}, user=LEADER
    )
    assert response.json == {"response_action": "clear"}
    await settled(bot)

    async with bot.sessions() as session:
        (feedback,) = (await session.exec(select(Feedback))).all()
        notes = [e.note for e in (await session.exec(select(Evidence))).all()]
        (checkin,) = (await session.exec(select(CheckIn))).all()
    assert feedback.situation == "The review." and feedback.behaviour.startswith("She paused the")
    assert "Survey results" in notes
    assert checkin.reflection == "Delegating worked."
    assert NUL not in json.dumps([str(r) for r in await every_row(bot.sessions)])
    assert_no_errors(caplog)


async def test_a_draft_item_with_nul_characters(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    view, _, user, _ = await draft_item_form(bot)
    response = await bot.driver.submit_view(
        view, {"kind": "impact", "text": f"Lead{NUL} the guild"}, user=user
    )
    assert response.status == 200 and response.json is None
    async with bot.sessions() as session:
        texts = [e.text for e in (await session.exec(select(Expectation))).all()]
    assert "Lead the guild" in texts
    assert_no_errors(caplog)


# --- views.update meeting a newer view -------------------------------------------------------


async def test_the_fake_answers_a_stale_hash_as_slack_does(bot: Bot) -> None:
    modal = await open_modal(bot, "/contract", "new", user=LEADER)
    with pytest.raises(SlackApiError) as raised:
        await bot.app.client.views_update(
            view_id=modal["id"], hash="1.stale", view={"type": "modal", **_title_only()}
        )
    assert raised.value.response["error"] == "hash_conflict"


def _title_only() -> dict[str, Any]:
    return {"title": {"type": "plain_text", "text": "x"}, "blocks": []}


async def test_a_double_click_on_delete_meets_a_hash_conflict_quietly(
    bot: Bot, example_contract: int, caplog: pytest.LogCaptureFixture
) -> None:
    await give(bot, user=PEER1)
    await settled(bot)
    mine = await open_modal(bot, "/feedback", "mine", user=PEER1)
    async with bot.sessions() as session:
        (entry,) = (await session.exec(select(Feedback))).all()

    def click() -> Awaitable[DriverResponse]:
        return bot.driver.block_action(
            user=PEER1, action_id=DELETE_MINE, view=mine, block_id=f"mine_{entry.id}"
        )

    sent = await asyncio.gather(click(), click())  # both carry the view's hash of that moment
    assert [s.status for s in sent] == [200, 200]
    # The first update filled the modal as it opened; then one per click.
    updates = (await bot.fake.wait_for("views.update", count=3))[1:]
    assert sorted(str(u.response.get("error")) for u in updates) == ["None", "hash_conflict"]
    await asyncio.sleep(0.1)  # the second handler finishes after its views.update
    async with bot.sessions() as session:
        assert (await session.exec(select(Feedback))).all() == []
        withdrawn = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "feedback.withdrawn"))
        ).all()
    assert len(withdrawn) == 1  # deleted once, so withdrawn once in the contract's history
    assert any("hash_conflict" in r.getMessage() for r in caplog.records)
    assert_no_errors(caplog)


async def test_an_editor_closed_before_its_item_was_added(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    view, values, user, _ = await draft_item_form(bot)
    del bot.fake.views[view["previous_view_id"]]  # gone: views.update answers not_found
    response = await bot.driver.submit_view(view, values, user=user)
    assert response.status == 200 and response.json is None
    (update,) = await bot.fake.wait_for("views.update")
    assert update.response["error"] == "not_found"
    await asyncio.sleep(0.1)
    async with bot.sessions() as session:
        assert "Lead the guild" in [e.text for e in (await session.exec(select(Expectation)))]
    assert_no_errors(caplog)


# --- contract files -----------------------------------------------------------------------


async def test_a_file_over_the_limit_is_refused_by_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.yml"
    big.write_bytes(b"title: x\n" + b"#" * (2**20))
    docs, problems = await validate_file(big, client=None)
    assert docs == [] and problems == [f"{big}: larger than 1 MiB; a contract file is far smaller"]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
async def test_dev_zero_is_refused_after_one_mebibyte() -> None:
    docs, problems = await asyncio.wait_for(validate_file("/dev/zero", client=None), 10)
    assert docs == [] and problems == [
        "/dev/zero: larger than 1 MiB; a contract file is far smaller"
    ]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.yml", "title: " + "[" * 100_000 + "]" * 100_000 + "\n"),
        ("deep-block.yml", "".join(f"{'  ' * i}a{i}:\n" for i in range(200)) + "  " * 200 + "x"),
        ("deep.json", '{"title": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("shallow-enough.json", '{"title": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}"),
    ],
)
async def test_nesting_deeper_than_the_limit_is_one_clear_problem(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    docs, problems = await validate_file(path, client=None)
    assert docs == [] and len(problems) == 1
    assert (
        problems[0].startswith(str(path))
        and f"nested deeper than {MAX_DEPTH} levels" in (problems[0])
    )


async def test_aliases_that_expand_to_millions_of_values_are_refused(tmp_path: Path) -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 9) + "]")
    lines.append("title: *i")
    path = tmp_path / "laughs.yml"
    path.write_text("\n".join(lines), encoding="utf-8")
    docs, problems = await asyncio.wait_for(validate_file(path, client=None), 10)
    assert docs == [] and problems == [
        f"{path}: more than 100,000 values (YAML aliases count each time they are used); "
        "a contract holds far fewer"
    ]


def aliased(size: int = 900_000) -> str:
    value = "x" * size
    refs = ", ".join(["*a"] * 50)
    return "\n".join(
        [
            f'big: &a "{value}"',
            "title: Head of Platform",
            "leader: *a",
            "sponsor: *a",
            "mission: ok",
            "period: {start: *a, end: *a}",
            f"feedback: {{reviewers: [{refs}]}}",
            f"governance: {{approvers: [{refs}], escalation: [{refs}]}}",
            "checkin: {weekday: *a, time: *a, timezone: *a}",
        ]
    )


async def test_values_quoted_back_are_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "aliased.yml"
    path.write_text(aliased(), encoding="utf-8")
    docs, problems = await validate_file(path, client=None)
    assert docs == [] and len(problems) > 100
    assert max(len(p) for p in problems) <= 300
    assert sum(len(p) for p in problems) < 60_000


async def test_the_command_prints_a_short_report(tmp_path: Path) -> None:
    path = tmp_path / "aliased.yml"
    path.write_text(aliased(), encoding="utf-8")
    run = await northstar("contract", "validate", str(path), cwd=tmp_path)
    assert run.code == 1
    assert len(run.err) < 40_000 and run.err.rstrip().endswith("; nothing was written.")
    assert "more." in run.err  # past the first hundred, a count
    assert "Traceback" not in run.err

    zero = await northstar("contract", "validate", "/dev/zero", cwd=tmp_path)
    assert zero.code == 1 and "larger than 1 MiB" in zero.err


async def test_contracts_table_is_untouched_by_refused_imports(bot: Bot, tmp_path: Path) -> None:
    path = tmp_path / "deep.yml"
    path.write_text("title: " + "[" * 100_000 + "]" * 100_000, encoding="utf-8")
    results, problems = await import_file(
        path, sessions=bot.sessions, client=None, draft=False, now=bot.clock.now()
    )
    assert results == [] and len(problems) == 1
    async with bot.sessions() as session:
        assert (await session.exec(select(Contract))).all() == []
