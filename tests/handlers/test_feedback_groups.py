"""360 with rater groups, through signed requests: who is in which group, what the modal asks
and refuses, the anonymity threshold per group with its attack cases, requests to each group,
and the self view beside the others'."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pypdf
import pytest
import yaml
from sqlmodel import col, select

from bot.contracts.io import import_file
from bot.feedback.model import OTHERS, SELF, STAKEHOLDER, ThreeSixty
from bot.feedback.service import three_sixty
from bot.sandbox.driver import _state_values
from storage.models import Feedback
from tests.conftest import EXAMPLE_CONTRACT, Bot
from tests.handlers.test_feedback_requests import click_give, request_dm
from tests.handlers.test_feedback_support import (
    BEHAVIOUR,
    DANA,
    ESCALATION,
    LEADER,
    OUTSIDER,
    OWNER,
    PEER1,
    PEER2,
    PEER3,
    SPONSOR,
    answers,
    dms,
    fast_sending,
    for_modal,
    give,
    notices,
    open_modal,
    run_job,
    say,
    settled,
    text_of,
)
from tests.handlers.test_report import ask, posted, shared_files
from tests.handlers.test_report import text_of as report_text
from tests.harness import filled_modal

# The example contract's people, placed in groups; more people to fill them.
PEER4 = "U0PEER004"
REPORT2, REPORT3 = "U0REPORT2", "U0REPORT3"
STAKE1, STAKE2, STAKE3, STAKE4, STAKE5 = (f"U0STAKE0{n}" for n in range(1, 6))
EXTRA = [PEER4, REPORT2, REPORT3, STAKE1, STAKE2, STAKE3, STAKE4, STAKE5]
REPORTS = [PEER2, REPORT2, REPORT3]  # Raj reports to Dana
STAKEHOLDERS = [STAKE1, STAKE2, STAKE3, STAKE4, STAKE5]


@pytest.fixture(autouse=True)
def _fast(bot: Bot) -> None:
    fast_sending(bot)


@pytest.fixture
async def groups_contract(bot: Bot, tmp_path: Path) -> int:
    """The example contract with its rater groups listed: peers, direct reports, stakeholders."""
    for n, user in enumerate(EXTRA):
        bot.fake.add_user(user, name=f"person{n}", real_name=f"Person {n}", tz="Europe/Berlin")
    doc = yaml.safe_load(EXAMPLE_CONTRACT.read_text())
    doc["feedback"].update(
        reviewers=[],
        peers=[PEER1, PEER3, PEER4],
        direct_reports=REPORTS,
        stakeholders=STAKEHOLDERS,
        anonymity_threshold=3,
    )
    path = tmp_path / "groups.yml"
    path.write_text(yaml.safe_dump(doc))
    results, problems = await import_file(
        path, sessions=bot.sessions, client=bot.app.client, draft=False, now=bot.clock.now()
    )
    assert problems == []
    return results[0].contract_id


def inputs(modal: dict[str, Any]) -> set[str]:
    return {b.get("block_id", "") for b in modal["blocks"] if b.get("type") == "input"}


async def give_as(
    bot: Bot, user: str, behaviour: str, *, anonymous: bool = True, **overrides: Any
) -> dict[str, Any]:
    response = await give(bot, user=user, anonymous=anonymous, behaviour=behaviour, **overrides)
    return dict(response.json or {})


async def crafted(
    bot: Bot, modal: dict[str, Any], values: dict[str, Any], user: str, **tampered: str
) -> dict[str, Any]:
    """Submit `modal` as a crafted request would: `tampered` block ids set to any value."""
    current = bot.driver._current(modal)
    state = _state_values(current, for_modal(current, values))
    for block_id, value in tampered.items():
        state[block_id] = {block_id: {"type": "radio_buttons", "selected_option": {"value": value}}}
    current["state"] = {"values": state}
    payload = {
        "type": "view_submission",
        **bot.driver._common(user),
        "trigger_id": bot.fake.issue_trigger_id(user=user, view_id=current["id"]),
        "view": current,
        "response_urls": [],
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = {"Content-Type": "application/x-www-form-urlencoded", **bot.driver.sign(body)}
    response = await bot.driver.post_raw(body, headers)
    assert response.status == 200
    return dict(response.json or {})


async def rows(bot: Bot) -> list[Feedback]:
    async with bot.sessions() as session:
        return list((await session.exec(select(Feedback).order_by(col(Feedback.id)))).all())


async def received(bot: Bot, reader: str = LEADER) -> str:
    return await say(
        bot, "/feedback", "received" if reader == LEADER else f"received {DANA}", user=reader
    )


async def view_360(bot: Bot, contract_id: int) -> ThreeSixty:
    async with bot.sessions() as session:
        found = await three_sixty(session, contract_id, date(2027, 1, 1), date(2027, 12, 31))
    assert found is not None
    return found


def said_by_group(view: ThreeSixty) -> dict[tuple[str, bool], set[str]]:
    """Behaviours shown per (group, anonymous), over every expectation."""
    found: dict[tuple[str, bool], set[str]] = {}
    for expectation in view.expectations:
        for group in expectation.groups:
            shown = {e.behaviour for e in (*group.strengths, *group.development)}
            found.setdefault((group.group, group.anonymous), set()).update(shown)
    return found


def text(n: int, who: str) -> str:
    return f"{BEHAVIOUR} Entry {n} from {who}."


# --- who is in which group, and what the modal asks --------------------------------------------


async def test_the_modal_asks_someone_the_contract_does_not_place_and_states_the_rule(
    bot: Bot, example_contract: int
) -> None:
    modal = await open_modal(bot, "/feedback", DANA, user=PEER1)  # a plain reviewer
    shown = text_of(modal)
    assert f"How do you work with <@{LEADER}>?" in shown
    assert {"relation", "anonymity"} <= inputs(modal)
    relation = next(b for b in modal["blocks"] if b.get("block_id") == "relation")
    offered = [o["value"] for o in relation["element"]["options"]]
    assert offered == ["peer", "direct_report", "stakeholder"]  # never sponsor or self
    assert "shown per group" in shown and "3 different people of that group" in shown

    for value in ("sponsor", "self", "boss", "peer\u200b"):
        answer = await crafted(bot, modal, answers(), PEER1, relation=value)
        assert answer["response_action"] == "errors" and "relation" in answer["errors"], value
    assert await rows(bot) == []

    response = await give(bot, user=PEER1, anonymous=False, relation="direct_report")
    assert response.json["response_action"] == "update"
    [entry] = await rows(bot)
    assert entry.relation == "direct_report"
    # Said once, remembered: the next modal does not ask again, and cannot be steered.
    modal = await open_modal(bot, "/feedback", DANA, user=PEER1)
    assert "relation" not in inputs(modal)
    answer = await crafted(bot, modal, answers(), PEER1, relation="peer")
    assert answer["response_action"] == "errors"


async def test_a_group_the_contract_lists_is_closed_to_others(
    bot: Bot, groups_contract: int
) -> None:
    modal = await open_modal(bot, "/feedback", DANA, user=OUTSIDER)
    relation = next(b for b in modal["blocks"] if b.get("block_id") == "relation")
    assert [o["value"] for o in relation["element"]["options"]] == ["stakeholder"]
    answer = await crafted(
        bot, modal, answers(relation="stakeholder"), OUTSIDER, relation="direct_report"
    )
    assert answer["response_action"] == "errors" and "relation" in answer["errors"]

    modal = await open_modal(bot, "/feedback", DANA, user=PEER2)  # a listed direct report
    assert "relation" not in inputs(modal) and "anonymity" in inputs(modal)
    answer = await crafted(bot, modal, answers(), PEER2, relation="peer")
    assert answer["response_action"] == "errors"
    assert (await give(bot, user=PEER2)).json["response_action"] == "update"
    [entry] = await rows(bot)
    assert entry.relation == "direct_report"


async def test_the_sponsor_and_the_leader_give_with_their_name_only(
    bot: Bot, groups_contract: int
) -> None:
    modal = await open_modal(bot, "/feedback", DANA, user=SPONSOR)
    assert inputs(modal) & {"relation", "anonymity"} == set()
    assert "a sponsor is one person, so it could not be anonymous" in text_of(modal)
    answer = await crafted(bot, modal, answers(), SPONSOR, anonymity="anonymous")
    assert answer["response_action"] == "errors"
    answer = await crafted(bot, modal, answers(), SPONSOR, relation="peer")
    assert answer["response_action"] == "errors"
    assert (await give(bot, user=SPONSOR)).json["response_action"] == "update"
    await bot.fake.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == LEADER)
    [told] = notices(bot, LEADER)
    assert f"<@{SPONSOR}> gave you feedback* · as your sponsor" in text_of(told)

    # The owner reads the feedback: theirs goes with their name too.
    modal = await open_modal(bot, "/feedback", DANA, user=OWNER)
    assert "anonymity" not in inputs(modal) and "You read the feedback" in text_of(modal)

    modal = await open_modal(bot, "/feedback", DANA, user=LEADER)
    assert "Your self view" in text_of(modal) and inputs(modal) & {"anonymity", "relation"} == set()
    answer = await crafted(bot, modal, answers(), LEADER, anonymity="anonymous")
    assert answer["response_action"] == "errors"
    response = await bot.driver.submit_view(
        modal, for_modal(modal, answers(polarity="development")), user=LEADER
    )
    assert response.json["response_action"] == "update"
    assert {(r.relation, r.anonymous, r.author_id) for r in await rows(bot)} == {
        ("sponsor", False, SPONSOR),
        ("self", False, LEADER),
    }
    await settled(bot)
    assert len(notices(bot, LEADER)) == 1  # no DM about one's own self view


# --- the threshold per group, and its attacks -------------------------------------------------


async def test_a_lone_direct_reports_entry_stays_hidden_when_the_peers_are_released(
    bot: Bot, groups_contract: int
) -> None:
    for n, peer in enumerate((PEER1, PEER3, PEER4)):
        assert (await give_as(bot, peer, text(n, "a peer")))["response_action"] == "update"
    lone = text(9, "the only report")
    await give_as(bot, PEER2, lone)
    bot.clock.advance(timedelta(days=1))
    await run_job(bot)
    await settled(bot)

    [release] = [m for m in notices(bot, LEADER) if "Anonymous feedback" in text_of(m)]
    shown = text_of(release)
    assert all(text(n, "a peer") in shown for n in range(3)) and "*Peers* · 3 entries" in shown
    assert lone not in shown and "Direct reports" not in shown
    for reader in (LEADER, SPONSOR, OWNER):
        assert lone not in await received(bot, reader)
    groups = said_by_group(await view_360(bot, groups_contract))
    assert lone not in str(groups) and ("peer", True) in groups

    bot.clock.advance(timedelta(days=3))  # still alone: still held, whatever the runs
    await run_job(bot, force=True)
    assert lone not in await received(bot)
    assert [r.released_at for r in await rows(bot) if r.behaviour == lone] == [None]


async def test_small_groups_are_released_merged_as_others_once_together_they_meet_it(
    bot: Bot, groups_contract: int
) -> None:
    entries = {PEER2: text(1, "a report"), STAKE1: text(2, "a stakeholder"), STAKE2: text(3, "x")}
    for user, said in entries.items():
        await give_as(bot, user, said)
    bot.clock.advance(timedelta(days=1))
    await run_job(bot)
    await settled(bot)
    [release] = [m for m in notices(bot, LEADER) if "Anonymous feedback" in text_of(m)]
    shown = text_of(release)
    assert "*Others* · 3 entries" in shown and all(t in shown for t in entries.values())
    assert "Direct reports" not in shown and "Other stakeholders" not in shown
    assert {r.released_as for r in await rows(bot)} == {OTHERS}
    assert set(said_by_group(await view_360(bot, groups_contract))) == {(OTHERS, True)}


async def test_one_report_padding_their_group_from_several_team_ids_releases_nothing(
    bot: Bot, groups_contract: int
) -> None:
    for n, team in enumerate(("T0TEST001", "T0GRIDWS2", "T0CONNECT")):
        bot.driver.team_id = team
        assert (await give_as(bot, PEER2, text(n, "one report")))["response_action"] == "update"
    bot.driver.team_id = "T0TEST001"
    assert len({r.author_hash for r in await rows(bot)}) == 1
    await give_as(bot, STAKE1, text(5, "one stakeholder"))  # others: two people, not three
    bot.clock.advance(timedelta(days=2))
    await run_job(bot, force=True)
    assert all(r.released_at is None for r in await rows(bot))
    assert not [m for m in notices(bot, LEADER) if "Anonymous feedback" in text_of(m)]


async def delete_mine(bot: Bot, user: str, feedback_id: int) -> None:
    mine = await open_modal(bot, "/feedback", "mine", user=user)
    before = len(bot.fake.calls_to("views.update"))
    await bot.driver.block_action(
        user=user, action_id="feedback_delete_mine", view=mine, block_id=f"mine_{feedback_id}"
    )
    await bot.fake.wait_for("views.update", count=before + 1)
    assert "Deleted." in text_of(await filled_modal(bot.fake, user))


async def test_a_group_that_crossed_the_threshold_then_lost_an_entry_is_held(
    bot: Bot, groups_contract: int
) -> None:
    for n, report in enumerate(REPORTS):
        await give_as(bot, report, text(n, "a report"))
    withdrawn = next(r for r in await rows(bot) if r.behaviour == text(2, "a report"))
    await delete_mine(bot, REPORT3, withdrawn.id or 0)
    bot.clock.advance(timedelta(days=1))
    await run_job(bot)
    assert all(r.released_at is None for r in await rows(bot))
    assert not [m for m in notices(bot, LEADER) if "Anonymous feedback" in text_of(m)]
    # A withdrawn entry counts for nothing: one more stakeholder does not make "others" three.
    await give_as(bot, STAKE1, text(7, "a stakeholder"))
    bot.clock.advance(timedelta(days=1))
    await run_job(bot)
    released = [r for r in await rows(bot) if r.released_at is not None]
    assert {r.released_as for r in released} == {OTHERS} and len(released) == 3


async def test_no_difference_between_two_releases_singles_out_an_author(
    bot: Bot, groups_contract: int
) -> None:
    """Raj is merged into *others* with two stakeholders. Later the stakeholders alone reach
    the threshold, then the reports do: Raj's first entry stays with the two it was released
    with, never alone and never under a group that the earlier view would subtract from."""
    raj = text(1, "Raj")
    await give_as(bot, PEER2, raj)
    await give_as(bot, STAKE1, text(2, "S1"))
    await give_as(bot, STAKE2, text(3, "S2"))
    bot.clock.advance(timedelta(days=1))
    await run_job(bot)
    first = said_by_group(await view_360(bot, groups_contract))
    assert first == {(OTHERS, True): {raj, text(2, "S1"), text(3, "S2")}}

    for n, user in enumerate((STAKE3, STAKE4, STAKE5)):
        await give_as(bot, user, text(10 + n, "a stakeholder"))
    for n, user in enumerate((REPORT2, REPORT3)):
        await give_as(bot, user, text(20 + n, "a report"))
    await give_as(bot, PEER2, text(22, "Raj again"))
    bot.clock.advance(timedelta(days=1))
    await run_job(bot)
    later = said_by_group(await view_360(bot, groups_contract))
    assert later[(OTHERS, True)] == first[(OTHERS, True)]  # the earlier group, unchanged
    assert later[(STAKEHOLDER, True)] == {text(10 + n, "a stakeholder") for n in range(3)}
    assert later[("direct_report", True)] == {
        text(20, "a report"),
        text(21, "a report"),
        text(22, "Raj again"),
    }
    for shown in later.values():  # no group is one person's, nor a subset of another
        assert len(shown) >= 3
    said = await received(bot)
    assert said.index("*Others*") < said.index(raj) and "*Direct reports*" in said


# --- requests to each group ------------------------------------------------------------------


async def test_requests_go_to_each_group_and_the_leader_is_asked_for_a_self_view(
    bot: Bot, groups_contract: int
) -> None:
    said = await say(bot, "/contract", "request-feedback reports sponsor self E2", user=LEADER)
    for user in (*REPORTS, SPONSOR, LEADER):
        assert f"<@{user}>" in said
    asked_self = await request_dm(bot, LEADER)
    assert "your self view" in text_of(asked_self) and "*E2*" in text_of(asked_self)
    modal = await click_give(bot, LEADER, asked_self)
    assert "Your self view" in text_of(modal)
    response = await bot.driver.submit_view(
        modal, for_modal(modal, answers(expectation="E2")), user=LEADER
    )
    assert response.json["response_action"] == "update"
    sponsor_dm = await request_dm(bot, SPONSOR)
    modal = await click_give(bot, SPONSOR, sponsor_dm)
    assert "anonymity" not in inputs(modal)
    status = await say(bot, "/contract", "request-feedback", user=LEADER)
    assert f"answered by name: <@{LEADER}>" in status


async def test_the_cadence_asks_every_group_the_sponsor_and_the_leader(
    bot: Bot, groups_contract: int
) -> None:
    await run_job(bot, force=True)
    await settled(bot)
    everyone = [PEER1, PEER3, PEER4, *REPORTS, *STAKEHOLDERS, SPONSOR, LEADER]
    for user in everyone:
        assert [m for m in dms(bot, user) if "feedback_request_give" in text_of(m)], user
    assert "It's time for your self view" in text_of(dms(bot, LEADER)[0])


# --- the self view beside the others' ----------------------------------------------------------


async def give_the_360(bot: Bot) -> None:
    """On E1: the leader's self view (a strength), the sponsor's (a development area) and a
    peer's (a strength) by name, and the three direct reports' anonymously (development)."""
    await give_as(bot, LEADER, text(1, "me"), anonymous=False, expectation="E1")
    await give_as(bot, SPONSOR, text(2, "sponsor"), anonymous=False, polarity="development")
    await give_as(bot, PEER1, text(3, "peer"), anonymous=False)
    for n, report in enumerate(REPORTS):
        await give_as(bot, report, text(4 + n, "report"), polarity="development")


async def test_the_summary_shows_the_self_view_beside_the_groups_to_feedback_readers_only(
    bot: Bot, groups_contract: int
) -> None:
    await give_the_360(bot)
    bot.clock.advance(timedelta(days=1))
    await run_job(bot)

    line = (
        "*E1* · Self: 1 strength · Peers: 1 strength · Direct reports: 3 development areas · "
        "Sponsor: 1 development area"
    )
    for reader in (LEADER, SPONSOR, OWNER):
        summary = await say(bot, "/contract", f"summary {DANA}", user=reader)
        assert "*Feedback: self view beside the others'*" in summary and line in summary, reader
    summary = await say(bot, "/contract", f"summary {DANA}", user=ESCALATION)
    assert "self view beside" not in summary and "*Feedback themes*" in summary

    view = await view_360(bot, groups_contract)
    [e1] = [e for e in view.expectations if e.key == "E1"]
    assert [(g.group, g.anonymous) for g in e1.groups] == [
        (SELF, False),
        ("peer", False),
        ("direct_report", True),
        ("sponsor", False),
    ]
    assert e1.groups[0].strengths[0].author_id == LEADER
    assert all(e.author_id is None and e.given_on is None for e in e1.groups[2].development)
    empty = await three_sixty_in(bot, groups_contract, date(2026, 1, 1), date(2026, 12, 31))
    assert empty.expectations == ()


async def three_sixty_in(bot: Bot, contract_id: int, start: date, end: date) -> ThreeSixty:
    async with bot.sessions() as session:
        found = await three_sixty(session, contract_id, start, end)
    assert found is not None
    return found


async def test_the_report_counts_the_self_view_beside_each_group_and_never_a_held_entry(
    bot: Bot, groups_contract: int
) -> None:
    await give_the_360(bot)
    await give_as(bot, STAKE1, text(9, "a lone stakeholder"))  # alone in its group: held
    bot.clock.advance(timedelta(days=1))
    await run_job(bot)
    await settled(bot)

    await ask(bot, "report 2027", user=OWNER)
    dm = bot.fake.dm_id(OWNER)
    await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: c.args.get("channel") == dm, timeout=60.0
    )
    groups = (
        "Self: 1 strength, 0 development areas; Peers: 1 strength, 0 development areas; "
        "Direct reports: 0 strengths, 3 development areas; Sponsor: 0 strengths, 1 development "
        "area"
    )
    said = report_text(posted(bot.fake, dm))
    assert "360 feedback: the leader's self view beside the others' (counts)" in said
    assert "*E1* Own the platform reliability roadmap" in said and groups in said
    assert "Other stakeholders" not in said and "Others" not in said  # the lone entry is held
    for message in posted(bot.fake, dm):  # the words stay with the summary's readers
        assert text(4, "report") not in report_text([message])

    pdf = pypdf.PdfReader(io.BytesIO(shared_files(bot.fake, dm)["northstar-report-2027.pdf"]))
    page = " ".join(pdf.pages[1].extract_text().split())
    assert "Self: 1 strength, 0 development areas" in page
    assert "Direct reports: 0 strengths, 3 development areas" in page
    assert text(9, "a lone stakeholder") not in page and "Other stakeholders" not in page
